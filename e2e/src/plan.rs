//! The ordered phases of `cargo xtask e2e`, with every command, URL, sha256 and manifest digest.
//!
//! Pure: built from a matrix cell and the run's options, rendered by `--dry-run`, and used by
//! [`crate::run`] for the phase names and numbering of its progress lines.

use crate::cluster;
use crate::matrix::Cell;
use std::fmt::Write as _;
use std::time::Duration;

/// The phases, in execution order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseId {
    Preflight,
    Cluster,
    Operator,
    Prometheus,
    ServiceMonitor,
    Workloads,
    Assert,
    Teardown,
}

impl PhaseId {
    pub const ALL: [PhaseId; 8] = [
        PhaseId::Preflight,
        PhaseId::Cluster,
        PhaseId::Operator,
        PhaseId::Prometheus,
        PhaseId::ServiceMonitor,
        PhaseId::Workloads,
        PhaseId::Assert,
        PhaseId::Teardown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PhaseId::Preflight => "preflight",
            PhaseId::Cluster => "cluster",
            PhaseId::Operator => "operator",
            PhaseId::Prometheus => "prometheus",
            PhaseId::ServiceMonitor => "servicemonitor",
            PhaseId::Workloads => "workloads",
            PhaseId::Assert => "assert",
            PhaseId::Teardown => "teardown",
        }
    }

    /// 1-based position, for "[3/8]".
    pub fn number(self) -> usize {
        PhaseId::ALL
            .iter()
            .position(|p| *p == self)
            .expect("every phase is in ALL")
            + 1
    }

    /// `[3/8] operator`
    pub fn label(self) -> String {
        format!("[{}/{}] {}", self.number(), PhaseId::ALL.len(), self.name())
    }
}

/// Which cluster the run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Create a kind cluster (error if one of that name exists).
    Create,
    /// Use the kind cluster of that name if it exists (never deleting it), else create it.
    Reuse,
    /// `--kubeconfig`: phases 3–8 against an existing cluster; nothing is created or deleted.
    Existing { kubeconfig: String },
}

/// When the cluster this run created is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Never,
    OnFailure,
    Always,
}

/// Where the operator bundle comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleChoice {
    Pinned { url: String, cache_dir: String },
    File { path: String },
}

/// Everything a plan depends on (paths already in display form).
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub cell: &'a Cell,
    pub cluster_name: String,
    pub mode: Mode,
    pub keep: Keep,
    pub kind: cluster::KindPin,
    pub tools_path: String,
    pub kind_config: String,
    pub paths: DisplayPaths,
    pub bundle: BundleChoice,
    /// `(path, sha256)` of every manifest the run applies, from `install::manifest_digests`.
    pub manifests: Vec<(String, String)>,
    /// What the Prometheus CR and the ServiceMonitor the run applies say ([`describe_applied`]).
    pub applied: Applied,
    pub timeout: Duration,
}

/// The settings that decide whether the pods' metrics arrive, read from the manifests the run
/// applies, one line each (see [`describe_prometheus`], [`describe_servicemonitor`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub prometheus: Vec<String>,
    pub servicemonitor: Vec<String>,
}

/// [`Applied`] from the Prometheus CR (among `prometheus_objects`) and the ServiceMonitor object.
///
/// # Errors
/// When there is no Prometheus object or the ServiceMonitor is not one.
pub fn describe_applied(
    prometheus_objects: &[serde_json::Value],
    servicemonitor: &serde_json::Value,
) -> anyhow::Result<Applied> {
    let prom = prometheus_objects
        .iter()
        .find(|o| o["kind"] == "Prometheus")
        .ok_or_else(|| anyhow::anyhow!("no Prometheus object among the Prometheus manifests"))?;
    if servicemonitor["kind"] != "ServiceMonitor" {
        anyhow::bail!(
            "expected a ServiceMonitor, found kind {}",
            servicemonitor["kind"]
        );
    }
    Ok(Applied {
        prometheus: describe_prometheus(prom),
        servicemonitor: describe_servicemonitor(servicemonitor),
    })
}

