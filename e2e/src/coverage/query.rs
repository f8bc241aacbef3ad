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
