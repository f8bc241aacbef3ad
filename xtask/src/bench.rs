//! `cargo xtask bench coverage`: the coverage-check benchmark against a real Prometheus
//! (overhead over Prometheus's own answer, scale to 50,000 pods, peak memory, time to green).
//! `cargo xtask bench build`: build times in fresh target directories and dependencies built
//! twice ([`build`]).

pub mod build;

use anyhow::Result;
use std::process::ExitCode;
use xshell::{cmd, Shell};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// The coverage check's overhead over Prometheus's own answer, its scale (1,000 to 50,000
    /// pods: time, requests, peak memory) and time to green (`cargo bench -p e2e --bench coverage`;
    /// `E2E_BENCH_SIZES=1000,10000` picks sizes). Exits non-zero when a target fails.
    Coverage,
    /// Build times in fresh target directories: a cold `cargo build -p xtask`, the extra compile
    /// of the first `cargo xtask e2e --kubeconfig <twin>` after it, the build of `cargo xtask
    /// test`; and every dependency built more than once across xtask, the tests and the twin.
    /// `--features-only` compares only the resolved features (seconds). Exits non-zero when a
    /// target fails.
    Build(build::Args),
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.what {
        What::Coverage => {
            let sh = Shell::new()?;
            sh.change_dir(e2e::workspace_root());
            // Through std so the benchmark's live output and exit code reach the caller unchanged.
            let status = crate::cargo::scrub(&mut std::process::Command::from(cmd!(
                sh,
                "cargo bench -p e2e --bench coverage"
            )))
            .status()?;
            Ok(crate::test::exit_code(status))
        }
        What::Build(args) => build::run(args),
    }
}