/// A JSON value in YAML flow style, the way the manifests read: `{matchNames: [kube-system]}`.
fn flow(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `value`, or what the operator does when the field is unset.
fn field(v: &serde_json::Value, unset: &str) -> String {
    if v.is_null() {
        format!("(unset: {unset})")
    } else {
        flow(v)
    }
}

fn ident(obj: &serde_json::Value) -> String {
    format!(
        "{} {}/{}",
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["namespace"].as_str().unwrap_or("default"),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The Prometheus CR's version, scrape interval and ServiceMonitor selectors. Unset selectors are
/// spelled out with their v0.48.1 meaning (nil selects nothing; a nil namespace selector means
/// the Prometheus's own namespace only: prometheus-operator Documentation/api.md, PrometheusSpec).
pub fn describe_prometheus(obj: &serde_json::Value) -> Vec<String> {
    let spec = &obj["spec"];
    vec![
        format!(
            "{}: version {}, scrapeInterval {}",
            ident(obj),
            field(&spec["version"], "the untagged (latest) image in v0.48.1"),
            field(&spec["scrapeInterval"], "30s")
        ),
        format!(
            "    serviceMonitorSelector {}",
            field(&spec["serviceMonitorSelector"], "selects no ServiceMonitor")
        ),
        format!(
            "    serviceMonitorNamespaceSelector {}{}",
            field(
                &spec["serviceMonitorNamespaceSelector"],
                "the Prometheus's own namespace only"
            ),
            if spec["serviceMonitorNamespaceSelector"]
                .as_object()
                .is_some_and(|m| m.is_empty())
            {
                " (every namespace)"
            } else {
                ""
            }
        ),
    ]
}

/// The ServiceMonitor's endpoints (port, scheme, path, bearer token file, tlsConfig,
/// honorLabels) and its namespace and label selectors.
pub fn describe_servicemonitor(obj: &serde_json::Value) -> Vec<String> {
    let spec = &obj["spec"];
    let labels = field(&obj["metadata"]["labels"], "no labels");
    let mut out = vec![format!("{} (labels {labels})", ident(obj))];
    for (i, ep) in spec["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        out.push(format!(
            "    endpoint {i}: port {}, scheme {}, path {}",
            field(&ep["port"], "none"),
            field(&ep["scheme"], "http"),
            field(&ep["path"], "/metrics")
        ));
        out.push(format!(
            "      bearerTokenFile {}",
            field(&ep["bearerTokenFile"], "no token sent")
        ));
        out.push(format!(
            "      tlsConfig {}",
            field(&ep["tlsConfig"], "verify against the system CAs")
        ));
        out.push(format!(
            "      honorLabels {}",
            field(
                &ep["honorLabels"],
                "false: pod namespaces arrive as exported_namespace"
            )
        ));
    }
    out.push(format!(
        "    namespaceSelector {}",
        field(
            &spec["namespaceSelector"],
            "the ServiceMonitor's own namespace"
        )
    ));
    out.push(format!(
        "    selector {}",
        field(&spec["selector"], "every Service")
    ));
    out
}

/// The run's paths, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayPaths {
    pub kubeconfig: String,
    pub artifacts: String,
    pub summary: String,
}

/// One phase and what it does, one line per step (`$ …` lines are commands run verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    pub id: PhaseId,
    pub title: String,
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub header: Vec<(String, String)>,
    pub phases: Vec<Phase>,
}

/// The command line of the assert phase (phase 7). The cluster tests are `#[ignore]`d so that
/// plain `cargo test` passes without a cluster; here they are the only ones run.
pub const NEXTEST_ARGS: [&str; 8] = [
    "cargo",
    "nextest",
    "run",
    "--workspace",
    "--profile",
    "e2e",
    "--run-ignored",
    "only",
];

