//! `cargo xtask e2e`: executes the [`crate::plan`] — preflight, kind cluster, operator,
//! Prometheus, ServiceMonitor, workloads, the cluster tests, teardown — with a progress line per
//! phase, artifacts on failure, `summary.md`, and Ctrl-C handling.
//!
//! Ownership rule: only a cluster this run created is ever deleted (not a `--reuse`d one, never
//! one reached through `--kubeconfig`), and nothing is created before preflight passes.

use crate::cluster::{self, Kind, KindPin, RunPaths};
use crate::matrix::Cell;
use crate::plan::{self, BundleChoice, DisplayPaths, Keep, Mode, PhaseId, Plan, PlanInput};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use xshell::{cmd, Shell};

/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The run's options (the flags of `cargo xtask e2e`).
#[derive(Debug, Clone)]
pub struct Options {
    /// `--name`; default `pme2e-<cell>`.
    pub name: Option<String>,
    pub keep: bool,
    pub keep_on_failure: bool,
    pub reuse: bool,
    /// `--kubeconfig`: an existing cluster; phases 3–8 only.
    pub kubeconfig: Option<PathBuf>,
    pub operator_bundle: Option<PathBuf>,
    /// `--kind-config`: replaces the cell's kind config.
    pub kind_config: Option<PathBuf>,
    /// Deadline of each wait.
    pub timeout: Duration,
    pub verbose: bool,
}

