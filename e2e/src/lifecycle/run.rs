//! `cargo xtask e2e`: executes the [`crate::lifecycle::plan`] — preflight, kind cluster, operator,
//! Prometheus, ServiceMonitor, workloads, the cluster tests, teardown — with a progress line per
//! phase, artifacts on failure, `summary.md`, and Ctrl-C handling.
//!
//! Ownership rule: only a cluster this run created is ever deleted (not a `--reuse`d one, never
//! one reached through `--kubeconfig`), and nothing is created before preflight passes.
//!
//! Each phase is a function that takes what it needs and returns what it made (preflight →
//! `Prepared`, the cluster phase → a client, …), so the compiler orders them. What teardown must
//! know whatever point the run stopped at is kept apart, in a record that only grows
//! (`Footprint`), and what `summary.md` reports in a `Journal`.

use super::cluster::{cluster_phase, ClusterError};
use super::options::{resolve, Resolved};
use super::preflight::{preflight, Install, Prepared, Target};
use super::summary::{self, Journal};
use super::teardown::{teardown, Footprint};
use crate::assert::CheckResult;
use crate::diagnose::Finding;
use crate::kind::KindPin;
use crate::lifecycle::plan::{self, BundleChoice, DisplayPaths, PhaseId, Plan, PlanInput};
use crate::matrix::Cell;
use crate::stack::Stack;
use crate::workdir;
use anyhow::{bail, Result};
use std::time::{Duration, Instant};

pub use super::options::{Options, DEFAULT_TIMEOUT};
pub use super::outcome::{Outcome, EXIT_INTERRUPTED};

/// The plan for `--dry-run`: reads the manifests (for their digests) and nothing else.
///
/// # Errors
/// The options contradict each other, a name is invalid, or a manifest cannot be read.
pub fn plan(cell: &Cell, opts: &Options) -> Result<Plan> {
    let r = resolve(cell, opts)?;
    let d = workdir::display_path;
    let platform = r.platform.clone();
    // A platform without a pinned sha256 still gets a plan: it shows where preflight would stop.
    let pin = KindPin::new(cell, &platform).unwrap_or_else(|err| KindPin {
        version: cell.kind_version.clone(),
        platform: platform.clone(),
        url: cell.kind_url(&platform),
        sha256: format!("NOT PINNED: {err}"),
    });
    let bundle = match &opts.operator_bundle {
        Some(p) => BundleChoice::File { path: d(p) },
        None => BundleChoice::Pinned {
            url: cell.operator_bundle_url.clone(),
            cache_dir: d(&r.work_dir.join("cache")),
        },
    };
    let input = PlanInput {
        cell,
        cluster_name: r.name.clone(),
        mode: opts.mode(),
        keep: opts.keep(),
        tools_path: d(&pin.tools_path(&r.work_dir)),
        kind: pin,
        kind_config: d(&r.kind_config),
        paths: DisplayPaths {
            kubeconfig: d(&r.paths.kubeconfig),
            artifacts: d(&r.paths.artifacts),
            summary: d(&r.paths.summary),
            junit: d(&r.paths.junit),
        },
        bundle,
        manifests: crate::install::manifest_digests()?,
        timeout: opts.timeout,
        applied: applied_manifests(cell)?,
        stack: match &r.stack {
            Some(src) => {
                let stack = Stack::load(src)?;
                stack.check(opts.prometheus.as_ref(), &|_, _, _| true, "")?;
                Some(plan::StackPlan::of(
                    &stack,
                    opts.kubeconfig.is_none(),
                    &assert_spec(&r, Some(&stack)).prometheuses,
                ))
            }
            None => None,
        },
        workloads: !opts.no_workloads,
    };
    Ok(plan::build(&input))
}

/// What the Prometheus CR and the cell's ServiceMonitor say, read from the files the run applies.
fn applied_manifests(cell: &crate::matrix::Cell) -> Result<plan::Applied> {
    let root = crate::workspace_root();
    let prometheus =
        crate::k8s::manifests::read_manifest_dir(&root.join(crate::install::PROMETHEUS_DIR))?;
    let sm_path = root.join(cell.servicemonitor.manifest());
    let sm = crate::k8s::manifests::read_manifest_file(&sm_path)?;
    let [sm] = sm.as_slice() else {
        bail!(
            "{} must hold exactly one ServiceMonitor, found {} objects",
            cell.servicemonitor.manifest(),
            sm.len()
        );
    };
    plan::describe_applied(&prometheus, sm)
}