/// The `E2E_METRICS` value the assert phase passes to the cluster tests: names joined by commas
/// (what `MetricName::parse_list` reads back).
pub fn metrics_env(metrics: &[crate::coverage::MetricName]) -> String {
    metrics
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Builds the plan.
pub fn build(input: &PlanInput) -> Plan {
    let cell = input.cell;
    let name = &input.cluster_name;
    let existing = matches!(input.mode, Mode::Existing { .. });
    let kubeconfig = match &input.mode {
        Mode::Existing { kubeconfig } => kubeconfig.clone(),
        _ => input.paths.kubeconfig.clone(),
    };
    let secs = input.timeout.as_secs();

    let mut header = vec![
        (
            "cell".to_string(),
            format!("{} — {}", cell.name, cell.note.trim()),
        ),
        (
            "versions".to_string(),
            format!(
                "kind {}, Kubernetes {}, prometheus-operator {}, ServiceMonitor variant `{}`{}",
                cell.kind_version,
                cell.kubernetes_version(),
                cell.operator_version,
                variant_name(cell),
                if cell.allowed_to_fail {
                    " (cell allowed to fail)"
                } else {
                    ""
                }
            ),
        ),
    ];
    let cluster_line = match (&input.mode, input.keep) {
        (Mode::Existing { kubeconfig }, _) => {
            format!("existing cluster from --kubeconfig {kubeconfig}; never created or deleted by this run")
        }
        (mode, keep) => {
            let fate = match keep {
                Keep::Never => "deleted at the end (success or failure)",
                Keep::OnFailure => "deleted on success, kept on failure (--keep-on-failure)",
                Keep::Always => "kept (--keep)",
            };
            match mode {
                Mode::Reuse => format!(
                    "kind cluster {name}, reused if it exists (then never deleted), else created and {fate}"
                ),
                _ => format!("kind cluster {name}, created by this run and {fate}"),
            }
        }
    };
    header.push(("cluster".to_string(), cluster_line));
    header.push((
        "kubeconfig".to_string(),
        format!("{kubeconfig} (never ~/.kube/config)"),
    ));
    header.push((
        "artifacts".to_string(),
        format!("{}/ (collected on failure)", input.paths.artifacts),
    ));
    header.push(("summary".to_string(), input.paths.summary.clone()));
    header.push((
        "timeout".to_string(),
        format!("{secs}s for each wait (--timeout)"),
    ));

    let kind = |args: Vec<String>| format!("$ kind {}", args.join(" "));
    let mut phases = Vec::new();

    // 1. Preflight
    let mut steps = Vec::new();
    if let Mode::Existing { kubeconfig } = &input.mode {
        steps.push(format!(
            "kubeconfig {kubeconfig} is readable (no Docker or kind needed)"
        ));
    } else {
        steps.push(format!(
            "kind config {} is readable and a kind.x-k8s.io/v1alpha4 Cluster with only known fields",
            input.kind_config
        ));
        steps.push(
            "$ docker info --format {{.ServerVersion}}   (the Docker engine answers)".to_string(),
        );
        steps.push(format!(
            "kind {v} ({p}): `kind` on PATH if `kind version` reports {v}, else {t} (verified), else download and verify:",
            v = input.kind.version,
            p = input.kind.platform,
            t = input.tools_path
        ));
        steps.push(format!("    url    {}", input.kind.url));
        steps.push(format!("    sha256 {}", input.kind.sha256));
        steps.push("$ kind get clusters".to_string());
        steps.push(match input.mode {
            Mode::Reuse => format!("{name} is reused when listed"),
            _ => format!("{name} must not be listed yet (else: --reuse, or `cargo xtask down --name {name}`)"),
        });
    }
    if let BundleChoice::File { path } = &input.bundle {
        steps.push(format!(
            "--operator-bundle {path}: sha256 {} (verified, parsed)",
            cell.operator_bundle_sha256
        ));
    }
    phases.push(Phase {
        id: PhaseId::Preflight,
        title: "fails before anything is created".into(),
        steps,
    });

    // 2. Cluster
    let steps = match &input.mode {
        Mode::Existing { .. } => vec![
            "skipped: the cluster exists already (only a client is built from the kubeconfig)"
                .to_string(),
        ],
        mode => {
            let mut s = Vec::new();
            if *mode == Mode::Reuse {
                s.push(format!(
                    "if {name} exists: $ kind {} > {}",
                    cluster::get_kubeconfig_args(name).join(" "),
                    input.paths.kubeconfig
                ));
                s.push("otherwise:".to_string());
            }
            s.push(kind(cluster::create_args(
                name,
                &input.kind_config,
                &cell.node_image,
                &input.paths.kubeconfig,
            )));
            s.push(format!(
                "wait until every node is Ready (timeout {secs}s; kind's --wait covers only the control plane)"
            ));
            s
        }
    };
    phases.push(Phase {
        id: PhaseId::Cluster,
        title: format!("Kubernetes {}", cell.kubernetes_version()),
        steps,
    });

    // 3. Operator
    let bundle = match &input.bundle {
        BundleChoice::Pinned { url, cache_dir } => {
            format!("bundle {url}\n    cached in {cache_dir}/")
        }
        BundleChoice::File { path } => format!("bundle from --operator-bundle {path}"),
    };
    let mut steps: Vec<String> = bundle.lines().map(String::from).collect();
    steps.push(format!(
        "    sha256 {} (verified; a mismatch is refused)",
        cell.operator_bundle_sha256
    ));
    steps.push(
        "server-side apply every object, CustomResourceDefinitions first; wait for Established"
            .into(),
    );
    steps.push(format!(
        "wait for Deployment default/prometheus-operator to be Available (timeout {secs}s)"
    ));
    steps.push(
        "wait for Service kube-system/kubelet: port https-metrics, one endpoint address per node"
            .into(),
    );
    phases.push(Phase {
        id: PhaseId::Operator,
        title: format!("prometheus-operator {}", cell.operator_version),
        steps,
    });

    // 4–6. Manifests, grouped by phase.
    let sm_manifest = cell.servicemonitor.manifest();
    let digests = |keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        input
            .manifests
            .iter()
            .filter(|(p, _)| keep(p))
            .map(|(p, sha)| format!("apply {p}  sha256 {sha}"))
            .collect()
    };
    let mut steps = digests(&|p| p.starts_with("manifests/prometheus/"));
    steps.extend(input.applied.prometheus.iter().cloned());
    steps.push(format!(
        "wait for StatefulSet {}/prometheus-{} to be ready (timeout {secs}s)",
        crate::install::PROMETHEUS_NAMESPACE,
        crate::install::PROMETHEUS_NAME
    ));
    phases.push(Phase {
        id: PhaseId::Prometheus,
        title: "manifests/prometheus/".into(),
        steps,
    });

    let mut steps = digests(&|p| p == sm_manifest);
    if steps.is_empty() {
        steps.push(format!("apply {sm_manifest}"));
    }
    steps.extend(input.applied.servicemonitor.iter().cloned());
    steps.push(format!(
        "wait until Prometheus has loaded its scrape job (/api/v1/status/config through the service proxy; timeout {secs}s)"
    ));
    phases.push(Phase {
        id: PhaseId::ServiceMonitor,
        title: format!("variant `{}`", variant_name(cell)),
        steps,
    });

    let mut steps = digests(&|p| p.starts_with("fixtures/workloads/"));
    steps.push(format!(
        "wait until their pods are Running (timeout {secs}s)"
    ));
    phases.push(Phase {
        id: PhaseId::Workloads,
        title: "fixtures/workloads/".into(),
        steps,
    });

    // 7. Assert
    let steps = vec![
        format!(
            "$ E2E_KUBECONFIG={kubeconfig} E2E_CELL={} E2E_ARTIFACTS_DIR={} E2E_METRICS={} {}",
            cell.name,
            input.paths.artifacts,
            metrics_env(&cell.metrics),
            NEXTEST_ARGS.join(" ")
        ),
        format!(
            "every Running pod's containers must have a series of each metric in Prometheus \
             (queried through the API server's service proxy): {}",
            metrics_env(&cell.metrics).replace(',', ", ")
        ),
        format!(
            "writes {}/coverage.json; JUnit XML in target/nextest/e2e/junit.xml",
            input.paths.artifacts
        ),
    ];
    phases.push(Phase {
        id: PhaseId::Assert,
        title: "cluster tests (nextest profile e2e)".into(),
        steps,
    });

    // 8. Teardown
    let delete = kind(cluster::delete_args(name, &input.paths.kubeconfig));
    let mut steps = Vec::new();
    let deletes = |on_failure: bool| match input.keep {
        Keep::Always => false,
        Keep::OnFailure => !on_failure,
        Keep::Never => true,
    };
    if existing {
        steps.push("success: nothing to delete".into());
        steps.push(format!(
            "failure: collect artifacts into {}/; the cluster is left as it is",
            input.paths.artifacts
        ));
        steps.push("Ctrl-C: stop, exit code 130; nothing is deleted".into());
    } else {
        let reused = if input.mode == Mode::Reuse {
            " (only when this run created it)"
        } else {
            ""
        };
        steps.push(if deletes(false) {
            format!("success: {delete}{reused}")
        } else {
            "success: keep the cluster".into()
        });
        steps.push(format!(
            "failure: collect artifacts into {}/ (pod logs, targets, config redacted, YAMLs, pod list) and",
            input.paths.artifacts
        ));
        steps.push(format!(
            "         {}",
            kind(cluster::export_logs_args(
                &format!("{}/kind-logs", input.paths.artifacts),
                name
            ))
        ));
        steps.push(if deletes(true) {
            format!("         then {delete}{reused}")
        } else {
            "         then keep the cluster".into()
        });
        steps.push(if input.keep == Keep::Always {
            "Ctrl-C: stop, exit code 130; keep the cluster".into()
        } else {
            format!("Ctrl-C: stop, {delete}{reused}, exit code 130")
        });
        if deletes(false) {
            steps.push(format!("after deleting: remove {}", input.paths.kubeconfig));
        }
    }
    steps.push(format!(
        "write {} (phase timings, coverage)",
        input.paths.summary
    ));
    phases.push(Phase {
        id: PhaseId::Teardown,
        title: String::new(),
        steps,
    });

    Plan { header, phases }
}

