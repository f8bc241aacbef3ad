//! The assert phase's edges, shared by `cargo xtask e2e` (phase 7) and `cargo xtask assert`:
//! runs [`crate::assert`]'s checks, writes `junit.xml` and `coverage.json`, and when a check
//! fails diagnoses each failing Prometheus replica (`diagnose.json`).

use crate::assert::{self, CheckResult, Report, Spec};
use crate::diagnose::{self, Finding};
use crate::errors::error_chain;
use anyhow::{bail, Context, Result};
use kube::Client;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the assert phase writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// `junit.xml`.
    pub junit: PathBuf,
    /// The directory of `coverage.json`, `diagnose.json` and, with several replicas,
    /// `coverage/<namespace>_<pod>.json`.
    pub artifacts: PathBuf,
}

/// What a failed assert phase found: the checks and the diagnosis of each failing replica.
#[derive(Debug)]
pub struct Verified {
    /// The checks' results and coverage reports.
    pub report: Report,
    /// Per diagnosed Prometheus replica (`ns/pod`, or `ns/name` when none answered), its findings.
    pub diagnoses: Vec<diagnose::Diagnosis>,
}

/// Runs the checks of `spec` within `timeout`, calling `on_result` as each ends, and writes the
/// outputs.
///
/// # Errors
/// A check failed (the message holds each failed check, the coverage report and the diagnosis,
/// and names the files written), or the outputs cannot be written.
pub async fn verify(
    kube: &Client,
    spec: &Spec,
    timeout: Duration,
    out: &Outputs,
    on_result: &mut (dyn FnMut(&CheckResult) + Send),
) -> Result<Verified> {
    std::fs::create_dir_all(&out.artifacts)
        .with_context(|| format!("creating {}", out.artifacts.display()))?;
    let report = assert::run(kube, spec, timeout, on_result).await?;
    write(&out.junit, &assert::junit::render(&report.results)?)?;
    write_coverage(&report, &out.artifacts)?;
    if report.passed() {
        return Ok(Verified {
            report,
            diagnoses: Vec::new(),
        });
    }
    let diagnoses = diagnose_failures(kube, spec, &report).await;
    let diagnose_path = out.artifacts.join("diagnose.json");
    let json = diagnose::to_json_per_prometheus(&diagnoses);
    write(&diagnose_path, &serde_json::to_string_pretty(&json)?)?;
    let mut msg = String::new();
    let failed: Vec<&CheckResult> = report.results.iter().filter(|r| !r.passed()).collect();
    let _ = writeln!(
        msg,
        "{} of {} checks did not pass:",
        failed.len(),
        report.results.len()
    );
    for r in &failed {
        let _ = writeln!(msg, "  {}", r.line());
        for line in r.detail.lines().skip(1) {
            let _ = writeln!(msg, "    {line}");
        }
    }
    msg.push_str("diagnosis of ");
    msg.push_str(&diagnose::render_text_per_prometheus(&diagnoses));
    let _ = write!(
        msg,
        "(JUnit: {}; coverage: {}; diagnosis: {})",
        crate::workdir::display_path(&out.junit),
        crate::workdir::display_path(&out.artifacts.join("coverage.json")),
        crate::workdir::display_path(&diagnose_path)
    );
    bail!(msg)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, crate::redact::redact(text))
        .with_context(|| format!("writing {}", path.display()))
}

/// `coverage.json`: the report of the first replica with a gap (else the first replica's), with
/// the replica it came from under `"prometheus"`; with several replicas each one's report under
/// `coverage/<namespace>_<pod>.json` too.
fn write_coverage(report: &Report, dir: &Path) -> Result<()> {
    let with_subject = |replica: &assert::Replica, m: &crate::coverage::MetricsReport| {
        let mut json = m.to_json();
        if let Some(obj) = json.as_object_mut() {
            obj.insert("prometheus".into(), replica.key().into());
        }
        json
    };
    if let Some((replica, m)) = report.headline_coverage() {
        write(
            &dir.join("coverage.json"),
            &serde_json::to_string_pretty(&with_subject(replica, m))?,
        )?;
    }
    if report.coverage.len() > 1 {
        let per = dir.join("coverage");
        std::fs::create_dir_all(&per).with_context(|| format!("creating {}", per.display()))?;
        for (replica, m) in &report.coverage {
            let name = format!("{}_{}.json", replica.prometheus.namespace, replica.pod);
            write(
                &per.join(name),
                &serde_json::to_string_pretty(&with_subject(replica, m))?,
            )?;
        }
    }
    Ok(())
}

/// The diagnosis of each replica with a failed check, asked through its pod proxy, with link 2
/// judged for its Prometheus alone; for a Prometheus none of whose replicas is ready, links 1–2 and
/// why it cannot be asked. Best effort: a diagnosis that fails is reported as its error.
async fn diagnose_failures(
    kube: &Client,
    spec: &Spec,
    report: &Report,
) -> Vec<diagnose::Diagnosis> {
    let pods = match crate::pods::list_running_pods(kube).await {
        Ok(p) => p,
        Err(e) => {
            return vec![diagnose::Diagnosis {
                prometheus: "the cluster".into(),
                findings: vec![unreadable(&e)],
            }]
        }
    };
    let mut out = Vec::new();
    for replica in report.failed_replicas() {
        let findings = diagnose::replica(kube, replica, &pods, &spec.metrics)
            .await
            .unwrap_or_else(|e| vec![unreadable(&e)]);
        out.push(diagnose::Diagnosis {
            prometheus: replica.key(),
            findings,
        });
    }
    for unreachable in report.unreachable() {
        let prom = spec
            .prometheuses
            .iter()
            .find(|p| p.to_string() == unreachable.subject);
        let Some(prom) = prom else { continue };
        if report.replicas.iter().any(|r| &r.prometheus == prom) {
            continue;
        }
        match diagnose::cluster_per_prometheus(kube, Some(prom), &pods, &spec.metrics).await {
            Ok(d) => out.extend(d),
            Err(e) => out.push(diagnose::Diagnosis {
                prometheus: prom.to_string(),
                findings: vec![unreadable(&e)],
            }),
        }
    }
    out
}

fn unreadable(e: &anyhow::Error) -> Finding {
    Finding::new(
        &diagnose::catalogue::PROMETHEUS_UNREACHABLE,
        "the diagnosis could not read what it needs".into(),
        vec![error_chain(e.as_ref())],
    )
}
