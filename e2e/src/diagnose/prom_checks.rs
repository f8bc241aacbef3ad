//! Prometheus-side checks (chain links 3–7), pure: they read a [`Snapshot`] of what the
//! Prometheus HTTP API answered and the running pods, and never talk to anything.

use super::catalogue::{self as k, Kind};
use super::kube_checks::CADVISOR_PATH;
use super::Finding;
use crate::pods::RunningPod;
use crate::prometheus::{ActiveTarget, Targets};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};

mod coverage;
use coverage::namespace_and_coverage;

/// Evidence lists longer than this are cut with an "… and N more" line.
const MAX_EVIDENCE: usize = 12;

/// What the Prometheus API answered, gathered once per diagnosis.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Scrape jobs of the loaded configuration.
    pub jobs: Vec<Job>,
    /// `/api/v1/targets`.
    pub targets: Targets,
    /// Label sets of the aggregated `container_cpu_usage_seconds_total` series.
    pub cpu_series: Vec<BTreeMap<String, String>>,
    /// The other checked metrics (e.g. `container_memory_working_set_bytes`), each with the label
    /// sets of its aggregated series; empty when only CPU is checked.
    pub metric_series: Vec<(String, Vec<BTreeMap<String, String>>)>,
    /// Names of `container_*` metrics and `node_cpu_seconds_total` present (fetched only when
    /// `cpu_series` is empty, to tell node-exporter from a wrong path).
    pub metric_names: BTreeSet<String>,
}

/// The parts of a scrape job the diagnosis reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `job_name`.
    pub name: String,
    /// `metrics_path`.
    pub metrics_path: String,
    /// `scheme`.
    pub scheme: String,
    /// `honor_labels`.
    pub honor_labels: bool,
}

/// Parses the `yaml` of `/api/v1/status/config` into its scrape jobs (with Prometheus's defaults).
///
/// # Errors
/// The configuration is not YAML.
pub fn parse_jobs(config_yaml: &str) -> Result<Vec<Job>> {
    let doc: crate::yaml::Value = crate::yaml::from_str(config_yaml)
        .context("Prometheus's /api/v1/status/config returned YAML that does not parse")?;
    let jobs = doc
        .get("scrape_configs")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    Ok(jobs
        .iter()
        .map(|j| {
            let s = |key: &str, default: &str| {
                j.get(key)
                    .and_then(|v| v.as_str())
                    .unwrap_or(default)
                    .to_string()
            };
            Job {
                name: s("job_name", ""),
                metrics_path: s("metrics_path", "/metrics"),
                scheme: s("scheme", "http"),
                honor_labels: j
                    .get("honor_labels")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
            }
        })
        .collect())
}

/// Which scrape jobs matter. Empty `job_prefixes` means every job (no cluster access: we cannot
/// know the ServiceMonitor's name); otherwise the jobs the operator generated for the selected
/// ServiceMonitors (`serviceMonitor/<ns>/<name>/<endpoint>`).
#[derive(Debug, Clone, Default)]
pub struct Expectation {
    /// Jobs of the selected cadvisor ServiceMonitors (`serviceMonitor/<ns>/<name>/`); empty: any cadvisor job.
    pub job_prefixes: Vec<String>,
}

/// Runs links 3–7 in order and stops after the first link that yields an error.
pub fn analyze(snap: &Snapshot, pods: &[RunningPod], expect: &Expectation) -> Vec<Finding> {
    let links: [&dyn Fn() -> Vec<Finding>; 5] = [
        &|| scrape_jobs_and_targets(snap, expect),
        &|| target_health(&relevant_targets(snap, expect)),
        &|| container_series(snap, &relevant_targets(snap, expect)),
        &|| absent_metrics(snap),
        &|| {
            let jobs = relevant_jobs(snap, expect);
            namespace_and_coverage(snap, pods, &jobs, &relevant_targets(snap, expect))
        },
    ];
    let mut out = Vec::new();
    for link in links {
        out.extend(link());
        if out.iter().any(Finding::is_error) {
            break;
        }
    }
    out
}