fn variant_name(cell: &Cell) -> &'static str {
    let m = cell.servicemonitor.manifest();
    if m.contains("honorlabels") {
        "honor-labels"
    } else {
        "mission"
    }
}

impl Plan {
    /// The text `--dry-run` prints.
    pub fn render(&self) -> String {
        let mut out = String::from("pod-metrics-e2e cluster tier: plan (dry run: nothing is created, downloaded or changed)\n\
             Commands run from the workspace root; relative paths are relative to it.\n\n");
        let width = self.header.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in &self.header {
            let _ = writeln!(out, "{k:width$}  {v}");
        }
        for phase in &self.phases {
            out.push('\n');
            if phase.title.is_empty() {
                let _ = writeln!(out, "{}", phase.id.label());
            } else {
                let _ = writeln!(out, "{}: {}", phase.id.label(), phase.title);
            }
            for step in &phase.steps {
                let _ = writeln!(out, "  {step}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;

    fn input<'a>(cell: &'a Cell, mode: Mode, keep: Keep) -> PlanInput<'a> {
        let name = cell.default_cluster_name();
        let pin = cluster::KindPin {
            version: cell.kind_version.clone(),
            platform: "linux-amd64".into(),
            url: cell.kind_url("linux-amd64"),
            sha256: cell.kind_sha256["linux-amd64"].clone(),
        };
        PlanInput {
            cell,
            mode,
            keep,
            tools_path: format!("target/e2e/tools/kind-{}", cell.kind_version),
            kind: pin,
            kind_config: cell.kind_config.display().to_string(),
            paths: DisplayPaths {
                kubeconfig: format!("target/e2e/{name}/kubeconfig"),
                artifacts: format!("target/e2e/{name}/artifacts"),
                summary: format!("target/e2e/{name}/summary.md"),
            },
            cluster_name: name,
            bundle: BundleChoice::Pinned {
                url: cell.operator_bundle_url.clone(),
                cache_dir: "target/e2e/cache".into(),
            },
            manifests: vec![
                ("manifests/prometheus/prometheus.yaml".into(), "aa".into()),
                (cell.servicemonitor.manifest().into(), "bb".into()),
                ("fixtures/workloads/apps.yaml".into(), "cc".into()),
            ],
            timeout: Duration::from_secs(300),
            applied: Applied::default(),
        }
    }

    fn matrix() -> Matrix {
        Matrix::load_default().expect("fixtures/matrix.toml loads")
    }

    #[test]
    fn phases_are_in_order_and_numbered() {
        let m = matrix();
        let plan = build(&input(m.default_cell(), Mode::Create, Keep::Never));
        let ids: Vec<PhaseId> = plan.phases.iter().map(|p| p.id).collect();
        assert_eq!(ids, PhaseId::ALL);
        assert_eq!(PhaseId::Operator.label(), "[3/8] operator");
    }

    #[test]
    fn create_plan_names_every_pin() {
        let m = matrix();
        let cell = m.default_cell();
        let text = build(&input(cell, Mode::Create, Keep::Never)).render();
        for needle in [
            cell.kind_url("linux-amd64").as_str(),
            cell.kind_sha256["linux-amd64"].as_str(),
            cell.node_image.as_str(),
            cell.operator_bundle_url.as_str(),
            cell.operator_bundle_sha256.as_str(),
            "--wait 120s --retain",
            "$ kind delete cluster --name",
            "sha256 aa",
            "sha256 bb",
            "sha256 cc",
            "E2E_KUBECONFIG=target/e2e/",
            "cargo nextest run --workspace --profile e2e --run-ignored only",
        ] {
            assert!(text.contains(needle), "plan lacks {needle:?}:\n{text}");
        }
        // Every manifest lands in exactly one phase.
        assert_eq!(
            text.matches("apply manifests/prometheus/prometheus.yaml")
                .count(),
            1
        );
    }

    #[test]
    fn existing_cluster_plan_never_creates_or_deletes() {
        let m = matrix();
        let text = build(&input(
            m.default_cell(),
            Mode::Existing {
                kubeconfig: "/k".into(),
            },
            Keep::Never,
        ))
        .render();
        assert!(
            !text.contains("kind create")
                && !text.contains("kind delete")
                && !text.contains("docker info"),
            "{text}"
        );
        assert!(text.contains("E2E_KUBECONFIG=/k "), "{text}");
    }

    #[test]
    fn keep_flags_change_teardown() {
        let m = matrix();
        let cell = m.default_cell();
        let keep = build(&input(cell, Mode::Create, Keep::Always)).render();
        assert!(!keep.contains("kind delete"), "{keep}");
        let on_failure = build(&input(cell, Mode::Create, Keep::OnFailure)).render();
        assert!(
            on_failure.contains("success: $ kind delete"),
            "{on_failure}"
        );
        assert!(on_failure.contains("then keep the cluster"), "{on_failure}");
        let reuse = build(&input(cell, Mode::Reuse, Keep::Never)).render();
        assert!(
            reuse.contains("$ kind get kubeconfig --name")
                && reuse.contains("only when this run created it"),
            "{reuse}"
        );
    }

    #[test]
    fn every_cell_renders() {
        let m = matrix();
        for cell in &m.cells {
            let text = build(&input(cell, Mode::Create, Keep::Never)).render();
            assert!(text.contains(&cell.node_image), "{}", cell.name);
            assert!(
                text.contains(cell.servicemonitor.manifest()),
                "{}",
                cell.name
            );
        }
    }

    #[test]
    fn applied_lines_say_what_each_field_is_and_what_unset_means() {
        let sm = serde_json::json!({
            "kind": "ServiceMonitor",
            "metadata": {"name": "cadvisor", "namespace": "kube-system"},
            "spec": {"endpoints": [
                {"port": "https-metrics", "scheme": "https", "path": "/metrics/cadvisor",
                 "honorLabels": true, "tlsConfig": {"insecureSkipVerify": true}},
                {"port": "http-metrics"}
            ]}
        });
        let lines = describe_servicemonitor(&sm);
        assert_eq!(
            lines,
            [
                "ServiceMonitor kube-system/cadvisor (labels (unset: no labels))",
                "    endpoint 0: port https-metrics, scheme https, path /metrics/cadvisor",
                "      bearerTokenFile (unset: no token sent)",
                "      tlsConfig {insecureSkipVerify: true}",
                "      honorLabels true",
                "    endpoint 1: port http-metrics, scheme (unset: http), path (unset: /metrics)",
                "      bearerTokenFile (unset: no token sent)",
                "      tlsConfig (unset: verify against the system CAs)",
                "      honorLabels (unset: false: pod namespaces arrive as exported_namespace)",
                "    namespaceSelector (unset: the ServiceMonitor's own namespace)",
                "    selector (unset: every Service)",
            ]
        );
        let prom = serde_json::json!({
            "kind": "Prometheus",
            "metadata": {"name": "p", "namespace": "monitoring"},
            "spec": {"serviceMonitorNamespaceSelector": {"matchLabels": {"a": "b"}}}
        });
        assert_eq!(
            describe_prometheus(&prom),
            [
                "Prometheus monitoring/p: version (unset: the untagged (latest) image in v0.48.1), scrapeInterval (unset: 30s)",
                "    serviceMonitorSelector (unset: selects no ServiceMonitor)",
                "    serviceMonitorNamespaceSelector {matchLabels: {a: b}}",
            ]
        );
        let other = serde_json::json!({"kind": "Namespace"});
        assert!(describe_applied(std::slice::from_ref(&other), &sm).is_err());
        assert!(describe_applied(std::slice::from_ref(&prom), &other).is_err());
        let applied = describe_applied(&[other, prom], &sm).unwrap();
        assert_eq!(applied.servicemonitor, lines);
    }

    #[test]
    fn the_plan_shows_the_applied_settings_in_their_phases() {
        let m = matrix();
        let mut with_applied = input(m.default_cell(), Mode::Create, Keep::Never);
        with_applied.applied = Applied {
            prometheus: vec!["PROM-LINE".into()],
            servicemonitor: vec!["SM-LINE".into()],
        };
        let plan = build(&with_applied);
        let steps = |id: PhaseId| {
            plan.phases
                .iter()
                .find(|p| p.id == id)
                .unwrap()
                .steps
                .clone()
        };
        assert!(steps(PhaseId::Prometheus).contains(&"PROM-LINE".to_string()));
        assert!(steps(PhaseId::ServiceMonitor).contains(&"SM-LINE".to_string()));
    }
}
