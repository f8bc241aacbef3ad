//! `cargo xtask doctor [--kubeconfig PATH] [--json]`: why are pod metrics missing on this cluster?
//!
//! Read-only against any cluster (kind or real): lists nodes, the kubelet Service/Endpoints,
//! ServiceMonitors, Prometheus objects, namespaces, deployments and pods, and asks each replica of
//! each Prometheus object (found from the objects, in any namespace) through the API server's pod
//! proxy. Never writes anything.

use anyhow::{bail, Context, Result};
use e2e::diagnose::{self, catalogue, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Kubeconfig of the cluster to diagnose (its current context). Defaults to $KUBECONFIG;
    /// ~/.kube/config is never read implicitly.
    #[arg(long, env = "KUBECONFIG", value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Diagnose this Prometheus object only (NAMESPACE/NAME); default: each one of the cluster,
    /// each of its replicas.
    #[arg(long, value_name = "NS/NAME")]
    prometheus: Option<e2e::assert::PrometheusRef>,
    /// A metric every running container must have a series of (per-metric findings); repeat for
    /// several. Default: container_cpu_usage_seconds_total and container_memory_working_set_bytes.
    #[arg(long = "metric", value_name = "NAME", conflicts_with = "list")]
    metrics: Vec<e2e::coverage::MetricName>,
    /// Print the findings as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Print the table of every finding the diagnosis knows (the table of docs/findings.md) and exit.
    #[arg(long, conflicts_with_all = ["kubeconfig", "json"])]
    list: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.list {
        print!("{}", catalogue::markdown_table());
        return Ok(ExitCode::SUCCESS);
    }
    let kubeconfig = kubeconfig_path(args.kubeconfig)?;
    let metrics = crate::check::metrics_or_default(args.metrics);
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let diagnoses = runtime.block_on(async {
        let client = e2e::k8s::client::kube_client(&kubeconfig).await?;
        let pods = e2e::pods::list_running_pods(&client).await?;
        diagnose::cluster_per_prometheus(&client, args.prometheus.as_ref(), &pods, &metrics).await
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&diagnose::to_json_per_prometheus(&diagnoses))?
        );
    } else {
        print!("{}", diagnose::render_text_per_prometheus(&diagnoses));
    }
    let all: Vec<diagnose::Finding> = diagnoses.into_iter().flat_map(|d| d.findings).collect();
    Ok(ExitCode::from(Verdict::of(&all).exit_code()))
}

/// `--kubeconfig` or `$KUBECONFIG` (a single file); refuses to guess.
fn kubeconfig_path(arg: Option<PathBuf>) -> Result<PathBuf> {
    let Some(path) = arg.filter(|p| !p.as_os_str().is_empty()) else {
        bail!(
            "doctor needs a cluster: pass --kubeconfig PATH or set KUBECONFIG (it never reads ~/.kube/config \
             implicitly; for your default config pass --kubeconfig ~/.kube/config)"
        );
    };
    if path.to_string_lossy().contains(':') {
        bail!(
            "KUBECONFIG {:?} lists several files; pass one with --kubeconfig PATH",
            path.display().to_string()
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_without_a_kubeconfig() {
        let err = kubeconfig_path(None).unwrap_err().to_string();
        assert!(err.contains("--kubeconfig PATH or set KUBECONFIG"), "{err}");
        assert!(kubeconfig_path(Some(PathBuf::new())).is_err());
    }

    #[test]
    fn refuses_a_kubeconfig_list() {
        let err = kubeconfig_path(Some("/a:/b".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("several files"), "{err}");
        assert_eq!(
            kubeconfig_path(Some("/a".into())).unwrap(),
            PathBuf::from("/a")
        );
    }
}
