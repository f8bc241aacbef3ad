//! `cargo xtask e2e`: executes the [`crate::lifecycle::plan`] — preflight, kind cluster, operator,
//! Prometheus, ServiceMonitor, workloads, the cluster tests, teardown — with a progress line per
//! phase, artifacts on failure, `summary.md`, and Ctrl-C handling.
//!
//! Ownership rule: only a cluster this run created is ever deleted (not a `--reuse`d one, never
//! one reached through `--kubeconfig`), and nothing is created before preflight passes.

use super::preflight::{explain_create_failure, preflight};
use super::teardown::{teardown, write_summary};
use crate::assert::{CheckResult, PrometheusRef};
use crate::kind::{self, Kind, KindPin};
use crate::lifecycle::plan::{
    self, BundleChoice, DisplayPaths, Keep, Mode, PhaseId, Plan, PlanInput,
};
use crate::matrix::Cell;
use crate::stack::{Stack, StackSource};
use crate::workdir::{self, RunPaths};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// `--timeout`'s default. It must outlast the slowest upstream step the run waits for:
/// prometheus-operator v0.48.1 rewrites the kubelet Endpoints every 3 minutes (a node its
/// start-up write missed appears then), and a changed config Secret reaches Prometheus within
/// the kubelet's sync (up to 90 s) plus the config reloader's 1 s (TWIN-FACTS §9). A test runs
/// the main job on the twin's preset of those delays (`testkit::twin::Timing::upstream`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The run's options (the flags of `cargo xtask e2e`).
#[derive(Debug, Clone)]
pub struct Options {
    /// `--name`; default `pme2e-<cell>`.
    pub name: Option<String>,
    /// `--keep`: never delete the cluster.
    pub keep: bool,
    /// `--keep-on-failure`: delete it on success only.
    pub keep_on_failure: bool,
    /// `--reuse`: use an existing kind cluster of that name.
    pub reuse: bool,
    /// `--kubeconfig`: an existing cluster; phases 3–8 only.
    pub kubeconfig: Option<PathBuf>,
    /// `--operator-bundle`: a local copy of the pinned bundle.
    pub operator_bundle: Option<PathBuf>,
    /// `--kind-config`: replaces the cell's kind config.
    pub kind_config: Option<PathBuf>,
    /// Deadline of each phase.
    pub timeout: Duration,
    /// `-v`: stream kind's output.
    pub verbose: bool,
    /// `--stack`: someone's stack instead of the bundle, `manifests/prometheus/` and our
    /// ServiceMonitor (the cell's `stack` otherwise).
    pub stack: Option<StackSource>,
    /// `--prometheus NS/NAME`: assert in this Prometheus of the stack only.
    pub prometheus: Option<PrometheusRef>,
    /// `--no-workloads`: apply none of our workloads.
    pub no_workloads: bool,
}

impl Options {
    /// No cluster of its own, defaults everywhere: what tests start from.
    pub fn new(timeout: Duration) -> Self {
        Options {
            name: None,
            keep: false,
            keep_on_failure: false,
            reuse: false,
            kubeconfig: None,
            operator_bundle: None,
            kind_config: None,
            timeout,
            verbose: false,
            stack: None,
            prometheus: None,
            no_workloads: false,
        }
    }
}

impl Options {
    fn mode(&self) -> Mode {
        match (&self.kubeconfig, self.reuse) {
            (Some(k), _) => Mode::Existing {
                kubeconfig: workdir::display_path(k),
            },
            (None, true) => Mode::Reuse,
            (None, false) => Mode::Create,
        }
    }

    pub(super) fn keep(&self) -> Keep {
        if self.keep {
            Keep::Always
        } else if self.keep_on_failure {
            Keep::OnFailure
        } else {
            Keep::Never
        }
    }
}

/// Everything resolved from a cell and the options, before anything is touched.
pub(super) struct Resolved<'a> {
    pub(super) cell: &'a Cell,
    pub(super) opts: &'a Options,
    pub(super) name: String,
    pub(super) work_dir: PathBuf,
    pub(super) paths: RunPaths,
    pub(super) kind_config: PathBuf,
    /// `--stack`, else the cell's `stack`.
    pub(super) stack: Option<StackSource>,
}

