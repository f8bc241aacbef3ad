//! The coverage check: does every running container of every running pod have a series of
//! each checked metric in Prometheus? By default [`DEFAULT_METRICS`]:
//! `container_cpu_usage_seconds_total` (the mission's) and `container_memory_working_set_bytes`.
//!
//! Two aggregated PromQL queries per metric per poll, whatever the number of pods
//! ([`metric_queries`]); the evaluation of an answer against the pod list is pure
//! ([`evaluate_seen_for`]); [`check_metrics`] polls every metric under one deadline until every pod
//! is covered for every metric or the deadline passes, and reports per metric ([`MetricsReport`]).
//! The single-metric [`check`] (CPU) is what the benchmark measures.

use crate::pods::RunningPod;
use crate::prometheus::{PromError, PrometheusClient, QueryResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The mission's metric: per-container CPU time.
pub const CPU_METRIC: &str = "container_cpu_usage_seconds_total";
/// Per-container memory in use (what the OOM killer and `kubectl top` look at).
pub const MEMORY_METRIC: &str = "container_memory_working_set_bytes";
/// What every command checks unless told otherwise (`--metric`, a matrix cell's `metrics`).
pub const DEFAULT_METRICS: [&str; 2] = [CPU_METRIC, MEMORY_METRIC];

/// Why a metric name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricNameError {
    #[error("metric name is empty; give a Prometheus metric name such as {CPU_METRIC}")]
    Empty,
    #[error(
        "invalid metric name {name:?}: {found:?} at position {position} is not allowed; a Prometheus \
         metric name matches [a-zA-Z_:][a-zA-Z0-9_:]* (e.g. {MEMORY_METRIC}); \
         pass the metric's name without labels or braces"
    )]
    Invalid {
        name: String,
        found: char,
        position: usize,
    },
}

/// A Prometheus metric name, checked against the data model's
/// `[a-zA-Z_:][a-zA-Z0-9_:]*` (prometheus.io/docs/concepts/data_model, "Metric names and
/// labels"), so it can be put into a PromQL selector as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MetricName(String);

impl MetricName {
    /// Checks `name`.
    ///
    /// # Errors
    /// [`MetricNameError`] when `name` is empty or has a character the data model does not allow.
    pub fn new(name: impl Into<String>) -> Result<Self, MetricNameError> {
        let name = name.into();
        let mut chars = name.chars().enumerate();
        match chars.next() {
            None => return Err(MetricNameError::Empty),
            Some((_, c)) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
            Some((position, found)) => {
                return Err(MetricNameError::Invalid {
                    name,
                    found,
                    position,
                })
            }
        }
        if let Some((position, found)) =
            chars.find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == ':'))
        {
            return Err(MetricNameError::Invalid {
                name,
                found,
                position,
            });
        }
        Ok(MetricName(name))
    }

    /// `container_cpu_usage_seconds_total`.
    pub fn cpu() -> Self {
        MetricName(CPU_METRIC.to_string())
    }

    /// [`DEFAULT_METRICS`], in that order.
    pub fn defaults() -> Vec<Self> {
        DEFAULT_METRICS
            .iter()
            .map(|m| MetricName(m.to_string()))
            .collect()
    }

    /// A comma-separated list (`E2E_METRICS=a,b`); blanks around names are ignored, duplicates
    /// dropped (first one kept).
    ///
    /// # Errors
    /// The first invalid name's [`MetricNameError`]; an empty list is [`MetricNameError::Empty`].
    pub fn parse_list(list: &str) -> Result<Vec<Self>, MetricNameError> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim) {
            let m = MetricName::new(name)?;
            if !out.contains(&m) {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MetricName {
    type Err = MetricNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MetricName::new(s)
    }
}

impl TryFrom<String> for MetricName {
    type Error = MetricNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MetricName::new(s)
    }
}

impl From<MetricName> for String {
    fn from(m: MetricName) -> String {
        m.0
    }
}

impl AsRef<str> for MetricName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The queries the check sends per poll for `metric`, whatever the number of pods: one for
/// today's label names, one for kubelets before 1.16 (`pod_name`/`container_name`).
///
/// `count by` collapses duplicate series (a second cgroup `id` on cgroup-v1 kind hosts, several
/// `cpu` rows) to one row per (namespace, pod, container). Pod-level cgroup rows and containerd
/// pause rows have no `container` label at all; Docker's pause rows say `POD`: both are filtered
/// here (memory rows have the same label sets as CPU rows, without `cpu`: the real captures).
/// Two queries rather than one `or`: measured on 40k series, the `or` costs Prometheus
/// more than a second request does (the legacy selector matches nothing on modern kubelets).
pub fn metric_queries(metric: &MetricName) -> [String; 2] {
    [
        format!(
            "count by (namespace, exported_namespace, pod, container) \
             ({metric}{{container!=\"\", container!=\"POD\"}})"
        ),
        format!(
            "count by (namespace, exported_namespace, pod_name, container_name) \
             ({metric}{{container_name!=\"\", container_name!=\"POD\"}})"
        ),
    ]
}

/// [`metric_queries`] for [`CPU_METRIC`].
pub fn coverage_queries() -> [String; 2] {
    metric_queries(&MetricName::cpu())
}

/// Runs [`metric_queries`] for `metric` and merges their answers (warnings included).
///
/// # Errors
/// The first query Prometheus cannot answer ([`PrometheusClient::query`]).
pub async fn fetch_metric_series(
    client: &PrometheusClient,
    metric: &MetricName,
) -> Result<QueryResult, PromError> {
    let mut merged = QueryResult::default();
    for query in metric_queries(metric) {
        let answer = client.query(&query).await?;
        merged.series.extend(answer.series);
        merged.warnings.extend(answer.warnings);
    }
    Ok(merged)
}

