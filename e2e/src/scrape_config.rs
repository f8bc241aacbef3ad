//! The scrape job prometheus-operator v0.48.1 generates for a ServiceMonitor endpoint,
//! and the Prometheus configuration the component tier runs it in.
//!
//! One place in code: the component tier's Prometheus, the cluster twin and `replay` use exactly
//! this job, with `kubernetes_sd_configs` swapped for `file_sd_configs`/`http_sd_configs` whose
//! target groups carry the `__meta_kubernetes_*` labels kubernetes_sd gives.
//! The unit tests compare the mission's job to the one in `FACTS.md`, field for field and in
//! order: to a recorded copy everywhere, and to the shared file itself when `E2E_FACTS_MD` names
//! it. Every other field follows v0.48.1 `pkg/prometheus/promcfg.go` `generateServiceMonitorConfig`;
//! [`specs_from_servicemonitor`] reads a ServiceMonitor object into [`ServiceMonitorSpec`]s.

mod servicemonitor;

pub use servicemonitor::{specs_from_servicemonitor, ServiceMonitorError};

use serde_json::json;
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The token path of a pod's service account; the operator's ServiceMonitor points at it.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// One endpoint of a ServiceMonitor with the spec fields that shape its scrape job
/// (v0.48.1 `pkg/apis/monitoring/v1/types.go`: `ServiceMonitorSpec`, `Endpoint`).
///
/// String fields mirror the operator's Go types: an empty string is "unset" (`omitempty`), and
/// the generator then writes nothing, leaving Prometheus's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMonitorSpec {
    /// ServiceMonitor namespace and name (`kube-system/cadvisor`).
    pub namespace: String,
    pub name: String,
    /// Index of the endpoint in `spec.endpoints`.
    pub endpoint_index: usize,
    /// `endpoints[].port`: the Service port name (empty: unset, then `target_port` applies).
    pub port: String,
    /// `endpoints[].targetPort`: the pod's container port, by name or number.
    pub target_port: Option<TargetPort>,
    /// `endpoints[].path` (empty: Prometheus's `/metrics`).
    pub path: String,
    /// `endpoints[].scheme` (empty: Prometheus's `http`).
    pub scheme: String,
    /// `endpoints[].params`; `Some(empty)` is written as `params: {}`, as the operator does.
    pub params: Option<BTreeMap<String, Vec<String>>>,
    /// `endpoints[].interval` (e.g. `30s`).
    pub interval: Option<String>,
    /// `endpoints[].scrapeTimeout`.
    pub scrape_timeout: Option<String>,
    pub honor_labels: bool,
    /// `endpoints[].honorTimestamps`; written only when set (promcfg.go `honorTimestamps`).
    pub honor_timestamps: Option<bool>,
    pub bearer_token_file: Option<String>,
    /// `endpoints[].tlsConfig` (file-based fields only).
    pub tls_config: Option<TlsConfig>,
    /// `spec.selector`: which Services' endpoints are kept.
    pub selector: LabelSelector,
    /// The kubernetes_sd namespaces from `spec.namespaceSelector`; empty means every namespace
    /// (`any: true`), as promcfg.go `getNamespacesFromNamespaceSelector` returns.
    pub namespaces: Vec<String>,
    /// `spec.jobLabel`: the Service label whose value becomes `job`.
    pub job_label: Option<String>,
    /// `spec.targetLabels`: Service labels copied onto the target.
    pub target_labels: Vec<String>,
    /// `spec.podTargetLabels`: Pod labels copied onto the target.
    pub pod_target_labels: Vec<String>,
    /// `endpoints[].relabelings`, inserted after the operator's own rules.
    pub relabelings: Vec<RelabelConfig>,
    /// `endpoints[].metricRelabelings`; `Some(empty)` is written as `metric_relabel_configs: []`.
    pub metric_relabelings: Option<Vec<RelabelConfig>>,
    /// `spec.sampleLimit` (0: unset).
    pub sample_limit: u64,
    /// `spec.targetLimit` (0: unset; written for Prometheus 2.21 and newer, as this project runs).
    pub target_limit: u64,
}

