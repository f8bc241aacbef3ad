//! Explains why pods' metrics are missing: a chain of checks from the kubelet Service to the
//! series, each producing [`Finding`]s, stopping at the first broken link (later links would
//! only repeat the consequence).
//!
//! 1. kubelet Service and Endpoints ([`kube_checks::kubelet_service`])
//! 2. a ServiceMonitor for `/metrics/cadvisor`, selected by a Prometheus ([`kube_checks::selection`])
//! 3. its scrape job loaded, with targets not all dropped
//! 4. targets up (down ones classified from `lastError`)
//! 5. series present, container metrics rather than node-exporter or metrics-server
//! 6. the pods' namespace in `namespace`, not `exported_namespace` (warning only)
//! 7. every running container covered, or started after the last scrape (info)
//!
//! Links 1–2 need Kubernetes ([`cluster`]); 3–7 need only the Prometheus API ([`prometheus_side`]).
//! All classification is pure and lives in [`kube_checks`] and [`prom_checks`].

pub mod catalogue;
pub mod cluster_create;
pub mod kube_checks;
pub mod prom_checks;
pub mod relabel_drop;

use crate::pods::RunningPod;
use crate::prometheus::{PromError, PrometheusClient};
use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Service};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use serde::Serialize;
use std::fmt::Write as _;

// Not re-exported: prom_checks uses this module, so its items stay at `diagnose::prom_checks`.
use prom_checks::{Expectation, Snapshot};

use crate::coverage::MetricName;
pub use crate::coverage::CPU_METRIC;

/// How bad a finding is; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Metrics are missing because of this.
    Error,
    /// Metrics arrive, but not where queries and dashboards usually look.
    Warning,
    /// Not a failure yet (e.g. a pod newer than the last scrape).
    Info,
}

/// One observation with its evidence, likely cause and fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The catalogue id, e.g. `pods-missing`.
    pub id: &'static str,
    /// Error, warning or info.
    pub severity: Severity,
    /// What was seen, one line.
    pub observed: String,
    /// The lines that show it (redacted).
    pub evidence: Vec<String>,
    /// The likely cause.
    pub cause: String,
    /// What to do.
    pub fix: String,
}

impl Finding {
    /// A finding of `kind` with the catalogue's cause and fix.
    pub fn new(kind: &catalogue::Kind, observed: String, evidence: Vec<String>) -> Self {
        Finding {
            id: kind.id,
            severity: kind.severity,
            observed,
            evidence,
            cause: kind.cause.to_string(),
            fix: kind.fix.to_string(),
        }
    }

    /// Whether it is an error (a broken link).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// What the findings mean for an exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No findings, or warnings only (metrics arrive; e.g. honorLabels false): exit 0.
    Healthy,
    /// Only informational findings (a pod newer than the last scrape): exit 2, run again after
    /// one scrape interval.
    NotYet,
    /// At least one error: exit 1.
    Broken,
}

impl Verdict {
    /// The verdict of a set of findings: any error is broken, else any info is not yet.
    pub fn of(findings: &[Finding]) -> Verdict {
        if findings.iter().any(Finding::is_error) {
            Verdict::Broken
        } else if findings.iter().any(|f| f.severity == Severity::Info) {
            Verdict::NotYet
        } else {
            Verdict::Healthy
        }
    }

    /// 0 healthy, 1 broken, 2 not yet.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Healthy => 0,
            Verdict::Broken => 1,
            Verdict::NotYet => 2,
        }
    }
}

/// Human text: one headline per finding, evidence, cause and fix indented below it.
pub fn render_text(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "no findings: the chain from kubelet Service to series is intact\n".to_string();
    }
    let mut out = String::new();
    for f in findings {
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        let _ = writeln!(out, "{sev}[{}]: {}", f.id, f.observed);
        for e in &f.evidence {
            let _ = writeln!(out, "    {e}");
        }
        let _ = writeln!(out, "  cause: {}", f.cause);
        let _ = writeln!(out, "  fix: {}", f.fix);
    }
    out
}

/// The findings as a JSON document (what `--json` prints and `diagnose.json` holds).
pub fn to_json(findings: &[Finding]) -> serde_json::Value {
    let verdict = match Verdict::of(findings) {
        Verdict::Healthy => "healthy",
        Verdict::NotYet => "not-yet",
        Verdict::Broken => "broken",
    };
    serde_json::json!({ "verdict": verdict, "findings": findings })
}

