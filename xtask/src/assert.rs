//! `cargo xtask assert --kubeconfig PATH`: exactly the checks of `cargo xtask e2e`'s assert phase,
//! alone, against a cluster that is already up (a kept one, or yours). Read-only; writes
//! `junit.xml`, `coverage.json` and, when a check fails, `diagnose.json` to the directory it names.

use anyhow::{Context, Result};
use e2e::assert::{CheckResult, PrometheusRef};
use e2e::lifecycle::verify::{self, Outputs};
use e2e::matrix::Matrix;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Kubeconfig of the cluster (its current context); ~/.kube/config is never read implicitly.
    #[arg(long, value_name = "PATH")]
    kubeconfig: PathBuf,
    /// Matrix cell whose ServiceMonitor variant and metrics are expected (default: the default cell).
    #[arg(long, value_name = "NAME")]
    cell: Option<String>,
    /// The stack the cluster runs (file, directory or `-`): assert in each of its Prometheus
    /// objects (the cell's `stack` otherwise, when it has one).
    #[arg(long, value_name = "PATH")]
    stack: Option<PathBuf>,
    /// Assert in this Prometheus object only (`NAMESPACE/NAME`).
    #[arg(long, value_name = "NS/NAME")]
    prometheus: Option<PrometheusRef>,
    /// A metric every running container must have a series of, instead of the cell's list; repeat
    /// for several.
    #[arg(long = "metric", value_name = "NAME")]
    metrics: Vec<e2e::coverage::MetricName>,
    /// Our workloads were not applied (`cargo xtask e2e --no-workloads`): do not expect their
    /// namespaces.
    #[arg(long)]
    no_workloads: bool,
    /// Deadline of all the checks together: e.g. 300s, 5m.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = crate::duration::parse)]
    timeout: std::time::Duration,
    /// Where to write junit.xml, coverage.json and diagnose.json (default: <work dir>/assert).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
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
    let stack = match (&args.stack, &cell.stack) {
        (Some(p), _) => Some(e2e::stack::StackSource::from_arg(p)),
        (None, Some(p)) => Some(e2e::stack::StackSource::Path(e2e::workspace_root().join(p))),
        (None, None) => None,
    };
    let mut spec = match stack {
        None => e2e::lifecycle::run::our_assert_spec(&cell),
        Some(src) => {
            let stack = e2e::stack::Stack::load(&src)?;
            stack.check(args.prometheus.as_ref(), &|_, _, _| true, "")?;
            stack.assert_spec(args.prometheus.as_ref(), &cell.metrics, !args.no_workloads)
        }
    };
    if let Some(p) = args.prometheus {
        spec.prometheuses = vec![p];
    }
    if args.no_workloads {
        spec.namespaces.retain(|ns| !ns.starts_with("pme2e-"));
    }
    let dir = match args.out {
        Some(dir) => dir,
        None => e2e::workdir::work_dir().join("assert"),
    };
    // A diagnosis left by an earlier failing run must not be read as this run's.
    let _ = std::fs::remove_file(dir.join("diagnose.json"));
    let _ = std::fs::remove_dir_all(dir.join("coverage"));
    let outputs = Outputs {
        junit: dir.join("junit.xml"),
        artifacts: dir.clone(),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let result = runtime.block_on(async {
        let client = e2e::k8s::client::kube_client(&args.kubeconfig).await?;
        verify::verify(
            &client,
            &spec,
            args.timeout,
            &outputs,
            &mut |c: &CheckResult| eprintln!("{}", c.line()),
        )
        .await
    });
    eprintln!("outputs: {}", e2e::workdir::display_path(&dir));
    match result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            eprintln!("{}", e2e::errors::error_chain(err.as_ref()));
            Ok(ExitCode::FAILURE)
        }
    }
}
