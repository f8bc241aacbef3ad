//! `cargo xtask`: the command line of pod-metrics-e2e. Thin on purpose: parse flags, call `e2e`.
//!
//! Each subcommand lives in its own module with an `Args` struct and a `run` function.

mod test;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "pod-metrics-e2e: prove every pod's CPU metric reaches Prometheus")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the unit and component tiers (cargo nextest).
    Test(test::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Test(args) => test::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
