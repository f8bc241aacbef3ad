//! Whether a ServiceMonitor's `metricRelabelings` remove the series of the containers the
//! coverage check misses: their series as the kubelet exposes them (a captured
//! `/metrics/cadvisor` body, [`crate::relabel::exposition_series`]) go through the job the
//! operator generates ([`crate::operator::scrape_config::compiled_job`]); a rule that drops every series of a missing
//! container, or strips the labels the check reads, is the cause, quoted.

use super::{catalogue, Finding};
use crate::coverage::MissingPod;
use crate::operator::scrape_config::{compiled_job, ServiceMonitorSpec};
use crate::relabel::{Labels, Outcome, RelabelError, ScrapeJob};
use std::collections::BTreeMap;

/// At most this many containers are listed per rule.
const MAX_LISTED: usize = 10;

/// What became of one missing container's series.
#[derive(Default)]
struct Fate {
    series: usize,
    /// Still counted by the coverage check after the scrape.
    kept: usize,
    /// metric_relabel_configs index → series it removed.
    removed_by: BTreeMap<usize, usize>,
}

/// How a rule removed a series.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum How {
    Dropped,
    /// Kept, but without the pod/container/namespace labels the coverage check reads.
    Unlabelled,
}

/// The `metric-relabel-drops` finding, when the job `spec` generates removes every captured
/// series of at least one missing container through its `metric_relabel_configs`.
///
/// `target` are the kubelet target's labels (as [`ScrapeJob::target`] gives them or
/// `/api/v1/targets` shows them); `series` the raw series of the capture (other pods' series are
/// skipped). The evidence quotes each rule with its ServiceMonitor path and names the pods.
///
/// # Errors
///
/// A relabeling of `spec` Prometheus would refuse to load (a spec parsed by
/// [`crate::operator::scrape_config::specs_from_servicemonitor`] never has one).
pub fn metric_relabel_drops<I>(
    spec: &ServiceMonitorSpec,
    target: &Labels,
    missing: &[MissingPod],
    series: I,
) -> Result<Option<Finding>, RelabelError>
where
    I: IntoIterator<Item = Labels>,
{
    let job = compiled_job(spec)?;
    let mut fates: BTreeMap<(String, String, String), Fate> = BTreeMap::new();
    let mut how_by_rule: BTreeMap<usize, How> = BTreeMap::new();
    let mut metric = None;
    for s in series {
        let Some(key) = identity(&s) else { continue };
        let wanted = missing.iter().any(|p| {
            p.namespace == key.0 && p.name == key.1 && p.missing_containers.contains(&key.2)
        });
        if !wanted {
            continue;
        }
        metric = metric.or_else(|| s.get("__name__").cloned());
        let fate = fates.entry(key.clone()).or_default();
        fate.series += 1;
        match trace(&job, target, &s, &key) {
            None => fate.kept += 1,
            Some((rule, how)) => {
                *fate.removed_by.entry(rule).or_default() += 1;
                let h = how_by_rule.entry(rule).or_insert(how);
                *h = (*h).min(how);
            }
        }
    }
    // A container counts as explained only when no captured series of it survives.
    let mut by_rule: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut explained = 0;
    for ((ns, pod, container), fate) in &fates {
        if fate.kept > 0 || fate.removed_by.is_empty() {
            continue;
        }
        explained += 1;
        for (rule, n) in &fate.removed_by {
            by_rule.entry(*rule).or_default().push(format!(
                "{ns}/{pod}: container {container} ({n} of {} series)",
                fate.series
            ));
        }
    }
    if explained == 0 {
        return Ok(None);
    }
    let metric = metric.unwrap_or_else(|| crate::coverage::CPU_METRIC.to_string());
    let at = |i: usize| {
        format!(
            "spec.endpoints[{}].metricRelabelings[{i}]",
            spec.endpoint_index
        )
    };
    let mut evidence = Vec::new();
    let mut rules = Vec::new();
    for (i, lines) in &by_rule {
        let rule = job.metric_relabel_configs[*i].quoted();
        let verb = match how_by_rule[i] {
            How::Dropped => "drops",
            How::Unlabelled => "strips the pod/container/namespace labels of",
        };
        evidence.push(format!(
            "{} (metric_relabel_configs[{i}] of job {}): {rule} {verb} the series of:",
            at(*i),
            spec.job_name()
        ));
        let listed = lines.len().min(MAX_LISTED);
        evidence.extend(lines[..listed].iter().map(|l| format!("  {l}")));
        if lines.len() > listed {
            evidence.push(format!("  … and {} more", lines.len() - listed));
        }
        rules.push(format!("{} ({rule})", at(*i)));
    }
    let unexplained: usize = missing
        .iter()
        .map(|p| p.missing_containers.len())
        .sum::<usize>()
        - explained;
    if unexplained > 0 {
        evidence.push(format!(
            "{unexplained} other missing containers are not explained by metricRelabelings \
             (no series of theirs in the capture, or some survive the rules)"
        ));
    }
    let pods: std::collections::BTreeSet<_> = fates
        .iter()
        .filter(|(_, f)| f.kept == 0 && !f.removed_by.is_empty())
        .map(|((ns, pod, _), _)| (ns, pod))
        .collect();
    let mut finding = Finding::new(
        &catalogue::METRIC_RELABEL_DROPS,
        format!(
            "metricRelabelings of ServiceMonitor {}/{} remove every {metric} series of {explained} \
             missing containers in {} pods",
            spec.namespace,
            spec.name,
            pods.len()
        ),
        evidence,
    );
    finding.cause =
        format!(
        "the kubelet exposes these series, but {} {} them after the scrape, so Prometheus never \
         stores them where the check looks",
        rules.join(" and "),
        if rules.len() == 1 { "removes" } else { "remove" },
    );
    finding.fix = format!(
        "change or remove {} in ServiceMonitor {}/{} so the rule no longer matches these \
         containers' series, then wait for the config reloader and one scrape interval",
        by_rule
            .keys()
            .map(|i| at(*i))
            .collect::<Vec<_>>()
            .join(", "),
        spec.namespace,
        spec.name
    );
    Ok(Some(finding))
}

