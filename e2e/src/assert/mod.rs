//! The assert phase, in-process: against a live cluster, for each Prometheus (a
//! `monitoring.coreos.com/v1` Prometheus object) and each of its replicas, one function per check,
//! each returning a [`CheckResult`]:
//!
//! 1. [`checks::replicas`]: the Prometheus's StatefulSet pods run and are ready;
//! 2. [`checks::job_loaded`]: the replica has loaded the scrape job of every cadvisor
//!    ServiceMonitor the Prometheus selects (for our own manifests, with the fields they set);
//! 3. [`checks::targets_per_node`]: those jobs have an `up` target for every node;
//! 4. [`checks::coverage`]: every running container of every running pod has a series of each
//!    checked metric.
//!
//! Each replica is asked through the API server's pod proxy: `prometheus-operated` selects every
//! Prometheus pod of a namespace, so a Service would answer for whichever replica it picks, and a
//! replica that lacks the data would go unnoticed.
//!
//! Nothing here compiles or spawns anything: `cargo xtask e2e` runs these checks the moment the
//! workloads are up, and `cargo xtask assert` reruns exactly them against a kept cluster. The
//! JUnit report CI reads is rendered by [`junit`].

pub mod checks;
pub mod junit;

use crate::coverage::{MetricName, MetricsReport};
use crate::matrix::ServiceMonitorVariant;
pub use crate::prometheuses::{PrometheusRef, PrometheusRefError, Replica};
use kube::Client;
use serde::Serialize;
use std::time::{Duration, Instant};

/// The checks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The Prometheus's pods run and are ready.
    Replicas,
    /// The replica loaded the cadvisor scrape job(s).
    JobLoaded,
    /// One `up` cadvisor target per node.
    TargetsPerNode,
    /// Every running container has each metric.
    Coverage,
}

impl Check {
    /// What the check proves, as the per-check line and the JUnit test case say it.
    pub fn title(self) -> &'static str {
        match self {
            Check::Replicas => "its replicas are running and ready",
            Check::JobLoaded => "it loaded the cadvisor scrape job",
            Check::TargetsPerNode => "one healthy cadvisor target per node",
            Check::Coverage => "every running container has a series of each metric",
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It holds.
    Passed,
    /// It does not.
    Failed,
    /// It could not run because an earlier check of the same subject failed (never a pass).
    Skipped,
}

/// The result of one check on one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// What it was about: a Prometheus (`ns/name`) or a replica (`ns/pod`).
    pub subject: String,
    /// Passed, failed or skipped.
    pub verdict: Verdict,
    /// One line on success (what was seen); on failure what is wrong, possibly several lines.
    pub detail: String,
    /// How long the check took.
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl CheckResult {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }

    /// The line printed for it: `ok     ns/pod: title — detail (1.2s)`.
    pub fn line(&self) -> String {
        let word = match self.verdict {
            Verdict::Passed => "ok     ",
            Verdict::Failed => "FAILED ",
            Verdict::Skipped => "skipped",
        };
        let first = self.detail.lines().next().unwrap_or_default();
        format!(
            "{word} {}: {} — {first} ({:.1}s)",
            self.subject,
            self.check.title(),
            self.duration.as_secs_f64()
        )
    }
}

/// What to assert.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The Prometheus objects to assert in (each replica of each).
    pub prometheuses: Vec<PrometheusRef>,
    /// The metrics every running container must have.
    pub metrics: Vec<MetricName>,
    /// Our own manifests (no `--stack`): the job must have the fields the ServiceMonitor variant
    /// sets, and the pods' namespace label must be where that variant puts it.
    pub ours: Option<ServiceMonitorVariant>,
    /// Namespaces that must have a running pod (ours: kube-system, monitoring and the
    /// workloads'; a stack: the workloads', unless `--no-workloads`).
    pub namespaces: Vec<String>,
}

/// Everything the checks found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every check's result, in the order run.
    pub results: Vec<CheckResult>,
    /// The last coverage report of each replica whose coverage check ran.
    pub coverage: Vec<(Replica, MetricsReport)>,
    /// The replicas asserted.
    pub replicas: Vec<Replica>,
}

impl Report {
    /// Every check passed (and at least one ran).
    pub fn passed(&self) -> bool {
        !self.results.is_empty() && self.results.iter().all(CheckResult::passed)
    }

    /// The replicas with a failed or skipped check.
    pub fn failed_replicas(&self) -> Vec<&Replica> {
        self.replicas
            .iter()
            .filter(|r| {
                self.results
                    .iter()
                    .any(|c| c.subject == r.key() && !c.passed())
            })
            .collect()
    }

    /// The Prometheus objects whose replicas check failed (none of their replicas could be asked).
    pub fn unreachable(&self) -> Vec<&CheckResult> {
        self.results
            .iter()
            .filter(|c| c.check == Check::Replicas && !c.passed())
            .collect()
    }

    /// The coverage report to show first: the first incomplete one, else the first.
    pub fn headline_coverage(&self) -> Option<&(Replica, MetricsReport)> {
        self.coverage
            .iter()
            .find(|(_, r)| !r.is_complete())
            .or_else(|| self.coverage.first())
    }
}

/// Runs every check of `spec` within `timeout` (one deadline for all of them), calling
/// `on_result` as each ends. Per replica: the job first (without it the others cannot pass, and
/// are skipped), then the targets and the coverage at the same time (a failing run waits for the
/// slower of the two, not for both in turn).
///
/// # Errors
/// Never for a check that fails (that is a failed [`CheckResult`]); only when the cluster cannot be
/// read at all (listing nodes).
pub async fn run(
    kube: &Client,
    spec: &Spec,
    timeout: Duration,
    on_result: &mut (dyn FnMut(&CheckResult) + Send),
) -> anyhow::Result<Report> {
    let deadline = Instant::now() + timeout;
    let left = || crate::k8s::wait::remaining(deadline);
    let mut report = Report::default();
    let nodes = checks::node_names(kube).await?;
    for prom in &spec.prometheuses {
        let (result, replicas) = checks::replicas(kube, prom, left()).await;
        on_result(&result);
        report.results.push(result);
        if replicas.is_empty() {
            continue;
        }
        let expected = checks::expected_jobs(kube, prom).await;
        let interval = checks::scrape_interval(kube, prom).await;
        for replica in replicas {
            let subject = replica.key();
            let client = replica.client(kube.clone(), left());
            let job = checks::job_loaded(&client, &subject, &expected, spec.ours, left()).await;
            on_result(&job);
            let job_passed = job.passed();
            report.results.push(job);
            if !job_passed {
                for check in [Check::TargetsPerNode, Check::Coverage] {
                    let skipped = CheckResult {
                        check,
                        subject: subject.clone(),
                        verdict: Verdict::Skipped,
                        detail: "not run: the cadvisor scrape job is not loaded".into(),
                        duration: Duration::ZERO,
                    };
                    on_result(&skipped);
                    report.results.push(skipped);
                }
                report.replicas.push(replica);
                continue;
            }
            let jobs = expected.as_ref().map(Vec::as_slice).unwrap_or_default();
            let (targets, (coverage, metrics_report)) = tokio::join!(
                checks::targets_per_node(
                    &client,
                    &subject,
                    jobs,
                    &nodes,
                    spec.ours,
                    interval,
                    left()
                ),
                checks::coverage(kube, &client, &subject, spec, interval, left()),
            );
            for r in [targets, coverage] {
                on_result(&r);
                report.results.push(r);
            }
            if let Some(m) = metrics_report {
                report.coverage.push((replica.clone(), m));
            }
            report.replicas.push(replica);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
