//! `cargo xtask ls`: the kind clusters this harness created (`pme2e-…`), with their kubeconfig.

use anyhow::{Context, Result};
use e2e::kind::{self, Kind};
use e2e::workdir::{self, RunPaths};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<ExitCode> {
    let work_dir = workdir::work_dir();
    let bin = crate::down::kind_binary(&work_dir)?;
    // `kind get clusters` reads no kubeconfig; this path only keeps KUBECONFIG off ~/.kube/config.
    let kind = Kind {
        bin,
        kubeconfig: work_dir.join("kubeconfig-unused"),
        verbose: false,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let clusters = runtime.block_on(kind.get_clusters())?;
    let ours: Vec<&String> = clusters
        .iter()
        .filter(|c| c.starts_with(kind::NAME_PREFIX))
        .collect();
    if ours.is_empty() {
        eprintln!("no {}… kind clusters", kind::NAME_PREFIX);
    }
    for name in ours {
        let kubeconfig = RunPaths::new(&work_dir, name).kubeconfig;
        if kubeconfig.exists() {
            println!("{name}\tKUBECONFIG={}", kubeconfig.display());
        } else {
            println!("{name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
