//! `cargo xtask bench coverage`: the coverage-check benchmark against a real Prometheus
//! (overhead over Prometheus's own answer, scale to 50,000 pods, peak memory, time to green).

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
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.what {
        What::Coverage => {
            let sh = Shell::new()?;
            sh.change_dir(e2e::workspace_root());
            // Through std so the benchmark's live output and exit code reach the caller unchanged.
            let status =
                std::process::Command::from(cmd!(sh, "cargo bench -p e2e --bench coverage"))
                    .status()?;
            Ok(crate::test::exit_code(status))
        }
    }
}