fn resolve<'a>(cell: &'a Cell, opts: &'a Options) -> Result<Resolved<'a>> {
    if opts.kubeconfig.is_some() && opts.reuse {
        bail!("--kubeconfig and --reuse exclude each other: --kubeconfig already means \"use this existing cluster\"");
    }
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| cell.default_cluster_name());
    kind::validate_cluster_name(&name)?;
    let stack = opts.stack.clone().or_else(|| {
        cell.stack
            .as_ref()
            .map(|p| StackSource::Path(crate::workspace_root().join(p)))
    });
    if stack.is_some() && opts.operator_bundle.is_some() {
        bail!("--operator-bundle and --stack exclude each other: the stack brings its own operator (or the cluster runs one); drop --operator-bundle");
    }
    if stack.is_none() && opts.prometheus.is_some() {
        bail!(
            "--prometheus needs --stack: without a stack the run asserts in its own Prometheus {}/{}",
            crate::install::PROMETHEUS_NAMESPACE,
            crate::install::PROMETHEUS_NAME
        );
    }
    let work_dir = workdir::work_dir();
    let kind_config = match &opts.kind_config {
        Some(p) => p.clone(),
        None if cell.kind_config.is_absolute() => cell.kind_config.clone(),
        None => crate::workspace_root().join(&cell.kind_config),
    };
    Ok(Resolved {
        paths: RunPaths::new(&work_dir, &name),
        cell,
        opts,
        name,
        work_dir,
        kind_config,
        stack,
    })
}

/// The plan for `--dry-run`: reads the manifests (for their digests) and nothing else.
///
/// # Errors
/// The options contradict each other, a name is invalid, or a manifest cannot be read.
pub fn plan(cell: &Cell, opts: &Options) -> Result<Plan> {
    let r = resolve(cell, opts)?;
    let d = workdir::display_path;
    let platform = kind::platform();
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

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every phase passed.
    Passed,
    /// A phase failed (reported, torn down).
    Failed,
    /// Ctrl-C.
    Interrupted,
}

impl Outcome {
    /// 0 passed, 1 failed, 130 interrupted.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Passed => 0,
            Outcome::Failed => 1,
            Outcome::Interrupted => EXIT_INTERRUPTED,
        }
    }
}