/// [`fetch_metric_series`] for [`CPU_METRIC`].
///
/// # Errors
/// As [`fetch_metric_series`].
pub async fn fetch_series(client: &PrometheusClient) -> Result<QueryResult, PromError> {
    fetch_metric_series(client, &MetricName::cpu()).await
}

/// Which label held the pods' namespaces in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceLabel {
    /// `namespace`: the ServiceMonitor has `honorLabels: true`.
    Namespace,
    /// `exported_namespace`: `honorLabels: false` (the kubelet target's own `namespace`,
    /// `kube-system`, won the clash; the pod's namespace was renamed).
    ExportedNamespace,
    /// Both: several scrape jobs with different `honorLabels`.
    Mixed,
    /// No container series at all.
    Unknown,
}

impl NamespaceLabel {
    pub fn describe(self) -> &'static str {
        match self {
            NamespaceLabel::Namespace => "pod namespaces in `namespace` (honorLabels: true)",
            NamespaceLabel::ExportedNamespace => {
                "pod namespaces in `exported_namespace` (honorLabels: false; `namespace` is the kubelet Service's, kube-system)"
            }
            NamespaceLabel::Mixed => "pod namespaces in both `namespace` and `exported_namespace` (scrape jobs disagree on honorLabels)",
            NamespaceLabel::Unknown => "no container series found",
        }
    }
}

/// A pod that is not (fully) covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingPod {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Running containers without a series.
    pub missing_containers: Vec<String>,
    /// True when none of the pod's containers has a series.
    pub no_series_at_all: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageReport {
    pub metric: String,
    pub pods_total: usize,
    pub pods_covered: usize,
    pub containers_total: usize,
    pub containers_covered: usize,
    pub namespace_label: NamespaceLabel,
    /// Sorted by namespace, then name.
    pub missing: Vec<MissingPod>,
    /// Time from the first query to this report.
    pub waited_ms: u64,
    pub deadline_ms: u64,
    pub polls: u32,
    /// HTTP requests sent to Prometheus by this check (retries included).
    pub requests: u64,
    /// Warnings Prometheus attached to the last answer, verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl CoverageReport {
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a report always serialises")
    }
}

impl fmt::Display for CoverageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_complete() {
            "covered"
        } else {
            "NOT covered"
        };
        writeln!(
            f,
            "{verdict}: {}/{} pods, {}/{} containers have {} ({:.1}s, {} poll{}, {} request{}; deadline {:.1}s)",
            self.pods_covered,
            self.pods_total,
            self.containers_covered,
            self.containers_total,
            self.metric,
            self.waited_ms as f64 / 1000.0,
            self.polls,
            if self.polls == 1 { "" } else { "s" },
            self.requests,
            if self.requests == 1 { "" } else { "s" },
            self.deadline_ms as f64 / 1000.0,
        )?;
        writeln!(f, "  {}", self.namespace_label.describe())?;
        for w in &self.warnings {
            writeln!(f, "  Prometheus warning: {w}")?;
        }
        if !self.missing.is_empty() {
            writeln!(f, "  missing ({} pods):", self.missing.len())?;
        }
        for m in &self.missing {
            let node = m
                .node
                .as_deref()
                .map(|n| format!(" on node {n}"))
                .unwrap_or_default();
            if m.no_series_at_all {
                writeln!(
                    f,
                    "    {}/{}{node}: no series for any container ({})",
                    m.namespace,
                    m.name,
                    m.missing_containers.join(", ")
                )?;
            } else {
                writeln!(
                    f,
                    "    {}/{}{node}: no series for container(s) {}",
                    m.namespace,
                    m.name,
                    m.missing_containers.join(", ")
                )?;
            }
        }
        Ok(())
    }
}

/// The (namespace, pod, container) a series belongs to, and which label held the namespace.
/// `None` for rows that never count as coverage (pod-level cgroups, pause containers).
fn series_key<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Option<(&'a str, &'a str, &'a str, bool)> {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    let container = get("container").or_else(|| get("container_name"))?;
    if container == "POD" {
        return None;
    }
    let pod = get("pod").or_else(|| get("pod_name"))?;
    // With honor_labels false a scraped `namespace` that clashes with the target's is renamed.
    let (namespace, exported) = match get("exported_namespace") {
        Some(ns) => (ns, true),
        None => (get("namespace")?, false),
    };
    Some((namespace, pod, container, exported))
}

/// The containers an answer has series for, as (namespace, pod, container) keys that borrow
/// from the answer; what [`evaluate_seen`] compares the pod list with.
///
/// Built straight from a query's JSON body ([`Seen::decode`]) without a label map per series:
/// at 100,000 series that keeps the check's memory near the size of the answer.
#[derive(Debug, Default)]
pub struct Seen<'a> {
    // FxHash: SipHash's DoS resistance buys nothing for Prometheus's own answer, and hashing
    // 100,000 keys was a good part of the check's time at 50,000 pods.
    containers: rustc_hash::FxHashSet<(&'a str, &'a str, &'a str)>,
    pods: rustc_hash::FxHashSet<(&'a str, &'a str)>,
    in_namespace: usize,
    in_exported: usize,
}