/// The jobs the chain looks at: the expected ones; without expectations the jobs scraping
/// `/metrics/cadvisor` when there are any (a busy Prometheus has unrelated jobs whose down
/// targets explain nothing), else every job (node-exporter or metrics-server set up by mistake).
fn relevant_jobs<'a>(snap: &'a Snapshot, expect: &Expectation) -> Vec<&'a Job> {
    if !expect.job_prefixes.is_empty() {
        let expected = |j: &&Job| {
            expect
                .job_prefixes
                .iter()
                .any(|p| j.name.starts_with(p.as_str()))
        };
        let of_selected: Vec<&Job> = snap.jobs.iter().filter(expected).collect();
        // A ServiceMonitor with other endpoints too (kube-prometheus's kubelet one scrapes
        // /metrics and /metrics/probes as well): only its cadvisor endpoints' jobs explain
        // missing container series.
        let cadvisor: Vec<&Job> = of_selected
            .iter()
            .copied()
            .filter(|j| j.metrics_path == CADVISOR_PATH)
            .collect();
        return if cadvisor.is_empty() {
            of_selected
        } else {
            cadvisor
        };
    }
    let cadvisor: Vec<&Job> = snap
        .jobs
        .iter()
        .filter(|j| j.metrics_path == CADVISOR_PATH)
        .collect();
    if cadvisor.is_empty() {
        snap.jobs.iter().collect()
    } else {
        cadvisor
    }
}

fn relevant_targets<'a>(snap: &'a Snapshot, expect: &Expectation) -> Vec<&'a ActiveTarget> {
    let jobs: BTreeSet<&str> = relevant_jobs(snap, expect)
        .iter()
        .map(|j| j.name.as_str())
        .collect();
    snap.targets
        .active
        .iter()
        .filter(|t| jobs.contains(t.scrape_pool.as_str()))
        .collect()
}

/// Link 3: a scrape job exists, and it has active targets.
fn scrape_jobs_and_targets(snap: &Snapshot, expect: &Expectation) -> Vec<Finding> {
    let jobs = relevant_jobs(snap, expect);
    let loaded: Vec<String> = snap
        .jobs
        .iter()
        .map(|j| format!("loaded job {:?} (path {})", j.name, j.metrics_path))
        .collect();
    if jobs.is_empty() {
        let observed = if expect.job_prefixes.is_empty() {
            "Prometheus's loaded configuration has no scrape jobs at all".to_string()
        } else {
            format!(
                "no scrape job named {} in Prometheus's loaded configuration",
                expect.job_prefixes.join(" or ")
            )
        };
        let evidence = if loaded.is_empty() {
            vec!["scrape_configs is empty".to_string()]
        } else {
            loaded
        };
        return vec![Finding::new(&k::NO_SCRAPE_JOB, observed, evidence)];
    }
    let names: BTreeSet<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    let active = snap
        .targets
        .active
        .iter()
        .filter(|t| names.contains(t.scrape_pool.as_str()))
        .count();
    if active > 0 {
        return Vec::new();
    }
    let dropped: Vec<_> = snap
        .targets
        .dropped
        .iter()
        .filter(|d| dropped_job(&d.discovered_labels).is_some_and(|j| names.contains(j)))
        .collect();
    let job_list = names.iter().copied().collect::<Vec<_>>().join(", ");
    if dropped.is_empty() {
        return vec![Finding::new(
            &k::TARGETS_NONE_DISCOVERED,
            format!("job {job_list} has no active and no dropped targets"),
            vec![format!(
                "service discovery found no endpoints for it ({} active targets in all jobs)",
                snap.targets.active.len()
            )],
        )];
    }
    let evidence = dropped.iter().map(|d| {
        let l = &d.discovered_labels;
        let get = |key: &str| l.get(key).map(String::as_str).unwrap_or("-");
        format!(
            "dropped {}: service {}/{} port name {:?}, service label app.kubernetes.io/name={:?}",
            get("__address__"),
            get("__meta_kubernetes_namespace"),
            get("__meta_kubernetes_service_name"),
            get("__meta_kubernetes_endpoint_port_name"),
            get("__meta_kubernetes_service_label_app_kubernetes_io_name"),
        )
    });
    vec![Finding::new(
        &k::TARGETS_ALL_DROPPED,
        format!(
            "job {job_list}: all {} discovered endpoints were dropped by relabeling",
            dropped.len()
        ),
        capped(evidence),
    )]
}

