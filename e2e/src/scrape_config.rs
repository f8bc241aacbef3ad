//! The scrape job prometheus-operator v0.48.1 generates for a kubelet ServiceMonitor endpoint,
//! and the Prometheus configuration the component tier runs it in.
//!
//! One place in code: the component tier's Prometheus uses exactly this job, with
//! `kubernetes_sd_configs` swapped for `file_sd_configs` whose target groups carry the
//! `__meta_kubernetes_*` labels kubernetes_sd gives the operator's `kube-system/kubelet` Endpoints.
//! The unit tests compare the job to the one in `FACTS.md`, field for field and in order: to a
//! recorded copy everywhere, and to the shared file itself when `E2E_FACTS_MD` names it.

use serde_json::json;
use serde_yaml::{Mapping, Value};
use std::time::Duration;

/// The token path of a pod's service account; the operator's ServiceMonitor points at it.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The parts of a ServiceMonitor (one endpoint) that shape the generated job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMonitorSpec {
    /// ServiceMonitor namespace and name (`kube-system/cadvisor`).
    pub namespace: String,
    pub name: String,
    /// Index of the endpoint in `spec.endpoints`.
    pub endpoint_index: usize,
    /// `endpoints[].port`: the Service port name.
    pub port: String,
    pub path: String,
    pub scheme: String,
    pub honor_labels: bool,
    pub bearer_token_file: Option<String>,
    pub insecure_skip_verify: bool,
    /// `selector.matchLabels` (key, value); the operator keeps targets whose Service has it.
    pub selector_label: (String, String),
    /// `namespaceSelector.matchNames`.
    pub namespaces: Vec<String>,
}

impl ServiceMonitorSpec {
    /// The mission's ServiceMonitor `kube-system/cadvisor` (FACTS.md).
    pub fn cadvisor() -> Self {
        ServiceMonitorSpec {
            namespace: "kube-system".into(),
            name: "cadvisor".into(),
            endpoint_index: 0,
            port: "https-metrics".into(),
            path: "/metrics/cadvisor".into(),
            scheme: "https".into(),
            honor_labels: false,
            bearer_token_file: Some(SERVICE_ACCOUNT_TOKEN.into()),
            insecure_skip_verify: true,
            selector_label: ("app.kubernetes.io/name".into(), "kubelet".into()),
            namespaces: vec!["kube-system".into()],
        }
    }

    /// `serviceMonitor/<ns>/<name>/<endpoint index>`.
    pub fn job_name(&self) -> String {
        format!(
            "serviceMonitor/{}/{}/{}",
            self.namespace, self.name, self.endpoint_index
        )
    }
}

/// How the job finds its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// What the operator writes: endpoints role in the ServiceMonitor's namespaces.
    Kubernetes,
    /// Component tier: a file_sd file holding [`kubelet_file_sd`] target groups.
    File { path: String },
    /// The cluster twin: `http_sd_configs` against an endpoint serving the target groups
    /// kubernetes_sd (role endpoints) would yield, re-read every `refresh_interval`.
    Http {
        url: String,
        refresh_interval: Duration,
    },
}

/// What to put where the operator writes `$(SHARD)` (the config reloader substitutes the shard number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shard {
    /// Leave the placeholder, as in the operator's generated secret.
    Placeholder,
    /// Substitute this shard number, as the reloader does (0 with one shard).
    Number(u32),
}

