//! What we apply to the cluster, checked without a cluster: every YAML parses, the
//! ServiceMonitors are the mission's and validate against the operator's own CRD schema, the
//! RBAC is exactly what prometheus-operator documents, the Prometheus CR selects our
//! ServiceMonitors, the workloads exercise what coverage must see, and the pinned operator bundle
//! is what we think it is.
//!
//! Bundle-dependent tests need `E2E_OPERATOR_BUNDLE` (the v0.48.1 bundle.yaml, which
//! `cargo xtask test` provides); without it they fail saying so.

use e2e::install::{
    PROMETHEUS_DIR, PROMETHEUS_NAME, PROMETHEUS_NAMESPACE, SELECTION_LABEL, WORKLOADS_DIR,
};
use e2e::matrix::{Matrix, ServiceMonitorVariant};
use e2e::operator::{self, Bundle, BundleSource};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    e2e::workspace_root()
}

fn objects(rel: &str) -> Vec<Value> {
    let path = root().join(rel);
    if path.is_dir() {
        e2e::k8s::manifests::read_manifest_dir(&path).unwrap()
    } else {
        e2e::k8s::manifests::read_manifest_file(&path).unwrap()
    }
}

fn find<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

fn servicemonitor(variant: ServiceMonitorVariant) -> Value {
    let docs = objects(variant.manifest());
    assert_eq!(
        docs.len(),
        1,
        "{} holds exactly one object",
        variant.manifest()
    );
    docs.into_iter().next().unwrap()
}

/// The bundle named by `E2E_OPERATOR_BUNDLE`. Panics when it is unset: `cargo xtask test` always
/// provides it (from `--operator-bundle`, the verified cache or a download of the pinned URL).
fn bundle_bytes() -> Vec<u8> {
    let Some(path) = std::env::var_os("E2E_OPERATOR_BUNDLE") else {
        panic!(
            "E2E_OPERATOR_BUNDLE is not set: this test needs prometheus-operator v0.48.1's \
             bundle.yaml. Run the tests with `cargo xtask test`, which provides it (from \
             --operator-bundle PATH, the sha256-verified cache `cargo xtask e2e` fills, or a \
             download of the pinned URL), or set E2E_OPERATOR_BUNDLE to a copy of that file"
        )
    };
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "E2E_OPERATOR_BUNDLE={} cannot be read: {e}",
            Path::new(&path).display()
        )
    })
}

/// Every `image` under `value`, wherever a pod template or pod spec puts it.
fn images(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("image", Value::String(image)) => out.push(image.clone()),
                    _ => images(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| images(v, out)),
        _ => {}
    }
}

/// Like every other artifact of a run, the workload image is pinned by digest: a re-pushed tag
/// cannot change what the cluster runs. The digest is docker.io/library/busybox:1.36.1's
/// multi-arch index, so every node architecture pulls its own image.
#[test]
fn every_workload_image_is_pinned_by_tag_and_digest() {
    let mut all = Vec::new();
    for obj in objects(WORKLOADS_DIR) {
        images(&obj, &mut all);
    }
    assert!(all.len() >= 4, "{all:?}");
    for image in &all {
        let (name_tag, digest) = image
            .split_once("@sha256:")
            .unwrap_or_else(|| panic!("image {image} is not pinned by digest (name:tag@sha256:…)"));
        let (_, tag) = name_tag
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("image {image} has no tag"));
        assert!(
            tag != "latest" && !tag.is_empty(),
            "image {image} must name its tag"
        );
        assert!(
            digest.len() == 64
                && digest
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "image {image}: the digest must be 64 lowercase hex characters"
        );
    }
    assert!(
        all.iter().all(|i| i
            == "busybox:1.36.1@sha256:73aaf090f3d85aa34ee199857f03fa3a95c8ede2ffd4cc2cdb5b94e566b11662"),
        "one pinned busybox everywhere: {all:?}"
    );
}