/// Links 3–7 against a Prometheus only (no Kubernetes access): every loaded scrape job counts.
///
/// # Errors
/// Prometheus does not answer one of the reads (the message names which).
pub async fn prometheus_side(prom: &PrometheusClient, pods: &[RunningPod]) -> Result<Vec<Finding>> {
    prometheus_side_expecting(prom, pods, &Expectation::default()).await
}

/// [`prometheus_side`] for the given metrics (CPU is always part of the chain; the others get
/// per-metric findings: `metric-absent`, and `pods-missing` lines naming the metric).
///
/// # Errors
/// When Prometheus does not answer the config, targets or series queries.
pub async fn prometheus_side_for(
    prom: &PrometheusClient,
    pods: &[RunningPod],
    metrics: &[MetricName],
) -> Result<Vec<Finding>> {
    let snap = snapshot_for(prom, metrics).await?;
    Ok(redacted(prom_checks::analyze(
        &snap,
        pods,
        &Expectation::default(),
    )))
}

/// Links 3–7, restricted to the scrape jobs in `expect`.
///
/// # Errors
/// As [`prometheus_side`].
pub async fn prometheus_side_expecting(
    prom: &PrometheusClient,
    pods: &[RunningPod],
    expect: &Expectation,
) -> Result<Vec<Finding>> {
    let snap = snapshot(prom).await?;
    Ok(redacted(prom_checks::analyze(&snap, pods, expect)))
}

/// Findings end up in CI artifacts: strip anything that looks like a credential from the
/// observed text and evidence (scrape errors and operator args could carry one).
fn redacted(mut findings: Vec<Finding>) -> Vec<Finding> {
    for f in &mut findings {
        f.observed = crate::redact::redact(&f.observed);
        for e in &mut f.evidence {
            *e = crate::redact::redact(e);
        }
    }
    findings
}

/// Reads what the Prometheus-side checks need: loaded config, targets, the CPU series and, when
/// there are none, which related metric names exist.
///
/// # Errors
/// Prometheus does not answer one of the reads, or its configuration does not parse.
pub async fn snapshot(prom: &PrometheusClient) -> Result<Snapshot> {
    snapshot_for(prom, &[]).await
}