impl<'a> Seen<'a> {
    fn add(&mut self, key: Option<(&'a str, &'a str, &'a str, bool)>) {
        if let Some((ns, pod, container, exported)) = key {
            if exported {
                self.in_exported += 1;
            } else {
                self.in_namespace += 1;
            }
            self.containers.insert((ns, pod, container));
            self.pods.insert((ns, pod));
        }
    }

    /// From decoded label sets (the diagnosis keeps those).
    pub fn from_labels<I>(series: I) -> Self
    where
        I: IntoIterator<Item = &'a BTreeMap<String, String>>,
    {
        let mut seen = Seen::default();
        for labels in series {
            seen.add(series_key(|k| labels.get(k).map(String::as_str)));
        }
        seen
    }

    /// Decodes an instant-vector answer of [`coverage_queries`] (HTTP status and body) into
    /// keys that borrow from `body`; returns them with Prometheus's warnings.
    ///
    /// # Errors
    /// The same as [`PrometheusClient::query`]: the API's own error, a non-API HTTP answer, or a
    /// body that is not an instant vector.
    pub fn decode(status: u16, body: &'a [u8]) -> Result<(Self, Vec<String>), PromError> {
        let (data, warnings): (SeenData<'a>, _) =
            crate::prometheus::decode_envelope(status, body, "coverage query")?;
        Ok((data.0, warnings))
    }

    /// Adds another answer's keys (the legacy-label query's).
    pub fn merge(&mut self, other: Seen<'a>) {
        self.containers.extend(other.containers);
        self.pods.extend(other.pods);
        self.in_namespace += other.in_namespace;
        self.in_exported += other.in_exported;
    }
}

/// The `data` of an instant query, decoded into [`Seen`] as it is read: each series' labels are
/// looked at once and only the six the check needs are kept, borrowed from the body.
struct SeenData<'a>(Seen<'a>);

impl<'de> Deserialize<'de> for SeenData<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, IgnoredAny, MapAccess, SeqAccess, Visitor};

        /// Only labels with a borrowed (unescaped) value can be kept without copying; an escaped
        /// one (never seen in label values the check reads: DNS-1123 names) is refused.
        #[derive(Deserialize)]
        struct Labels<'a> {
            #[serde(borrow, default)]
            namespace: Option<&'a str>,
            #[serde(borrow, default)]
            exported_namespace: Option<&'a str>,
            #[serde(borrow, default)]
            pod: Option<&'a str>,
            #[serde(borrow, default)]
            pod_name: Option<&'a str>,
            #[serde(borrow, default)]
            container: Option<&'a str>,
            #[serde(borrow, default)]
            container_name: Option<&'a str>,
        }
        #[derive(Deserialize)]
        struct Item<'a> {
            #[serde(borrow)]
            metric: Labels<'a>,
        }

        struct Result<'a>(Seen<'a>);
        impl<'de> Deserialize<'de> for Result<'de> {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                struct Items;
                impl<'de> Visitor<'de> for Items {
                    type Value = Seen<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("an instant vector")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> std::result::Result<Seen<'de>, A::Error> {
                        let mut seen = Seen::default();
                        while let Some(item) = seq.next_element::<Item<'de>>()? {
                            let l = item.metric;
                            seen.add(series_key(|k| match k {
                                "namespace" => l.namespace,
                                "exported_namespace" => l.exported_namespace,
                                "pod" => l.pod,
                                "pod_name" => l.pod_name,
                                "container" => l.container,
                                "container_name" => l.container_name,
                                _ => None,
                            }));
                        }
                        Ok(seen)
                    }
                }
                d.deserialize_seq(Items).map(Result)
            }
        }

        struct Data;
        impl<'de> Visitor<'de> for Data {
            type Value = SeenData<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("query data with resultType and result")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<SeenData<'de>, A::Error> {
                let (mut kind, mut seen) = (None::<String>, None);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "resultType" => kind = Some(map.next_value()?),
                        // Prometheus writes resultType first, so a scalar is named as such here.
                        "result" => {
                            if let Some(other) = kind.as_deref().filter(|k| *k != "vector") {
                                return Err(A::Error::custom(format!(
                                    "result type {other:?}; expected an instant vector"
                                )));
                            }
                            seen = Some(map.next_value::<Result<'de>>()?.0)
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                match kind.as_deref() {
                    Some("vector") => {}
                    other => {
                        return Err(A::Error::custom(format!(
                            "result type {other:?}; expected an instant vector"
                        )))
                    }
                }
                seen.map(SeenData)
                    .ok_or_else(|| A::Error::missing_field("result"))
            }
        }
        d.deserialize_map(Data)
    }
}

/// Compares the running pods with the label sets of the CPU coverage query's answer. Pure.
pub fn evaluate<'a, I>(pods: &[RunningPod], series: I) -> CoverageReport
where
    I: IntoIterator<Item = &'a BTreeMap<String, String>>,
{
    evaluate_seen(pods, &Seen::from_labels(series))
}

/// Compares the running pods with the label sets of `metric`'s coverage queries' answer. Pure.
pub fn evaluate_for<'a, I>(metric: &MetricName, pods: &[RunningPod], series: I) -> CoverageReport
where
    I: IntoIterator<Item = &'a BTreeMap<String, String>>,
{
    evaluate_seen_for(metric, pods, &Seen::from_labels(series))
}

/// Compares the running pods with the containers a CPU answer has series for. Pure.
pub fn evaluate_seen(pods: &[RunningPod], seen: &Seen<'_>) -> CoverageReport {
    evaluate_seen_for(&MetricName::cpu(), pods, seen)
}