/// What the caller of [`execute`] provides: how progress is shown (a spinner on a terminal,
/// plain lines in CI), phase by phase and, in the assert phase, check by check.
pub trait Frontend: Send + Sync {
    /// A phase starts.
    fn phase_started(&self, id: PhaseId);
    /// A phase ended after `took`, `ok` or not.
    fn phase_done(&self, id: PhaseId, took: Duration, ok: bool);
    /// A check of the assert phase ended (its [`CheckResult::line`] is what to print).
    fn check_done(&self, result: &CheckResult);
}

/// Runs one phase between the frontend's lines; returns its duration and result.
async fn run_phase<T, E, F: std::future::Future<Output = Result<T, E>>>(
    frontend: &dyn Frontend,
    id: PhaseId,
    body: F,
) -> (Duration, Result<T, E>) {
    frontend.phase_started(id);
    let started = Instant::now();
    let res = body.await;
    let took = started.elapsed();
    frontend.phase_done(id, took, res.is_ok());
    (took, res)
}

/// Runs every phase. `Err` only for preflight problems (nothing was created); later failures are
/// reported, torn down and returned as [`Outcome::Failed`].
///
/// # Errors
/// Preflight refused the input (nothing was created).
pub async fn execute(cell: &Cell, opts: &Options, frontend: &dyn Frontend) -> Result<Outcome> {
    let r = resolve(cell, opts)?;
    // Listen for Ctrl-C from the start, so the default handler never kills us mid-create.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    let preflight = {
        let fut = run_phase(frontend, PhaseId::Preflight, preflight(&r));
        tokio::pin!(fut);
        tokio::select! {
            res = &mut fut => Some(res),
            _ = &mut ctrl_c => None,
        }
    };
    // Host warnings print once the preflight line is done (a spinner would tear them apart).
    let (took, prepared) = match preflight {
        None => {
            eprintln!("interrupted during preflight; nothing was created");
            return Ok(Outcome::Interrupted);
        }
        Some((_, Err(refused))) => {
            eprint!("{}", refused.host_text);
            return Err(refused
                .error
                .context("preflight failed; nothing was created"));
        }
        Some((took, Ok(prepared))) => {
            eprint!("{}", prepared.host.text);
            (took, prepared)
        }
    };
    let mut journal = Journal {
        timings: vec![(PhaseId::Preflight, took, true)],
        host_findings: prepared.host.findings.clone(),
        ..Journal::default()
    };
    let mut footprint = Footprint::default();

    let result = {
        let fut = phases(&r, prepared, &mut footprint, &mut journal, frontend);
        tokio::pin!(fut);
        tokio::select! {
            res = &mut fut => Some(res),
            _ = &mut ctrl_c => None,
        }
    };
    let outcome = match result {
        None => Outcome::Interrupted,
        Some(Ok(())) => Outcome::Passed,
        Some(Err(failed)) => {
            let msg = crate::errors::error_chain(failed.error.as_ref());
            eprintln!("{} failed: {msg}", failed.phase.label());
            if let Some(finding) = &failed.finding {
                eprint!(
                    "{}",
                    crate::diagnose::render_text(std::slice::from_ref(finding))
                );
            }
            journal.failure = Some((failed.phase, msg));
            journal.create_finding = failed.finding;
            Outcome::Failed
        }
    };
    let started = Instant::now();
    frontend.phase_started(PhaseId::Teardown);
    teardown(&r, &footprint, outcome).await;
    let took = started.elapsed();
    frontend.phase_done(PhaseId::Teardown, took, true);
    journal.timings.push((PhaseId::Teardown, took, true));
    summary::write(&r, &journal, outcome);
    Ok(outcome)
}

/// A phase that failed: which, why, and what the diagnosis found (a failed `kind create`).
struct Failed {
    phase: PhaseId,
    error: anyhow::Error,
    finding: Option<Finding>,
}

/// The error of one phase, as [`Failed`].
trait PhaseError {
    fn failed(self, phase: PhaseId) -> Failed;
}

impl PhaseError for anyhow::Error {
    fn failed(self, phase: PhaseId) -> Failed {
        Failed {
            phase,
            error: self,
            finding: None,
        }
    }
}

impl PhaseError for ClusterError {
    fn failed(self, phase: PhaseId) -> Failed {
        Failed {
            phase,
            error: self.error,
            finding: self.finding,
        }
    }
}