/// [`snapshot`], plus the series of every metric of `metrics` other than CPU (two queries each).
///
/// # Errors
/// When Prometheus does not answer one of the queries.
pub async fn snapshot_for(prom: &PrometheusClient, metrics: &[MetricName]) -> Result<Snapshot> {
    let at = prom.describe();
    let config = prom
        .config_yaml()
        .await
        .map_err(|e| api_error(e, &at, "/api/v1/status/config"))?;
    let jobs = prom_checks::parse_jobs(&config)?;
    let targets = prom
        .targets()
        .await
        .map_err(|e| api_error(e, &at, "/api/v1/targets"))?;
    // The coverage check's own queries: one row per (namespace, pod, container).
    let cpu_series: Vec<_> = crate::coverage::fetch_series(prom)
        .await
        .map_err(|e| api_error(e, &at, "the series query"))?
        .series
        .into_iter()
        .map(|s| s.metric)
        .collect();
    let mut metric_names = std::collections::BTreeSet::new();
    if cpu_series.is_empty() {
        let names = prom
            .query(r#"count by (__name__) ({__name__=~"container_.+|node_cpu_seconds_total"})"#)
            .await
            .map_err(|e| api_error(e, &at, "the metric-name query"))?;
        metric_names.extend(
            names
                .series
                .into_iter()
                .filter_map(|s| s.metric.get("__name__").cloned()),
        );
    }
    let mut metric_series = Vec::new();
    for metric in metrics {
        if metric.as_str() == CPU_METRIC || metric_series.iter().any(|(m, _)| m == metric.as_str())
        {
            continue;
        }
        let series = crate::coverage::fetch_metric_series(prom, metric)
            .await
            .map_err(|e| api_error(e, &at, &format!("the {metric} series query")))?
            .series
            .into_iter()
            .map(|s| s.metric)
            .collect();
        metric_series.push((metric.to_string(), series));
    }
    Ok(Snapshot {
        jobs,
        targets,
        cpu_series,
        metric_series,
        metric_names,
    })
}

fn api_error(e: PromError, at: &str, what: &str) -> anyhow::Error {
    anyhow::Error::new(e).context(format!(
        "cannot diagnose: Prometheus at {at} did not answer {what}"
    ))
}

fn monitoring(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        api_version: "monitoring.coreos.com/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// The whole chain: links 1–2 read the cluster (read-only), then links 3–7 run against `prom`
/// restricted to the jobs of the selected cadvisor ServiceMonitors.
///
/// # Errors
/// The API server refuses a read (a Prometheus that does not answer is a finding instead).
pub async fn cluster(
    client: &kube::Client,
    prom: &PrometheusClient,
    pods: &[RunningPod],
) -> Result<Vec<Finding>> {
    Ok(redacted(
        cluster_chain(client, Some(prom), None, pods, &[]).await?,
    ))
}

/// [`cluster`] for the given metrics (see [`prometheus_side_for`]).
///
/// # Errors
/// When the cluster cannot be read (listing nodes, Services, ServiceMonitors, …).
pub async fn cluster_for(
    client: &kube::Client,
    prom: &PrometheusClient,
    pods: &[RunningPod],
    metrics: &[MetricName],
) -> Result<Vec<Finding>> {
    Ok(redacted(
        cluster_chain(client, Some(prom), None, pods, metrics).await?,
    ))
}

/// What one Prometheus server (a replica of a Prometheus object) shows, or the cluster when no
/// Prometheus can be asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// The replica asked (`namespace/pod`), a Prometheus object none of whose replicas is ready
    /// (`namespace/name`), or `the cluster` (it has no Prometheus object).
    pub prometheus: String,
    /// Its findings, the chain's order.
    pub findings: Vec<Finding>,
}

/// The whole chain for each Prometheus of the cluster (or only `only`), found from its object, not
/// assumed: each ready replica of each, asked through its pod proxy, and with link 2 judged for
/// that Prometheus alone (which cadvisor ServiceMonitors it selects). A Prometheus with no ready
/// replica gets links 1–2 and `prometheus-unreachable`; a cluster without any Prometheus object
/// gets links 1–2 (which then say so).
///
/// # Errors
/// When the cluster cannot be read, or `only` does not exist.
pub async fn cluster_per_prometheus(
    client: &kube::Client,
    only: Option<&crate::prometheuses::PrometheusRef>,
    pods: &[RunningPod],
    metrics: &[MetricName],
) -> Result<Vec<Diagnosis>> {
    use crate::prometheuses::{self as ps, PrometheusRef};
    let objects = match only {
        Some(p) => match ps::get_prometheus(client, p).await? {
            Some(obj) => vec![obj],
            None => anyhow::bail!(
                "--prometheus {p}: no such Prometheus object (kubectl get prometheuses -A lists them)"
            ),
        },
        None => ps::list_prometheuses(client).await?,
    };
    let mut out = Vec::new();
    if objects.is_empty() {
        let findings = cluster_chain(client, None, None, pods, metrics).await?;
        out.push(Diagnosis {
            prometheus: "the cluster".into(),
            findings: redacted(findings),
        });
        return Ok(out);
    }
    for obj in &objects {
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let name = obj
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let prom = PrometheusRef::new(ns, name);
        let replicas = match ps::current_replicas(client, &prom).await? {
            Ok(r) => r,
            Err(why) => ps::Replicas {
                wanted: 0,
                ready: Vec::new(),
                not_ready: vec![why],
            },
        };
        if replicas.ready.is_empty() {
            let mut findings = cluster_chain(client, None, Some(obj), pods, metrics).await?;
            if !findings.iter().any(Finding::is_error) {
                findings.push(Finding::new(
                    &catalogue::PROMETHEUS_UNREACHABLE,
                    format!("Prometheus {prom} has no ready replica to ask"),
                    replicas.not_ready.clone(),
                ));
            }
            out.push(Diagnosis {
                prometheus: prom.to_string(),
                findings: redacted(findings),
            });
            continue;
        }
        for replica in &replicas.ready {
            let prom_client = replica.client(client.clone(), std::time::Duration::from_secs(10));
            let findings =
                cluster_chain(client, Some(&prom_client), Some(obj), pods, metrics).await?;
            out.push(Diagnosis {
                prometheus: replica.key(),
                findings: redacted(findings),
            });
        }
    }
    Ok(out)
}

/// The chain for one replica, link 2 judged for its Prometheus alone (what the assert phase asks
/// when one of a replica's checks fails).
///
/// # Errors
/// When the cluster cannot be read.
pub async fn replica(
    client: &kube::Client,
    replica: &crate::prometheuses::Replica,
    pods: &[RunningPod],
    metrics: &[MetricName],
) -> Result<Vec<Finding>> {
    let obj = crate::prometheuses::get_prometheus(client, &replica.prometheus).await?;
    let prom = replica.client(client.clone(), std::time::Duration::from_secs(10));
    Ok(redacted(
        cluster_chain(client, Some(&prom), obj.as_ref(), pods, metrics).await?,
    ))
}

/// Several diagnoses as one JSON document: the worst verdict, every finding (each with the
/// Prometheus it was seen in), and per Prometheus its own verdict and findings.
pub fn to_json_per_prometheus(diagnoses: &[Diagnosis]) -> serde_json::Value {
    let all: Vec<Finding> = diagnoses.iter().flat_map(|d| d.findings.clone()).collect();
    let mut json = to_json(&all);
    let tagged: Vec<serde_json::Value> = diagnoses
        .iter()
        .flat_map(|d| {
            d.findings.iter().map(|f| {
                let mut v = serde_json::to_value(f).expect("findings serialise");
                v["prometheus"] = d.prometheus.clone().into();
                v
            })
        })
        .collect();
    json["findings"] = tagged.into();
    json["prometheuses"] = diagnoses
        .iter()
        .map(|d| {
            let mut one = to_json(&d.findings);
            one["prometheus"] = d.prometheus.clone().into();
            one
        })
        .collect::<Vec<_>>()
        .into();
    json
}

/// Several diagnoses as text: a heading per Prometheus, its findings below.
pub fn render_text_per_prometheus(diagnoses: &[Diagnosis]) -> String {
    if let [one] = diagnoses {
        return format!(
            "Prometheus {}:\n{}",
            one.prometheus,
            render_text(&one.findings)
        );
    }
    diagnoses
        .iter()
        .map(|d| format!("Prometheus {}:\n{}", d.prometheus, render_text(&d.findings)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Findings that rest on facts of prometheus-operator v0.48.1 (the scrape job it generates, its
/// 3-minute kubelet resync): said so when the cluster's operator is another version.
pub const V0_48_1_FINDINGS: &[&str] = &[
    "kubelet-endpoints-missing-nodes",
    "no-scrape-job",
    "targets-all-dropped",
    "metric-relabel-drops",
];

/// The version the diagnosis models.
pub const MODELLED_OPERATOR: &str = "v0.48.1";

/// Adds to each finding of [`V0_48_1_FINDINGS`] which operator version it models, when the
/// cluster's operator image (`image`, its tag `version`) is another one (pure).
pub fn note_operator_version(findings: &mut [Finding], image: &str, version: Option<&str>) {
    if version == Some(MODELLED_OPERATOR) {
        return;
    }
    let theirs = match version {
        Some(v) => format!("{v} ({image})"),
        None => format!("of unknown version ({image})"),
    };
    for f in findings
        .iter_mut()
        .filter(|f| V0_48_1_FINDINGS.contains(&f.id))
    {
        f.evidence.push(format!(
            "this finding models prometheus-operator {MODELLED_OPERATOR} (the scrape job it generates, its kubelet resync); this cluster's operator is {theirs}, whose behaviour may differ"
        ));
    }
}

async fn cluster_chain(
    client: &kube::Client,
    prom: Option<&PrometheusClient>,
    selecting: Option<&serde_json::Value>,
    pods: &[RunningPod],
    metrics: &[MetricName],
) -> Result<Vec<Finding>> {
    let operator = operator_container(client).await?;
    let mut findings = chain_links(
        client,
        prom,
        selecting,
        operator.as_ref().map(|o| &o.1),
        pods,
        metrics,
    )
    .await?;
    if let Some((image, _)) = &operator {
        let version = crate::operator::image_tag(image);
        note_operator_version(&mut findings, image, version.as_deref());
    }
    Ok(findings)
}

async fn chain_links(
    client: &kube::Client,
    prom: Option<&PrometheusClient>,
    selecting: Option<&serde_json::Value>,
    operator_args: Option<&Vec<String>>,
    pods: &[RunningPod],
    metrics: &[MetricName],
) -> Result<Vec<Finding>> {
    let lp = ListParams::default();
    let nodes = Api::<Node>::all(client.clone())
        .list(&lp)
        .await
        .context("listing nodes")?
        .items;
    // The Service this cluster's operator keeps, not necessarily the bundle's kube-system/kubelet.
    let (svc_ns, svc_name) = crate::operator::kubelet_service_of(operator_args.map(Vec::as_slice));
    let kubelet_svc = Api::<Service>::namespaced(client.clone(), &svc_ns)
        .get_opt(&svc_name)
        .await
        .with_context(|| format!("reading Service {svc_ns}/{svc_name}"))?;
    let kubelet_eps = Api::<Endpoints>::namespaced(client.clone(), &svc_ns)
        .get_opt(&svc_name)
        .await
        .with_context(|| format!("reading Endpoints {svc_ns}/{svc_name}"))?;
    let findings = kube_checks::kubelet_service(
        kubelet_svc.as_ref(),
        kubelet_eps.as_ref(),
        &nodes,
        operator_args.map(Vec::as_slice),
    );
    if !findings.is_empty() {
        return Ok(findings);
    }

    let sms = match list_dynamic(client, &monitoring("ServiceMonitor", "servicemonitors")).await? {
        None => return Ok(vec![kube_checks::servicemonitor_missing(0, true)]),
        Some(sms) => sms,
    };
    let cadvisor = kube_checks::cadvisor_servicemonitors(&sms);
    if cadvisor.is_empty() {
        return Ok(vec![kube_checks::servicemonitor_missing(sms.len(), false)]);
    }
    // One Prometheus judged alone (its own selectors), or any Prometheus of the cluster.
    let proms = match selecting {
        Some(obj) => vec![obj.clone()],
        None => list_dynamic(client, &monitoring("Prometheus", "prometheuses"))
            .await?
            .unwrap_or_default(),
    };
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&lp)
        .await
        .context("listing namespaces")?
        .items;
    let mut expect = Expectation::default();
    let mut not_selected = Vec::new();
    for sm in cadvisor {
        match kube_checks::selection(sm, &proms, &namespaces) {
            Ok(_) => expect
                .job_prefixes
                .push(format!("serviceMonitor/{}/", kube_checks::object_key(sm))),
            Err(finding) => not_selected.push(finding),
        }
    }
    if expect.job_prefixes.is_empty() {
        return Ok(not_selected);
    }
    let Some(prom) = prom else {
        return Ok(vec![]);
    };
    // With the cluster in reach, a Prometheus that does not answer is itself the broken link.
    match snapshot_for(prom, metrics).await {
        Ok(snap) => Ok(prom_checks::analyze(&snap, pods, &expect)),
        Err(e) => Ok(vec![Finding::new(
            &catalogue::PROMETHEUS_UNREACHABLE,
            unreachable_observed(&e, &prom.describe()),
            vec![crate::errors::error_chain(e.as_ref())],
        )]),
    }
}

/// What `prometheus-unreachable` saw: the API server's own refusal (a 403 or 404 from its
/// service proxy, with its code, reason and message), or no answer.
fn unreachable_observed(e: &anyhow::Error, at: &str) -> String {
    match e.chain().find_map(|c| c.downcast_ref::<PromError>()) {
        Some(PromError::ApiServer { status, .. }) => {
            format!("the API server's service proxy refused the request to Prometheus at {at}: {status}")
        }
        _ => format!("Prometheus at {at} does not answer"),
    }
}

/// Lists a monitoring.coreos.com resource in all namespaces as JSON; `None` when the CRD is absent.
async fn list_dynamic(
    client: &kube::Client,
    ar: &ApiResource,
) -> Result<Option<Vec<serde_json::Value>>> {
    let api = Api::<DynamicObject>::all_with(client.clone(), ar);
    match api.list(&ListParams::default()).await {
        Ok(list) => {
            let items = list
                .items
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(items))
        }
        Err(e) if resource_not_served(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("listing {}.{}", ar.plural, ar.group)),
    }
}

/// Whether a list failed because the API server does not serve the resource at all (its CRD is
/// not installed, or not Established yet).
///
/// An unregistered group answers plain-text `404 page not found` (TWIN-FACTS §2a), which kube 5
/// turns into a Status with reason "Failed to parse error data": `Status::is_not_found()` checks
/// the reason and is false for it, so the code decides.
pub fn resource_not_served(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// Image and args of the first container running a prometheus-operator image, in any namespace.
async fn operator_container(client: &kube::Client) -> Result<Option<(String, Vec<String>)>> {
    let deployments = Api::<Deployment>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing deployments")?;
    Ok(deployments.items.iter().find_map(|d| {
        let spec = d.spec.as_ref()?.template.spec.as_ref()?;
        let c = spec.containers.iter().find(|c| {
            c.image
                .as_deref()
                .is_some_and(|i| i.contains("prometheus-operator/prometheus-operator"))
        })?;
        Some((
            c.image.clone().unwrap_or_default(),
            c.args.clone().unwrap_or_default(),
        ))
    }))
}

#[cfg(test)]
mod tests;
