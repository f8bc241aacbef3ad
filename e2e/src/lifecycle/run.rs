//! `cargo xtask e2e`: executes the [`crate::lifecycle::plan`] — preflight, kind cluster, operator,
//! Prometheus, ServiceMonitor, workloads, the cluster tests, teardown — with a progress line per
//! phase, artifacts on failure, `summary.md`, and Ctrl-C handling.
//!
//! Ownership rule: only a cluster this run created is ever deleted (not a `--reuse`d one, never
//! one reached through `--kubeconfig`), and nothing is created before preflight passes.

use crate::kind::{self, Kind, KindPin};
use crate::lifecycle::plan::{
    self, BundleChoice, DisplayPaths, Keep, Mode, PhaseId, Plan, PlanInput,
};
use crate::matrix::Cell;
use crate::workdir::{self, RunPaths};
use anyhow::{bail, Context, Result};
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

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
    /// Deadline of each wait.
    pub timeout: Duration,
    /// `-v`: stream kind's output.
    pub verbose: bool,
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

    fn keep(&self) -> Keep {
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
struct Resolved<'a> {
    cell: &'a Cell,
    opts: &'a Options,
    name: String,
    work_dir: PathBuf,
    paths: RunPaths,
    kind_config: PathBuf,
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
        },
        bundle,
        manifests: crate::k8s::manifests::manifest_digests()?,
        timeout: opts.timeout,
        applied: applied_manifests(cell)?,
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
struct State {
    kind: Option<Kind>,
    /// This run started `kind create` (so the cluster, even half-made, is ours to delete).
    created: bool,
    /// A kind cluster of our name exists (created or reused): `kind export logs` works.
    kind_cluster: bool,
    client: Option<kube::Client>,
    kubeconfig: Option<PathBuf>,
    /// `--operator-bundle`, verified and parsed in preflight.
    bundle: Option<crate::operator::Bundle>,
    timings: Vec<(PhaseId, Duration, bool)>,
    failure: Option<(PhaseId, String)>,
    /// Host preflight: the warnings and notes as printed, and the findings for summary.md.
    host_text: String,
    host_findings: Vec<crate::diagnose::Finding>,
    /// Docker is a snap (a cause `kind create` failures are classified against).
    docker_snap: bool,
    /// The cell a cgroup-v2 failure's fix names.
    suggested_cell: Option<String>,
    /// Why `kind create` failed (`cluster-create-failed`).
    create_finding: Option<crate::diagnose::Finding>,
    /// `kind export logs` already ran (after a failed create): teardown does not repeat it.
    kind_logs_exported: bool,
}

/// What the caller of [`execute`] provides: how progress is shown (a spinner on a terminal,
/// plain lines in CI) and how the assert phase runs the cluster tests. `cargo xtask e2e` spawns
/// `cargo nextest` for the latter; tests stand in for both.
pub trait Frontend: Send + Sync {
    /// A phase starts.
    fn phase_started(&self, id: PhaseId);
    /// A phase ended after `took`, `ok` or not.
    fn phase_done(&self, id: PhaseId, took: Duration, ok: bool);
    /// Runs the cluster tests against the installed cluster.
    ///
    /// # Errors
    /// The tests failed or could not run; the message says where their output is.
    fn assert<'a>(&'a self, ctx: &'a AssertContext) -> BoxFuture<'a, Result<()>>;
}

/// What the assert phase knows: the environment the cluster tests read (`E2E_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertContext {
    /// `E2E_KUBECONFIG`.
    pub kubeconfig: PathBuf,
    /// `E2E_CELL`.
    pub cell: String,
    /// `E2E_ARTIFACTS_DIR` (created before the tests run).
    pub artifacts: PathBuf,
    /// `E2E_METRICS`: the metrics every running container must have, comma-separated.
    pub metrics: String,
}