/// (namespace, pod, container) of a raw cadvisor series (kubelets before 1.16 say
/// `pod_name`/`container_name`); `None` for pod-level and machine rows.
fn identity(s: &Labels) -> Option<(String, String, String)> {
    let get = |a: &str, b: &str| s.get(a).or_else(|| s.get(b)).filter(|v| !v.is_empty());
    Some((
        s.get("namespace").filter(|v| !v.is_empty())?.clone(),
        get("pod", "pod_name")?.clone(),
        get("container", "container_name")?.clone(),
    ))
}

/// Whether the coverage check still sees the series as this container's: it reads the pod's
/// namespace from `namespace` or `exported_namespace` (coverage.rs), and the legacy names.
fn counted(l: &Labels, (ns, pod, container): &(String, String, String)) -> bool {
    let is = |a: &str, b: &str, want: &str| {
        l.get(a).map(String::as_str) == Some(want) || l.get(b).map(String::as_str) == Some(want)
    };
    is("namespace", "exported_namespace", ns)
        && is("pod", "pod_name", pod)
        && is("container", "container_name", container)
}

/// The metric_relabel_configs index that removed the series and how; `None` when it survives.
fn trace(
    job: &ScrapeJob,
    target: &Labels,
    series: &Labels,
    key: &(String, String, String),
) -> Option<(usize, How)> {
    let merged = job.merge_target(target, series);
    if !counted(&merged, key) {
        // The target itself hides it (not a metricRelabelings matter).
        return None;
    }
    match crate::relabel::process(merged.clone(), &job.metric_relabel_configs) {
        Outcome::Dropped { rule_index, .. } => Some((rule_index, How::Dropped)),
        Outcome::Kept(out) if counted(&out, key) => None,
        Outcome::Kept(_) => {
            // The first rule after which the check no longer sees it.
            let mut l = merged;
            for (i, r) in job.metric_relabel_configs.iter().enumerate() {
                l = r.apply(l)?;
                if !counted(&l, key) {
                    return Some((i, How::Unlabelled));
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests;
