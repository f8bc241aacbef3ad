//! What shapes the generated job: one ServiceMonitor endpoint with the spec fields that matter
//! (prometheus-operator/prometheus-operator pkg/apis/monitoring/v1/types.go@v0.48.1), how the
//! job discovers targets, and the shard it keeps.

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
    /// See `namespace`.
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
    /// `endpoints[].honorLabels`.
    pub honor_labels: bool,
    /// `endpoints[].honorTimestamps`; written only when set (promcfg.go `honorTimestamps`).
    pub honor_timestamps: Option<bool>,
    /// `endpoints[].bearerTokenFile`.
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
    /// A container port name.
    Name(String),
    /// A container port number.
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
    /// `insecureSkipVerify`.
    pub insecure_skip_verify: bool,
    /// `serverName` (empty: unset).
    pub server_name: String,
    /// `caFile`, `certFile`, `keyFile` (empty: unset).
    pub ca_file: String,
    /// See `ca_file`.
    pub cert_file: String,
    /// See `ca_file`.
    pub key_file: String,
}

/// A Kubernetes label selector (`spec.selector`) as written, for generating relabel rules, not for
/// matching (that is [`kube::core::Selector`], in [`crate::operator::selection`]): the operator
/// writes `matchExpressions` in their order and `In` values joined in theirs, which kube's
/// `Selector` (a sorted set of values) would not keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// `matchLabels`.
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions`.
    pub match_expressions: Vec<SelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorRequirement {
    /// The label.
    pub key: String,
    /// How the label is compared.
    pub operator: SelectorOperator,
    /// The values (In, NotIn).
    pub values: Vec<String>,
}

/// The operators a label selector has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorOperator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// One ServiceMonitor relabeling (v0.48.1 `RelabelConfig`), as the user wrote it. Empty strings
/// and a zero modulus are "unset": the operator omits them and Prometheus applies its defaults
/// (separator `;`, regex `(.*)`, replacement `$1`, action `replace`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelabelConfig {
    /// `sourceLabels`.
    pub source_labels: Vec<String>,
    /// `separator`.
    pub separator: String,
    /// `targetLabel`.
    pub target_label: String,
    /// `regex`.
    pub regex: String,
    /// `modulus`.
    pub modulus: u64,
    /// `replacement`.
    pub replacement: String,
    /// `action`.
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
    /// A file_sd file holding target groups with the labels kubernetes_sd gives (replay, the
    /// component tier).
    File {
        /// The file Prometheus reads targets from.
        path: String,
    },
    /// The cluster twin: `http_sd_configs` against an endpoint serving the target groups
    /// kubernetes_sd (role endpoints) would yield, re-read every `refresh_interval`.
    Http {
        /// Where the target groups are served.
        url: String,
        /// How often Prometheus asks again.
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