impl AssertContext {
    /// The `E2E_*` variables, in the order the plan prints them.
    pub fn env(&self) -> [(&'static str, std::ffi::OsString); 4] {
        [
            ("E2E_KUBECONFIG", self.kubeconfig.clone().into()),
            ("E2E_CELL", self.cell.clone().into()),
            ("E2E_ARTIFACTS_DIR", self.artifacts.clone().into()),
            ("E2E_METRICS", self.metrics.clone().into()),
        ]
    }
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
            let msg = format!("{err:#}");
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

async fn preflight(r: &Resolved<'_>, state: &mut State) -> Result<()> {
    if let Some(path) = &r.opts.operator_bundle {
        // A local file costs nothing to verify: a wrong one is refused before any cluster exists.
        let src = crate::operator::BundleSource::for_cell(r.cell, Some(path));
        state.bundle = Some(
            crate::operator::load_bundle(&src, &r.work_dir.join("cache"), r.opts.timeout).await?,
        );
    }
    if let Some(kubeconfig) = &r.opts.kubeconfig {
        std::fs::read(kubeconfig).with_context(|| {
            format!(
                "cannot read --kubeconfig {}: pass the kubeconfig file of an existing cluster",
                kubeconfig.display()
            )
        })?;
        state.kubeconfig = Some(kubeconfig.clone());
        return Ok(());
    }
    // Cheapest and most likely mistakes first.
    let nodes = kind::read_kind_config(&r.kind_config)?;
    crate::docker::check_engine(r.opts.timeout).await?;
    host_checks(r, state, &nodes).await?;
    let bin = match KindPin::new(r.cell, &kind::platform()) {
        Ok(pin) => kind::ensure_kind(&pin, &r.work_dir, r.opts.timeout).await?,
        // No pinned binary for this platform: only a kind of the right version on PATH will do.
        Err(err) => kind::KindBinary {
            path: kind::kind_on_path(&r.cell.kind_version).map_err(|note| err.context(note))?,
            origin: kind::KindOrigin::Path,
        },
    };
    tracing::debug!(path = %bin.path.display(), origin = ?bin.origin, "kind binary");
    let kind = Kind {
        bin: bin.path,
        kubeconfig: r.paths.kubeconfig.clone(),
        verbose: r.opts.verbose,
    };
    let existing = kind.get_clusters().await?;
    if existing.contains(&r.name) {
        if !r.opts.reuse {
            bail!(
                "a kind cluster named {0} already exists: pass --reuse to use it (it will not be deleted), \
                 or delete it with `cargo xtask down --name {0}`",
                r.name
            );
        }
        state.kind_cluster = true;
    }
    state.kind = Some(kind);
    Ok(())
}

/// Host preflight: prints warnings (never blocking); a certain failure stops preflight.
async fn host_checks(
    r: &Resolved<'_>,
    state: &mut State,
    nodes: &kind::KindConfigSummary,
) -> Result<()> {
    use crate::host;
    let matrix = crate::matrix::Matrix::load_default()?;
    let facts = host::gather(&host::proc_root(), r.opts.timeout).await;
    let findings = host::assess(&facts, &matrix, r.cell, host::Needs::from(nodes));
    let text = host::render(&findings, &facts.notes);
    if host::blocks(&findings) {
        bail!(
            "the host checks found a certain failure:\n{}",
            text.trim_end()
        );
    }
    state.docker_snap = facts.docker.as_ref().is_some_and(|d| d.snap());
    state.suggested_cell = host::suggested_cell(&matrix, r.cell).map(|c| c.name.clone());
    state.host_text = text;
    state.host_findings = findings;
    Ok(())
}

/// After a failed `kind create` (nodes retained): export the node logs, classify the failure,
/// write `diagnose.json`. Best effort: problems are printed, the run fails either way.
async fn explain_create_failure(
    r: &Resolved<'_>,
    state: &mut State,
    kind: &Kind,
    err: &anyhow::Error,
) {
    let logs_dir = r.paths.artifacts.join("kind-logs");
    let export_error = match std::fs::create_dir_all(&r.paths.artifacts) {
        Err(e) => Some(format!("creating {}: {e}", r.paths.artifacts.display())),
        Ok(()) => {
            match tokio::time::timeout(r.opts.timeout, kind.export_logs(&logs_dir, &r.name)).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{e:#}")),
                Err(_) => Some(format!(
                    "`kind export logs` timed out after {}s",
                    r.opts.timeout.as_secs()
                )),
            }
        }
    };
    state.kind_logs_exported = true;
    let kind_stderr = err
        .downcast_ref::<kind::KindFailed>()
        .map(|k| k.stderr.clone())
        .unwrap_or_else(|| format!("{err:#}"));
    let ctx = crate::diagnose::cluster_create::Context {
        kind_stderr,
        logs_dir,
        export_error,
        snap: state.docker_snap,
        suggested_cell: state.suggested_cell.clone(),
    };
    let finding = crate::diagnose::cluster_create::diagnose(&ctx);
    let json = crate::diagnose::to_json(std::slice::from_ref(&finding));
    let path = r.paths.artifacts.join("diagnose.json");
    let text = serde_json::to_string_pretty(&json).expect("findings serialise");
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("warning: cannot write {}: {e}", path.display());
    }
    state.create_finding = Some(finding);
}

type PhaseResult = std::result::Result<(), (PhaseId, anyhow::Error)>;

async fn phases(r: &Resolved<'_>, state: &mut State, frontend: &dyn Frontend) -> PhaseResult {
    let timeout = r.opts.timeout;
    macro_rules! phase {
        ($id:expr, $body:expr) => {{
            let (took, res) = run_phase(frontend, $id, $body).await;
            state.timings.push(($id, took, res.is_ok()));
            if let Err(err) = res {
                return Err(($id, err));
            }
        }};
    }

    phase!(PhaseId::Cluster, cluster_phase(r, state));
    let client = state.client.clone().expect("cluster phase sets the client");
    let preloaded = state.bundle.take();
    let cache = r.work_dir.join("cache");
    phase!(PhaseId::Operator, async {
        let bundle = match preloaded {
            Some(bundle) => bundle,
            None => {
                let src = crate::operator::BundleSource::for_cell(r.cell, None);
                crate::operator::load_bundle(&src, &cache, timeout).await?
            }
        };
        crate::operator::install(&client, &bundle, timeout).await?;
        Ok(crate::operator::wait_kubelet_service(&client, timeout).await?)
    });
    phase!(
        PhaseId::Prometheus,
        crate::install::apply_prometheus(&client, timeout)
    );
    phase!(
        PhaseId::ServiceMonitor,
        crate::install::apply_servicemonitor(&client, r.cell.servicemonitor, timeout)
    );
    phase!(
        PhaseId::Workloads,
        crate::install::apply_workloads(&client, timeout)
    );
    let kubeconfig = state
        .kubeconfig
        .clone()
        .expect("cluster phase sets the kubeconfig");
    phase!(PhaseId::Assert, assert_phase(r, &kubeconfig, frontend));
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
    Ok(crate::k8s::wait::wait_nodes_ready(&client, r.opts.timeout).await?)
}

async fn assert_phase(r: &Resolved<'_>, kubeconfig: &Path, frontend: &dyn Frontend) -> Result<()> {
    std::fs::create_dir_all(&r.paths.artifacts)
        .with_context(|| format!("creating {}", r.paths.artifacts.display()))?;
    let ctx = AssertContext {
        kubeconfig: kubeconfig.to_path_buf(),
        cell: r.cell.name.clone(),
        artifacts: r.paths.artifacts.clone(),
        // The cell's metrics, or `--metric`'s: the cluster test checks each.
        metrics: plan::metrics_env(&r.cell.metrics),
    };
    frontend.assert(&ctx).await
}

/// What teardown does, decided from how the run ended and what it owns. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeardownActions {
    /// `artifacts::collect` + `kind export logs` into `artifacts/`.
    pub collect: bool,
    /// `kind delete cluster`: only ever for a cluster this run created.
    pub delete: bool,
}

