//! `cargo xtask twin --profile 1.19|1.20|1.21|1.27 --kubeconfig-out PATH`: runs the cluster twin (the
//! dev-only `testkit` crate's `twin` binary) in the foreground. Spawned through cargo so xtask
//! stays free of testkit's dependencies.
//!
//! The wrapper execs `cargo run`, which execs the twin in turn (cargo's `exec_replace` on Unix):
//! one process from start to end, so SIGINT and SIGTERM sent to `cargo xtask twin`'s pid (a
//! `timeout`, a CI cancel, a script's `kill`) reach the twin itself, which removes its containers
//! and the kubeconfig on either. A wrapper that waited for a child instead died on SIGTERM and
//! left the twin and its Prometheus containers running.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(
    long_about = "Starts the cluster twin in the foreground: a stand-in Kubernetes API server \
    (profiles 1.19, 1.20, 1.21, 1.27) with controllers and a real Prometheus, for developing the harness \
    (`cargo xtask e2e --kubeconfig PATH`, `cargo xtask doctor --kubeconfig PATH`). It is a \
    stand-in, never a proof about a real cluster. Ctrl-C or SIGTERM stops it and removes its \
    containers and the kubeconfig. Needs Docker and E2E_PROMETHEUS_IMAGE (or \
    quay.io/prometheus/prometheus:v2.26.0)."
)]
pub struct Args {
    /// Kubernetes version the twin behaves like: 1.19, 1.20, 1.21 or 1.27.
    #[arg(long, value_parser = ["1.19", "1.20", "1.21", "1.27"])]
    profile: String,
    /// Where to write the kubeconfig (must not exist; removed when the twin stops).
    #[arg(long, value_name = "PATH")]
    kubeconfig_out: PathBuf,
    /// Number of nodes (one control plane, the rest workers).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
}

/// The `cargo run` command that builds and starts the twin binary.
fn command(args: &Args) -> std::process::Command {
    let mut cmd = crate::cargo::command();
    cmd.current_dir(e2e::workspace_root())
        .args(["run", "-q", "-p", "testkit", "--bin", "twin", "--"])
        .args(["--profile", &args.profile])
        .args(["--nodes", &args.nodes.to_string()])
        .arg("--kubeconfig-out")
        .arg(&args.kubeconfig_out);
    cmd
}

pub fn run(args: Args) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    // exec returns only when it failed.
    let err = command(&args).exec();
    Err(err).context("running `cargo run -p testkit --bin twin`")
}