/// Compares the running pods with the containers an answer for `metric` has series for. Pure.
pub fn evaluate_seen_for(
    metric: &MetricName,
    pods: &[RunningPod],
    seen: &Seen<'_>,
) -> CoverageReport {
    let namespace_label = match (seen.in_namespace > 0, seen.in_exported > 0) {
        (true, true) => NamespaceLabel::Mixed,
        (true, false) => NamespaceLabel::Namespace,
        (false, true) => NamespaceLabel::ExportedNamespace,
        (false, false) => NamespaceLabel::Unknown,
    };

    let mut missing = Vec::new();
    let mut containers_total = 0;
    let mut containers_covered = 0;
    for pod in pods {
        containers_total += pod.containers.len();
        let absent: Vec<String> = pod
            .containers
            .iter()
            .filter(|c| {
                !seen
                    .containers
                    .contains(&(pod.namespace.as_str(), pod.name.as_str(), c.as_str()))
            })
            .cloned()
            .collect();
        containers_covered += pod.containers.len() - absent.len();
        if !absent.is_empty() {
            missing.push(MissingPod {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                node: pod.node.clone(),
                no_series_at_all: !seen
                    .pods
                    .contains(&(pod.namespace.as_str(), pod.name.as_str())),
                missing_containers: absent,
            });
        }
    }
    missing.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));

    CoverageReport {
        metric: metric.to_string(),
        pods_total: pods.len(),
        pods_covered: pods.len() - missing.len(),
        containers_total,
        containers_covered,
        namespace_label,
        missing,
        waited_ms: 0,
        deadline_ms: 0,
        polls: 0,
        requests: 0,
        warnings: Vec::new(),
    }
}

/// How long [`check`] keeps polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    pub deadline: Duration,
    pub poll_interval: Duration,
}

impl WaitOptions {
    /// A pod needs one scrape after its first CPU use, and a new target one more interval to be
    /// discovered: four intervals plus slack for Prometheus's own start.
    pub fn for_scrape_interval(scrape: Duration) -> Self {
        WaitOptions {
            deadline: scrape * 4 + Duration::from_secs(5),
            poll_interval: (scrape / 2).clamp(Duration::from_millis(200), Duration::from_secs(5)),
        }
    }
}

/// Polls Prometheus until every pod is covered for [`CPU_METRIC`] or `opts.deadline` passes,
/// calling `progress` after each poll. Returns the last report either way.
///
/// # Errors
/// Only when Prometheus cannot answer the query at all (unreachable until the deadline, or an
/// API error).
pub async fn check(
    client: &PrometheusClient,
    pods: &[RunningPod],
    opts: &WaitOptions,
    progress: &mut (dyn FnMut(&CoverageReport) + Send),
) -> Result<CoverageReport, PromError> {
    let metrics = [MetricName::cpu()];
    let mut report = check_metrics(client, pods, &metrics, opts, &mut |r: &MetricsReport| {
        progress(&r.metrics[0])
    })
    .await?;
    Ok(report.metrics.remove(0))
}

