use super::*;
use std::collections::BTreeSet;

const SHA_A: &str = "949f81b3c30ca03a3d4effdecda04f100fa3edc07a28b19400f72ede7c5f0491";
const SHA_B: &str = "2e0642d4c6a51adc0fea0b45bbcd102feee744ce47d34424e1950720545d4d84";
const DIGEST: &str = "69860bda5563ac81e3c0057d654b5253219618a22ec3a346306239bba8cfa1a6";

/// A valid one-cell matrix; tests break one thing at a time.
fn minimal() -> String {
    format!(
        r#"default = "c1"

[kind."v0.11.1"]
linux-amd64 = "{SHA_A}"

[operator."v0.48.1"]
bundle_url = "https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/v0.48.1/bundle.yaml"
bundle_sha256 = "{SHA_B}"

[[cell]]
name = "c1"
kind_version = "v0.11.1"
node_image = "kindest/node:v1.21.1@sha256:{DIGEST}"
kind_config = "fixtures/kind/cluster.yaml"
operator_version = "v0.48.1"
servicemonitor = "mission"
allowed_to_fail = false
note = "the test cell"
"#
    )
}

fn err(text: &str) -> Located {
    match Matrix::parse(text, "m.toml") {
        Ok(m) => panic!("expected an error, parsed {:?}", m.names()),
        Err(MatrixError::At(located)) => located,
        Err(other) => panic!("expected a located error, got {other:?}"),
    }
}

/// 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in text"));
    text[..at].matches('\n').count() + 1
}

#[test]
fn minimal_matrix_parses_and_resolves_pins() {
    let m = Matrix::parse(&minimal(), "m.toml").unwrap();
    let c = m.default_cell();
    assert_eq!(c.name, "c1");
    assert_eq!(
        c.kind_sha256.get("linux-amd64").map(String::as_str),
        Some(SHA_A)
    );
    assert_eq!(c.operator_bundle_sha256, SHA_B);
    assert_eq!(c.kubernetes_version(), "v1.21.1");
    assert_eq!(c.kind_config, PathBuf::from("fixtures/kind/cluster.yaml"));
}

#[test]
fn shipped_matrix_has_the_agreed_cells() {
    let m = Matrix::load_default().unwrap();
    assert_eq!(
        m.names(),
        [
            "kind0.11-k8s1.21",
            "kind0.11-k8s1.21-honorlabels",
            "kind0.11-k8s1.20",
            "kind0.11-k8s1.19",
            "kind0.20-k8s1.21",
            "kind0.20-k8s1.27",
            "kind0.20-k8s1.27-kube-prometheus",
        ]
    );
    let d = m.default_cell();
    assert_eq!(d.name, "kind0.11-k8s1.21");
    assert_eq!(d.kind_version, "v0.11.1");
    assert_eq!(
        d.node_image,
        "kindest/node:v1.21.1@sha256:69860bda5563ac81e3c0057d654b5253219618a22ec3a346306239bba8cfa1a6"
    );
    assert_eq!(
        d.kind_sha256.len(),
        3,
        "kind v0.11.1 pins linux-amd64, darwin-amd64, darwin-arm64"
    );
    assert_eq!(d.servicemonitor, ServiceMonitorVariant::Mission);
    assert_eq!(d.default_cluster_name(), "pme2e-kind0-11-k8s1-21");
    assert_eq!(
        d.kind_url("linux-amd64"),
        "https://github.com/kubernetes-sigs/kind/releases/download/v0.11.1/kind-linux-amd64"
    );
    let honor = m.cell("kind0.11-k8s1.21-honorlabels").unwrap();
    assert_eq!(honor.servicemonitor, ServiceMonitorVariant::HonorLabels);
    assert_eq!(honor.node_image, d.node_image);
    for c in &m.cells {
        // FACTS: kind v0.11.1 on cgroup v2 is not known to work or fail; v0.20.0 must pass. The
        // stack cell may fail until it has passed on a real cluster.
        assert_eq!(
            c.allowed_to_fail,
            c.kind_version == "v0.11.1" || c.stack.is_some(),
            "{}",
            c.name
        );
        assert_eq!(c.operator_version, "v0.48.1");
        assert_eq!(c.operator_bundle_sha256, SHA_B);
        assert!(c.kind_sha256.contains_key("linux-amd64"));
        let config = crate::workspace_root().join(&c.kind_config);
        assert!(config.is_file(), "{}: {} missing", c.name, config.display());
    }
    // kind v0.20.0 darwin binaries are not pinned upstream-facts-wise: no key, no download.
    assert!(!m
        .cell("kind0.20-k8s1.27")
        .unwrap()
        .kind_sha256
        .contains_key("darwin-arm64"));
    assert_eq!(
        m.cell("kind0.20-k8s1.27").unwrap().kubernetes_version(),
        "v1.27.3"
    );
}