/// `endpoints[].targetPort` (an IntOrString).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    Name(String),
    Number(i32),
}

impl std::fmt::Display for TargetPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetPort::Name(n) => f.write_str(n),
            TargetPort::Number(n) => write!(f, "{n}"),
        }
    }
}

/// `endpoints[].tlsConfig`, the fields naming files in the Prometheus container (v0.48.1
/// `TLSConfig`); Secret/ConfigMap references are refused by the parser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub insecure_skip_verify: bool,
    /// `serverName` (empty: unset).
    pub server_name: String,
    /// `caFile`, `certFile`, `keyFile` (empty: unset).
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
}

/// A Kubernetes label selector (`spec.selector`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<SelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorRequirement {
    pub key: String,
    pub operator: SelectorOperator,
    pub values: Vec<String>,
}

/// The operators a label selector has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One ServiceMonitor relabeling (v0.48.1 `RelabelConfig`), as the user wrote it. Empty strings
/// and a zero modulus are "unset": the operator omits them and Prometheus applies its defaults
/// (separator `;`, regex `(.*)`, replacement `$1`, action `replace`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub target_label: String,
    pub regex: String,
    pub modulus: u64,
    pub replacement: String,
    pub action: String,
}

impl ServiceMonitorSpec {
    /// The mission's ServiceMonitor `kube-system/cadvisor` (FACTS.md).
    pub fn cadvisor() -> Self {
        ServiceMonitorSpec {
            namespace: "kube-system".into(),
            name: "cadvisor".into(),
            endpoint_index: 0,
            port: "https-metrics".into(),
            target_port: None,
            path: "/metrics/cadvisor".into(),
            scheme: "https".into(),
            params: None,
            interval: None,
            scrape_timeout: None,
            honor_labels: false,
            honor_timestamps: None,
            bearer_token_file: Some(SERVICE_ACCOUNT_TOKEN.into()),
            tls_config: Some(TlsConfig {
                insecure_skip_verify: true,
                ..TlsConfig::default()
            }),
            selector: LabelSelector {
                match_labels: [("app.kubernetes.io/name".to_string(), "kubelet".to_string())]
                    .into(),
                match_expressions: Vec::new(),
            },
            namespaces: vec!["kube-system".into()],
            job_label: None,
            target_labels: Vec::new(),
            pod_target_labels: Vec::new(),
            relabelings: Vec::new(),
            metric_relabelings: None,
            sample_limit: 0,
            target_limit: 0,
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
/// (promcfg.go `generateServiceMonitorConfig`, for a Prometheus of 2.21 or newer, one shard,
/// no operator-level overrides or enforced limits).
pub fn scrape_job(spec: &ServiceMonitorSpec, discovery: &Discovery, shard: Shard) -> Value {
    let mut job = Mapping::new();
    job.insert("job_name".into(), spec.job_name().into());
    job.insert("honor_labels".into(), spec.honor_labels.into());
    // promcfg.go `honorTimestamps`: only when the user set it (Prometheus ≥ 2.9).
    if let Some(honor) = spec.honor_timestamps {
        job.insert("honor_timestamps".into(), honor.into());
    }
    match discovery {
        Discovery::Kubernetes => {
            let mut sd = Mapping::new();
            sd.insert("role".into(), "endpoints".into());
            // promcfg.go `generateK8SSDConfig`: no `namespaces` at all for every namespace.
            if !spec.namespaces.is_empty() {
                let names = Value::Sequence(
                    spec.namespaces
                        .iter()
                        .map(|n| Value::from(n.as_str()))
                        .collect(),
                );
                sd.insert("namespaces".into(), map([("names", names)]));
            }
            job.insert(
                "kubernetes_sd_configs".into(),
                Value::Sequence(vec![Value::Mapping(sd)]),
            );
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
    // promcfg.go: interval, timeout, path, params, scheme, tls, bearer token file, in this order.
    if let Some(i) = &spec.interval {
        job.insert("scrape_interval".into(), i.as_str().into());
    }
    if let Some(t) = &spec.scrape_timeout {
        job.insert("scrape_timeout".into(), t.as_str().into());
    }
    if !spec.path.is_empty() {
        job.insert("metrics_path".into(), spec.path.clone().into());
    }
    if let Some(params) = &spec.params {
        // A Go map: yaml.v2 writes its keys sorted, as the BTreeMap iterates.
        let params: Mapping = params
            .iter()
            .map(|(k, vs)| {
                let vs: Vec<&str> = vs.iter().map(String::as_str).collect();
                (Value::from(k.as_str()), strs(&vs))
            })
            .collect();
        job.insert("params".into(), Value::Mapping(params));
    }
    if !spec.scheme.is_empty() {
        job.insert("scheme".into(), spec.scheme.clone().into());
    }
    if let Some(tls) = &spec.tls_config {
        // promcfg.go `addTLStoYaml`: insecure_skip_verify always, then the set fields.
        let mut t = Mapping::new();
        t.insert(
            "insecure_skip_verify".into(),
            tls.insecure_skip_verify.into(),
        );
        for (key, value) in [
            ("server_name", &tls.server_name),
            ("ca_file", &tls.ca_file),
            ("cert_file", &tls.cert_file),
            ("key_file", &tls.key_file),
        ] {
            if !value.is_empty() {
                t.insert(key.into(), value.as_str().into());
            }
        }
        job.insert("tls_config".into(), Value::Mapping(t));
    }
    if let Some(file) = &spec.bearer_token_file {
        job.insert("bearer_token_file".into(), file.clone().into());
    }
    job.insert("relabel_configs".into(), relabel_configs(spec, shard));
    if spec.sample_limit > 0 {
        job.insert("sample_limit".into(), spec.sample_limit.into());
    }
    if spec.target_limit > 0 {
        job.insert("target_limit".into(), spec.target_limit.into());
    }
    if let Some(rules) = &spec.metric_relabelings {
        let rules = rules.iter().map(relabel_rule).collect();
        job.insert("metric_relabel_configs".into(), Value::Sequence(rules));
    }
    Value::Mapping(job)
}

/// A user relabeling as promcfg.go `generateRelabelConfig` writes it: set fields only, in this order.
pub(crate) fn relabel_rule(c: &RelabelConfig) -> Value {
    let mut m = Mapping::new();
    if !c.source_labels.is_empty() {
        let labels: Vec<&str> = c.source_labels.iter().map(String::as_str).collect();
        m.insert("source_labels".into(), strs(&labels));
    }
    for (key, value) in [
        ("separator", &c.separator),
        ("target_label", &c.target_label),
        ("regex", &c.regex),
    ] {
        if !value.is_empty() {
            m.insert(key.into(), value.as_str().into());
        }
    }
    if c.modulus != 0 {
        m.insert("modulus".into(), c.modulus.into());
    }
    for (key, value) in [("replacement", &c.replacement), ("action", &c.action)] {
        if !value.is_empty() {
            m.insert(key.into(), value.as_str().into());
        }
    }
    Value::Mapping(m)
}

fn keep_rule(action: &str, source: String, regex: &str) -> Value {
    map([
        ("action", action.into()),
        ("source_labels", strs(&[&source])),
        ("regex", regex.into()),
    ])
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
    let mut rules = vec![map([
        ("source_labels", strs(&["job"])),
        ("target_label", "__tmp_prometheus_job_name".into()),
    ])];
    // promcfg.go: matchLabels sorted by key, then matchExpressions in order.
    for (k, v) in &spec.selector.match_labels {
        rules.push(keep_rule("keep", meta_service_label(k), v));
    }
    for e in &spec.selector.match_expressions {
        let values = e.values.join("|");
        let present = format!(
            "__meta_kubernetes_service_labelpresent_{}",
            sanitize(&e.key)
        );
        rules.push(match e.operator {
            SelectorOperator::In => keep_rule("keep", meta_service_label(&e.key), &values),
            SelectorOperator::NotIn => keep_rule("drop", meta_service_label(&e.key), &values),
            SelectorOperator::Exists => keep_rule("keep", present, "true"),
            SelectorOperator::DoesNotExist => keep_rule("drop", present, "true"),
        });
    }
    // promcfg.go: `port` wins over `targetPort`; a numeric targetPort of 0 keeps nothing.
    if !spec.port.is_empty() {
        rules.push(keep_rule(
            "keep",
            "__meta_kubernetes_endpoint_port_name".into(),
            &spec.port,
        ));
    } else {
        match &spec.target_port {
            Some(TargetPort::Name(n)) if !n.is_empty() => rules.push(keep_rule(
                "keep",
                "__meta_kubernetes_pod_container_port_name".into(),
                n,
            )),
            Some(TargetPort::Number(n)) if *n != 0 => rules.push(keep_rule(
                "keep",
                "__meta_kubernetes_pod_container_port_number".into(),
                &n.to_string(),
            )),
            _ => {}
        }
    }
    rules.extend([
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
    ]);
    // promcfg.go: targetLabels from the Service, podTargetLabels from the Pod.
    for (prefix, names) in [
        ("__meta_kubernetes_service_label_", &spec.target_labels),
        ("__meta_kubernetes_pod_label_", &spec.pod_target_labels),
    ] {
        for l in names {
            rules.push(map([
                (
                    "source_labels",
                    strs(&[&format!("{prefix}{}", sanitize(l))]),
                ),
                ("target_label", sanitize(l).into()),
                ("regex", "(.+)".into()),
                ("replacement", "${1}".into()),
            ]));
        }
    }
    rules.push(map([
        ("source_labels", strs(&["__meta_kubernetes_service_name"])),
        ("target_label", "job".into()),
        ("replacement", "${1}".into()),
    ]));
    if let Some(label) = &spec.job_label {
        rules.push(map([
            ("source_labels", strs(&[&meta_service_label(label)])),
            ("target_label", "job".into()),
            ("regex", "(.+)".into()),
            ("replacement", "${1}".into()),
        ]));
    }
    // promcfg.go: the endpoint label is the port name, else targetPort's string form (even "0").
    let endpoint = if !spec.port.is_empty() {
        Some(spec.port.clone())
    } else {
        spec.target_port
            .as_ref()
            .map(TargetPort::to_string)
            .filter(|s| !s.is_empty())
    };
    if let Some(endpoint) = endpoint {
        rules.push(map([
            ("target_label", "endpoint".into()),
            ("replacement", endpoint.into()),
        ]));
    }
    // promcfg.go: the user's relabelings after the operator's, before the sharding rules.
    rules.extend(spec.relabelings.iter().map(relabel_rule));
    rules.extend([
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
    ]);
    Value::Sequence(rules)
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
            selector: LabelSelector {
                match_labels: [("k8s-app".to_string(), "kubelet".to_string())].into(),
                match_expressions: Vec::new(),
            },
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

    // ---------- the fields beyond the mission's (promcfg.go `generateServiceMonitorConfig`) ----------

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    fn job_of(spec: &ServiceMonitorSpec) -> Value {
        scrape_job(spec, &Discovery::Kubernetes, Shard::Placeholder)
    }

    fn top_keys(job: &Value) -> Vec<String> {
        job.as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    }

    fn rules(job: &Value) -> Vec<Value> {
        job["relabel_configs"].as_sequence().unwrap().clone()
    }

    fn rule_config(source: &[&str], target: &str, regex: &str, action: &str) -> RelabelConfig {
        RelabelConfig {
            source_labels: source.iter().map(|s| s.to_string()).collect(),
            target_label: target.into(),
            regex: regex.into(),
            action: action.into(),
            ..RelabelConfig::default()
        }
    }

    #[test]
    fn every_job_field_in_promcfg_order() {
        let spec = ServiceMonitorSpec {
            interval: Some("30s".into()),
            scrape_timeout: Some("10s".into()),
            honor_timestamps: Some(false),
            params: Some(
                [
                    ("b".into(), vec!["2".into()]),
                    ("a".into(), vec!["1".into()]),
                ]
                .into(),
            ),
            sample_limit: 5000,
            target_limit: 10,
            metric_relabelings: Some(vec![rule_config(&["__name__"], "", "go_.*", "drop")]),
            ..ServiceMonitorSpec::cadvisor()
        };
        let job = job_of(&spec);
        assert_eq!(
            top_keys(&job),
            [
                "job_name",
                "honor_labels",
                "honor_timestamps",
                "kubernetes_sd_configs",
                "scrape_interval",
                "scrape_timeout",
                "metrics_path",
                "params",
                "scheme",
                "tls_config",
                "bearer_token_file",
                "relabel_configs",
                "sample_limit",
                "target_limit",
                "metric_relabel_configs",
            ]
        );
        assert_eq!(job["honor_timestamps"], Value::Bool(false));
        assert_eq!(job["scrape_interval"], Value::from("30s"));
        assert_eq!(job["scrape_timeout"], Value::from("10s"));
        // A Go map: yaml.v2 sorts its keys.
        assert_eq!(job["params"], yaml("{a: ['1'], b: ['2']}"));
        assert_eq!(keys(&job["params"]), ["a", "b"]);
        assert_eq!(job["sample_limit"], Value::from(5000));
        assert_eq!(job["target_limit"], Value::from(10));
        assert_eq!(
            job["metric_relabel_configs"],
            yaml("[{source_labels: [__name__], regex: go_.*, action: drop}]")
        );
        // The rest is the mission's job unchanged.
        assert_eq!(rules(&job), rules(&facts_job()));
    }

    #[test]
    fn unset_fields_are_left_to_prometheus_defaults() {
        let spec = ServiceMonitorSpec {
            path: String::new(),
            scheme: String::new(),
            tls_config: None,
            bearer_token_file: None,
            ..ServiceMonitorSpec::cadvisor()
        };
        let keys = top_keys(&job_of(&spec));
        assert_eq!(
            keys,
            [
                "job_name",
                "honor_labels",
                "kubernetes_sd_configs",
                "relabel_configs"
            ]
        );
        // An empty metricRelabelings list is still written (Go: non-nil slice).
        let spec = ServiceMonitorSpec {
            metric_relabelings: Some(Vec::new()),
            params: Some(BTreeMap::new()),
            ..ServiceMonitorSpec::cadvisor()
        };
        let job = job_of(&spec);
        assert_eq!(job["metric_relabel_configs"], yaml("[]"));
        assert_eq!(job["params"], yaml("{}"));
    }

    #[test]
    fn honor_timestamps_true_is_written_as_set() {
        let spec = ServiceMonitorSpec {
            honor_timestamps: Some(true),
            ..ServiceMonitorSpec::cadvisor()
        };
        assert_eq!(job_of(&spec)["honor_timestamps"], Value::Bool(true));
        assert!(job_of(&ServiceMonitorSpec::cadvisor())
            .get("honor_timestamps")
            .is_none());
    }

    #[test]
    fn tls_config_fields_in_add_tls_to_yaml_order() {
        let spec = ServiceMonitorSpec {
            tls_config: Some(TlsConfig {
                insecure_skip_verify: false,
                server_name: "kubelet".into(),
                ca_file: "/etc/ca.crt".into(),
                cert_file: "/etc/tls.crt".into(),
                key_file: "/etc/tls.key".into(),
            }),
            ..ServiceMonitorSpec::cadvisor()
        };
        let tls = &job_of(&spec)["tls_config"];
        assert_eq!(
            keys(tls),
            [
                "insecure_skip_verify",
                "server_name",
                "ca_file",
                "cert_file",
                "key_file"
            ]
        );
        assert_eq!(tls["insecure_skip_verify"], Value::Bool(false));
        // A tlsConfig with nothing set still writes insecure_skip_verify: false.
        let spec = ServiceMonitorSpec {
            tls_config: Some(TlsConfig::default()),
            ..ServiceMonitorSpec::cadvisor()
        };
        assert_eq!(
            job_of(&spec)["tls_config"],
            yaml("{insecure_skip_verify: false}")
        );
    }

    #[test]
    fn selector_match_labels_sorted_then_match_expressions() {
        let spec = ServiceMonitorSpec {
            selector: LabelSelector {
                match_labels: [
                    ("k8s-app".to_string(), "kubelet".to_string()),
                    ("app.kubernetes.io/name".to_string(), "kubelet".to_string()),
                ]
                .into(),
                match_expressions: vec![
                    SelectorRequirement {
                        key: "tier".into(),
                        operator: SelectorOperator::In,
                        values: vec!["a".into(), "b".into()],
                    },
                    SelectorRequirement {
                        key: "env".into(),
                        operator: SelectorOperator::NotIn,
                        values: vec!["dev".into()],
                    },
                    SelectorRequirement {
                        key: "app.kubernetes.io/part-of".into(),
                        operator: SelectorOperator::Exists,
                        values: vec![],
                    },
                    SelectorRequirement {
                        key: "legacy".into(),
                        operator: SelectorOperator::DoesNotExist,
                        values: vec![],
                    },
                ],
            },
            ..ServiceMonitorSpec::cadvisor()
        };
        let got = rules(&job_of(&spec));
        let want = yaml(
            r#"
- {action: keep, source_labels: [__meta_kubernetes_service_label_app_kubernetes_io_name], regex: kubelet}
- {action: keep, source_labels: [__meta_kubernetes_service_label_k8s_app], regex: kubelet}
- {action: keep, source_labels: [__meta_kubernetes_service_label_tier], regex: a|b}
- {action: drop, source_labels: [__meta_kubernetes_service_label_env], regex: dev}
- {action: keep, source_labels: [__meta_kubernetes_service_labelpresent_app_kubernetes_io_part_of], regex: "true"}
- {action: drop, source_labels: [__meta_kubernetes_service_labelpresent_legacy], regex: "true"}
- {action: keep, source_labels: [__meta_kubernetes_endpoint_port_name], regex: https-metrics}
"#,
        );
        assert_eq!(Value::Sequence(got[1..8].to_vec()), want);
        assert_eq!(keys(&got[1]), ["action", "source_labels", "regex"]);
    }

    #[test]
    fn target_port_by_name_or_number_when_port_is_unset() {
        let named = ServiceMonitorSpec {
            port: String::new(),
            target_port: Some(TargetPort::Name("metrics".into())),
            ..ServiceMonitorSpec::cadvisor()
        };
        let r = rules(&job_of(&named));
        assert_eq!(
            r[2],
            yaml("{action: keep, source_labels: [__meta_kubernetes_pod_container_port_name], regex: metrics}")
        );
        assert_eq!(
            r[10],
            yaml("{target_label: endpoint, replacement: metrics}")
        );
        let numbered = ServiceMonitorSpec {
            target_port: Some(TargetPort::Number(8080)),
            ..named.clone()
        };
        let r = rules(&job_of(&numbered));
        assert_eq!(
            r[2],
            yaml("{action: keep, source_labels: [__meta_kubernetes_pod_container_port_number], regex: '8080'}")
        );
        assert_eq!(r[10], yaml("{target_label: endpoint, replacement: '8080'}"));
        // `port` wins when both are set.
        let both = ServiceMonitorSpec {
            target_port: Some(TargetPort::Number(8080)),
            ..ServiceMonitorSpec::cadvisor()
        };
        assert_eq!(rules(&job_of(&both)), rules(&facts_job()));
        // Neither: no port filter and no endpoint label (13 - 2 rules).
        let neither = ServiceMonitorSpec {
            target_port: None,
            ..named
        };
        let r = rules(&job_of(&neither));
        assert_eq!(r.len(), 11);
        assert!(r.iter().all(|r| r["target_label"] != "endpoint"));
    }

    #[test]
    fn target_labels_pod_target_labels_and_job_label() {
        let spec = ServiceMonitorSpec {
            target_labels: vec!["app.kubernetes.io/name".into()],
            pod_target_labels: vec!["team".into()],
            job_label: Some("k8s-app".into()),
            ..ServiceMonitorSpec::cadvisor()
        };
        let r = rules(&job_of(&spec));
        let want = yaml(
            r#"
- {source_labels: [__meta_kubernetes_pod_container_name], target_label: container}
- {source_labels: [__meta_kubernetes_service_label_app_kubernetes_io_name], target_label: app_kubernetes_io_name, regex: (.+), replacement: "${1}"}
- {source_labels: [__meta_kubernetes_pod_label_team], target_label: team, regex: (.+), replacement: "${1}"}
- {source_labels: [__meta_kubernetes_service_name], target_label: job, replacement: "${1}"}
- {source_labels: [__meta_kubernetes_service_label_k8s_app], target_label: job, regex: (.+), replacement: "${1}"}
- {target_label: endpoint, replacement: https-metrics}
"#,
        );
        assert_eq!(Value::Sequence(r[8..14].to_vec()), want);
    }

    #[test]
    fn user_relabelings_go_after_the_operators_and_before_sharding() {
        let spec = ServiceMonitorSpec {
            relabelings: vec![
                RelabelConfig {
                    source_labels: vec!["__meta_kubernetes_node_name".into()],
                    separator: "/".into(),
                    target_label: "instance".into(),
                    regex: "(.*)".into(),
                    modulus: 0,
                    replacement: "node-$1".into(),
                    action: "replace".into(),
                },
                RelabelConfig {
                    source_labels: vec!["__address__".into()],
                    target_label: "__tmp_x".into(),
                    modulus: 4,
                    action: "hashmod".into(),
                    ..RelabelConfig::default()
                },
            ],
            ..ServiceMonitorSpec::cadvisor()
        };
        let r = rules(&job_of(&spec));
        assert_eq!(r.len(), 15);
        assert_eq!(
            r[10],
            yaml("{target_label: endpoint, replacement: https-metrics}")
        );
        // generateRelabelConfig: set fields only, in this order.
        assert_eq!(
            keys(&r[11]),
            [
                "source_labels",
                "separator",
                "target_label",
                "regex",
                "replacement",
                "action"
            ]
        );
        assert_eq!(
            keys(&r[12]),
            ["source_labels", "target_label", "modulus", "action"]
        );
        assert_eq!(r[12]["modulus"], Value::from(4));
        assert_eq!(r[13]["target_label"], Value::from("__tmp_hash"));
        assert_eq!(r[14]["regex"], Value::from("$(SHARD)"));
    }

    #[test]
    fn namespace_selector_any_omits_the_sd_namespaces() {
        let spec = ServiceMonitorSpec {
            namespaces: Vec::new(),
            ..ServiceMonitorSpec::cadvisor()
        };
        assert_eq!(
            job_of(&spec)["kubernetes_sd_configs"],
            yaml("[{role: endpoints}]")
        );
        let spec = ServiceMonitorSpec {
            namespaces: vec!["a".into(), "b".into()],
            ..ServiceMonitorSpec::cadvisor()
        };
        assert_eq!(
            job_of(&spec)["kubernetes_sd_configs"],
            yaml("[{role: endpoints, namespaces: {names: [a, b]}}]")
        );
    }
}