/// The scrape job, field for field and relabel rule for rule as operator v0.48.1 generates it
/// (promcfg.go, `generateServiceMonitorConfig`, no interval/relabelings on the endpoint).
pub fn scrape_job(spec: &ServiceMonitorSpec, discovery: &Discovery, shard: Shard) -> Value {
    let mut job = Mapping::new();
    job.insert("job_name".into(), spec.job_name().into());
    job.insert("honor_labels".into(), spec.honor_labels.into());
    match discovery {
        Discovery::Kubernetes => {
            let names = Value::Sequence(
                spec.namespaces
                    .iter()
                    .map(|n| Value::from(n.as_str()))
                    .collect(),
            );
            let sd = map([
                ("role", "endpoints".into()),
                ("namespaces", map([("names", names)])),
            ]);
            job.insert("kubernetes_sd_configs".into(), Value::Sequence(vec![sd]));
        }
        Discovery::File { path } => {
            // Re-read every second so tests can change targets at runtime.
            let sd = map([("files", strs(&[path])), ("refresh_interval", "1s".into())]);
            job.insert("file_sd_configs".into(), Value::Sequence(vec![sd]));
        }
        Discovery::Http {
            url,
            refresh_interval,
        } => {
            let refresh = format!("{}ms", refresh_interval.as_millis());
            let sd = map([
                ("url", url.as_str().into()),
                ("refresh_interval", refresh.as_str().into()),
            ]);
            job.insert("http_sd_configs".into(), Value::Sequence(vec![sd]));
        }
    }
    job.insert("metrics_path".into(), spec.path.clone().into());
    job.insert("scheme".into(), spec.scheme.clone().into());
    if spec.insecure_skip_verify {
        job.insert(
            "tls_config".into(),
            map([("insecure_skip_verify", true.into())]),
        );
    }
    if let Some(file) = &spec.bearer_token_file {
        job.insert("bearer_token_file".into(), file.clone().into());
    }
    job.insert("relabel_configs".into(), relabel_configs(spec, shard));
    Value::Mapping(job)
}

fn relabel_configs(spec: &ServiceMonitorSpec, shard: Shard) -> Value {
    let by_kind = || {
        strs(&[
            "__meta_kubernetes_endpoint_address_target_kind",
            "__meta_kubernetes_endpoint_address_target_name",
        ])
    };
    let shard = match shard {
        Shard::Placeholder => "$(SHARD)".to_string(),
        Shard::Number(n) => n.to_string(),
    };
    Value::Sequence(vec![
        map([
            ("source_labels", strs(&["job"])),
            ("target_label", "__tmp_prometheus_job_name".into()),
        ]),
        map([
            ("action", "keep".into()),
            (
                "source_labels",
                strs(&[&meta_service_label(&spec.selector_label.0)]),
            ),
            ("regex", spec.selector_label.1.as_str().into()),
        ]),
        map([
            ("action", "keep".into()),
            (
                "source_labels",
                strs(&["__meta_kubernetes_endpoint_port_name"]),
            ),
            ("regex", spec.port.as_str().into()),
        ]),
        map([
            ("source_labels", by_kind()),
            ("separator", ";".into()),
            ("regex", "Node;(.*)".into()),
            ("replacement", "${1}".into()),
            ("target_label", "node".into()),
        ]),
        map([
            ("source_labels", by_kind()),
            ("separator", ";".into()),
            ("regex", "Pod;(.*)".into()),
            ("replacement", "${1}".into()),
            ("target_label", "pod".into()),
        ]),
        map([
            ("source_labels", strs(&["__meta_kubernetes_namespace"])),
            ("target_label", "namespace".into()),
        ]),
        map([
            ("source_labels", strs(&["__meta_kubernetes_service_name"])),
            ("target_label", "service".into()),
        ]),
        map([
            ("source_labels", strs(&["__meta_kubernetes_pod_name"])),
            ("target_label", "pod".into()),
        ]),
        map([
            (
                "source_labels",
                strs(&["__meta_kubernetes_pod_container_name"]),
            ),
            ("target_label", "container".into()),
        ]),
        map([
            ("source_labels", strs(&["__meta_kubernetes_service_name"])),
            ("target_label", "job".into()),
            ("replacement", "${1}".into()),
        ]),
        map([
            ("target_label", "endpoint".into()),
            ("replacement", spec.port.as_str().into()),
        ]),
        map([
            ("source_labels", strs(&["__address__"])),
            ("target_label", "__tmp_hash".into()),
            ("modulus", 1.into()),
            ("action", "hashmod".into()),
        ]),
        map([
            ("source_labels", strs(&["__tmp_hash"])),
            ("regex", shard.into()),
            ("action", "keep".into()),
        ]),
    ])
}