/// Collect on failure; delete only a cluster this run `created`, as [`Keep::deletes`] says.
pub fn teardown_actions(outcome: Outcome, created: bool, keep: Keep) -> TeardownActions {
    let failed = outcome == Outcome::Failed;
    TeardownActions {
        collect: failed,
        delete: created && keep.deletes(failed),
    }
}

async fn teardown(r: &Resolved<'_>, state: &mut State, outcome: Outcome) {
    let actions = teardown_actions(outcome, state.created, r.opts.keep());
    if outcome == Outcome::Interrupted {
        eprintln!("interrupted (Ctrl-C)");
    }
    if actions.collect {
        collect_artifacts(r, state).await;
    }
    if actions.delete {
        let kind = state.kind.as_ref().expect("created implies kind");
        match kind.delete(&r.name).await {
            Ok(()) => {
                let _ = std::fs::remove_file(&r.paths.kubeconfig);
                eprintln!("deleted kind cluster {}", r.name);
            }
            Err(err) => eprintln!(
                "warning: could not delete kind cluster {0}: {err:#}\n  delete it with `cargo xtask down --name {0}`",
                r.name
            ),
        }
    } else if let Some(kubeconfig) = state.kubeconfig.as_ref().filter(|k| k.exists()) {
        let why = if state.created {
            "kept"
        } else if r.opts.kubeconfig.is_some() {
            "not ours to delete (--kubeconfig)"
        } else {
            "reused, not deleted"
        };
        eprintln!(
            "cluster {} {why}; reconnect with:\n  export KUBECONFIG={}",
            r.name,
            kubeconfig.display()
        );
        if state.created {
            eprintln!("  delete it with `cargo xtask down --name {}`", r.name);
        }
    }
}

