//! The pure part: the pod list indexed once per check ([`PodIndex`]), and each answer folded
//! into a [`Tally`] as it is read, nothing kept per series.

use super::answer::scan_compact;
use super::metric::MetricName;
use super::query::{series_key, SeriesLabels};
use super::report::{CoverageReport, MissingPod, NamespaceLabel};
use crate::pods::RunningPod;
use crate::prometheus::PromError;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// The running pods the check expects, indexed by (namespace, pod): built once per check, while
/// Prometheus computes the first answer, so reading an answer is one lookup per series and
/// nothing is inserted after it arrives.
///
/// Laid out for the lookup, which runs 100,000 times at 50,000 pods while a 13.5 MB answer
/// streams through the cache: a small table from a hash of (namespace, pod) to a record, and
/// each pod's record (where its slots start, its namespace, name and container names) in one
/// place in one buffer. Following the pod list's own strings instead cost about six cache
/// misses per series and made reading the answer twice as slow at 50,000 pods as at 10,000.
#[derive(Debug)]
pub struct PodIndex<'p> {
    pods: &'p [RunningPod],
    // FxHash: SipHash's DoS resistance buys nothing for our own pod list.
    /// Hash of (namespace, pod) → offset of the first record with that hash in `records`.
    by_hash: FxHashMap<u64, u32>,
    /// Per pod, in list order: next record with the same hash (offset, or `NONE`), the pod's
    /// index, its first slot, the lengths of its namespace, name and container names, then
    /// their bytes (each container name length-prefixed). Slots number every listed container
    /// in list order.
    records: Vec<u8>,
    containers: usize,
}

const NONE: u32 = u32::MAX;
/// A record's fixed part: next, pod, first slot, and the three lengths, `u32` each.
const HEADER: usize = 24;

/// The hash [`PodIndex`] files a pod under; the same bytes from the answer give the same hash.
fn pod_hash(namespace: &[u8], pod: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(namespace);
    h.write_u8(0xff);
    h.write(pod);
    h.finish()
}

/// Reads a [`PodIndex`] record.
struct Record<'r> {
    next: u32,
    pod: u32,
    first_slot: u32,
    namespace: &'r [u8],
    name: &'r [u8],
    /// Length-prefixed container names.
    containers: &'r [u8],
}

