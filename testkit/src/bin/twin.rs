//! `twin --profile 1.19|1.20|1.21|1.27 --kubeconfig-out PATH [--nodes N] [--name NAME]`: a cluster twin
//! in the foreground for developing the harness by hand. A stand-in, never a proof about a real
//! cluster. Writes the kubeconfig once the API answers; Ctrl-C (or SIGTERM) stops it, removes
//! its containers and the kubeconfig.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use testkit::twin::{Profile, Twin, TwinOptions};

const USAGE: &str = "usage: twin --profile 1.19|1.20|1.21|1.27 --kubeconfig-out PATH [--nodes N] [--name NAME]\n\
A stand-in Kubernetes API server (the cluster twin) for developing the harness: never a proof about a real cluster.";

struct Args {
    profile: Profile,
    out: PathBuf,
    nodes: usize,
    name: String,
}

fn parse() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let (mut profile, mut out, mut nodes, mut name) = (None, None, 3, "twin".to_string());
    while let Some(a) = it.next() {
        let mut val = |flag: &str| {
            it.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--profile" => {
                profile = Some(
                    val("--profile")?
                        .parse::<Profile>()
                        .map_err(anyhow::Error::msg)?,
                )
            }
            "--kubeconfig-out" => out = Some(PathBuf::from(val("--kubeconfig-out")?)),
            "--nodes" => {
                let v = val("--nodes")?;
                nodes = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=20).contains(n))
                    .with_context(|| format!("--nodes {v:?}: a number from 1 to 20"))?;
            }
            "--name" => name = val("--name")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let profile = profile.with_context(|| format!("--profile is required\n{USAGE}"))?;
    let out = out.with_context(|| format!("--kubeconfig-out is required\n{USAGE}"))?;
    if out.exists() {
        bail!("--kubeconfig-out {} exists already: choose a new path (the twin never overwrites a kubeconfig)", out.display());
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            bail!(
                "--kubeconfig-out {}: directory {} does not exist",
                out.display(),
                parent.display()
            );
        }
    }
    Ok(Args {
        profile,
        out,
        nodes,
        name,
    })
}

async fn run(args: Args) -> Result<()> {
    let mut opts = TwinOptions::new(args.profile);
    opts.nodes = args.nodes;
    opts.name = args.name;
    // Listening before anything starts: a SIGTERM during start-up (a `timeout`, a CI cancel)
    // stops the start and drops what it made, instead of killing the process mid-way.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let twin = tokio::select! {
        twin = Twin::start(opts) => twin.context("starting the twin")?,
        _ = term.recv() => bail!("stopped by SIGTERM while starting"),
        _ = int.recv() => bail!("stopped by SIGINT while starting"),
    };
    // The API answers once start returns; prove it with one request before writing the file.
    let client = e2e::k8s::client::kube_client(&twin.kubeconfig_path()).await?;
    client
        .apiserver_version()
        .await
        .context("the twin's API does not answer")?;
    twin.write_kubeconfig(&args.out)?;
    eprintln!(
        "twin {} (Kubernetes {} stand-in) at {}\nkubeconfig: {}\n  cargo xtask e2e --kubeconfig {}\n  cargo xtask doctor --kubeconfig {}\ncontainers: label {}={}\nCtrl-C (or SIGTERM) stops it.",
        args.profile.git_version(), args.profile, twin.url(), args.out.display(), args.out.display(), args.out.display(),
        testkit::RUN_LABEL, twin.datapath().map_or("none", |d| d.run_id())
    );
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!(
        "stopping the twin: removing its containers and {}",
        args.out.display()
    );
    let _ = std::fs::remove_file(&args.out);
    twin.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