/// Best effort: every source is tried, failures are printed, nothing here fails the teardown.
async fn collect_artifacts(r: &Resolved<'_>, state: &State) {
    let dir = &r.paths.artifacts;
    if let Err(err) = std::fs::create_dir_all(dir) {
        eprintln!("warning: cannot create {}: {err}", dir.display());
        return;
    }
    if let Some(client) = &state.client {
        // Bounded: the cluster may be the very thing that is broken.
        match tokio::time::timeout(r.opts.timeout, crate::artifacts::collect(client, dir)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("warning: collecting cluster artifacts: {err:#}"),
            Err(_) => eprintln!(
                "warning: collecting cluster artifacts timed out after {}s",
                r.opts.timeout.as_secs()
            ),
        }
    }
    if state.kind_cluster && !state.kind_logs_exported {
        if let Some(kind) = &state.kind {
            if let Err(err) = kind.export_logs(&dir.join("kind-logs"), &r.name).await {
                eprintln!("warning: {err:#}");
            }
        }
    }
    eprintln!("artifacts: {}", dir.display());
}

// ---------------------------------------------------------------------------------------------
// summary.md

fn write_summary(r: &Resolved<'_>, state: &State, outcome: Outcome) {
    let coverage = std::fs::read_to_string(r.paths.artifacts.join("coverage.json")).ok();
    let findings: Vec<_> = state
        .create_finding
        .iter()
        .chain(&state.host_findings)
        .cloned()
        .collect();
    let text = super::summary::render(
        r.cell,
        &r.name,
        outcome,
        &state.timings,
        state.failure.as_ref(),
        &findings,
        coverage.as_deref(),
    );
    let write =
        std::fs::create_dir_all(&r.paths.dir).and_then(|()| std::fs::write(&r.paths.summary, text));
    match write {
        Ok(()) => eprintln!("summary: {}", r.paths.summary.display()),
        Err(err) => eprintln!("warning: cannot write {}: {err}", r.paths.summary.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;

    #[test]
    fn teardown_deletes_only_what_this_run_created_unless_kept() {
        use Outcome::*;
        // (keep, keep_on_failure) as the flags give them.
        let t = |outcome, created, keep, keep_on_failure| {
            let opts = Options {
                name: None,
                keep,
                keep_on_failure,
                reuse: false,
                kubeconfig: None,
                operator_bundle: None,
                kind_config: None,
                timeout: Duration::from_secs(1),
                verbose: false,
            };
            teardown_actions(outcome, created, opts.keep())
        };
        assert_eq!(
            t(Passed, true, false, false),
            TeardownActions {
                collect: false,
                delete: true
            }
        );
        assert_eq!(
            t(Failed, true, false, false),
            TeardownActions {
                collect: true,
                delete: true
            }
        );
        assert_eq!(
            t(Interrupted, true, false, false),
            TeardownActions {
                collect: false,
                delete: true
            }
        );
        // --keep keeps always; --keep-on-failure only on failure.
        for outcome in [Passed, Failed, Interrupted] {
            assert!(!t(outcome, true, true, false).delete);
        }
        assert!(!t(Failed, true, false, true).delete);
        assert!(t(Passed, true, false, true).delete);
        assert!(t(Interrupted, true, false, true).delete);
        // Reused or --kubeconfig clusters are never deleted, whatever happens.
        for outcome in [Passed, Failed, Interrupted] {
            assert!(!t(outcome, false, false, false).delete);
        }
        assert!(t(Failed, false, false, false).collect);
    }

    #[test]
    fn kubeconfig_and_reuse_exclude_each_other() {
        let m = Matrix::load_default().unwrap();
        let opts = Options {
            name: None,
            keep: false,
            keep_on_failure: false,
            reuse: true,
            kubeconfig: Some("/k".into()),
            operator_bundle: None,
            kind_config: None,
            timeout: Duration::from_secs(1),
            verbose: false,
        };
        let err = resolve(m.default_cell(), &opts)
            .err()
            .expect("rejected")
            .to_string();
        assert!(err.contains("--reuse"), "{err}");
    }
}
