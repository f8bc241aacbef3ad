//! `cargo xtask capture --kubeconfig PATH --out DIR`: what `replay` needs from a cluster,
//! read-only (see `e2e::capture`).

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Kubeconfig of the cluster (its current context). Defaults to $KUBECONFIG; ~/.kube/config
    /// is never read implicitly.
    #[arg(long, env = "KUBECONFIG", value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Directory to write (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The operator's `--kubelet-service` (NAMESPACE/NAME).
    #[arg(long, value_name = "NS/NAME", default_value = "kube-system/kubelet")]
    kubelet_service: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let kubeconfig = args.kubeconfig.context(
        "no kubeconfig: pass --kubeconfig PATH or set KUBECONFIG (~/.kube/config is never read implicitly)",
    )?;
    let (ns, name) = args.kubelet_service.split_once('/').with_context(|| {
        format!(
            "--kubelet-service {:?}: expected NAMESPACE/NAME, e.g. kube-system/kubelet",
            args.kubelet_service
        )
    })?;
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let manifest = runtime.block_on(async {
        let client = e2e::k8s::client::kube_client(&kubeconfig).await?;
        let m = e2e::capture::capture(&client, &args.out, (ns, name), &mut |line| {
            eprintln!("{line}")
        })
        .await?;
        anyhow::Ok(m)
    })?;
    let failed: Vec<&str> = manifest
        .nodes
        .iter()
        .filter(|n| n.cadvisor.is_none())
        .map(|n| n.name.as_str())
        .collect();
    println!(
        "captured {} of {} nodes, {} ServiceMonitor(s) scraping /metrics/cadvisor, cluster {} → {}",
        manifest.nodes.len() - failed.len(),
        manifest.nodes.len(),
        manifest.servicemonitors.len(),
        manifest.cluster_version,
        args.out.display()
    );
    println!("replay it: cargo xtask replay {}", args.out.display());
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: the node proxy could not reach the kubelet of {} (recorded in capture.json; replay shows these nodes' targets as down)",
            failed.join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}