/// The job a dropped target was discovered for. Prometheus 2.42 can report a dropped target's
/// discovered labels already overwritten by the job's first relabeling, losing `job` (the last
/// label) to the operator's `__tmp_prometheus_job_name` copy of it: relabel() returns
/// `lb.Labels(lset)`, reusing the discovered labels' array (prometheus@v2.42.0
/// `model/relabel/relabel.go`; for dropped targets fixed in v2.43.0 by "relabel: keep
/// intermediate results in labels.Builder"). Whether it strikes depends on the slice's capacity,
/// so on the number of discovered labels.
fn dropped_job(discovered: &BTreeMap<String, String>) -> Option<&str> {
    discovered
        .get("job")
        .or_else(|| discovered.get("__tmp_prometheus_job_name"))
        .map(String::as_str)
}

/// Link 4: every target is up; down ones are classified from `lastError`.
fn target_health(targets: &[&ActiveTarget]) -> Vec<Finding> {
    let mut by_kind: BTreeMap<&'static str, (&'static Kind, Vec<&ActiveTarget>)> = BTreeMap::new();
    for t in targets {
        let kind = if is_metrics_server(t) {
            Some(&k::METRICS_SERVER_TARGET)
        } else if t.health == "down" {
            Some(classify_error(&t.scrape_url, &t.last_error))
        } else if t.health == "unknown" {
            Some(&k::TARGETS_NOT_SCRAPED_YET)
        } else {
            None
        };
        if let Some(kind) = kind {
            by_kind
                .entry(kind.id)
                .or_insert((kind, Vec::new()))
                .1
                .push(t);
        }
    }
    by_kind
        .into_values()
        .map(|(kind, ts)| {
            let observed = format!(
                "{} of {} targets: {}",
                ts.len(),
                targets.len(),
                kind.summary
            );
            let evidence = capped(ts.iter().map(|t| describe_target(t)));
            let mut f = Finding::new(kind, observed, evidence);
            if kind.id == k::TARGET_CONNECTION_REFUSED.id {
                f.cause = refused_cause(&ts);
            }
            f
        })
        .collect()
}

fn describe_target(t: &ActiveTarget) -> String {
    let node = t
        .labels
        .get("node")
        .map(|n| format!(" (node {n})"))
        .unwrap_or_default();
    if t.last_error.is_empty() {
        format!("{} {}{node}", t.scrape_url, t.health)
    } else {
        format!("{}{node}: {}", t.scrape_url, t.last_error)
    }
}

fn is_metrics_server(t: &ActiveTarget) -> bool {
    t.scrape_url.contains("metrics-server")
        || t.labels.values().any(|v| v.contains("metrics-server"))
        || t.discovered_labels
            .values()
            .any(|v| v.contains("metrics-server"))
}

/// Maps a target's `lastError` to a finding kind. Matches the stable parts of the Go error
/// texts, which differ slightly between Prometheus versions.
pub fn classify_error(scrape_url: &str, last_error: &str) -> &'static Kind {
    let e = last_error.to_ascii_lowercase();
    let http_status = |code: &str| e.contains(&format!("http status {code}"));
    if http_status("401") {
        &k::TARGET_UNAUTHORIZED
    } else if http_status("403") {
        &k::TARGET_FORBIDDEN
    } else if e.contains("connection refused") {
        &k::TARGET_CONNECTION_REFUSED
    } else if e.contains("connection reset by peer")
        || e.contains("http request to an https server")
        || e.contains("malformed http response")
        || e.contains("http response to https client")
        || (http_status("400") && scrape_url.starts_with("http://"))
    {
        &k::TARGET_SCHEME_MISMATCH
    } else if e.contains("x509") || e.contains("tls:") || e.contains("certificate") {
        &k::TARGET_TLS
    } else if e.contains("deadline exceeded")
        || e.contains("timeout")
        || e.contains("no route to host")
        || e.contains("network is unreachable")
        || e.contains("no such host")
    {
        &k::TARGET_TIMEOUT
    } else {
        &k::TARGET_DOWN
    }
}

