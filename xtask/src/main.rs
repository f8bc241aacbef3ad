//! `cargo xtask`: the command line of pod-metrics-e2e. Thin on purpose: parse flags, call `e2e`.
//!
//! Each subcommand lives in its own module with an `Args` struct and a `run` function.

mod assert;
mod bench;
mod capture;
mod cargo;
mod check;
mod doctor;
mod down;
mod duration;
mod e2e;
mod image;
mod ls;
mod matrix;
mod replay;
mod test;
mod twin;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "pod-metrics-e2e: prove every running container's metrics (CPU, memory) reach Prometheus"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the unit and component tiers (cargo nextest).
    Test(test::Args),
    /// Build a local image: `image prometheus` packs the prometheus binary on PATH for the component tier.
    Image(image::Args),
    /// Run a benchmark: `bench coverage` (the coverage check from 1,000 to 50,000 pods), `bench build` (build times, dependencies built twice).
    Bench(bench::Args),
    /// The test matrix (fixtures/matrix.toml): a table, one `--cell`, or `--json` for GitHub Actions.
    Matrix(matrix::Args),
    /// The cluster tier: kind → prometheus-operator → Prometheus → ServiceMonitor → assert (`--dry-run` shows the plan).
    E2e(e2e::Args),
    /// Rerun exactly the assert phase's checks against a running cluster (read-only); writes junit.xml, coverage.json, diagnose.json.
    Assert(assert::Args),
    /// Delete a kind cluster this harness created (`pme2e-…` only).
    Down(down::Args),
    /// List the kind clusters this harness created (`pme2e-…`).
    Ls(ls::Args),
    /// Why are pod metrics missing on a cluster? Read-only; `--json`, `--list` (every finding).
    Doctor(doctor::Args),
    /// Coverage check + Prometheus-side diagnosis against a Prometheus URL and a `kubectl get pods -A -o json` file.
    Check(check::Args),
    /// Save what a replay needs from a cluster (read-only): cadvisor per node, pods, ServiceMonitors, Prometheus objects, kubelet Service/Endpoints.
    Capture(capture::Args),
    /// Reproduce a captured cluster's problem without the cluster: fixture kubelets + a real Prometheus + check.
    Replay(replay::Args),
    /// Start the cluster twin (a stand-in API server for developing the harness, never a proof about a real cluster).
    Twin(twin::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Test(args) => test::run(args),
        Cmd::Image(args) => image::run(args),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Matrix(args) => matrix::run(args),
        Cmd::E2e(args) => e2e::run(args),
        Cmd::Assert(args) => assert::run(args),
        Cmd::Down(args) => down::run(args),
        Cmd::Ls(args) => ls::run(args),
        Cmd::Doctor(args) => doctor::run(args),
        Cmd::Check(args) => check::run(args),
        Cmd::Twin(args) => twin::run(args),
        Cmd::Capture(args) => capture::run(args),
        Cmd::Replay(args) => replay::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // Each cause once: `{err:#}` repeats those a message already names.
            eprintln!("error: {}", ::e2e::errors::error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}
