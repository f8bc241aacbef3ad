//! Links 5 and 7 of the chain: in which namespace label the pods' series are, and which running
//! containers have none (with when their node's target was last scraped).

use super::*;

/// Links 5 and 7: where the pods' namespaces are, and which running containers have no series.
pub(super) fn namespace_and_coverage(
    snap: &Snapshot,
    pods: &[RunningPod],
    jobs: &[&Job],
    targets: &[&ActiveTarget],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let exported: Vec<_> = snap
        .cpu_series
        .iter()
        .filter(|s| s.contains_key("exported_namespace"))
        .collect();
    if !exported.is_empty() {
        let mut evidence = vec![format!(
            "{} of {} series carry exported_namespace, e.g. {}",
            exported.len(),
            snap.cpu_series.len(),
            short_labels(exported[0])
        )];
        evidence.extend(
            jobs.iter()
                .filter(|j| !j.honor_labels)
                .map(|j| format!("job {:?} has honor_labels: false", j.name)),
        );
        out.push(Finding::new(
            &k::HONOR_LABELS_FALSE,
            "the pods' namespaces are in `exported_namespace`; `namespace` is `kube-system` on every series".to_string(),
            capped(evidence.into_iter()),
        ));
    }

    // The same matching as the coverage check, so diagnose and check never disagree; per
    // checked metric, each gap's line names the metric.
    let by_name: std::collections::HashMap<(&str, &str), &RunningPod> = pods
        .iter()
        .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
        .collect();
    let mut newer = Vec::new();
    let mut missing = Vec::new();
    let mut lacking: Vec<&str> = Vec::new();
    let mut missing_pods = BTreeSet::new();
    let per_metric = std::iter::once((crate::diagnose::CPU_METRIC, &snap.cpu_series)).chain(
        snap.metric_series
            .iter()
            .map(|(m, series)| (m.as_str(), series))
            // A metric without any series was reported by `absent_metrics`.
            .filter(|(_, series)| !series.is_empty()),
    );
    for (metric, series) in per_metric {
        let mut report = crate::coverage::evaluate(pods, series);
        report.metric = metric.to_string();
        if !report.is_complete() {
            lacking.push(metric);
        }
        for gap in &report.missing {
            let pod = by_name[&(gap.namespace.as_str(), gap.name.as_str())];
            let absent = &gap.missing_containers;
            let last = last_scrape_for(targets, pod.node.as_deref());
            let line = format!(
                "{}/{}{}: no {metric} series for container {}{}",
                pod.namespace,
                pod.name,
                pod.node
                    .as_deref()
                    .map(|n| format!(" (node {n})"))
                    .unwrap_or_default(),
                absent.join(", "),
                match (pod.node.as_deref(), pod.started_at, last) {
                    // Without spec.nodeName there is no node, hence no target, to blame.
                    (None, ..) =>
                        "; the pod list gives it no node (spec.nodeName is empty)".to_string(),
                    (_, Some(s), Some(l)) if s >= l =>
                        format!("; pod started {}s after the last scrape", s - l),
                    (_, Some(s), Some(l)) =>
                        format!("; pod started {}s before the last scrape", l - s),
                    (_, _, None) => "; its node has no scraped target".to_string(),
                    _ => String::new(),
                }
            );
            match (pod.started_at, last) {
                // Seconds resolution: a pod started in the scrape's second may not have been seen.
                (Some(s), Some(l)) if s >= l => newer.push(line),
                _ => {
                    missing_pods.insert((pod.namespace.as_str(), pod.name.as_str()));
                    missing.push(line)
                }
            }
        }
    }
    if !missing.is_empty() {
        out.push(Finding::new(
            &k::PODS_MISSING,
            format!(
                "{} running pods lack {} series for some containers",
                missing_pods.len(),
                lacking.join(" / ")
            ),
            capped(missing.into_iter()),
        ));
    }
    if !newer.is_empty() {
        out.push(Finding::new(
            &k::POD_NEWER_THAN_SCRAPE,
            format!(
                "{} pods started after their node's last scrape",
                newer.len()
            ),
            capped(newer.into_iter()),
        ));
    }
    out
}

/// Unix seconds of the latest successful-or-not scrape of the pod's node (or of any target when
/// the node is unknown or has no `node` label), `None` when never scraped.
pub(super) fn last_scrape_for(targets: &[&ActiveTarget], node: Option<&str>) -> Option<i64> {
    let on_node: Vec<_> = targets
        .iter()
        .filter(|t| node.is_some() && t.labels.get("node").map(String::as_str) == node)
        .collect();
    let pool: Vec<_> =
        if on_node.is_empty() && targets.iter().all(|t| !t.labels.contains_key("node")) {
            targets.iter().collect()
        } else {
            on_node
        };
    pool.iter()
        .filter_map(|t| parse_rfc3339(&t.last_scrape))
        .max()
}

pub(super) fn parse_rfc3339(s: &str) -> Option<i64> {
    let ts: k8s_openapi::jiff::Timestamp = s.parse().ok()?;
    // Prometheus reports Go's zero time before the first scrape.
    (ts.as_second() > 0).then_some(ts.as_second())
}