/// The port of a scrape URL, defaulting by scheme.
pub fn url_port(url: &str) -> Option<u16> {
    let parsed = reqwest::Url::parse(url).ok()?;
    parsed.port_or_known_default()
}

/// A refused connection on 10255/4194 has a specific, well-known cause.
fn refused_cause(targets: &[&ActiveTarget]) -> String {
    let ports: BTreeSet<u16> = targets
        .iter()
        .filter_map(|t| url_port(&t.scrape_url))
        .collect();
    let legacy: Vec<String> = ports
        .iter()
        .filter(|p| matches!(p, 10255 | 4194))
        .map(u16::to_string)
        .collect();
    if legacy.is_empty() {
        format!(
            "nothing listens on port {} of the target; note that the kubelet's read-only port 10255 and cAdvisor's port 4194 are disabled on modern clusters",
            ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        )
    } else {
        format!(
            "port {} is a legacy kubelet port: the read-only port 10255 is off since kubeadm 1.11 (`readOnlyPort: 0`, kind too) and the standalone cAdvisor port 4194 was removed in 1.12; only the authenticated HTTPS port 10250 serves metrics",
            legacy.join(", ")
        )
    }
}

/// Link 6: some `container_cpu_usage_seconds_total` series exist at all.
fn container_series(snap: &Snapshot, targets: &[&ActiveTarget]) -> Vec<Finding> {
    if !snap.cpu_series.is_empty() {
        return Vec::new();
    }
    let paths = snap
        .jobs
        .iter()
        .map(|j| format!("job {:?} scrapes path {}", j.name, j.metrics_path));
    let urls = targets
        .iter()
        .map(|t| format!("target {} {}", t.scrape_url, t.health));
    let evidence = capped(paths.chain(urls));
    let has_container = snap
        .metric_names
        .iter()
        .any(|n| n.starts_with("container_"));
    if snap.metric_names.contains("node_cpu_seconds_total") && !has_container {
        let mut ev =
            vec!["node_cpu_seconds_total is present, no container_* metric is".to_string()];
        ev.extend(evidence);
        vec![Finding::new(
            &k::ONLY_NODE_METRICS,
            format!("only node-level metrics: no {} series", super::CPU_METRIC),
            ev,
        )]
    } else {
        vec![Finding::new(
            &k::NO_CONTAINER_METRICS,
            format!(
                "{} targets are up but Prometheus has no {} series",
                targets.len(),
                super::CPU_METRIC
            ),
            evidence,
        )]
    }
}

/// Link 6, per metric: CPU series exist (else [`container_series`] spoke), but another checked
/// metric has none at all: something removes that metric by name.
fn absent_metrics(snap: &Snapshot) -> Vec<Finding> {
    snap.metric_series
        .iter()
        .filter(|(_, series)| series.is_empty())
        .map(|(metric, _)| {
            Finding::new(
                &k::METRIC_ABSENT,
                format!(
                    "Prometheus has no {metric} series for any container, but {} series for {}",
                    snap.cpu_series.len(),
                    super::CPU_METRIC
                ),
                vec![format!(
                    "{metric}: 0 series; {}: {} series",
                    super::CPU_METRIC,
                    snap.cpu_series.len()
                )],
            )
        })
        .collect()
}

fn short_labels(l: &BTreeMap<String, String>) -> String {
    let keys = ["namespace", "exported_namespace", "pod", "container"];
    let parts: Vec<String> = keys
        .iter()
        .filter_map(|k| l.get(*k).map(|v| format!("{k}={v:?}")))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn capped(lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut all: Vec<String> = lines.collect();
    if all.len() > MAX_EVIDENCE {
        let more = all.len() - (MAX_EVIDENCE - 1);
        all.truncate(MAX_EVIDENCE - 1);
        all.push(format!("… and {more} more"));
    }
    all
}