#[test]
fn every_yaml_in_manifests_and_fixtures_parses() {
    let mut checked = 0;
    for dir in ["manifests", "fixtures"] {
        for path in e2e::k8s::manifests::yaml_files(&root().join(dir), true).unwrap() {
            let text = std::fs::read_to_string(&path).unwrap();
            let rel = path
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            // Everything must be YAML; what we apply must also be Kubernetes objects.
            e2e::yaml::documents(&text)
                .unwrap_or_else(|e| panic!("{rel}: YAML does not parse: {e}"));
            if rel.starts_with("manifests/") || rel.starts_with(WORKLOADS_DIR) {
                let objs = e2e::k8s::manifests::parse_documents(&text, &rel)
                    .unwrap_or_else(|e| panic!("{e:#}"));
                assert!(!objs.is_empty(), "{rel} holds no object");
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 7,
        "expected the manifests, ServiceMonitors, workloads and kind configs; saw {checked} files"
    );
}

/// The mission's ServiceMonitor spec, field for field.
fn mission_spec() -> Value {
    json!({
        "endpoints": [{
            "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "path": "/metrics/cadvisor",
            "port": "https-metrics",
            "scheme": "https",
            "tlsConfig": {"insecureSkipVerify": true}
        }],
        "namespaceSelector": {"matchNames": ["kube-system"]},
        "selector": {"matchLabels": {"app.kubernetes.io/name": "kubelet"}}
    })
}

#[test]
fn the_servicemonitor_is_the_missions_plus_only_our_selection_label() {
    let sm = servicemonitor(ServiceMonitorVariant::Mission);
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["kind"], "ServiceMonitor");
    assert_eq!(sm["metadata"]["name"], "cadvisor");
    assert_eq!(sm["metadata"]["namespace"], "kube-system");
    assert_eq!(
        sm["metadata"]["labels"],
        json!({SELECTION_LABEL.0: SELECTION_LABEL.1})
    );
    let metadata_keys: BTreeSet<&str> = sm["metadata"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        metadata_keys,
        BTreeSet::from(["labels", "name", "namespace"])
    );
    assert_eq!(sm["spec"], mission_spec());
}

#[test]
fn the_honorlabels_variant_differs_only_by_honorlabels_true() {
    let mission = servicemonitor(ServiceMonitorVariant::Mission);
    let honor = servicemonitor(ServiceMonitorVariant::HonorLabels);
    let mut expected = mission.clone();
    expected["spec"]["endpoints"][0]["honorLabels"] = json!(true);
    assert_eq!(honor, expected);
}

/// Label selector semantics (matchLabels and matchExpressions) over a label map.
fn selects(selector: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let by_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let by_expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap();
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e["operator"].as_str().unwrap() {
                "In" => label(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => !label(key).is_some_and(|v| values.contains(&v)),
                "Exists" => label(key).is_some(),
                "DoesNotExist" => label(key).is_none(),
                op => panic!("unknown selector operator {op}"),
            }
        });
    by_labels && by_expressions
}

#[test]
fn label_selector_helper_behaves() {
    let labels = json!({"a": "1", "b": "2"});
    assert!(selects(&json!({}), &labels));
    assert!(selects(&json!({"matchLabels": {"a": "1"}}), &labels));
    assert!(!selects(&json!({"matchLabels": {"a": "2"}}), &labels));
    assert!(selects(
        &json!({"matchExpressions": [{"key": "b", "operator": "In", "values": ["2", "3"]}]}),
        &labels
    ));
    assert!(!selects(
        &json!({"matchExpressions": [{"key": "c", "operator": "Exists"}]}),
        &labels
    ));
}