impl Options {
    fn mode(&self) -> Mode {
        match (&self.kubeconfig, self.reuse) {
            (Some(k), _) => Mode::Existing {
                kubeconfig: cluster::display_path(k),
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
    cluster::validate_cluster_name(&name)?;
    let work_dir = cluster::work_dir();
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
pub fn plan(cell: &Cell, opts: &Options) -> Result<Plan> {
    let r = resolve(cell, opts)?;
    let d = cluster::display_path;
    let platform = cluster::platform();
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
        manifests: crate::install::manifest_digests()?,
        timeout: opts.timeout,
        applied: applied_manifests(cell)?,
    };
    Ok(plan::build(&input))
}

/// What the Prometheus CR and the cell's ServiceMonitor say, read from the files the run applies.
fn applied_manifests(cell: &crate::matrix::Cell) -> Result<plan::Applied> {
    let root = crate::workspace_root();
    let prometheus = crate::install::read_manifest_dir(&root.join(crate::install::PROMETHEUS_DIR))?;
    let sm_path = root.join(cell.servicemonitor.manifest());
    let sm = crate::install::read_manifest_file(&sm_path)?;
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
    Passed,
    Failed,
    Interrupted,
}

impl Outcome {
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

/// Runs every phase. `Err` only for preflight problems (nothing was created); later failures are
/// reported, torn down and returned as [`Outcome::Failed`].
pub async fn execute(cell: &Cell, opts: &Options) -> Result<Outcome> {
    let r = resolve(cell, opts)?;
    let progress = Progress::new(opts.verbose);
    // Listen for Ctrl-C from the start, so the default handler never kills us mid-create.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    let mut state = State::default();
    let preflight = {
        let fut = progress.phase(PhaseId::Preflight, preflight(&r, &mut state));
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
        let fut = phases(&r, &mut state, &progress);
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
    progress.start(PhaseId::Teardown);
    teardown(&r, &mut state, outcome).await;
    let took = started.elapsed();
    progress.done(PhaseId::Teardown, took, true);
    state.timings.push((PhaseId::Teardown, took, true));
    write_summary(&r, &state, outcome);
    Ok(outcome)
}

async fn preflight(r: &Resolved<'_>, state: &mut State) -> Result<()> {
    if let Some(path) = &r.opts.operator_bundle {
        // A local file costs nothing to verify: a wrong one is refused before any cluster exists.
        let src = crate::operator::BundleSource::for_cell(r.cell, Some(path));
        state.bundle = Some(crate::operator::load_bundle(&src, &r.work_dir.join("cache")).await?);
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
    let nodes = cluster::read_kind_config(&r.kind_config)?;
    cluster::check_docker().await?;
    host_checks(r, state, &nodes).await?;
    let bin = match KindPin::new(r.cell, &cluster::platform()) {
        Ok(pin) => cluster::ensure_kind(&pin, &r.work_dir).await?,
        // No pinned binary for this platform: only a kind of the right version on PATH will do.
        Err(err) => cluster::KindBinary {
            path: cluster::kind_on_path(&r.cell.kind_version).map_err(|note| err.context(note))?,
            origin: cluster::KindOrigin::Path,
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
    nodes: &cluster::KindConfigSummary,
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
        .downcast_ref::<cluster::KindFailed>()
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

async fn phases(r: &Resolved<'_>, state: &mut State, progress: &Progress) -> PhaseResult {
    let timeout = r.opts.timeout;
    macro_rules! phase {
        ($id:expr, $body:expr) => {{
            let (took, res) = progress.phase($id, $body).await;
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
                crate::operator::load_bundle(&src, &cache).await?
            }
        };
        crate::operator::install(&client, &bundle, timeout).await?;
        crate::operator::wait_kubelet_service(&client, timeout).await
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
    phase!(PhaseId::Assert, assert_phase(r, &kubeconfig));
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
    let client = crate::install::kube_client(&kubeconfig).await?;
    state.client = Some(client.clone());
    if r.opts.kubeconfig.is_some() {
        // Not our cluster: phases 3–8 only (a real cluster may well have a NotReady node).
        return Ok(());
    }
    crate::install::wait_nodes_ready(&client, r.opts.timeout).await
}

async fn assert_phase(r: &Resolved<'_>, kubeconfig: &Path) -> Result<()> {
    std::fs::create_dir_all(&r.paths.artifacts)
        .with_context(|| format!("creating {}", r.paths.artifacts.display()))?;
    let sh = Shell::new()?;
    sh.change_dir(crate::workspace_root());
    sh.set_var("E2E_KUBECONFIG", kubeconfig);
    sh.set_var("E2E_CELL", &r.cell.name);
    sh.set_var("E2E_ARTIFACTS_DIR", &r.paths.artifacts);
    // The cell's metrics, or `--metric`'s: the cluster test checks each.
    sh.set_var("E2E_METRICS", plan::metrics_env(&r.cell.metrics));
    let args = &plan::NEXTEST_ARGS[1..];
    let mut command =
        tokio::process::Command::from(std::process::Command::from(cmd!(sh, "cargo {args...}")));
    command
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let status = command
        .status()
        .await
        .context("running `cargo nextest run --profile e2e --run-ignored only`")?;
    if !status.success() {
        bail!(
            "the cluster tests failed ({status}); see the nextest output above, {}/coverage.json and \
             target/nextest/e2e/junit.xml",
            cluster::display_path(&r.paths.artifacts)
        );
    }
    Ok(())
}

/// What teardown does, decided from how the run ended and what it owns. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeardownActions {
    /// `artifacts::collect` + `kind export logs` into `artifacts/`.
    pub collect: bool,
    /// `kind delete cluster`: only ever for a cluster this run created.
    pub delete: bool,
}

pub fn teardown_actions(
    outcome: Outcome,
    created: bool,
    keep: bool,
    keep_on_failure: bool,
) -> TeardownActions {
    let keep = match outcome {
        Outcome::Passed | Outcome::Interrupted => keep,
        Outcome::Failed => keep || keep_on_failure,
    };
    TeardownActions {
        collect: outcome == Outcome::Failed,
        delete: created && !keep,
    }
}

async fn teardown(r: &Resolved<'_>, state: &mut State, outcome: Outcome) {
    let actions = teardown_actions(outcome, state.created, r.opts.keep, r.opts.keep_on_failure);
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
    let text = render_summary(
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

/// The Markdown summary (for `$GITHUB_STEP_SUMMARY`): outcome, phase timings, findings (a failed
/// `kind create`, host warnings), coverage.
pub fn render_summary(
    cell: &Cell,
    name: &str,
    outcome: Outcome,
    timings: &[(PhaseId, Duration, bool)],
    failure: Option<&(PhaseId, String)>,
    findings: &[crate::diagnose::Finding],
    coverage_json: Option<&str>,
) -> String {
    let verdict = match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "FAILED",
        Outcome::Interrupted => "interrupted",
    };
    let mut out = format!("## pod-metrics-e2e `{}`: {verdict}\n\n", cell.name);
    let _ = writeln!(
        out,
        "kind {}, Kubernetes {}, prometheus-operator {}, cluster `{name}`\n",
        cell.kind_version,
        cell.kubernetes_version(),
        cell.operator_version
    );
    out.push_str("| phase | result | duration |\n| --- | --- | --- |\n");
    for (id, took, ok) in timings {
        let result = if *ok { "ok" } else { "failed" };
        let _ = writeln!(
            out,
            "| {} | {result} | {:.1}s |",
            id.label(),
            took.as_secs_f64()
        );
    }
    if let Some((phase, msg)) = failure {
        let _ = writeln!(
            out,
            "\n**{} failed:**\n\n```\n{}\n```",
            phase.label(),
            msg.trim()
        );
    }
    if !findings.is_empty() {
        let _ = writeln!(
            out,
            "\n### Findings\n\n```\n{}```",
            crate::diagnose::render_text(findings)
        );
    }
    match coverage_json.map(serde_json::from_str::<crate::coverage::MetricsReport>) {
        Some(Ok(report)) => {
            // Per metric: a table row each, then the report with every missing pod by name.
            out.push_str(
                "\n### Coverage\n\n| metric | pods | containers | covered |\n| --- | --- | --- | --- |\n",
            );
            for m in &report.metrics {
                let _ = writeln!(
                    out,
                    "| `{}` | {}/{} | {}/{} | {} |",
                    m.metric,
                    m.pods_covered,
                    m.pods_total,
                    m.containers_covered,
                    m.containers_total,
                    if m.is_complete() { "yes" } else { "**no**" }
                );
            }
            let _ = writeln!(out, "\n```\n{}\n```", report.to_string().trim());
        }
        Some(Err(err)) => {
            let _ = writeln!(out, "\ncoverage.json could not be read: {err}");
        }
        None => {}
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Progress: a spinner per phase on a terminal, plain lines otherwise (CI logs).

struct Progress {
    spinner: bool,
    current: std::sync::Mutex<Option<ProgressBar>>,
}

impl Progress {
    fn new(verbose: bool) -> Self {
        // With -v, kind's own output streams to the terminal and would tear a spinner apart.
        Progress {
            spinner: std::io::stderr().is_terminal() && !verbose,
            current: Default::default(),
        }
    }

    fn start(&self, id: PhaseId) {
        // nextest and teardown print their own lines, which a spinner would overwrite.
        if self.spinner && !matches!(id, PhaseId::Assert | PhaseId::Teardown) {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
            );
            pb.set_message(id.label());
            pb.enable_steady_tick(Duration::from_millis(120));
            *self.current.lock().expect("progress lock") = Some(pb);
        } else {
            eprintln!("{} ...", id.label());
        }
    }

    fn done(&self, id: PhaseId, took: Duration, ok: bool) {
        let line = format!(
            "{} {} ({:.1}s)",
            id.label(),
            if ok { "ok" } else { "FAILED" },
            took.as_secs_f64()
        );
        match self.current.lock().expect("progress lock").take() {
            // Clear the spinner and print a plain line, so the log reads the same with or without a TTY.
            Some(pb) => {
                pb.finish_and_clear();
                eprintln!("{line}");
            }
            None => eprintln!("{line}"),
        }
    }

    /// Runs one phase between its progress lines; returns its duration and result.
    async fn phase<F: std::future::Future<Output = Result<()>>>(
        &self,
        id: PhaseId,
        body: F,
    ) -> (Duration, Result<()>) {
        self.start(id);
        let started = Instant::now();
        let res = body.await;
        let took = started.elapsed();
        self.done(id, took, res.is_ok());
        (took, res)
    }
}

/// Parses `--timeout`: `300`, `300s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("`{text}` is not a duration; use e.g. 300s, 5m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => bail!("`{text}` is not a duration; use e.g. 300s, 5m or 1h"),
    };
    if secs == 0 {
        bail!("--timeout must be more than 0s");
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        for bad in ["", "5x", "m", "0s", "-1"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn summary_has_timings_failure_and_coverage() {
        let m = Matrix::load_default().unwrap();
        let cell = m.default_cell();
        let timings = [
            (PhaseId::Preflight, Duration::from_millis(1500), true),
            (PhaseId::Cluster, Duration::ZERO, false),
        ];
        let failure = (PhaseId::Cluster, "nodes not Ready".to_string());
        let text = render_summary(
            cell,
            "pme2e-x",
            Outcome::Failed,
            &timings,
            Some(&failure),
            &[],
            None,
        );
        assert!(text.contains(": FAILED"), "{text}");
        assert!(text.contains("| [1/8] preflight | ok | 1.5s |"), "{text}");
        assert!(text.contains("| [2/8] cluster | failed |"), "{text}");
        assert!(text.contains("nodes not Ready"), "{text}");
        assert!(!text.contains("Coverage"), "{text}");

        // CPU covered, memory missing for apps/web: reported per metric.
        let pods = [crate::pods::RunningPod::new("apps", "web", &["app"])];
        let row: std::collections::BTreeMap<String, String> =
            [("namespace", "apps"), ("pod", "web"), ("container", "app")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let no_series: Vec<std::collections::BTreeMap<String, String>> = Vec::new();
        let memory = crate::coverage::MetricName::new(crate::coverage::MEMORY_METRIC).unwrap();
        let report = crate::coverage::MetricsReport {
            metrics: vec![
                crate::coverage::evaluate(&pods, [&row]),
                crate::coverage::evaluate_for(&memory, &pods, &no_series),
            ],
            waited_ms: 1000,
            deadline_ms: 45000,
            polls: 2,
            requests: 8,
        };
        let json = serde_json::to_string(&report).unwrap();
        let text = render_summary(
            cell,
            "pme2e-x",
            Outcome::Failed,
            &timings,
            None,
            &[],
            Some(&json),
        );
        assert!(text.contains("### Coverage"), "{text}");
        assert!(
            text.contains("| `container_cpu_usage_seconds_total` | 1/1 | 1/1 | yes |"),
            "{text}"
        );
        assert!(
            text.contains("| `container_memory_working_set_bytes` | 0/1 | 0/1 | **no** |"),
            "{text}"
        );
        assert!(text.contains("NOT covered: 1/2 metrics"), "{text}");
        assert!(
            text.contains("apps/web: no series for any container (app)"),
            "{text}"
        );
        let text = render_summary(
            cell,
            "pme2e-x",
            Outcome::Failed,
            &timings,
            None,
            &[],
            Some("{"),
        );
        assert!(text.contains("coverage.json could not be read"), "{text}");
    }

    #[test]
    fn teardown_deletes_only_what_this_run_created_unless_kept() {
        use Outcome::*;
        let t = teardown_actions;
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