/// What the run has done so far; teardown decides from it.
#[derive(Default)]
pub(super) struct State {
    pub(super) kind: Option<Kind>,
    /// This run started `kind create` (so the cluster, even half-made, is ours to delete).
    pub(super) created: bool,
    /// A kind cluster of our name exists (created or reused): `kind export logs` works.
    pub(super) kind_cluster: bool,
    pub(super) client: Option<kube::Client>,
    pub(super) kubeconfig: Option<PathBuf>,
    /// `--operator-bundle`, verified and parsed in preflight.
    pub(super) bundle: Option<crate::operator::Bundle>,
    /// The stack, read and checked in preflight.
    pub(super) stack: Option<Stack>,
    pub(super) timings: Vec<(PhaseId, Duration, bool)>,
    pub(super) failure: Option<(PhaseId, String)>,
    /// Host preflight: the warnings and notes as printed, and the findings for summary.md.
    pub(super) host_text: String,
    pub(super) host_findings: Vec<crate::diagnose::Finding>,
    /// Docker is a snap (a cause `kind create` failures are classified against).
    pub(super) docker_snap: bool,
    /// The cell a cgroup-v2 failure's fix names.
    pub(super) suggested_cell: Option<String>,
    /// Why `kind create` failed (`cluster-create-failed`).
    pub(super) create_finding: Option<crate::diagnose::Finding>,
    /// `kind export logs` already ran (after a failed create): teardown does not repeat it.
    pub(super) kind_logs_exported: bool,
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
async fn run_phase<F: std::future::Future<Output = Result<()>>>(
    frontend: &dyn Frontend,
    id: PhaseId,
    body: F,
) -> (Duration, Result<()>) {
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

    let mut state = State::default();
    let preflight = {
        let fut = run_phase(frontend, PhaseId::Preflight, preflight(&r, &mut state));
        tokio::pin!(fut);
        tokio::select! {
            res = &mut fut => Some(res),
            _ = &mut ctrl_c => None,
        }
    };
    // Host warnings print once the preflight line is done (a spinner would tear them apart).
    eprint!("{}", state.host_text);
    match preflight {
        None => {
            eprintln!("interrupted during preflight; nothing was created");
            return Ok(Outcome::Interrupted);
        }
        Some((_, Err(err))) => return Err(err.context("preflight failed; nothing was created")),
        Some((took, Ok(()))) => state.timings.push((PhaseId::Preflight, took, true)),
    }

    let result = {
        let fut = phases(&r, &mut state, frontend);
        tokio::pin!(fut);
        tokio::select! {
            res = &mut fut => Some(res),
            _ = &mut ctrl_c => None,
        }
    };
    let outcome = match result {
        None => Outcome::Interrupted,
        Some(Ok(())) => Outcome::Passed,
        Some(Err((phase, err))) => {
            let msg = crate::errors::error_chain(err.as_ref());
            eprintln!("{} failed: {msg}", phase.label());
            if let Some(finding) = &state.create_finding {
                eprint!(
                    "{}",
                    crate::diagnose::render_text(std::slice::from_ref(finding))
                );
            }
            state.failure = Some((phase, msg));
            Outcome::Failed
        }
    };
    let started = Instant::now();
    frontend.phase_started(PhaseId::Teardown);
    teardown(&r, &mut state, outcome).await;
    let took = started.elapsed();
    frontend.phase_done(PhaseId::Teardown, took, true);
    state.timings.push((PhaseId::Teardown, took, true));
    write_summary(&r, &state, outcome);
    Ok(outcome)
}

type PhaseResult = std::result::Result<(), (PhaseId, anyhow::Error)>;

async fn phases(r: &Resolved<'_>, state: &mut State, frontend: &dyn Frontend) -> PhaseResult {
    // `--timeout` bounds each phase: every step of a phase gets what is left of the phase's own
    // deadline, never the whole timeout again (issue 19).
    let timeout = r.opts.timeout;
    macro_rules! phase {
        ($id:expr, |$left:ident| $body:expr) => {{
            let deadline = Instant::now() + timeout;
            #[allow(unused_variables)]
            let $left = move || crate::k8s::wait::remaining(deadline);
            let (took, res) = run_phase(frontend, $id, $body).await;
            state.timings.push(($id, took, res.is_ok()));
            if let Err(err) = res {
                return Err(($id, err));
            }
        }};
    }

    // `kind create` bounds itself (`--wait`); the phase's deadline covers what we wait for.
    phase!(PhaseId::Cluster, |left| cluster_phase(r, state));
    let client = state.client.clone().expect("cluster phase sets the client");
    match state.stack.clone() {
        Some(stack) => {
            let existing = r.opts.kubeconfig.is_some();
            let spec = assert_spec(r, Some(&stack));
            phase!(PhaseId::Operator, |left| async {
                if state.kind_cluster && !state.created {
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
        }
        None => {
            let preloaded = state.bundle.take();
            let cache = r.work_dir.join("cache");
            phase!(PhaseId::Operator, |left| async {
                let bundle = match preloaded {
                    Some(bundle) => bundle,
                    None => {
                        let src = crate::operator::BundleSource::for_cell(r.cell, None);
                        crate::operator::load_bundle(&src, &cache, left()).await?
                    }
                };
                crate::operator::install(&client, &bundle, left()).await?;
                Ok(crate::operator::wait_kubelet_service(&client, left()).await?)
            });
            phase!(
                PhaseId::Prometheus,
                |left| crate::install::apply_prometheus(&client, left())
            );
            phase!(PhaseId::ServiceMonitor, |left| {
                crate::install::apply_servicemonitor(&client, r.cell.servicemonitor, left())
            });
        }
    }
    if r.opts.no_workloads {
        eprintln!("{} skipped (--no-workloads)", PhaseId::Workloads.label());
    } else {
        phase!(PhaseId::Workloads, |left| crate::install::apply_workloads(
            &client,
            left()
        ));
    }
    let spec = assert_spec(r, state.stack.as_ref());
    phase!(PhaseId::Assert, |left| assert_phase(
        r,
        &client,
        &spec,
        left(),
        frontend
    ));
    Ok(())
}

async fn cluster_phase(r: &Resolved<'_>, state: &mut State) -> Result<()> {
    if let Some(kind) = state.kind.clone() {
        std::fs::create_dir_all(&r.paths.dir)
            .with_context(|| format!("creating {}", r.paths.dir.display()))?;
        // Known before kind runs, so an interrupted `--keep` run can still say how to reconnect.
        state.kubeconfig = Some(r.paths.kubeconfig.clone());
        if state.kind_cluster {
            // --reuse of an existing cluster: refresh its kubeconfig into our file.
            let text = kind.get_kubeconfig(&r.name).await?;
            std::fs::write(&r.paths.kubeconfig, text)
                .with_context(|| format!("writing {}", r.paths.kubeconfig.display()))?;
        } else {
            // Marked before starting: with --retain a failed or interrupted create leaves nodes behind.
            state.created = true;
            state.kind_cluster = true;
            if let Err(err) = kind
                .create(&r.name, &r.kind_config, &r.cell.node_image)
                .await
            {
                explain_create_failure(r, state, &kind, &err).await;
                return Err(err);
            }
        }
    }
    let kubeconfig = state
        .kubeconfig
        .clone()
        .expect("preflight sets the kubeconfig for --kubeconfig");
    let client = crate::k8s::client::kube_client(&kubeconfig).await?;
    state.client = Some(client.clone());
    if r.opts.kubeconfig.is_some() {
        // Not our cluster: phases 3–8 only (a real cluster may well have a NotReady node).
        return Ok(());
    }
    // After `kind create`, which waits for the control plane itself (its `--wait`).
    Ok(crate::k8s::wait::wait_nodes_ready(&client, r.opts.timeout).await?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;

    #[test]
    fn kubeconfig_and_reuse_exclude_each_other() {
        let m = Matrix::load_default().unwrap();
        let opts = Options {
            reuse: true,
            kubeconfig: Some("/k".into()),
            ..Options::new(Duration::from_secs(1))
        };
        let err = resolve(m.default_cell(), &opts)
            .err()
            .expect("rejected")
            .to_string();
        assert!(err.contains("--reuse"), "{err}");
    }
}
