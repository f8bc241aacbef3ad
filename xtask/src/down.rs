//! `cargo xtask down --name <name>`: deletes a kind cluster this harness created (`pme2e-…`).

use anyhow::{bail, Context, Result};
use e2e::kind::{self, Kind};
use e2e::workdir::{self, RunPaths};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The cluster to delete; only names starting with `pme2e-` are accepted.
    #[arg(long, value_name = "NAME")]
    name: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let name = &args.name;
    if !name.starts_with(kind::NAME_PREFIX) {
        bail!(
            "refusing to delete `{name}`: this harness only deletes the clusters it creates, named `{}…` \
             (`cargo xtask ls` lists them); delete other clusters with `kind delete cluster --name {name}`",
            kind::NAME_PREFIX
        );
    }
    kind::validate_cluster_name(name)?;
    let work_dir = workdir::work_dir();
    let paths = RunPaths::new(&work_dir, name);
    let kind = Kind {
        bin: kind_binary(&work_dir)?,
        kubeconfig: paths.kubeconfig.clone(),
        verbose: false,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async {
        let clusters = kind.get_clusters().await?;
        if !clusters.iter().any(|c| c == name) {
            eprintln!("no kind cluster named {name}; nothing to delete");
            return Ok(ExitCode::SUCCESS);
        }
        // kind locks the kubeconfig before deleting and creates its directory to do so: a
        // cluster without a run directory here must not leave an empty one behind.
        let had_run_dir = paths.dir.exists();
        let deleted = kind.delete(name).await;
        let _ = std::fs::remove_file(&paths.kubeconfig);
        if !had_run_dir {
            let _ = std::fs::remove_dir_all(&paths.dir);
        }
        deleted?;
        eprintln!("deleted kind cluster {name}");
        Ok(ExitCode::SUCCESS)
    })
}

/// kind from PATH or `target/e2e/tools/`, with the fix when there is none.
pub fn kind_binary(work_dir: &std::path::Path) -> Result<std::path::PathBuf> {
    kind::find_any_kind(work_dir).with_context(|| {
        format!(
            "no `kind` on PATH nor in {}/tools/: run `cargo xtask e2e` once (it downloads the pinned kind), \
             or install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)",
            workdir::display_path(work_dir)
        )
    })
}