impl<'r> Record<'r> {
    fn at(records: &'r [u8], offset: u32) -> Record<'r> {
        let r = &records[offset as usize..];
        let u32_at = |i: usize| u32::from_le_bytes(r[i..i + 4].try_into().expect("4 bytes"));
        let len_at = |i: usize| u32_at(i) as usize;
        let (ns_len, name_len, containers_len) = (len_at(12), len_at(16), len_at(20));
        let ns_start = HEADER;
        let name_start = ns_start + ns_len;
        let containers_start = name_start + name_len;
        Record {
            next: u32_at(0),
            pod: u32_at(4),
            first_slot: u32_at(8),
            namespace: &r[ns_start..name_start],
            name: &r[name_start..containers_start],
            containers: &r[containers_start..containers_start + containers_len],
        }
    }

    /// The positions of `container` among the pod's containers (one, in a pod from the API).
    fn positions(&self, container: &'r [u8]) -> impl Iterator<Item = usize> + 'r {
        let mut rest = self.containers;
        let mut j = 0;
        std::iter::from_fn(move || {
            while let [a, b, c, d, tail @ ..] = rest {
                let len = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
                let (name, after) = tail.split_at(len);
                rest = after;
                j += 1;
                if name == container {
                    return Some(j - 1);
                }
            }
            None
        })
    }
}

impl<'p> PodIndex<'p> {
    /// Indexes `pods`.
    ///
    /// # Panics
    /// With 2³² containers or more, or 4 GiB of names: offsets are `u32`, which keeps the index
    /// small.
    pub fn new(pods: &'p [RunningPod]) -> Self {
        let len32 = |n: usize| {
            u32::try_from(n)
                .expect("an index under 4 GiB")
                .to_le_bytes()
        };
        let mut by_hash: FxHashMap<u64, u32> =
            FxHashMap::with_capacity_and_hasher(pods.len(), Default::default());
        let bytes: usize = pods
            .iter()
            .map(|p| {
                HEADER
                    + p.namespace.len()
                    + p.name.len()
                    + p.containers.iter().map(|c| 4 + c.len()).sum::<usize>()
            })
            .sum();
        let mut records = Vec::with_capacity(bytes);
        let mut slot = 0u32;
        for (i, pod) in pods.iter().enumerate() {
            let offset = u32::try_from(records.len()).expect("an index under 4 GiB");
            let (ns, name) = (pod.namespace.as_bytes(), pod.name.as_bytes());
            // Chained in list order: the first pod of a hash keeps the table's entry.
            let next = match by_hash.entry(pod_hash(ns, name)) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(offset);
                    NONE
                }
                std::collections::hash_map::Entry::Occupied(mut o) => o.insert(offset),
            };
            let containers_len: usize = pod.containers.iter().map(|c| 4 + c.len()).sum();
            records.extend_from_slice(&next.to_le_bytes());
            records.extend_from_slice(
                &u32::try_from(i)
                    .expect("fewer than 2^32 pods")
                    .to_le_bytes(),
            );
            records.extend_from_slice(&slot.to_le_bytes());
            records.extend_from_slice(&len32(ns.len()));
            records.extend_from_slice(&len32(name.len()));
            records.extend_from_slice(&len32(containers_len));
            records.extend_from_slice(ns);
            records.extend_from_slice(name);
            for c in &pod.containers {
                records.extend_from_slice(&len32(c.len()));
                records.extend_from_slice(c.as_bytes());
            }
            slot = u32::try_from(pod.containers.len())
                .ok()
                .and_then(|n| slot.checked_add(n))
                .expect("fewer than 2^32 containers");
        }
        PodIndex {
            pods,
            by_hash,
            records,
            containers: slot as usize,
        }
    }

    /// The pods indexed.
    pub fn pods(&self) -> &'p [RunningPod] {
        self.pods
    }

    /// Every listed pod named (`namespace`, `pod`): usually one.
    fn find<'s>(&'s self, namespace: &'s [u8], pod: &'s [u8]) -> impl Iterator<Item = Record<'s>> {
        let mut offset = self
            .by_hash
            .get(&pod_hash(namespace, pod))
            .copied()
            .unwrap_or(NONE);
        std::iter::from_fn(move || {
            while offset != NONE {
                let record = Record::at(&self.records, offset);
                offset = record.next;
                if record.namespace == namespace && record.name == pod {
                    return Some(record);
                }
            }
            None
        })
    }
}

/// One poll's answers for one metric against a [`PodIndex`]: which listed containers have a
/// series, marked as each series is read. Marking is idempotent: reading a series twice changes
/// nothing (see [`super::reads_compact`]).
#[derive(Debug)]
pub struct Tally<'i> {
    index: &'i PodIndex<'i>,
    /// By slot.
    covered: Vec<bool>,
    /// By pod: some series names this pod, whichever container.
    pod_seen: Vec<bool>,
    /// Some series had its pod's namespace in `namespace` / in `exported_namespace`.
    in_namespace: bool,
    in_exported: bool,
}

impl<'i> Tally<'i> {
    /// Nothing seen yet.
    pub fn new(index: &'i PodIndex<'i>) -> Self {
        Tally {
            index,
            covered: vec![false; index.containers],
            pod_seen: vec![false; index.pods.len()],
            in_namespace: false,
            in_exported: false,
        }
    }

