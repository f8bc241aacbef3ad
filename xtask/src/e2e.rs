//! `cargo xtask e2e`: the cluster tier (kind → prometheus-operator → Prometheus → ServiceMonitor →
//! workloads → assert → teardown). The work is in `e2e::lifecycle::run`; this file maps flags.

use anyhow::{Context, Result};
use e2e::assert::CheckResult;
use e2e::lifecycle::plan::PhaseId;
use e2e::lifecycle::run::{self, Options};
use e2e::matrix::Matrix;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

/// `--timeout`'s default as clap shows it: the library's [`e2e::lifecycle::run::DEFAULT_TIMEOUT`]
/// (a test keeps them equal).
const DEFAULT_TIMEOUT: &str = "300s";

#[derive(clap::Args)]
pub struct Args {
    /// Matrix cell from fixtures/matrix.toml (`cargo xtask matrix` lists them); default: the first.
    #[arg(long, value_name = "NAME")]
    cell: Option<String>,
    /// kind cluster name (must start with `pme2e-`); default `pme2e-<cell>`.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Never delete the cluster; print the KUBECONFIG line to reconnect.
    #[arg(long)]
    keep: bool,
    /// Keep the cluster when a phase fails (deleted on success).
    #[arg(long)]
    keep_on_failure: bool,
    /// Use an existing kind cluster of that name (never deleted by this run); create it if absent.
    #[arg(long, conflicts_with = "kubeconfig")]
    reuse: bool,
    /// Run phases 3–8 against an existing cluster (never created, deleted or otherwise owned).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Use this copy of the operator's bundle.yaml (air-gapped); verified against the cell's sha256.
    #[arg(long, value_name = "PATH")]
    operator_bundle: Option<PathBuf>,
    /// Use this kind config instead of the cell's (must be kind.x-k8s.io/v1alpha4).
    #[arg(long, value_name = "PATH")]
    kind_config: Option<PathBuf>,
    /// Print every phase, command, URL, sha256 and manifest digest; touch nothing, need no Docker.
    #[arg(long)]
    dry_run: bool,
    /// Deadline of each phase (every wait in it shares it): e.g. 300s, 5m.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_TIMEOUT, value_parser = crate::duration::parse)]
    timeout: std::time::Duration,
    /// A metric every running container must have a series of, instead of the cell's list
    /// (default container_cpu_usage_seconds_total and container_memory_working_set_bytes);
    /// repeat for several.
    #[arg(long = "metric", value_name = "NAME")]
    metrics: Vec<e2e::coverage::MetricName>,
    /// Your prometheus-operator stack instead of the pinned bundle, manifests/prometheus/ and our
    /// ServiceMonitor: a YAML file, a directory of YAML files, or - for stdin
    /// (`kustomize build overlays/dev | cargo xtask e2e --stack -`). With --kubeconfig, the cluster
    /// runs it already: nothing of it is applied.
    #[arg(long, value_name = "PATH")]
    stack: Option<PathBuf>,
    /// Assert in this Prometheus of the stack only (NAMESPACE/NAME); default: each of the stack's.
    #[arg(long, value_name = "NS/NAME")]
    prometheus: Option<e2e::assert::PrometheusRef>,
    /// Apply none of our workloads (fixtures/workloads/): assert on what runs already.
    #[arg(long)]
    no_workloads: bool,
    /// Stream kind's output and log debug details.
    #[arg(short, long)]
    verbose: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let matrix = Matrix::load_default()?;
    let mut cell = match &args.cell {
        Some(name) => matrix.cell(name)?,
        None => matrix.default_cell(),
    }
    .clone();
    if !args.metrics.is_empty() {
        cell.metrics = args.metrics;
    }
    let cell = &cell;
    let opts = Options {
        name: args.name,
        keep: args.keep,
        keep_on_failure: args.keep_on_failure,
        reuse: args.reuse,
        kubeconfig: args.kubeconfig.map(absolute).transpose()?,
        operator_bundle: args.operator_bundle.map(absolute).transpose()?,
        kind_config: args.kind_config.map(absolute).transpose()?,
        timeout: args.timeout,
        verbose: args.verbose,
        stack: args
            .stack
            .map(|p| -> Result<_> {
                Ok(if p.as_os_str() == "-" {
                    e2e::stack::StackSource::Stdin
                } else {
                    e2e::stack::StackSource::Path(absolute(p)?)
                })
            })
            .transpose()?,
        prometheus: args.prometheus,
        no_workloads: args.no_workloads,
        proc_root: test_seam("E2E_PROC_ROOT").map_or_else(|| "/proc".into(), PathBuf::from),
        kind_platform: test_seam("E2E_KIND_PLATFORM"),
    };
    if args.dry_run {
        print!("{}", run::plan(cell, &opts)?.render());
        return Ok(ExitCode::SUCCESS);
    }
    if args.verbose {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("e2e=debug,xtask=debug")
            .with_writer(std::io::stderr)
            .try_init();
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let frontend = Terminal::new(args.verbose);
    let outcome = runtime.block_on(run::execute(cell, &opts, &frontend))?;
    Ok(ExitCode::from(outcome.exit_code()))
}

/// An undocumented seam the CLI tests set on the binary (`E2E_PROC_ROOT`: a fake `/proc` for
/// the host checks; `E2E_KIND_PLATFORM`: the kind platform, so `--dry-run` prints the same on
/// every machine). Read here, at the edge; the library takes them as [`Options`]. Unset or empty
/// is `None`.
fn test_seam(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// How `cargo xtask e2e` shows the run: a spinner per phase on a terminal, plain lines otherwise
/// (CI logs), and a line per check of the assert phase.
pub(crate) struct Terminal {
    spinner: bool,
    current: Mutex<Option<ProgressBar>>,
}

impl Terminal {
    pub(crate) fn new(verbose: bool) -> Self {
        // With -v, kind's own output streams to the terminal and would tear a spinner apart.
        Terminal {
            spinner: std::io::stderr().is_terminal() && !verbose,
            current: Mutex::new(None),
        }
    }
}

impl run::Frontend for Terminal {
    fn phase_started(&self, id: PhaseId) {
        // Teardown prints its own lines, which a spinner would overwrite.
        if self.spinner && id != PhaseId::Teardown {
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

    fn phase_done(&self, id: PhaseId, took: Duration, ok: bool) {
        let line = format!(
            "{} {} ({:.1}s)",
            id.label(),
            if ok { "ok" } else { "FAILED" },
            took.as_secs_f64()
        );
        // Clear the spinner and print a plain line, so the log reads the same with or without a TTY.
        if let Some(pb) = self.current.lock().expect("progress lock").take() {
            pb.finish_and_clear();
        }
        eprintln!("{line}");
    }

    fn check_done(&self, result: &CheckResult) {
        let line = format!("  {}", result.line());
        match self.current.lock().expect("progress lock").as_ref() {
            // Above the spinner, which keeps turning below.
            Some(pb) => pb.println(line),
            None => eprintln!("{line}"),
        }
    }
}

/// Flags are relative to where the user ran the command; `e2e` works from the workspace root.
fn absolute(path: PathBuf) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path);
    }
    Ok(std::env::current_dir()
        .context("reading the current directory")?
        .join(path))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_timeout_flag_defaults_to_the_librarys_default_timeout() {
        assert_eq!(
            crate::duration::parse(super::DEFAULT_TIMEOUT),
            Ok(e2e::lifecycle::run::DEFAULT_TIMEOUT)
        );
    }
}