#[test]
fn the_prometheus_cr_pins_v2_26_0_and_selects_our_servicemonitors() {
    let objs = objects(PROMETHEUS_DIR);
    let proms = find(&objs, "Prometheus");
    assert_eq!(proms.len(), 1);
    let prom = proms[0];
    assert_eq!(prom["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(prom["metadata"]["name"], PROMETHEUS_NAME);
    assert_eq!(prom["metadata"]["namespace"], PROMETHEUS_NAMESPACE);
    let spec = &prom["spec"];
    // An empty version means the untagged (latest) image in v0.48.1.
    assert_eq!(spec["version"], "v2.26.0");
    let interval = spec["scrapeInterval"]
        .as_str()
        .expect("a short scrapeInterval is set for tests");
    assert!(
        matches!(interval, "5s" | "10s" | "15s"),
        "scrapeInterval {interval} is not short"
    );

    // A nil serviceMonitorSelector selects nothing.
    let selector = spec
        .get("serviceMonitorSelector")
        .filter(|s| !s.is_null())
        .expect("serviceMonitorSelector is set");
    // A nil namespace selector searches only the Prometheus's own namespace.
    let ns_selector = spec
        .get("serviceMonitorNamespaceSelector")
        .filter(|s| !s.is_null())
        .expect("serviceMonitorNamespaceSelector is set (kube-system must be searched)");
    for variant in [
        ServiceMonitorVariant::Mission,
        ServiceMonitorVariant::HonorLabels,
    ] {
        let sm = servicemonitor(variant);
        assert!(
            selects(selector, &sm["metadata"]["labels"]),
            "{} not selected",
            variant.manifest()
        );
        let ns = sm["metadata"]["namespace"].as_str().unwrap();
        // Since 1.21 every namespace carries kubernetes.io/metadata.name.
        let ns_labels = json!({"kubernetes.io/metadata.name": ns});
        assert!(
            selects(ns_selector, &ns_labels),
            "namespace {ns} not selected"
        );
    }
    // And it does not select ServiceMonitors that are not ours.
    assert!(!selects(
        selector,
        &json!({"app.kubernetes.io/name": "kubelet"})
    ));

    // Its service account is the one the ClusterRoleBinding grants.
    let sa = spec["serviceAccountName"]
        .as_str()
        .expect("serviceAccountName is set");
    let binding = find(&objs, "ClusterRoleBinding")[0];
    assert!(binding["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["kind"] == "ServiceAccount"
            && s["name"] == sa
            && s["namespace"] == PROMETHEUS_NAMESPACE));
    assert!(
        find(&objs, "ServiceAccount")
            .iter()
            .any(|o| o["metadata"]["name"] == sa
                && o["metadata"]["namespace"] == PROMETHEUS_NAMESPACE)
    );
    assert!(find(&objs, "Namespace")
        .iter()
        .any(|o| o["metadata"]["name"] == PROMETHEUS_NAMESPACE));
}

/// A rule as sets, so order within and between rules does not matter.
fn normalized_rules(rules: &Value) -> BTreeSet<Vec<Vec<String>>> {
    rules
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            ["apiGroups", "resources", "nonResourceURLs", "verbs"]
                .iter()
                .map(|field| {
                    let mut v: Vec<String> = rule[field]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| s.as_str().unwrap().to_string())
                        .collect();
                    v.sort();
                    v
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_cluster_role_has_exactly_the_documented_rules() {
    let objs = objects(PROMETHEUS_DIR);
    let roles = find(&objs, "ClusterRole");
    assert_eq!(roles.len(), 1);
    let role = roles[0];
    assert_eq!(role["apiVersion"], "rbac.authorization.k8s.io/v1");
    let expected = json!([
        {"apiGroups": [""], "resources": ["nodes", "nodes/metrics", "services", "endpoints", "pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch"]},
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
    ]);
    assert_eq!(
        normalized_rules(&role["rules"]),
        normalized_rules(&expected)
    );
    assert_eq!(role["rules"].as_array().unwrap().len(), 4);

    let binding = find(&objs, "ClusterRoleBinding")[0];
    assert_eq!(binding["apiVersion"], "rbac.authorization.k8s.io/v1");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role["metadata"]["name"]})
    );
}

#[test]
fn workloads_span_two_namespaces_with_a_multi_container_pod_and_a_cpu_burner() {
    let objs = objects(WORKLOADS_DIR);
    let deployments = find(&objs, "Deployment");
    let namespaces: BTreeSet<&str> = deployments
        .iter()
        .map(|d| d["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert!(namespaces.len() >= 2, "{namespaces:?}");
    for ns in &namespaces {
        assert!(
            find(&objs, "Namespace")
                .iter()
                .any(|n| n["metadata"]["name"] == *ns),
            "namespace {ns} is used but not created"
        );
    }
    let containers = |d: &Value| {
        d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(
        deployments.iter().any(|d| containers(d).len() >= 2),
        "a multi-container pod"
    );
    let mut burner = false;
    for d in &deployments {
        // Pods must match their Deployment's selector or the apply is rejected.
        assert!(selects(
            &d["spec"]["selector"],
            &d["spec"]["template"]["metadata"]["labels"]
        ));
        for c in containers(d) {
            // A container with zero CPU emits no cadvisor series: each one must do some work.
            let command = c["command"].to_string();
            assert!(
                command.contains("while true"),
                "container {} never uses CPU: {command}",
                c["name"]
            );
            assert!(
                c["resources"]["limits"]["cpu"].is_string(),
                "container {} has no CPU limit",
                c["name"]
            );
            burner |= command.contains("while true; do :; done");
        }
    }
    assert!(burner, "a container that burns CPU continuously");
}

#[test]
fn install_constants_agree_with_the_manifests() {
    let objs = objects(PROMETHEUS_DIR);
    let prom = find(&objs, "Prometheus")[0];
    assert_eq!(
        prom["spec"]["serviceMonitorSelector"]["matchLabels"][SELECTION_LABEL.0],
        SELECTION_LABEL.1
    );
}

// ---- bundle-dependent -----------------------------------------------------------------------

const CRDS: [&str; 8] = [
    "alertmanagerconfigs.monitoring.coreos.com",
    "alertmanagers.monitoring.coreos.com",
    "podmonitors.monitoring.coreos.com",
    "probes.monitoring.coreos.com",
    "prometheuses.monitoring.coreos.com",
    "prometheusrules.monitoring.coreos.com",
    "servicemonitors.monitoring.coreos.com",
    "thanosrulers.monitoring.coreos.com",
];

#[tokio::test]
async fn the_pinned_bundle_verifies_parses_and_installs_crds_first() {
    let bytes = bundle_bytes();
    let cell = Matrix::load_default().unwrap().default_cell().clone();
    assert_eq!(cell.operator_version, "v0.48.1");
    let bundle = Bundle::parse(&bytes).unwrap();
    assert_eq!(
        bundle.sha256, cell.operator_bundle_sha256,
        "E2E_OPERATOR_BUNDLE is not the pinned bundle"
    );
    assert_eq!(bundle.len, 1_020_611);

    // The same verification path `--operator-bundle` takes.
    let path = PathBuf::from(std::env::var_os("E2E_OPERATOR_BUNDLE").unwrap());
    let cache = tempfile::tempdir().unwrap();
    let loaded = operator::load_bundle(
        &BundleSource::for_cell(&cell, Some(&path)),
        cache.path(),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(loaded.documents.len(), bundle.documents.len());

    let mut crds = bundle.crd_names();
    crds.sort();
    assert_eq!(crds, CRDS);
    let order = bundle.apply_order();
    assert_eq!(
        order.len(),
        13,
        "8 CRDs + ClusterRoleBinding, ClusterRole, Deployment, ServiceAccount, Service"
    );
    for (i, obj) in order.iter().enumerate() {
        let is_crd = obj["kind"] == "CustomResourceDefinition";
        assert_eq!(is_crd, i < 8, "object {i} ({}) out of order", obj["kind"]);
        if is_crd {
            assert_eq!(obj["apiVersion"], "apiextensions.k8s.io/v1");
            assert_eq!(obj["spec"]["group"], "monitoring.coreos.com");
        } else {
            assert_eq!(obj["metadata"]["name"], "prometheus-operator");
        }
    }
    let rest: BTreeSet<&str> = order[8..]
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        rest,
        BTreeSet::from([
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
            "ServiceAccount"
        ])
    );
    assert_eq!(
        bundle.deployments(),
        [("default".to_string(), "prometheus-operator".to_string())]
    );
    assert_eq!(
        bundle.operator_args().unwrap(),
        [
            "--kubelet-service=kube-system/kubelet",
            "--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.48.1"
        ]
    );
}

#[tokio::test]
async fn a_bundle_with_one_byte_changed_is_refused_naming_both_digests() {
    let mut bytes = bundle_bytes();
    let cell = Matrix::load_default().unwrap().default_cell().clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.yaml");
    std::fs::write(&path, &bytes).unwrap();
    let err = operator::load_bundle(
        &BundleSource::for_cell(&cell, Some(&path)),
        dir.path(),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&cell.operator_bundle_sha256) && msg.contains(&e2e::pins::sha256_hex(&bytes)),
        "{msg}"
    );
}

/// The CRD's openAPIV3Schema for `version`, as JSON Schema: `x-kubernetes-*` keys stripped.
fn crd_schema(bundle: &Bundle, crd: &str, version: &str) -> Value {
    let obj = bundle
        .documents
        .iter()
        .find(|d| d["kind"] == "CustomResourceDefinition" && d["metadata"]["name"] == crd)
        .unwrap_or_else(|| panic!("bundle has no CRD {crd}"));
    let v = obj["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("CRD {crd} has no version {version}"));
    let mut schema = v["schema"]["openAPIV3Schema"].clone();
    strip_extensions(&mut schema);
    schema
}

fn strip_extensions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with("x-kubernetes-"));
            map.values_mut().for_each(strip_extensions);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_extensions),
        _ => {}
    }
}

