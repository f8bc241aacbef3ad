//! One function per check of the assert phase (see [`super`]), each with its pure core beside it:
//! what the cluster or Prometheus answered goes in, a verdict and its detail come out.

use super::{Check, CheckResult, PrometheusRef, Replica, Spec, Verdict};
use crate::coverage::{self, MetricsReport, NamespaceLabel, WaitOptions};
use crate::diagnose::kube_checks::{
    cadvisor_servicemonitors, object_key, selection, CADVISOR_PATH,
};
use crate::k8s::wait::{poll_until, Waited};
use crate::matrix::ServiceMonitorVariant;
use crate::pods::RunningPod;
use crate::prometheus::{PrometheusClient, Targets};
pub use crate::prometheuses::{get_prometheus, monitoring_resource, ready_replicas, Replicas};
use anyhow::Context;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DynamicObject, ListParams};
use kube::Client;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How often a check looks again.
const POLL: Duration = Duration::from_secs(2);
/// The bearer token file every cadvisor job of ours uses (the pod's service account token).
const TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Prometheus's `scrape_interval` when the Prometheus object sets none (prometheus-operator's
/// default, v0.48.1 `pkg/prometheus/promcfg.go`).
const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(30);

fn result(
    check: Check,
    subject: &str,
    passed: bool,
    detail: String,
    started: Instant,
) -> CheckResult {
    CheckResult {
        check,
        subject: subject.to_string(),
        verdict: if passed {
            Verdict::Passed
        } else {
            Verdict::Failed
        },
        detail,
        duration: started.elapsed(),
    }
}

/// The cluster's node names, sorted.
///
/// # Errors
/// The API server does not answer the list.
pub async fn node_names(kube: &Client) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = Api::<Node>::all(kube.clone())
        .list(&ListParams::default())
        .await
        .context("listing nodes")?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}

// ---------------------------------------------------------------------------------------------
// 1. replicas

