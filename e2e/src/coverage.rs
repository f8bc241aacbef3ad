//! The coverage check: does every running container of every running pod have a
//! `container_cpu_usage_seconds_total` series in Prometheus?
//!
//! Two aggregated PromQL queries per poll, whatever the number of pods ([`coverage_queries`]); the
//! evaluation of its answer against the pod list is pure ([`evaluate`]); [`check`] polls until
//! every pod is covered or the deadline passes.

use crate::pods::RunningPod;
use crate::prometheus::{PromError, PrometheusClient, QueryResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

pub const CPU_METRIC: &str = "container_cpu_usage_seconds_total";

/// The queries the check sends per poll, whatever the number of pods: one for today's label
/// names, one for kubelets before 1.16 (`pod_name`/`container_name`).
///
/// `count by` collapses duplicate series (a second cgroup `id` on cgroup-v1 kind hosts, several
/// `cpu` rows) to one row per (namespace, pod, container). Pod-level cgroup rows and containerd
/// pause rows have no `container` label at all; Docker's pause rows say `POD`: both are filtered
/// here. Two queries rather than one `or`: measured on 40k series, the `or` costs Prometheus
/// more than a second request does (the legacy selector matches nothing on modern kubelets).
pub fn coverage_queries() -> [String; 2] {
    [
        format!(
            "count by (namespace, exported_namespace, pod, container) \
             ({CPU_METRIC}{{container!=\"\", container!=\"POD\"}})"
        ),
        format!(
            "count by (namespace, exported_namespace, pod_name, container_name) \
             ({CPU_METRIC}{{container_name!=\"\", container_name!=\"POD\"}})"
        ),
    ]
}

/// Runs [`coverage_queries`] and merges their answers (warnings included).
pub async fn fetch_series(client: &PrometheusClient) -> Result<QueryResult, PromError> {
    let mut merged = QueryResult::default();
    for query in coverage_queries() {
        let answer = client.query(&query).await?;
        merged.series.extend(answer.series);
        merged.warnings.extend(answer.warnings);
    }
    Ok(merged)
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

/// Compares the running pods with the label sets of the coverage query's answer. Pure.
pub fn evaluate<'a, I>(pods: &[RunningPod], series: I) -> CoverageReport
where
    I: IntoIterator<Item = &'a BTreeMap<String, String>>,
{
    evaluate_seen(pods, &Seen::from_labels(series))
}

/// Compares the running pods with the containers an answer has series for. Pure.
pub fn evaluate_seen(pods: &[RunningPod], seen: &Seen<'_>) -> CoverageReport {
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
        metric: CPU_METRIC.to_string(),
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

/// Polls Prometheus until every pod is covered or `opts.deadline` passes, calling `progress`
/// after each poll. Returns the last report either way; an error only when Prometheus cannot
/// answer the query at all (unreachable until the deadline, or an API error).
pub async fn check(
    client: &PrometheusClient,
    pods: &[RunningPod],
    opts: &WaitOptions,
    progress: &mut (dyn FnMut(&CoverageReport) + Send),
) -> Result<CoverageReport, PromError> {
    let start = Instant::now();
    let requests_before = client.request_count();
    let mut polls = 0;
    loop {
        // Retries of an unreachable Prometheus stay within the check's own deadline.
        let remaining = opts.deadline.saturating_sub(start.elapsed());
        let bounded = client
            .clone()
            .with_retry_deadline(remaining.max(Duration::from_millis(100)));
        let (mut report, warnings) = poll_once(&bounded, pods).await?;
        polls += 1;
        report.waited_ms = start.elapsed().as_millis() as u64;
        report.deadline_ms = opts.deadline.as_millis() as u64;
        report.polls = polls;
        report.requests = client.request_count() - requests_before;
        report.warnings = warnings;
        progress(&report);
        if report.is_complete() || start.elapsed() + opts.poll_interval >= opts.deadline {
            return Ok(report);
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
}

/// One poll: both queries, decoded into borrowed keys, evaluated; the bodies are dropped before
/// returning, so a poll's memory is about the size of its answers.
async fn poll_once(
    client: &PrometheusClient,
    pods: &[RunningPod],
) -> Result<(CoverageReport, Vec<String>), PromError> {
    let mut bodies = Vec::new();
    for query in coverage_queries() {
        bodies.push(client.query_response(&query).await?);
    }
    let mut seen = Seen::default();
    let mut warnings = Vec::new();
    for resp in &bodies {
        let (more, w) = Seen::decode(resp.status, &resp.body)?;
        seen.merge(more);
        warnings.extend(w);
    }
    Ok((evaluate_seen(pods, &seen), warnings))
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
}
