//! `cargo xtask bench coverage`: the coverage-check benchmark (10,000 pods against a real Prometheus).

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
    /// Time the aggregated coverage check against one query per pod (`cargo bench -p e2e --bench coverage`).
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