/// Check 1: the Prometheus exists and every replica it asks for (`spec.replicas`, default 1) runs
/// and is ready, waiting up to `timeout`. Returns the ready replicas even when some are missing,
/// so the other checks still say what the ready ones serve.
pub async fn replicas(
    kube: &Client,
    prom: &PrometheusRef,
    timeout: Duration,
) -> (CheckResult, Vec<Replica>) {
    let started = Instant::now();
    let pods: Api<Pod> = Api::namespaced(kube.clone(), &prom.namespace);
    let waited = poll_until(timeout, POLL, || async {
        let Some(obj) = get_prometheus(kube, prom).await? else {
            return Ok(Err(Err(format!(
                "Prometheus {prom} does not exist (kubectl get prometheuses -A lists those that do)"
            ))));
        };
        let list = pods
            .list(&ListParams::default())
            .await
            .with_context(|| format!("listing pods in {}", prom.namespace))?;
        match ready_replicas(prom, &obj, &list.items) {
            Ok(found) if found.ready.len() >= found.wanted => Ok(Ok(found)),
            other => Ok(Err(other)),
        }
    })
    .await;
    let subject = prom.to_string();
    match waited {
        Ok(found) => {
            let detail = format!(
                "{} of {} ready: {}",
                found.ready.len(),
                found.wanted,
                found
                    .ready
                    .iter()
                    .map(|r| r.pod.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            (
                result(Check::Replicas, &subject, true, detail, started),
                found.ready,
            )
        }
        Err(Waited::Pending(Ok(found))) => {
            let detail = format!(
                "{} of {} replicas ready after {}s (StatefulSet {}/{}): {}",
                found.ready.len(),
                found.wanted,
                timeout.as_secs(),
                prom.namespace,
                prom.statefulset(),
                found.not_ready.join("; ")
            );
            (
                result(Check::Replicas, &subject, false, detail, started),
                found.ready,
            )
        }
        Err(Waited::Pending(Err(why))) => (
            result(Check::Replicas, &subject, false, why, started),
            vec![],
        ),
        Err(Waited::Failed(e)) => (
            result(
                Check::Replicas,
                &subject,
                false,
                crate::errors::error_chain(e.as_ref()),
                started,
            ),
            vec![],
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// 2. the cadvisor job

/// The scrape jobs the operator generates for the cadvisor ServiceMonitors `prom` selects, read
/// from the cluster: `serviceMonitor/<ns>/<name>/<endpoint index>` for each endpoint scraping
/// `/metrics/cadvisor` (v0.48.1 `pkg/prometheus/promcfg.go` generateServiceMonitorConfig).
///
/// # Errors
/// Why there is none: the cluster cannot be read, the Prometheus does not exist, or it selects no
/// cadvisor ServiceMonitor (with the reasons).
pub async fn expected_jobs(kube: &Client, prom: &PrometheusRef) -> Result<Vec<String>, String> {
    let read = async {
        let obj = get_prometheus(kube, prom)
            .await?
            .with_context(|| format!("Prometheus {prom} does not exist"))?;
        let sms = Api::<DynamicObject>::all_with(
            kube.clone(),
            &monitoring_resource("ServiceMonitor", "servicemonitors"),
        )
        .list(&ListParams::default())
        .await
        .context("listing ServiceMonitors")?
        .items
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?;
        let namespaces = Api::<Namespace>::all(kube.clone())
            .list(&ListParams::default())
            .await
            .context("listing namespaces")?
            .items;
        anyhow::Ok((obj, sms, namespaces))
    };
    match read.await {
        Ok((obj, sms, namespaces)) => cadvisor_jobs(&obj, &sms, &namespaces),
        Err(e) => Err(crate::errors::error_chain(e.as_ref())),
    }
}

/// [`expected_jobs`], pure: the jobs of the cadvisor ServiceMonitors among `servicemonitors`
/// that the Prometheus object `prom` selects.
///
/// # Errors
/// None is selected (or none exists): the reasons, one line each.
pub fn cadvisor_jobs(
    prom: &Value,
    servicemonitors: &[Value],
    namespaces: &[Namespace],
) -> Result<Vec<String>, String> {
    let cadvisor = cadvisor_servicemonitors(servicemonitors);
    if cadvisor.is_empty() {
        return Err(format!(
            "no ServiceMonitor scrapes {CADVISOR_PATH} ({} ServiceMonitors exist)",
            servicemonitors.len()
        ));
    }
    let mut jobs = Vec::new();
    let mut reasons = Vec::new();
    for sm in cadvisor {
        match selection(sm, std::slice::from_ref(prom), namespaces) {
            Ok(_) => {
                let endpoints = sm.pointer("/spec/endpoints").and_then(Value::as_array);
                for (i, ep) in endpoints.into_iter().flatten().enumerate() {
                    if ep.get("path").and_then(Value::as_str) == Some(CADVISOR_PATH) {
                        jobs.push(format!("serviceMonitor/{}/{i}", object_key(sm)));
                    }
                }
            }
            Err(finding) => reasons.push(format!(
                "ServiceMonitor {} is not selected: {}",
                object_key(sm),
                finding.evidence.join("; ")
            )),
        }
    }
    if jobs.is_empty() {
        return Err(format!(
            "Prometheus {} selects no cadvisor ServiceMonitor: {}",
            object_key(prom),
            reasons.join("; ")
        ));
    }
    Ok(jobs)
}

/// The Prometheus object's `scrapeInterval` (the operator's default, 30 s, when unset).
pub async fn scrape_interval(kube: &Client, prom: &PrometheusRef) -> Duration {
    let obj = get_prometheus(kube, prom).await.ok().flatten();
    obj.as_ref()
        .and_then(|o| o.pointer("/spec/scrapeInterval"))
        .and_then(Value::as_str)
        .and_then(|s| humantime::parse_duration(s).ok())
        .unwrap_or(DEFAULT_SCRAPE_INTERVAL)
}

/// Check 2: the replica's loaded configuration (`/api/v1/status/config`) has every job of
/// `expected`, waiting up to `timeout` (the operator writes the config Secret, the kubelet syncs
/// it, the reloader reloads). For our own manifests (`ours`) the job must also say what the
/// ServiceMonitor says: path, HTTPS, the token file, `insecure_skip_verify`, `honor_labels`.
pub async fn job_loaded(
    client: &PrometheusClient,
    subject: &str,
    expected: &Result<Vec<String>, String>,
    ours: Option<ServiceMonitorVariant>,
    timeout: Duration,
) -> CheckResult {
    let started = Instant::now();
    let jobs = match expected {
        Ok(jobs) => jobs,
        Err(why) => return result(Check::JobLoaded, subject, false, why.clone(), started),
    };
    let waited = poll_until(timeout, POLL, || async {
        let yaml = client
            .config_yaml()
            .await
            .context("reading /api/v1/status/config")?;
        let loaded = crate::install::scrape_job_names(&yaml);
        let missing: Vec<&String> = jobs.iter().filter(|j| !loaded.contains(j)).collect();
        Ok(if missing.is_empty() {
            Ok(yaml)
        } else {
            Err(loaded)
        })
    })
    .await;
    match waited {
        Ok(yaml) => {
            let problems: Vec<String> = match ours {
                Some(variant) => jobs.iter().flat_map(|j| job_problems(&yaml, j, variant)).collect(),
                None => Vec::new(),
            };
            if problems.is_empty() {
                result(Check::JobLoaded, subject, true, jobs.join(", "), started)
            } else {
                result(Check::JobLoaded, subject, false, problems.join("\n"), started)
            }
        }
        Err(Waited::Pending(loaded)) => result(
            Check::JobLoaded,
            subject,
            false,
            format!(
                "not loaded after {}s: {}; its jobs: {} (the operator writes the job into Secret \
                 prometheus-<name>, the kubelet syncs it into the pod within about a minute and the \
                 config reloader reloads; check the operator's and the config-reloader's logs)",
                timeout.as_secs(),
                jobs.join(", "),
                if loaded.is_empty() { "none".to_string() } else { loaded.join(", ") }
            ),
            started,
        ),
        Err(Waited::Failed(e)) => result(
            Check::JobLoaded,
            subject,
            false,
            format!("Prometheus does not answer: {}", crate::errors::error_chain(e.as_ref())),
            started,
        ),
    }
}

/// What job `job` of a loaded configuration gets wrong against our ServiceMonitor `variant`;
/// empty when it matches (pure).
pub fn job_problems(config_yaml: &str, job: &str, variant: ServiceMonitorVariant) -> Vec<String> {
    let Ok(config) = crate::yaml::from_str::<crate::yaml::Value>(config_yaml) else {
        return vec!["the loaded configuration is not YAML".into()];
    };
    let Some(j) = config
        .get("scrape_configs")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .find(|j| j.get("job_name").and_then(|v| v.as_str()) == Some(job))
    else {
        return vec![format!("no job {job}")];
    };
    let s = |k: &str| j.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let mut problems = Vec::new();
    let mut expect = |what: &str, got: Option<String>, want: &str| {
        if got.as_deref() != Some(want) {
            problems.push(format!("job {job}: {what} is {got:?}, expected {want:?}"));
        }
    };
    expect("metrics_path", s("metrics_path"), CADVISOR_PATH);
    expect("scheme", s("scheme"), "https");
    let token = s("bearer_token_file").or_else(|| {
        j.get("authorization")
            .and_then(|a| a.get("credentials_file"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    });
    expect("the bearer token file", token, TOKEN_FILE);
    let skip = j
        .get("tls_config")
        .and_then(|t| t.get("insecure_skip_verify"))
        .and_then(|v| v.as_bool());
    if skip != Some(true) {
        problems.push(format!(
            "job {job}: tls_config.insecure_skip_verify is {skip:?}, expected true"
        ));
    }
    let honor = j
        .get("honor_labels")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let want = variant == ServiceMonitorVariant::HonorLabels;
    if honor != want {
        problems.push(format!(
            "job {job}: honor_labels is {honor}, the {variant} ServiceMonitor sets {want}"
        ));
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// 3. targets

/// Check 3: every node has an `up` target in the jobs, waiting up to four scrape intervals plus
/// 30 s (a new target is `unknown` until its first scrape) within `timeout`.
pub async fn targets_per_node(
    client: &PrometheusClient,
    subject: &str,
    jobs: &[String],
    nodes: &[String],
    ours: Option<ServiceMonitorVariant>,
    interval: Duration,
    timeout: Duration,
) -> CheckResult {
    let started = Instant::now();
    let budget = timeout.min(interval * 4 + Duration::from_secs(30));
    let waited = poll_until(budget, Duration::from_secs(3), || async {
        let targets = client.targets().await.context("reading /api/v1/targets")?;
        let gaps = target_gaps(&targets, jobs, nodes, ours.is_some());
        Ok(if gaps.is_empty() { Ok(()) } else { Err(gaps) })
    })
    .await;
    match waited {
        Ok(()) => result(
            Check::TargetsPerNode,
            subject,
            true,
            format!(
                "{} nodes, each with an up target in {}",
                nodes.len(),
                jobs.join(", ")
            ),
            started,
        ),
        Err(Waited::Pending(gaps)) => result(
            Check::TargetsPerNode,
            subject,
            false,
            format!("after {}s: {}", budget.as_secs(), gaps.join("\n")),
            started,
        ),
        Err(Waited::Failed(e)) => result(
            Check::TargetsPerNode,
            subject,
            false,
            format!(
                "Prometheus does not answer: {}",
                crate::errors::error_chain(e.as_ref())
            ),
            started,
        ),
    }
}

/// What keeps every node from having an `up` target in `jobs`: one line per node without one
/// (with the last error of its down targets). With `ours`, a healthy target must also be the
/// kubelet's secure port (`https://<node>:10250/metrics/cadvisor`, endpoint `https-metrics`,
/// namespace `kube-system`). Empty when all is well (pure).
pub fn target_gaps(
    targets: &Targets,
    jobs: &[String],
    nodes: &[String],
    ours: bool,
) -> Vec<String> {
    let in_jobs: Vec<_> = targets
        .active
        .iter()
        .filter(|t| jobs.contains(&t.scrape_pool))
        .collect();
    let mut gaps = Vec::new();
    if nodes.is_empty() {
        gaps.push("the cluster lists no nodes".to_string());
    }
    for node in nodes {
        let of_node: Vec<_> = in_jobs
            .iter()
            .filter(|t| t.labels.get("node") == Some(node))
            .collect();
        if of_node.is_empty() {
            gaps.push(format!("node {node}: no target (jobs {})", jobs.join(", ")));
            continue;
        }
        let up: Vec<_> = of_node.iter().filter(|t| t.health == "up").collect();
        if up.is_empty() {
            let why: BTreeSet<String> = of_node
                .iter()
                .map(|t| {
                    if t.last_error.is_empty() {
                        format!("{} {}", t.scrape_url, t.health)
                    } else {
                        format!("{} {}: {}", t.scrape_url, t.health, t.last_error)
                    }
                })
                .collect();
            gaps.push(format!(
                "node {node}: no target up: {}",
                crate::redact::redact(&why.into_iter().collect::<Vec<_>>().join("; "))
            ));
            continue;
        }
        if ours {
            for t in up {
                let url_ok = t.scrape_url.starts_with("https://")
                    && t.scrape_url.ends_with(":10250/metrics/cadvisor");
                let label = |k: &str| t.labels.get(k).map(String::as_str);
                if !url_ok
                    || label("namespace") != Some("kube-system")
                    || label("endpoint") != Some("https-metrics")
                {
                    gaps.push(format!(
                        "node {node}: target {} (namespace {:?}, endpoint {:?}) is not the kubelet's \
                         https-metrics port in kube-system",
                        t.scrape_url,
                        label("namespace"),
                        label("endpoint")
                    ));
                }
            }
        }
    }
    gaps
}

// ---------------------------------------------------------------------------------------------
// 4. coverage

/// Check 4: every running container of every running pod has a series of each metric of `spec`,
/// polled until covered or the deadline: four scrape intervals plus 5 s, at least two minutes
/// (workloads started moments ago on a busy cluster), within `timeout`. A pod that stopped
/// running during the wait is not a gap: the pods running then are checked once more. With
/// `spec.ours`, the pods' namespace must be in the label the ServiceMonitor variant puts it in.
pub async fn coverage(
    kube: &Client,
    client: &PrometheusClient,
    subject: &str,
    spec: &Spec,
    interval: Duration,
    timeout: Duration,
) -> (CheckResult, Option<MetricsReport>) {
    let started = Instant::now();
    let fail = |detail: String| {
        (
            result(Check::Coverage, subject, false, detail, started),
            None,
        )
    };
    let mut pods = match crate::pods::list_running_pods(kube).await {
        Ok(p) => p,
        Err(e) => return fail(crate::errors::error_chain(e.as_ref())),
    };
    if let Err(why) = required_namespaces(&pods, &spec.namespaces) {
        return fail(why);
    }
    let mut opts = WaitOptions::for_scrape_interval(interval);
    opts.deadline = opts.deadline.max(Duration::from_secs(120)).min(timeout);
    let mut progress = |r: &MetricsReport| {
        for m in &r.metrics {
            tracing::info!(
                "{subject}: {} covers {}/{} pods, {}/{} containers after {:.1}s",
                m.metric,
                m.pods_covered,
                m.pods_total,
                m.containers_covered,
                m.containers_total,
                r.waited_ms as f64 / 1000.0
            );
        }
    };
    let mut report =
        match coverage::check_metrics(client, &pods, &spec.metrics, &opts, &mut progress).await {
            Ok(r) => r,
            Err(e) => return fail(format!("the coverage query failed: {e}")),
        };
    if !report.is_complete() {
        if let Ok(now) = crate::pods::list_running_pods(kube).await {
            let gone = report.incomplete().flat_map(|r| &r.missing).any(|m| {
                !now.iter()
                    .any(|p| p.namespace == m.namespace && p.name == m.name)
            });
            let left = timeout.saturating_sub(started.elapsed());
            if gone && !left.is_zero() {
                pods = now;
                opts.deadline = left.min(Duration::from_secs(60));
                if let Ok(r) =
                    coverage::check_metrics(client, &pods, &spec.metrics, &opts, &mut progress)
                        .await
                {
                    report = r;
                }
            }
        }
    }
    let (passed, detail) = coverage_verdict(&report, spec.ours);
    (
        result(Check::Coverage, subject, passed, detail, started),
        Some(report),
    )
}

/// Every namespace of `required` has a running pod, and there is at least one running pod.
///
/// # Errors
/// The namespaces without one.
pub fn required_namespaces(pods: &[RunningPod], required: &[String]) -> Result<(), String> {
    if pods.is_empty() {
        return Err("the cluster has no running pods (not even kube-system's)".into());
    }
    let empty: Vec<&String> = required
        .iter()
        .filter(|ns| !pods.iter().any(|p| &p.namespace == *ns))
        .collect();
    if empty.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "no running pod in namespace {}",
            empty
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Whether a coverage report passes, and its one-line (or, failing, full) detail (pure).
pub fn coverage_verdict(
    report: &MetricsReport,
    ours: Option<ServiceMonitorVariant>,
) -> (bool, String) {
    if !report.is_complete() {
        return (false, report.to_string().trim_end().to_string());
    }
    let summary = report
        .metrics
        .iter()
        .map(|m| {
            format!(
                "{}: {}/{} pods, {}/{} containers",
                m.metric, m.pods_covered, m.pods_total, m.containers_covered, m.containers_total
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(variant) = ours {
        let expected = match variant {
            ServiceMonitorVariant::Mission => NamespaceLabel::ExportedNamespace,
            ServiceMonitorVariant::HonorLabels => NamespaceLabel::Namespace,
        };
        if let Some(m) = report
            .metrics
            .iter()
            .find(|m| m.namespace_label != expected)
        {
            return (
                false,
                format!(
                    "every pod is covered for {}, but the pods' namespace is {}, not where the {variant} \
                     ServiceMonitor puts it ({})",
                    m.metric,
                    m.namespace_label.describe(),
                    expected.describe()
                ),
            );
        }
    }
    (true, summary)
}