/// An ordered YAML mapping (serde_json's map would sort the keys; the operator's output is ordered).
fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Mapping(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn strs(items: &[&str]) -> Value {
    Value::Sequence(items.iter().map(|s| Value::from(*s)).collect())
}

/// `__meta_kubernetes_service_label_<name>` with the name sanitised as Prometheus does
/// (every character outside `[a-zA-Z0-9_]` becomes `_`).
pub fn meta_service_label(label: &str) -> String {
    format!("__meta_kubernetes_service_label_{}", sanitize(label))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One node of the operator's `kube-system/kubelet` Endpoints, as file_sd will present it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletNode {
    /// The Node's name (`targetRef.name`).
    pub node: String,
    /// `host:port` for each Service port name (`https-metrics`, `http-metrics`, `cadvisor`).
    /// Real Endpoints share one IP per node; tests may point ports at different local addresses.
    pub ports: Vec<(String, String)>,
}

/// The `__meta_kubernetes_*` target groups kubernetes_sd (role endpoints) yields for the
/// operator's kubelet Service: one target per (node, port), target kind `Node`.
pub fn kubelet_file_sd(nodes: &[KubeletNode]) -> serde_json::Value {
    let groups: Vec<serde_json::Value> = nodes
        .iter()
        .flat_map(|n| {
            n.ports.iter().map(move |(port_name, address)| {
                let port = address.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
                json!({
                    "targets": [address],
                    "labels": {
                        "__meta_kubernetes_namespace": "kube-system",
                        "__meta_kubernetes_endpoints_name": "kubelet",
                        "__meta_kubernetes_endpoints_label_k8s_app": "kubelet",
                        "__meta_kubernetes_endpoints_label_app_kubernetes_io_name": "kubelet",
                        "__meta_kubernetes_endpoints_label_app_kubernetes_io_managed_by": "prometheus-operator",
                        "__meta_kubernetes_service_name": "kubelet",
                        "__meta_kubernetes_service_label_k8s_app": "kubelet",
                        "__meta_kubernetes_service_labelpresent_k8s_app": "true",
                        "__meta_kubernetes_service_label_app_kubernetes_io_name": "kubelet",
                        "__meta_kubernetes_service_labelpresent_app_kubernetes_io_name": "true",
                        "__meta_kubernetes_service_label_app_kubernetes_io_managed_by": "prometheus-operator",
                        "__meta_kubernetes_service_labelpresent_app_kubernetes_io_managed_by": "true",
                        "__meta_kubernetes_endpoint_port_name": port_name,
                        "__meta_kubernetes_endpoint_port_protocol": "TCP",
                        "__meta_kubernetes_endpoint_ready": "true",
                        "__meta_kubernetes_endpoint_address_target_kind": "Node",
                        "__meta_kubernetes_endpoint_address_target_name": n.node,
                        "__meta_kubernetes_endpoint_node_name": n.node,
                        "__meta_kubernetes_endpoint_port_number": port,
                    }
                })
            })
        })
        .collect();
    serde_json::Value::Array(groups)
}

/// A complete prometheus.yml for the component tier: the operator's global settings for a
/// Prometheus CR with `scrapeInterval`, and the job with file_sd discovery, shard 0.
pub fn component_prometheus_yml(
    spec: &ServiceMonitorSpec,
    file_sd_path: &str,
    scrape_interval: Duration,
) -> String {
    let interval = format!("{}ms", scrape_interval.as_millis());
    let global = map([
        ("scrape_interval", interval.as_str().into()),
        // Never longer than the interval (Prometheus refuses that).
        ("scrape_timeout", interval.as_str().into()),
        ("evaluation_interval", interval.as_str().into()),
        (
            "external_labels",
            map([
                ("prometheus", "monitoring/k8s".into()),
                ("prometheus_replica", "prometheus-k8s-0".into()),
            ]),
        ),
    ]);
    let job = scrape_job(
        spec,
        &Discovery::File {
            path: file_sd_path.to_string(),
        },
        Shard::Number(0),
    );
    let mut root = Mapping::new();
    root.insert("global".into(), global);
    root.insert("scrape_configs".into(), Value::Sequence(vec![job]));
    serde_yaml::to_string(&Value::Mapping(root)).expect("a YAML mapping serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The job from FACTS.md ("The scrape job the operator generates for the cadvisor ServiceMonitor"),
    /// copied here so the test runs without the shared directory.
    const FACTS_JOB: &str = r#"
- job_name: serviceMonitor/kube-system/cadvisor/0
  honor_labels: false
  kubernetes_sd_configs:
  - role: endpoints
    namespaces:
      names: [kube-system]
  metrics_path: /metrics/cadvisor
  scheme: https
  tls_config:
    insecure_skip_verify: true
  bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
  relabel_configs:
  - source_labels: [job]
    target_label: __tmp_prometheus_job_name
  - action: keep
    source_labels: [__meta_kubernetes_service_label_app_kubernetes_io_name]
    regex: kubelet
  - action: keep
    source_labels: [__meta_kubernetes_endpoint_port_name]
    regex: https-metrics
  - source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name]
    separator: ";"
    regex: Node;(.*)
    replacement: ${1}
    target_label: node
  - source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name]
    separator: ";"
    regex: Pod;(.*)
    replacement: ${1}
    target_label: pod
  - source_labels: [__meta_kubernetes_namespace]
    target_label: namespace
  - source_labels: [__meta_kubernetes_service_name]
    target_label: service
  - source_labels: [__meta_kubernetes_pod_name]
    target_label: pod
  - source_labels: [__meta_kubernetes_pod_container_name]
    target_label: container
  - source_labels: [__meta_kubernetes_service_name]
    target_label: job
    replacement: ${1}
  - target_label: endpoint
    replacement: https-metrics
  - source_labels: [__address__]
    target_label: __tmp_hash
    modulus: 1
    action: hashmod
  - source_labels: [__tmp_hash]
    regex: $(SHARD)
    action: keep
"#;

    /// The recorded copy of the upstream job ([`FACTS_JOB`]).
    fn facts_job() -> Value {
        let Value::Sequence(mut jobs) = serde_yaml::from_str(FACTS_JOB).unwrap() else {
            panic!("a list")
        };
        jobs.remove(0)
    }

    /// The job block of the shared `FACTS.md` named by `E2E_FACTS_MD` (an optional input: see
    /// the table in `xtask/src/test.rs`); panics naming the variable when it is unset.
    fn facts_md_job() -> Value {
        let Some(path) = std::env::var_os("E2E_FACTS_MD") else {
            panic!(
                "E2E_FACTS_MD is not set: this test compares the generated job with the one in the \
                 shared FACTS.md. Set E2E_FACTS_MD to its path (`.ci/run` does, from \
                 ../shared/upstream/FACTS.md), or run `cargo xtask test`, which lists this test as \
                 skipped when the input is missing"
            )
        };
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("E2E_FACTS_MD={}: {e}", path.to_string_lossy()));
        let start = text
            .find("```yaml\n- job_name: serviceMonitor/kube-system/cadvisor/0")
            .expect("job block in FACTS.md");
        let block = &text[start + "```yaml\n".len()..];
        let block = &block[..block.find("```").expect("closing fence")];
        let Value::Sequence(mut jobs) = serde_yaml::from_str(block).unwrap() else {
            panic!("the FACTS.md job block is a list")
        };
        jobs.remove(0)
    }

    /// Keys in order, recursively: the operator's output is ordered and so is ours.
    fn keys(v: &Value) -> Vec<String> {
        match v {
            Value::Mapping(m) => m
                .iter()
                .flat_map(|(k, v)| std::iter::once(k.as_str().unwrap().to_string()).chain(keys(v)))
                .collect(),
            Value::Sequence(s) => s.iter().flat_map(keys).collect(),
            _ => vec![],
        }
    }

    /// Against the shared FACTS.md itself (needs `E2E_FACTS_MD`).
    #[test]
    fn cadvisor_job_matches_facts_md_field_for_field_and_in_order() {
        let ours = scrape_job(
            &ServiceMonitorSpec::cadvisor(),
            &Discovery::Kubernetes,
            Shard::Placeholder,
        );
        assert_same_job(&ours, &facts_md_job());
        // The recorded copy the other tests use is still what FACTS.md says.
        assert_eq!(facts_job(), facts_md_job(), "FACTS_JOB is out of date");
    }

    /// Against the recorded copy, so the generator is checked on every machine.
    #[test]
    fn cadvisor_job_matches_the_recorded_operator_job_field_for_field_and_in_order() {
        let ours = scrape_job(
            &ServiceMonitorSpec::cadvisor(),
            &Discovery::Kubernetes,
            Shard::Placeholder,
        );
        assert_same_job(&ours, &facts_job());
    }

    fn assert_same_job(ours: &Value, facts: &Value) {
        assert_eq!(
            ours,
            facts,
            "ours:\n{}",
            serde_yaml::to_string(ours).unwrap()
        );
        assert_eq!(keys(ours), keys(facts));
        let rules = |v: &Value| v["relabel_configs"].as_sequence().unwrap().clone();
        assert_eq!(
            rules(ours),
            rules(facts),
            "same relabel rules in the same order"
        );
    }

    #[test]
    fn shard_substitution_honor_labels_and_file_sd() {
        let spec = ServiceMonitorSpec {
            honor_labels: true,
            ..ServiceMonitorSpec::cadvisor()
        };
        let job = scrape_job(
            &spec,
            &Discovery::File {
                path: "/etc/prometheus/sd/kubelet.json".into(),
            },
            Shard::Number(0),
        );
        assert_eq!(job["honor_labels"], Value::Bool(true));
        assert_eq!(job["relabel_configs"][12]["regex"], Value::from("0"));
        assert!(job.get("kubernetes_sd_configs").is_none());
        assert_eq!(
            job["file_sd_configs"][0]["files"][0],
            Value::from("/etc/prometheus/sd/kubelet.json")
        );
        // Everything else is the operator's job unchanged.
        let mut facts = facts_job();
        let mut ours = job.clone();
        for v in [&mut facts, &mut ours] {
            let m = v.as_mapping_mut().unwrap();
            m.remove("kubernetes_sd_configs");
            m.remove("file_sd_configs");
            m.remove("honor_labels");
            m.get_mut("relabel_configs")
                .unwrap()
                .as_sequence_mut()
                .unwrap()
                .pop();
        }
        assert_eq!(ours, facts);
    }

    #[test]
    fn other_port_and_selector_flow_into_keep_rules_and_endpoint_label() {
        let spec = ServiceMonitorSpec {
            port: "http-metrics".into(),
            scheme: "http".into(),
            selector_label: ("k8s-app".into(), "kubelet".into()),
            ..ServiceMonitorSpec::cadvisor()
        };
        let job = scrape_job(&spec, &Discovery::Kubernetes, Shard::Placeholder);
        assert_eq!(job["scheme"], Value::from("http"));
        assert_eq!(
            job["relabel_configs"][1]["source_labels"][0],
            Value::from("__meta_kubernetes_service_label_k8s_app")
        );
        assert_eq!(
            job["relabel_configs"][2]["regex"],
            Value::from("http-metrics")
        );
        assert_eq!(
            job["relabel_configs"][10]["replacement"],
            Value::from("http-metrics")
        );
    }

    #[test]
    fn file_sd_groups_carry_the_kubelet_endpoints_meta_labels() {
        let groups = kubelet_file_sd(&[KubeletNode {
            node: "kind-worker".into(),
            ports: vec![
                ("https-metrics".into(), "127.0.0.1:10250".into()),
                ("http-metrics".into(), "127.0.0.1:10255".into()),
            ],
        }]);
        let groups = groups.as_array().unwrap();
        assert_eq!(
            groups.len(),
            2,
            "one target per (node, port), as kubernetes_sd gives"
        );
        let g = &groups[0];
        assert_eq!(g["targets"], json!(["127.0.0.1:10250"]));
        let l = &g["labels"];
        assert_eq!(l["__meta_kubernetes_namespace"], "kube-system");
        assert_eq!(l["__meta_kubernetes_service_name"], "kubelet");
        assert_eq!(l[meta_service_label("app.kubernetes.io/name")], "kubelet");
        assert_eq!(l["__meta_kubernetes_endpoint_port_name"], "https-metrics");
        assert_eq!(l["__meta_kubernetes_endpoint_address_target_kind"], "Node");
        assert_eq!(
            l["__meta_kubernetes_endpoint_address_target_name"],
            "kind-worker"
        );
        assert_eq!(
            groups[1]["labels"]["__meta_kubernetes_endpoint_port_name"],
            "http-metrics"
        );
    }

    #[test]
    fn component_config_is_complete_and_parses_back() {
        let yml = component_prometheus_yml(
            &ServiceMonitorSpec::cadvisor(),
            "/etc/prometheus/sd/kubelet.json",
            Duration::from_secs(1),
        );
        let v: Value = serde_yaml::from_str(&yml).unwrap();
        assert_eq!(v["global"]["scrape_interval"], Value::from("1000ms"));
        assert_eq!(v["global"]["scrape_timeout"], Value::from("1000ms"));
        let job = &v["scrape_configs"][0];
        assert_eq!(
            job["job_name"],
            Value::from("serviceMonitor/kube-system/cadvisor/0")
        );
        assert_eq!(job["bearer_token_file"], Value::from(SERVICE_ACCOUNT_TOKEN));
        assert!(
            !yml.contains("$(SHARD)"),
            "the reloader's placeholder is substituted:\n{yml}"
        );
    }
}