#[test]
fn shipped_kind_configs_are_one_control_plane_two_workers_without_images() {
    let m = Matrix::load_default().unwrap();
    let configs: BTreeSet<&PathBuf> = m.cells.iter().map(|c| &c.kind_config).collect();
    for path in configs {
        let text = std::fs::read_to_string(crate::workspace_root().join(path)).unwrap();
        let doc: crate::yaml::Value = crate::yaml::from_str(&text).unwrap();
        assert_eq!(
            doc["apiVersion"].as_str(),
            Some("kind.x-k8s.io/v1alpha4"),
            "{}",
            path.display()
        );
        assert_eq!(doc["kind"].as_str(), Some("Cluster"));
        let nodes = doc["nodes"].as_array().expect("nodes list");
        let roles: Vec<&str> = nodes
            .iter()
            .map(|n| n["role"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(
            roles,
            ["control-plane", "worker", "worker"],
            "{}",
            path.display()
        );
        assert!(
            nodes.iter().all(|n| n.get("image").is_none()),
            "the image comes from --image, not the file"
        );
        assert!(
            doc.get("name").is_none(),
            "the cluster name comes from --name, not the file"
        );
    }
}

#[test]
fn shipped_manifest_paths_are_the_agreed_ones() {
    assert_eq!(
        ServiceMonitorVariant::Mission.manifest(),
        "manifests/servicemonitor-cadvisor.yaml"
    );
    assert_eq!(
        ServiceMonitorVariant::HonorLabels.manifest(),
        "manifests/servicemonitor-cadvisor-honorlabels.yaml"
    );
    // Each variant's file exists and sets honorLabels as its name says.
    for (variant, honor) in [
        (ServiceMonitorVariant::Mission, None),
        (ServiceMonitorVariant::HonorLabels, Some(true)),
    ] {
        let path = crate::workspace_root().join(variant.manifest());
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: crate::yaml::Value = crate::yaml::from_str(&text).unwrap();
        assert_eq!(
            doc["kind"].as_str(),
            Some("ServiceMonitor"),
            "{}",
            path.display()
        );
        let endpoints = doc["spec"]["endpoints"].as_array().expect("endpoints");
        assert!(!endpoints.is_empty());
        for ep in endpoints {
            assert_eq!(
                ep.get("honorLabels").and_then(crate::yaml::Value::as_bool),
                honor,
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn unknown_cell_lists_known_ones() {
    let m = Matrix::parse(&minimal(), "m.toml").unwrap();
    let e = m.cell("nope").unwrap_err().to_string();
    assert!(
        e.contains("unknown matrix cell `nope`") && e.contains("known cells: c1"),
        "{e}"
    );
}

#[test]
fn github_matrix_has_exactly_the_agreed_keys_and_filters() {
    let m = Matrix::load_default().unwrap();
    let all = m.github_matrix(None).unwrap();
    let include = all["include"].as_array().unwrap();
    assert_eq!(include.len(), m.cells.len());
    for entry in include {
        let mut keys: Vec<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        let mut expected = GITHUB_MATRIX_KEYS.to_vec();
        expected.sort();
        assert_eq!(keys, expected);
    }
    assert_eq!(
        m.github_matrix(Some("")).unwrap(),
        all,
        "an empty dispatch input means every cell"
    );
    let one = m.github_matrix(Some("kind0.20-k8s1.27")).unwrap();
    assert_eq!(
        one,
        serde_json::json!({"include": [{"cell": "kind0.20-k8s1.27", "kind_version": "v0.20.0",
            "kubernetes_version": "v1.27.3", "servicemonitor": "mission", "allowed_to_fail": false}]})
    );
    assert!(m
        .github_matrix(Some("kind9"))
        .unwrap_err()
        .to_string()
        .contains("known cells"));
}

#[test]
fn rejects_unknown_field_with_line() {
    let text = minimal().replace(
        "allowed_to_fail = false",
        "allowed_to_fail = false\nretries = 3",
    );
    let e = err(&text);
    assert_eq!(e.line, line_of(&text, "retries"), "{e}");
    assert!(e.reason.contains("unknown field `retries`"), "{e}");
    assert!(
        e.to_string().starts_with(&format!("m.toml:{}:", e.line)),
        "{e}"
    );
}

#[test]
fn rejects_bad_sha256_length() {
    let short = &SHA_A[..63];
    let text = minimal().replace(SHA_A, short);
    let e = err(&text);
    assert_eq!(e.line, line_of(&text, short), "{e}");
    assert!(
        e.reason
            .contains("kind v0.11.1 linux-amd64 sha256 has 63 characters"),
        "{e}"
    );

    let text = minimal().replace(SHA_B, &SHA_B.to_uppercase());
    let e = err(&text);
    assert!(
        e.reason.contains("bundle_sha256") && e.reason.contains("not lowercase hex"),
        "{e}"
    );
}

#[test]
fn rejects_image_without_digest() {
    let text = minimal().replace(&format!("@sha256:{DIGEST}"), "");
    let e = err(&text);
    assert_eq!(e.line, line_of(&text, "node_image"), "{e}");
    assert!(e.reason.contains("no @sha256 digest"), "{e}");

    let e = err(&minimal().replace("kindest/node:v1.21.1@", "kindest/node@"));
    assert!(e.reason.contains("has no tag"), "{e}");
    let e = err(&minimal().replace(DIGEST, &DIGEST[1..]));
    assert!(e.reason.contains("64 lowercase hex"), "{e}");
}

#[test]
fn rejects_duplicate_name() {
    let base = minimal();
    let cell = &base[base.find("[[cell]]").unwrap()..];
    let text = format!("{base}\n{cell}");
    let e = err(&text);
    let second = text.rfind("name = \"c1\"").unwrap();
    assert_eq!(e.line, text[..second].matches('\n').count() + 1, "{e}");
    assert!(e.reason.contains("duplicate cell name `c1`"), "{e}");
}

#[test]
fn rejects_names_that_collide_as_cluster_names() {
    let base = minimal();
    let cell = base[base.find("[[cell]]").unwrap()..].replace("\"c1\"", "\"c.1\"");
    let text = format!("{}\n{cell}", base.replace("\"c1\"", "\"c-1\""));
    let e = err(&text);
    assert!(
        e.reason
            .contains("would both create kind cluster `pme2e-c-1`"),
        "{e}"
    );
}

#[test]
fn rejects_missing_linux_amd64_kind_sha() {
    let text = minimal().replace("linux-amd64 =", "darwin-arm64 =");
    let e = err(&text);
    assert!(
        e.reason
            .contains("kind v0.11.1 has no sha256 for linux-amd64"),
        "{e}"
    );
    assert!(
        e.line >= line_of(&text, "[kind.") && e.line <= line_of(&text, "darwin-arm64"),
        "{e}"
    );
}

#[test]
fn rejects_unknown_platform() {
    let text = minimal()
        .replace("linux-amd64 =", "linux-amd64 = \"{SHA_A}\"\nlinux-riscv =")
        .replace("{SHA_A}", SHA_A);
    let e = err(&text);
    assert_eq!(e.line, line_of(&text, "linux-riscv"), "{e}");
    assert!(
        e.reason.contains("unknown kind platform `linux-riscv`"),
        "{e}"
    );
}

#[test]
fn rejects_unknown_servicemonitor_variant() {
    let text = minimal().replace("\"mission\"", "\"honorlabels\"");
    let e = err(&text);
    assert_eq!(e.line, line_of(&text, "servicemonitor"), "{e}");
    assert!(
        e.reason.contains("unknown variant `honorlabels`") && e.reason.contains("honor-labels"),
        "{e}"
    );
}

#[test]
fn rejects_dangling_references_and_bad_default() {
    let e = err(&minimal().replace("kind_version = \"v0.11.1\"", "kind_version = \"v0.12.0\""));
    assert!(
        e.reason
            .contains("kind_version `v0.12.0` has no [kind.\"v0.12.0\"] table")
            && e.reason.contains("v0.11.1"),
        "{e}"
    );
    let e = err(&minimal().replace(
        "operator_version = \"v0.48.1\"",
        "operator_version = \"v0.50.0\"",
    ));
    assert!(e.reason.contains("operator_version `v0.50.0`"), "{e}");
    let text = minimal().replace("default = \"c1\"", "default = \"c2\"");
    let e = err(&text);
    assert_eq!(e.line, 1);
    assert!(
        e.reason
            .contains("default cell `c2` is not defined; known cells: c1"),
        "{e}"
    );
}

#[test]
fn rejects_old_kubernetes_that_must_pass() {
    let text = minimal().replace("v1.21.1@", "v1.18.19@");
    let e = err(&text);
    assert!(e.reason.contains("cannot boot on cgroup-v2 hosts"), "{e}");
    let ok = text.replace("allowed_to_fail = false", "allowed_to_fail = true");
    assert_eq!(
        Matrix::parse(&ok, "m.toml")
            .unwrap()
            .default_cell()
            .kubernetes_version(),
        "v1.18.19"
    );
}

#[test]
fn rejects_other_malformed_values() {
    let e = err(&minimal().replace("name = \"c1\"", "name = \"C_1\""));
    assert!(e.reason.contains("cell name `C_1`"), "{e}");
    let e = err(&minimal().replace("fixtures/kind/cluster.yaml", "../cluster.yaml"));
    assert!(e.reason.contains("relative to the workspace root"), "{e}");
    let e = err(&minimal().replace("/v0.48.1/bundle", "/v0.47.0/bundle"));
    assert!(e.reason.contains("does not contain `/v0.48.1/`"), "{e}");
    let e = err(&minimal().replace("note = \"the test cell\"", "note = \" \""));
    assert!(e.reason.contains("note is empty"), "{e}");
    let e = err(&minimal().replace("allowed_to_fail = false\n", ""));
    assert!(e.reason.contains("missing field `allowed_to_fail`"), "{e}");
    let e = err("default = \"x\"\n");
    assert!(e.reason.contains("no cells"), "{e}");
    let e = err("default = \n");
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn metrics_default_per_cell_and_are_validated_with_their_line() {
    let m = Matrix::parse(&minimal(), "m.toml").unwrap();
    assert_eq!(m.default_cell().metrics, MetricName::defaults());
    let with = minimal().replace(
        "note = \"the test cell\"",
        "note = \"the test cell\"\nmetrics = [\"container_memory_working_set_bytes\"]",
    );
    let m = Matrix::parse(&with, "m.toml").unwrap();
    assert_eq!(
        m.default_cell().metrics,
        [MetricName::new("container_memory_working_set_bytes").unwrap()]
    );
    let bad = minimal().replace(
        "note = \"the test cell\"",
        "note = \"the test cell\"\nmetrics = [\"container_cpu_usage_seconds_total\", \"container-memory\"]",
    );
    let e = err(&bad);
    assert_eq!(e.line, line_of(&bad, "metrics = "), "{e}");
    assert_eq!(e.column, 49, "{e}"); // the opening quote of the bad name
    assert!(
        e.reason
            .contains("cell `c1`: metrics: invalid metric name \"container-memory\""),
        "{e}"
    );
    assert!(e.reason.contains("[a-zA-Z_:][a-zA-Z0-9_:]*"), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("m.toml:{}:49: ", e.line)),
        "{e}"
    );
    let empty = minimal().replace(
        "note = \"the test cell\"",
        "note = \"the test cell\"\nmetrics = []",
    );
    let e = err(&empty);
    assert!(e.reason.contains("metrics is empty"), "{e}");
    assert_eq!(e.line, line_of(&empty, "metrics = "));
    let twice = minimal().replace(
        "note = \"the test cell\"",
        "note = \"the test cell\"\nmetrics = [\"a\", \"a\"]",
    );
    assert!(err(&twice).reason.contains("listed twice"));
    let not_strings = minimal().replace(
        "note = \"the test cell\"",
        "note = \"the test cell\"\nmetrics = \"a\"",
    );
    assert_eq!(err(&not_strings).line, line_of(&not_strings, "metrics = "));
}

#[test]
fn load_names_a_missing_file() {
    let e = Matrix::load(Path::new("/nonexistent/matrix.toml")).unwrap_err();
    assert!(
        format!("{e:#}").contains("cannot read the matrix file /nonexistent/matrix.toml"),
        "{e:#}"
    );
}

#[test]
fn a_cell_may_name_a_stack_relative_to_the_workspace_root() {
    let m = Matrix::load_default().unwrap();
    let cell = m.cell("kind0.20-k8s1.27-kube-prometheus").unwrap();
    assert_eq!(
        cell.stack.as_deref(),
        Some(std::path::Path::new("fixtures/stacks/kube-prometheus"))
    );
    assert!(crate::workspace_root()
        .join(cell.stack.as_ref().unwrap())
        .is_dir());
    assert!(m.default_cell().stack.is_none());
    let text =
        std::fs::read_to_string(crate::workspace_root().join("fixtures/matrix.toml")).unwrap();
    let bad = text.replace(
        "stack = \"fixtures/stacks/kube-prometheus\"",
        "stack = \"../elsewhere.yaml\"",
    );
    let err = Matrix::parse(&bad, "matrix.toml").unwrap_err().to_string();
    assert!(
        err.contains("stack `../elsewhere.yaml` must be a path relative to the workspace root"),
        "{err}"
    );
}