/// Phases 2–7, each fed what the ones before it made.
async fn phases(
    r: &Resolved<'_>,
    prepared: Prepared,
    footprint: &mut Footprint,
    journal: &mut Journal,
    frontend: &dyn Frontend,
) -> Result<(), Failed> {
    // `--timeout` bounds each phase: every step of a phase gets what is left of the phase's own
    // deadline, never the whole timeout again (issue 19).
    let timeout = r.opts.timeout;
    macro_rules! phase {
        ($id:expr, |$left:ident| $body:expr) => {{
            let deadline = Instant::now() + timeout;
            #[allow(unused_variables)]
            let $left = move || crate::k8s::wait::remaining(deadline);
            let (took, res) = run_phase(frontend, $id, $body).await;
            journal.timings.push(($id, took, res.is_ok()));
            match res {
                Ok(made) => made,
                Err(err) => return Err(PhaseError::failed(err, $id)),
            }
        }};
    }

    let Prepared {
        install,
        target,
        host,
    } = prepared;
    let reused = matches!(target, Target::Kind { exists: true, .. });
    // `kind create` bounds itself (`--wait`); the phase's deadline covers what we wait for.
    let client = phase!(PhaseId::Cluster, |left| cluster_phase(
        r, target, &host, footprint
    ));
    let stack = match install {
        Install::Stack(stack) => {
            let existing = r.opts.kubeconfig.is_some();
            let spec = assert_spec(r, Some(&stack));
            phase!(PhaseId::Operator, |left| async {
                if reused {
                    // A reused kind cluster may serve kinds the stack's CRDs do not bring.
                    crate::stack::install::check_against_cluster(
                        &stack,
                        r.opts.prometheus.as_ref(),
                        &client,
                    )
                    .await?;
                }
                crate::stack::install::operator_phase(&client, &stack, !existing, left()).await
            });
            phase!(PhaseId::Prometheus, |left| {
                crate::stack::install::prometheus_phase(&client, &stack, left())
            });
            phase!(PhaseId::ServiceMonitor, |left| {
                crate::stack::install::servicemonitor_phase(&client, &spec.prometheuses, left())
            });
            Some(stack)
        }
        Install::Ours { bundle } => {
            let cache = r.work_dir.join("cache");
            phase!(PhaseId::Operator, |left| async {
                let bundle = match bundle {
                    Some(bundle) => bundle,
                    None => {
                        let src = crate::operator::BundleSource::for_cell(r.cell, None);
                        crate::operator::load_bundle(&src, &cache, left()).await?
                    }
                };
                crate::operator::install(&client, &bundle, left()).await?;
                Ok::<_, anyhow::Error>(
                    crate::operator::wait_kubelet_service(&client, left()).await?,
                )
            });
            phase!(
                PhaseId::Prometheus,
                |left| crate::install::apply_prometheus(&client, left())
            );
            phase!(PhaseId::ServiceMonitor, |left| {
                crate::install::apply_servicemonitor(&client, r.cell.servicemonitor, left())
            });
            None
        }
    };
    if r.opts.no_workloads {
        eprintln!("{} skipped (--no-workloads)", PhaseId::Workloads.label());
    } else {
        phase!(PhaseId::Workloads, |left| crate::install::apply_workloads(
            &client,
            left()
        ));
    }
    let spec = assert_spec(r, stack.as_ref());
    phase!(PhaseId::Assert, |left| assert_phase(
        r,
        &client,
        &spec,
        left(),
        frontend
    ));
    Ok(())
}

/// What the assert phase checks for our own manifests: Prometheus `monitoring/e2e`, the cell's
/// ServiceMonitor variant and metrics, and a running pod in each namespace we put one in.
pub fn our_assert_spec(cell: &Cell) -> crate::assert::Spec {
    crate::assert::Spec {
        prometheuses: vec![crate::assert::PrometheusRef::new(
            crate::install::PROMETHEUS_NAMESPACE,
            crate::install::PROMETHEUS_NAME,
        )],
        metrics: cell.metrics.clone(),
        ours: Some(cell.servicemonitor),
        namespaces: [
            "kube-system",
            crate::install::PROMETHEUS_NAMESPACE,
            "pme2e-apps",
            "pme2e-batch",
        ]
        .map(String::from)
        .to_vec(),
    }
}

/// What the assert phase checks: our Prometheus, or each of the stack's (or `--prometheus`'s).
fn assert_spec(r: &Resolved<'_>, stack: Option<&Stack>) -> crate::assert::Spec {
    let mut spec = match stack {
        Some(stack) => stack.assert_spec(
            r.opts.prometheus.as_ref(),
            &r.cell.metrics,
            !r.opts.no_workloads,
        ),
        None => our_assert_spec(r.cell),
    };
    if r.opts.no_workloads {
        spec.namespaces.retain(|ns| !ns.starts_with("pme2e-"));
    }
    spec
}

async fn assert_phase(
    r: &Resolved<'_>,
    client: &kube::Client,
    spec: &crate::assert::Spec,
    timeout: Duration,
    frontend: &dyn Frontend,
) -> Result<()> {
    let outputs = super::verify::Outputs {
        junit: r.paths.junit.clone(),
        artifacts: r.paths.artifacts.clone(),
    };
    super::verify::verify(client, spec, timeout, &outputs, &mut |c| {
        frontend.check_done(c)
    })
    .await?;
    Ok(())
}