/// Polls Prometheus until every pod is covered for every metric of `metrics`, or `opts.deadline`
/// passes (one deadline for all), calling `progress` after each poll. Each poll sends
/// [`metric_queries`] for every metric: two requests per metric, whatever the number of pods.
/// Returns the last poll's report either way, one [`CoverageReport`] per metric in the order
/// given (duplicates checked once).
///
/// # Errors
/// Only when Prometheus cannot answer a query at all (unreachable until the deadline, or an
/// API error).
pub async fn check_metrics(
    client: &PrometheusClient,
    pods: &[RunningPod],
    metrics: &[MetricName],
    opts: &WaitOptions,
    progress: &mut (dyn FnMut(&MetricsReport) + Send),
) -> Result<MetricsReport, PromError> {
    let mut unique: Vec<&MetricName> = Vec::new();
    for m in metrics {
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    let start = Instant::now();
    let requests_before = client.request_count();
    let mut polls = 0;
    loop {
        // Retries of an unreachable Prometheus stay within the check's own deadline.
        let remaining = opts.deadline.saturating_sub(start.elapsed());
        let bounded = client
            .clone()
            .with_retry_deadline(remaining.max(Duration::from_millis(100)));
        polls += 1;
        let mut reports = Vec::with_capacity(unique.len());
        for metric in &unique {
            let sent_before = client.request_count();
            let (mut report, warnings) = poll_once(&bounded, metric, pods).await?;
            report.polls = polls;
            report.requests = client.request_count() - sent_before;
            report.warnings = warnings;
            reports.push(report);
        }
        let waited_ms = start.elapsed().as_millis() as u64;
        let deadline_ms = opts.deadline.as_millis() as u64;
        for r in &mut reports {
            r.waited_ms = waited_ms;
            r.deadline_ms = deadline_ms;
        }
        let report = MetricsReport {
            metrics: reports,
            waited_ms,
            deadline_ms,
            polls,
            requests: client.request_count() - requests_before,
        };
        progress(&report);
        if report.is_complete() || start.elapsed() + opts.poll_interval >= opts.deadline {
            return Ok(report);
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
}

/// One poll for one metric: both queries, decoded into borrowed keys, evaluated; the bodies are
/// dropped before returning, so a poll's memory is about the size of one metric's answers.
async fn poll_once(
    client: &PrometheusClient,
    metric: &MetricName,
    pods: &[RunningPod],
) -> Result<(CoverageReport, Vec<String>), PromError> {
    let mut bodies = Vec::new();
    for query in metric_queries(metric) {
        bodies.push(client.query_response(&query).await?);
    }
    let mut seen = Seen::default();
    let mut warnings = Vec::new();
    for resp in &bodies {
        let (more, w) = Seen::decode(resp.status, &resp.body)?;
        seen.merge(more);
        warnings.extend(w);
    }
    Ok((evaluate_seen_for(metric, pods, &seen), warnings))
}

/// The coverage of several metrics, from one check: one [`CoverageReport`] per metric, in the
/// order they were asked for. `coverage.json` and `check --json` are this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    /// Per metric; each says which metric in [`CoverageReport::metric`].
    pub metrics: Vec<CoverageReport>,
    /// Time from the first query to this report.
    pub waited_ms: u64,
    pub deadline_ms: u64,
    pub polls: u32,
    /// HTTP requests sent to Prometheus by the whole check (all metrics, retries included).
    pub requests: u64,
}

impl MetricsReport {
    /// Every pod covered for every metric (and at least one metric checked).
    pub fn is_complete(&self) -> bool {
        !self.metrics.is_empty() && self.metrics.iter().all(CoverageReport::is_complete)
    }

    /// The report for `metric`, if it was checked.
    pub fn get(&self, metric: &str) -> Option<&CoverageReport> {
        self.metrics.iter().find(|r| r.metric == metric)
    }

    /// The metrics some running container has no series of.
    pub fn incomplete(&self) -> impl Iterator<Item = &CoverageReport> {
        self.metrics.iter().filter(|r| !r.is_complete())
    }

    /// The checked metrics' names, in order.
    pub fn metric_names(&self) -> Vec<&str> {
        self.metrics.iter().map(|r| r.metric.as_str()).collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a report always serialises")
    }
}

impl From<CoverageReport> for MetricsReport {
    fn from(r: CoverageReport) -> Self {
        MetricsReport {
            waited_ms: r.waited_ms,
            deadline_ms: r.deadline_ms,
            polls: r.polls,
            requests: r.requests,
            metrics: vec![r],
        }
    }
}

/// Per metric: a summary line, then each metric's own report.
impl fmt::Display for MetricsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let complete = self.metrics.iter().filter(|r| r.is_complete()).count();
        writeln!(
            f,
            "{}: {complete}/{} metrics have a series for every running container ({:.1}s, {} poll{}, {} request{})",
            if self.is_complete() { "covered" } else { "NOT covered" },
            self.metrics.len(),
            self.waited_ms as f64 / 1000.0,
            self.polls,
            if self.polls == 1 { "" } else { "s" },
            self.requests,
            if self.requests == 1 { "" } else { "s" },
        )?;
        for r in &self.metrics {
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pods() -> Vec<RunningPod> {
        vec![
            RunningPod::new("apps", "web", &["app", "sidecar"]),
            RunningPod::new("kube-system", "coredns-1", &["coredns"]),
        ]
    }

    #[test]
    fn honor_labels_false_reads_exported_namespace() {
        let series = [
            labels(&[
                ("namespace", "kube-system"),
                ("exported_namespace", "apps"),
                ("pod", "web"),
                ("container", "app"),
            ]),
            labels(&[
                ("namespace", "kube-system"),
                ("exported_namespace", "apps"),
                ("pod", "web"),
                ("container", "sidecar"),
            ]),
            labels(&[
                ("namespace", "kube-system"),
                ("exported_namespace", "kube-system"),
                ("pod", "coredns-1"),
                ("container", "coredns"),
            ]),
        ];
        let r = evaluate(&pods(), &series);
        assert!(r.is_complete(), "{r}");
        assert_eq!(
            (
                r.pods_covered,
                r.pods_total,
                r.containers_covered,
                r.containers_total
            ),
            (2, 2, 3, 3)
        );
        assert_eq!(r.namespace_label, NamespaceLabel::ExportedNamespace);
    }

    #[test]
    fn honor_labels_false_does_not_count_the_target_namespace_as_the_pods() {
        // Without exported_namespace handling, `namespace=kube-system` would wrongly match nothing
        // here — and a pod named like a kube-system pod would be matched wrongly. Make sure the
        // series for apps/web is not credited to kube-system/web.
        let pods = vec![RunningPod::new("kube-system", "web", &["app"])];
        let series = [labels(&[
            ("namespace", "kube-system"),
            ("exported_namespace", "apps"),
            ("pod", "web"),
            ("container", "app"),
        ])];
        let r = evaluate(&pods, &series);
        assert!(!r.is_complete());
    }

    #[test]
    fn honor_labels_true_reads_namespace() {
        let series = [
            labels(&[("namespace", "apps"), ("pod", "web"), ("container", "app")]),
            labels(&[
                ("namespace", "apps"),
                ("pod", "web"),
                ("container", "sidecar"),
            ]),
            labels(&[
                ("namespace", "kube-system"),
                ("pod", "coredns-1"),
                ("container", "coredns"),
            ]),
        ];
        let r = evaluate(&pods(), &series);
        assert!(r.is_complete());
        assert_eq!(r.namespace_label, NamespaceLabel::Namespace);
    }

    #[test]
    fn pod_level_and_pause_rows_never_count() {
        let series = [
            // pod-level cgroup row: no container label (Prometheus drops empty labels)
            labels(&[("namespace", "apps"), ("pod", "web")]),
            labels(&[("namespace", "apps"), ("pod", "web"), ("container", "")]),
            // dockershim pause row
            labels(&[("namespace", "apps"), ("pod", "web"), ("container", "POD")]),
            labels(&[
                ("namespace", "apps"),
                ("pod_name", "web"),
                ("container_name", "POD"),
            ]),
            labels(&[("namespace", "apps"), ("pod", "web"), ("container", "app")]),
        ];
        let r = evaluate(&pods(), &series);
        let web = r.missing.iter().find(|m| m.name == "web").unwrap();
        assert_eq!(web.missing_containers, vec!["sidecar"]);
        assert!(!web.no_series_at_all);
        let dns = r.missing.iter().find(|m| m.name == "coredns-1").unwrap();
        assert!(dns.no_series_at_all);
        assert_eq!(r.pods_covered, 0);
        assert_eq!(r.containers_covered, 1);
    }

    #[test]
    fn legacy_pod_name_and_container_name_labels_count() {
        let series = [
            labels(&[
                ("namespace", "apps"),
                ("pod_name", "web"),
                ("container_name", "app"),
            ]),
            // 1.14/1.15 emit both spellings on one series
            labels(&[
                ("namespace", "apps"),
                ("pod", "web"),
                ("pod_name", "web"),
                ("container", "sidecar"),
                ("container_name", "sidecar"),
            ]),
        ];
        let r = evaluate(&pods(), &series);
        assert!(r.missing.iter().all(|m| m.name != "web"), "{r}");
    }

    #[test]
    fn duplicate_series_do_not_inflate_counts() {
        let row = labels(&[("namespace", "apps"), ("pod", "web"), ("container", "app")]);
        let series = [row.clone(), row.clone(), row];
        let r = evaluate(&pods(), &series);
        assert_eq!(r.containers_covered, 1);
    }

    #[test]
    fn missing_pods_are_listed_by_name_sorted_with_node() {
        let mut p = pods();
        p[0].node = Some("kind-worker".into());
        let r = evaluate(&p, &[]);
        assert_eq!(r.namespace_label, NamespaceLabel::Unknown);
        let names: Vec<_> = r
            .missing
            .iter()
            .map(|m| format!("{}/{}", m.namespace, m.name))
            .collect();
        assert_eq!(names, vec!["apps/web", "kube-system/coredns-1"]);
        let text = r.to_string();
        assert!(
            text.contains("NOT covered: 0/2 pods, 0/3 containers"),
            "{text}"
        );
        assert!(
            text.contains(
                "apps/web on node kind-worker: no series for any container (app, sidecar)"
            ),
            "{text}"
        );
    }

    #[test]
    fn mixed_namespace_labels_are_reported() {
        let series = [
            labels(&[
                ("exported_namespace", "apps"),
                ("namespace", "kube-system"),
                ("pod", "web"),
                ("container", "app"),
            ]),
            labels(&[
                ("namespace", "apps"),
                ("pod", "web"),
                ("container", "sidecar"),
            ]),
        ];
        assert_eq!(
            evaluate(&pods(), &series).namespace_label,
            NamespaceLabel::Mixed
        );
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = evaluate(&pods(), &[]);
        let json = r.to_json();
        assert_eq!(json["namespace_label"], "unknown");
        assert_eq!(json["missing"][0]["name"], "web");
        let back: CoverageReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_queries_aggregate_and_filter_pause_and_pod_rows() {
        let [modern, legacy] = coverage_queries();
        assert!(modern.starts_with("count by (namespace, exported_namespace, pod, container)"));
        assert!(modern
            .contains(r#"container_cpu_usage_seconds_total{container!="", container!="POD"}"#));
        assert!(legacy
            .starts_with("count by (namespace, exported_namespace, pod_name, container_name)"));
        assert!(legacy.contains(r#"{container_name!="", container_name!="POD"}"#));
    }

    #[test]
    fn default_deadline_is_a_few_scrape_intervals() {
        let o = WaitOptions::for_scrape_interval(Duration::from_secs(10));
        assert_eq!(o.deadline, Duration::from_secs(45));
        assert_eq!(o.poll_interval, Duration::from_secs(5));
        let o = WaitOptions::for_scrape_interval(Duration::from_secs(1));
        assert_eq!(o.poll_interval, Duration::from_millis(500));
    }

    #[test]
    fn an_answer_body_decodes_to_the_same_verdict_as_label_maps() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"container":"app","endpoint":"https-metrics","exported_namespace":"apps","namespace":"kube-system","pod":"web"},"value":[1700000000.5,"2"]},
            {"metric":{"container":"POD","exported_namespace":"apps","namespace":"kube-system","pod":"web"},"value":[1700000000.5,"1"]},
            {"metric":{"exported_namespace":"apps","namespace":"kube-system","pod":"web"},"value":[1700000000.5,"1"]},
            {"metric":{"container":"coredns","exported_namespace":"kube-system","namespace":"kube-system","pod":"coredns-1"},"value":[1700000000.5,"1"]}
        ]},"warnings":["PromQL info: a warning"]}"#;
        let (seen, warnings) = Seen::decode(200, body).unwrap();
        assert_eq!(warnings, ["PromQL info: a warning"]);
        let report = evaluate_seen(&pods(), &seen);
        let decoded = crate::prometheus::decode_envelope::<serde_json::Value>(200, body, "t")
            .unwrap()
            .0;
        let maps: Vec<BTreeMap<String, String>> = decoded["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| serde_json::from_value(s["metric"].clone()).unwrap())
            .collect();
        assert_eq!(report, evaluate(&pods(), &maps));
        assert_eq!(report.missing.len(), 1);
        assert_eq!(report.missing[0].missing_containers, ["sidecar"]);
        assert!(!report.missing[0].no_series_at_all);
        assert_eq!(report.namespace_label, NamespaceLabel::ExportedNamespace);
    }

    #[test]
    fn legacy_labels_decode_and_merge() {
        let modern = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"namespace":"apps","pod":"web","container":"app"},"value":[1,"1"]}]}}"#;
        let legacy = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"namespace":"apps","pod_name":"web","container_name":"sidecar"},"value":[1,"1"]},
            {"metric":{"namespace":"kube-system","pod_name":"coredns-1","container_name":"coredns"},"value":[1,"1"]}]}}"#;
        let (mut seen, _) = Seen::decode(200, modern).unwrap();
        seen.merge(Seen::decode(200, legacy).unwrap().0);
        let report = evaluate_seen(&pods(), &seen);
        assert!(report.is_complete(), "{report}");
        assert_eq!(report.namespace_label, NamespaceLabel::Namespace);
    }

    #[test]
    fn answers_that_are_not_an_instant_vector_are_errors() {
        let api_error = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        match Seen::decode(400, api_error) {
            Err(PromError::Api { error_type, .. }) => assert_eq!(error_type, "bad_data"),
            other => panic!("{other:?}"),
        }
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#;
        let err = Seen::decode(200, scalar).unwrap_err().to_string();
        assert!(err.contains("expected an instant vector"), "{err}");
        match Seen::decode(502, b"<html>bad gateway</html>") {
            Err(PromError::Http { status: 502, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn metric_names_follow_the_data_model() {
        for ok in [CPU_METRIC, MEMORY_METRIC, "_x", ":recording:rule", "a1"] {
            assert_eq!(MetricName::new(ok).unwrap().as_str(), ok);
        }
        assert_eq!(MetricName::new(""), Err(MetricNameError::Empty));
        for (bad, found, position) in [
            ("1abc", '1', 0),
            ("container-cpu", '-', 9),
            ("cpu{container=\"x\"}", '{', 3),
            ("mé", 'é', 1),
            ("a b", ' ', 1),
        ] {
            let err = MetricName::new(bad).unwrap_err();
            assert_eq!(
                err,
                MetricNameError::Invalid {
                    name: bad.into(),
                    found,
                    position
                }
            );
            let text = err.to_string();
            assert!(text.contains("[a-zA-Z_:][a-zA-Z0-9_:]*"), "{text}");
            assert!(text.contains(&format!("{bad:?}")), "{text}");
        }
        // Deserialising checks too (matrix cells, coverage.json).
        assert!(serde_json::from_str::<MetricName>(r#""bad-name""#).is_err());
        assert_eq!(
            MetricName::defaults()
                .iter()
                .map(MetricName::as_str)
                .collect::<Vec<_>>(),
            DEFAULT_METRICS
        );
    }

    #[test]
    fn metric_lists_parse_trim_and_dedupe() {
        let l = MetricName::parse_list(" a , b,a").unwrap();
        assert_eq!(
            l,
            [MetricName::new("a").unwrap(), MetricName::new("b").unwrap()]
        );
        assert_eq!(MetricName::parse_list(""), Err(MetricNameError::Empty));
        assert!(MetricName::parse_list("a,,b").is_err());
        assert!(MetricName::parse_list("a,b-c").is_err());
    }

    #[test]
    fn the_queries_are_parameterised_by_metric() {
        let m = MetricName::new(MEMORY_METRIC).unwrap();
        let [modern, legacy] = metric_queries(&m);
        assert!(modern
            .contains(r#"container_memory_working_set_bytes{container!="", container!="POD"}"#));
        assert!(legacy.contains(
            r#"container_memory_working_set_bytes{container_name!="", container_name!="POD"}"#
        ));
        assert_eq!(coverage_queries(), metric_queries(&MetricName::cpu()));
        let r = evaluate_for(&m, &pods(), &[]);
        assert_eq!(r.metric, MEMORY_METRIC);
    }

    /// Prometheus as a script: answers each coverage query from per-metric rows, so the poll
    /// loop's requests can be counted without a network.
    struct PerMetric {
        rows: BTreeMap<&'static str, &'static str>,
        queries: std::sync::Mutex<Vec<String>>,
    }

    impl crate::prometheus::Transport for PerMetric {
        fn get<'a>(
            &'a self,
            path: &'a str,
        ) -> futures::future::BoxFuture<
            'a,
            Result<crate::prometheus::HttpResponse, crate::prometheus::TransportError>,
        > {
            self.queries.lock().unwrap().push(path.to_string());
            // Only the modern query gets rows; the legacy one (pod_name) answers empty.
            let legacy = path.contains("pod_name");
            let rows = self
                .rows
                .iter()
                .find(|(m, _)| path.contains(*m))
                .filter(|_| !legacy)
                .map(|(_, r)| *r)
                .unwrap_or("");
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{rows}]}}}}"#
            );
            Box::pin(async move {
                Ok(crate::prometheus::HttpResponse {
                    status: 200,
                    body: body.into(),
                })
            })
        }
        fn describe(&self) -> String {
            "per-metric script".into()
        }
    }

    const ALL: &str = r#"{"metric":{"namespace":"apps","pod":"web","container":"app"},"value":[1,"1"]},
        {"metric":{"namespace":"apps","pod":"web","container":"sidecar"},"value":[1,"1"]},
        {"metric":{"namespace":"kube-system","pod":"coredns-1","container":"coredns"},"value":[1,"1"]}"#;
    const NO_SIDECAR: &str = r#"{"metric":{"namespace":"apps","pod":"web","container":"app"},"value":[1,"1"]},
        {"metric":{"namespace":"kube-system","pod":"coredns-1","container":"coredns"},"value":[1,"1"]}"#;

    fn scripted(
        rows: &[(&'static str, &'static str)],
    ) -> (std::sync::Arc<PerMetric>, PrometheusClient) {
        let t = std::sync::Arc::new(PerMetric {
            rows: rows.iter().copied().collect(),
            queries: Default::default(),
        });
        (t.clone(), PrometheusClient::with_transport(t))
    }

    #[tokio::test]
    async fn each_metric_is_reported_and_costs_two_requests_per_poll() {
        let (t, client) = scripted(&[(CPU_METRIC, ALL), (MEMORY_METRIC, NO_SIDECAR)]);
        let opts = WaitOptions {
            deadline: Duration::from_millis(350),
            poll_interval: Duration::from_millis(100),
        };
        let mut seen_polls = Vec::new();
        let report = check_metrics(
            &client,
            &pods(),
            &MetricName::defaults(),
            &opts,
            &mut |r: &MetricsReport| seen_polls.push((r.polls, r.requests)),
        )
        .await
        .unwrap();
        assert!(!report.is_complete(), "{report}");
        assert_eq!(report.metric_names(), DEFAULT_METRICS);
        assert!(report.get(CPU_METRIC).unwrap().is_complete());
        let mem = report.get(MEMORY_METRIC).unwrap();
        assert_eq!(mem.missing.len(), 1);
        assert_eq!(mem.missing[0].name, "web");
        assert_eq!(mem.missing[0].missing_containers, ["sidecar"]);
        let incomplete: Vec<_> = report.incomplete().map(|r| r.metric.as_str()).collect();
        assert_eq!(incomplete, [MEMORY_METRIC]);
        // Constant cost: 2 requests per metric per poll, counted by the client.
        assert!(report.polls >= 2, "{report}");
        assert_eq!(report.requests, 4 * report.polls as u64);
        assert_eq!(client.request_count(), report.requests);
        assert_eq!(t.queries.lock().unwrap().len() as u64, report.requests);
        for r in &report.metrics {
            assert_eq!(
                r.requests, 2,
                "{} sent per poll for {}",
                r.requests, r.metric
            );
            assert_eq!(r.polls, report.polls);
        }
        for (i, (polls, requests)) in seen_polls.iter().enumerate() {
            assert_eq!((*polls, *requests), (i as u32 + 1, 4 * (i as u64 + 1)));
        }
        // The cost does not grow with the pods.
        let many: Vec<RunningPod> = (0..500)
            .map(|i| RunningPod::new("apps", &format!("p{i}"), &["a", "b"]))
            .collect();
        let (_, client) = scripted(&[(CPU_METRIC, ALL), (MEMORY_METRIC, ALL)]);
        let one = WaitOptions {
            deadline: Duration::from_millis(10),
            poll_interval: Duration::from_millis(100),
        };
        let r = check_metrics(&client, &many, &MetricName::defaults(), &one, &mut |_| {})
            .await
            .unwrap();
        assert_eq!((r.polls, r.requests), (1, 4));
    }

    #[tokio::test]
    async fn all_metrics_covered_stops_at_the_first_poll_and_duplicates_are_checked_once() {
        let (_, client) = scripted(&[(CPU_METRIC, ALL), (MEMORY_METRIC, ALL)]);
        let opts = WaitOptions {
            deadline: Duration::from_secs(10),
            poll_interval: Duration::from_secs(5),
        };
        let metrics = [
            MetricName::cpu(),
            MetricName::new(MEMORY_METRIC).unwrap(),
            MetricName::cpu(),
        ];
        let report = check_metrics(&client, &pods(), &metrics, &opts, &mut |_| {})
            .await
            .unwrap();
        assert!(report.is_complete(), "{report}");
        assert_eq!((report.polls, report.requests), (1, 4));
        assert_eq!(report.metrics.len(), 2);
        // The single-metric check is the CPU one, two requests.
        let cpu = check(&client, &pods(), &opts, &mut |_| {}).await.unwrap();
        assert_eq!((cpu.metric.as_str(), cpu.requests), (CPU_METRIC, 2));
    }

    #[test]
    fn a_metrics_report_renders_per_metric_and_round_trips() {
        let cpu = evaluate(&pods(), &[]);
        let mut mem = evaluate_for(&MetricName::new(MEMORY_METRIC).unwrap(), &pods(), &[]);
        mem.missing.truncate(1);
        let report = MetricsReport {
            metrics: vec![cpu, mem],
            waited_ms: 1500,
            deadline_ms: 45000,
            polls: 2,
            requests: 8,
        };
        let text = report.to_string();
        assert!(
            text.starts_with("NOT covered: 0/2 metrics have a series for every running container (1.5s, 2 polls, 8 requests)"),
            "{text}"
        );
        assert!(
            text.contains("containers have container_cpu_usage_seconds_total"),
            "{text}"
        );
        assert!(
            text.contains("containers have container_memory_working_set_bytes"),
            "{text}"
        );
        let json = report.to_json();
        assert_eq!(json["metrics"][1]["metric"], MEMORY_METRIC);
        let back: MetricsReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
        assert!(!MetricsReport::from(evaluate(&[], &[])).metrics.is_empty());
        let empty = MetricsReport {
            metrics: vec![],
            waited_ms: 0,
            deadline_ms: 0,
            polls: 0,
            requests: 0,
        };
        assert!(!empty.is_complete(), "nothing checked is not covered");
    }
}