/// Fields the API server would silently prune: present in `instance`, absent from the
/// structural schema's `properties`. JSON Schema alone does not catch a misspelt field.
fn unknown_fields(schema: &Value, instance: &Value, path: &str, out: &mut Vec<String>) {
    match instance {
        Value::Object(map) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return; // free-form (metadata, preserve-unknown-fields)
            };
            for (k, v) in map {
                match props.get(k) {
                    Some(sub) => unknown_fields(sub, v, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    unknown_fields(sub, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn validation_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator =
        jsonschema::draft4::new(schema).expect("the CRD schema compiles as JSON Schema");
    let mut errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    let mut unknown = Vec::new();
    unknown_fields(schema, instance, "", &mut unknown);
    errors.extend(
        unknown
            .into_iter()
            .map(|p| format!("{p}: unknown field (the API server would prune it)")),
    );
    errors
}

#[test]
fn servicemonitors_and_the_prometheus_cr_validate_against_the_bundles_crd_schemas() {
    let bytes = bundle_bytes();
    let bundle = Bundle::parse(&bytes).unwrap();
    let sm_schema = crd_schema(&bundle, "servicemonitors.monitoring.coreos.com", "v1");
    for variant in [
        ServiceMonitorVariant::Mission,
        ServiceMonitorVariant::HonorLabels,
    ] {
        let errors = validation_errors(&sm_schema, &servicemonitor(variant));
        assert!(errors.is_empty(), "{}: {errors:#?}", variant.manifest());
    }
    let prom_schema = crd_schema(&bundle, "prometheuses.monitoring.coreos.com", "v1");
    let objs = objects(PROMETHEUS_DIR);
    let errors = validation_errors(&prom_schema, find(&objs, "Prometheus")[0]);
    assert!(errors.is_empty(), "{PROMETHEUS_DIR}: {errors:#?}");

    // The check has teeth: a wrong type and a misspelt field are both reported.
    let mut bad = servicemonitor(ServiceMonitorVariant::Mission);
    bad["spec"]["endpoints"][0]["tlsConfig"]["insecureSkipVerify"] = json!("yes");
    bad["spec"]["endpoints"][0]["bearerTokenFiel"] = json!("/x");
    let errors = validation_errors(&sm_schema, &bad);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("/spec/endpoints/0/tlsConfig/insecureSkipVerify")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains(".spec.endpoints[0].bearerTokenFiel: unknown field")),
        "{errors:#?}"
    );
}
