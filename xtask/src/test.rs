//! `cargo xtask test`: the README's test command.

use anyhow::{bail, Result};
use std::process::ExitCode;
use xshell::{cmd, Shell};

#[derive(clap::Args)]
pub struct Args {
    /// nextest profile from `.config/nextest.toml`: `default` (unit + component), `ci` (JUnit XML,
    /// no fail-fast) or `e2e` (cluster tests; needs a cluster, see `cargo xtask e2e`).
    #[arg(long, default_value = "default")]
    profile: String,
    /// Extra arguments passed to `cargo nextest run` (e.g. a test filter).
    #[arg(last = true)]
    rest: Vec<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let sh = Shell::new()?;
    sh.change_dir(e2e::workspace_root());
    if cmd!(sh, "cargo nextest --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        bail!(
            "cargo-nextest is not installed; install it with `cargo install cargo-nextest --locked` \
             (or see https://nexte.st/docs/installation/), then run `cargo xtask test` again"
        );
    }
    let profile = &args.profile;
    let rest = &args.rest;
    // Run through std so nextest's exit code (and its live output) reach the caller unchanged.
    let status = std::process::Command::from(cmd!(
        sh,
        "cargo nextest run --workspace --profile {profile} {rest...}"
    ))
    .status()?;
    Ok(exit_code(status))
}

/// Maps a child's exit status to ours (a signal counts as failure).
pub fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}