    /// Marks what one series covers.
    fn add(&mut self, labels: &SeriesLabels<'_>) {
        let Some((ns, pod, container, exported)) = series_key(labels) else {
            return;
        };
        if exported {
            self.in_exported = true;
        } else {
            self.in_namespace = true;
        }
        let index = self.index;
        for record in index.find(ns, pod) {
            self.pod_seen[record.pod as usize] = true;
            for j in record.positions(container) {
                self.covered[record.first_slot as usize + j] = true;
            }
        }
    }

    /// Adds one series' labels (`namespace`, `exported_namespace`, `pod`, `container` and their
    /// pre-1.16 names; others are ignored).
    pub fn add_labels(&mut self, labels: &BTreeMap<String, String>) {
        let mut read = SeriesLabels::default();
        for (name, value) in labels {
            if let Some(slot) = read.slot(name.as_bytes()) {
                *slot = Some(value.as_bytes());
            }
        }
        self.add(&read);
    }

    /// Folds an instant-vector answer of [`super::metric_queries`] (HTTP status and body) in;
    /// returns Prometheus's warnings. Prometheus's own compact form is read in one scan
    /// ([`super::reads_compact`]); any other JSON (whitespace, escapes, warnings) is decoded as
    /// [`crate::prometheus::PrometheusClient::query`] decodes it, then added label set by label
    /// set.
    ///
    /// # Errors
    /// The same as [`crate::prometheus::PrometheusClient::query`]: the API's own error, a non-API
    /// HTTP answer, or a body that is not an instant vector.
    pub fn decode(&mut self, status: u16, body: &[u8]) -> Result<Vec<String>, PromError> {
        if status == 200 && scan_compact(body, |labels| self.add(labels)).is_some() {
            return Ok(Vec::new());
        }
        let answer = crate::prometheus::decode_vector(status, body, "coverage query")?;
        for sample in &answer.series {
            self.add_labels(&sample.metric);
        }
        Ok(answer.warnings)
    }

    /// The report for `metric`: every listed container with or without a series.
    pub fn report(&self, metric: &MetricName) -> CoverageReport {
        let index = self.index;
        let mut missing = Vec::new();
        let mut containers_covered = 0;
        let mut first = 0;
        for (i, pod) in index.pods.iter().enumerate() {
            let absent: Vec<String> = pod
                .containers
                .iter()
                .enumerate()
                .filter(|&(j, _)| !self.covered[first + j])
                .map(|(_, c)| c.clone())
                .collect();
            first += pod.containers.len();
            containers_covered += pod.containers.len() - absent.len();
            if absent.is_empty() {
                continue;
            }
            missing.push(MissingPod {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                node: pod.node.clone(),
                no_series_at_all: !self.pod_seen[i],
                missing_containers: absent,
            });
        }
        missing.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let pods = index.pods;
        CoverageReport {
            metric: metric.to_string(),
            pods_total: pods.len(),
            pods_covered: pods.len() - missing.len(),
            containers_total: index.containers,
            containers_covered,
            namespace_label: NamespaceLabel::from_seen(self.in_namespace, self.in_exported),
            missing,
            waited_ms: 0,
            deadline_ms: 0,
            polls: 0,
            requests: 0,
            warnings: Vec::new(),
        }
    }
}

/// Compares the running pods with the label sets of the CPU coverage query's answer. Pure.
pub fn evaluate<'a, I>(pods: &[RunningPod], series: I) -> CoverageReport
where
    I: IntoIterator<Item = &'a BTreeMap<String, String>>,
{
    evaluate_for(&MetricName::cpu(), pods, series)
}

/// Compares the running pods with the label sets of `metric`'s coverage queries' answer. Pure.
pub fn evaluate_for<'a, I>(metric: &MetricName, pods: &[RunningPod], series: I) -> CoverageReport
where
    I: IntoIterator<Item = &'a BTreeMap<String, String>>,
{
    let index = PodIndex::new(pods);
    let mut tally = Tally::new(&index);
    for labels in series {
        tally.add_labels(labels);
    }
    tally.report(metric)
}
