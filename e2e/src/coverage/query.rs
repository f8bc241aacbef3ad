//! The PromQL the check sends: two aggregated queries per metric, whatever the number of pods.

use super::metric::MetricName;
use crate::prometheus::{PromError, PrometheusClient, QueryResult};

/// The queries the check sends per poll for `metric`, whatever the number of pods: one for
/// today's label names, one for kubelets before 1.16 (`pod_name`/`container_name`).
///
/// `count by` collapses duplicate series (a second cgroup `id` on cgroup-v1 kind hosts, several
/// `cpu` rows) to one row per (namespace, pod, container). Pod-level cgroup rows and containerd
/// pause rows have no `container` label at all; Docker's pause rows say `POD`: both are filtered
/// here (memory rows have the same label sets as CPU rows, without `cpu`: the real captures).
/// Two queries rather than one `or`: measured on 40k series, the `or` costs Prometheus
/// more than a second request does (the legacy selector matches nothing on modern kubelets).
///
/// The four labels are asked for as they are. Folding them into one with `label_join` makes the
/// answer 40 % smaller, but measured at 50,000 pods it costs Prometheus about 10 % more time
/// than the check saves reading the smaller answer (docs/benchmark.md).
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

/// [`metric_queries`] for [`super::CPU_METRIC`].
pub fn coverage_queries() -> [String; 2] {
    metric_queries(&MetricName::cpu())
}

/// The (namespace, pod, container) a series belongs to, and whether the namespace came from
/// `exported_namespace`; `None` for rows that never count as coverage. The container
/// (`container`, else `container_name`) must be set and not `POD` (pod-level cgroups, pause
/// containers), the pod (`pod`, else `pod_name`) set, and the namespace is `exported_namespace`
/// when set (with `honor_labels: false` a scraped `namespace` that clashes with the target's is
/// renamed), else `namespace`. Empty values count as unset, as in Prometheus.
pub(crate) fn series_key<'a>(labels: &SeriesLabels<'a>) -> Option<SeriesKey<'a>> {
    let set = |v: Option<&'a [u8]>| v.filter(|v| !v.is_empty());
    let container = set(labels.container).or(set(labels.container_name))?;
    if container == b"POD" {
        return None;
    }
    let pod = set(labels.pod).or(set(labels.pod_name))?;
    match set(labels.exported_namespace) {
        Some(ns) => Some((ns, pod, container, true)),
        None => Some((set(labels.namespace)?, pod, container, false)),
    }
}

/// (namespace, pod, container, namespace came from `exported_namespace`), as bytes of the
/// answer: label values are compared, never printed, on the check's path.
pub(crate) type SeriesKey<'a> = (&'a [u8], &'a [u8], &'a [u8], bool);

/// The six labels [`series_key`] reads, as they came.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SeriesLabels<'a> {
    pub namespace: Option<&'a [u8]>,
    pub exported_namespace: Option<&'a [u8]>,
    pub pod: Option<&'a [u8]>,
    pub pod_name: Option<&'a [u8]>,
    pub container: Option<&'a [u8]>,
    pub container_name: Option<&'a [u8]>,
}

impl<'a> SeriesLabels<'a> {
    /// The slot for the label `name`, if [`series_key`] reads it.
    pub fn slot(&mut self, name: &[u8]) -> Option<&mut Option<&'a [u8]>> {
        Some(match name {
            b"namespace" => &mut self.namespace,
            b"exported_namespace" => &mut self.exported_namespace,
            b"pod" => &mut self.pod,
            b"pod_name" => &mut self.pod_name,
            b"container" => &mut self.container,
            b"container_name" => &mut self.container_name,
            _ => return None,
        })
    }
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

/// [`fetch_metric_series`] for [`super::CPU_METRIC`].
///
/// # Errors
/// As [`fetch_metric_series`].
pub async fn fetch_series(client: &PrometheusClient) -> Result<QueryResult, PromError> {
    fetch_metric_series(client, &MetricName::cpu()).await
}
