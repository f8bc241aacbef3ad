//! The pure part: an answer (decoded as it is read, keys borrowed from the body) against the
//! pod list.

use super::metric::MetricName;
use super::report::{CoverageReport, MissingPod, NamespaceLabel};
use crate::pods::RunningPod;
use crate::prometheus::PromError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

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
///
/// One hash set, sized from the answer before it is filled: growing it, and a second set of
/// (namespace, pod) keys, were most of the check's own time at 50,000 pods (the pods a missing
/// container belongs to are looked up only when some are missing).
#[derive(Debug, Default)]
pub struct Seen<'a> {
    // FxHash: SipHash's DoS resistance buys nothing for Prometheus's own answer, and hashing
    // 100,000 keys was a good part of the check's time at 50,000 pods.
    containers: rustc_hash::FxHashSet<(&'a str, &'a str, &'a str)>,
    in_namespace: usize,
    in_exported: usize,
}

/// Bytes of a `count by (namespace, exported_namespace, pod, container)` answer per series, a
/// little under what Prometheus writes (~135 with both namespace labels, ~110 without
/// `exported_namespace`): the set is sized from the body once, and grows at most once more.
const ANSWER_BYTES_PER_SERIES: usize = 128;

impl<'a> Seen<'a> {
    fn add(&mut self, key: Option<(&'a str, &'a str, &'a str, bool)>) {
        if let Some((ns, pod, container, exported)) = key {
            if exported {
                self.in_exported += 1;
            } else {
                self.in_namespace += 1;
            }
            self.containers.insert((ns, pod, container));
        }
    }

    /// The (namespace, pod) pairs that have at least one container series.
    fn pods(&self) -> rustc_hash::FxHashSet<(&'a str, &'a str)> {
        self.containers
            .iter()
            .map(|&(ns, pod, _)| (ns, pod))
            .collect()
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

    /// Decodes an instant-vector answer of [`super::coverage_queries`] (HTTP status and body) into
    /// keys that borrow from `body`; returns them with Prometheus's warnings.
    ///
    /// # Errors
    /// The same as [`crate::prometheus::PrometheusClient::query`]: the API's own error, a non-API HTTP answer, or a
    /// body that is not an instant vector.
    pub fn decode(status: u16, body: &'a [u8]) -> Result<(Self, Vec<String>), PromError> {
        BODY_LEN.with(|n| n.set(body.len()));
        let decoded = crate::prometheus::decode_envelope(status, body, "coverage query");
        BODY_LEN.with(|n| n.set(0));
        let (data, warnings): (SeenData<'a>, _) = decoded?;
        Ok((data.0, warnings))
    }

    /// Adds another answer's keys (the legacy-label query's).
    pub fn merge(&mut self, other: Seen<'a>) {
        if self.containers.is_empty() {
            self.containers = other.containers;
        } else {
            self.containers.extend(other.containers);
        }
        self.in_namespace += other.in_namespace;
        self.in_exported += other.in_exported;
    }
}

thread_local! {
    /// The length of the body [`Seen::decode`] is decoding, to size the set (serde's
    /// `Deserialize` takes no context; the decoding is synchronous, on this thread).
    static BODY_LEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
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
                        let body_len = BODY_LEN.with(std::cell::Cell::get);
                        seen.containers.reserve(body_len / ANSWER_BYTES_PER_SERIES);
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
    let mut pods_seen = None;
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
                no_series_at_all: !pods_seen
                    .get_or_insert_with(|| seen.pods())
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
