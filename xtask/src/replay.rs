//! `cargo xtask replay DIR` (or `--cadvisor NODE=FILE … --pods FILE --servicemonitor FILE`):
//! a captured cluster's scrape, replayed locally, then `check`'s answer and exit code
//! (see `e2e::replay`).

use anyhow::{bail, Context, Result};
use e2e::coverage::WaitOptions;
use e2e::replay::{Replay, ReplayInputs, ReplayOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// A directory written by `cargo xtask capture`.
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// A node's `/metrics/cadvisor` body (repeatable); replaces the capture's nodes.
    #[arg(long, value_name = "NODE=FILE")]
    cadvisor: Vec<String>,
    /// `kubectl get pods -A -o json` output; replaces the capture's.
    #[arg(long, value_name = "FILE")]
    pods: Option<PathBuf>,
    /// The ServiceMonitor (YAML or JSON) to generate the scrape job from; replaces the capture's.
    #[arg(long, value_name = "FILE")]
    servicemonitor: Option<PathBuf>,
    /// Print coverage and findings as one JSON document.
    #[arg(long)]
    json: bool,
    /// How long to wait for every pod to be covered (e.g. 30s, 2m); at least four of the job's
    /// scrape intervals plus 5 s.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = crate::duration::parse)]
    deadline: Duration,
    /// A metric every running container must have a series of; repeat for several. Default:
    /// container_cpu_usage_seconds_total and container_memory_working_set_bytes.
    #[arg(long = "metric", value_name = "NAME")]
    metrics: Vec<e2e::coverage::MetricName>,
    /// Leave Prometheus running after the check and print its URL; Ctrl-C removes it.
    #[arg(long)]
    keep: bool,
}

fn inputs(args: &Args) -> Result<ReplayInputs> {
    let mut inputs = match &args.dir {
        Some(dir) => ReplayInputs::from_capture_dir(dir)?,
        None => ReplayInputs::default(),
    };
    if !args.cadvisor.is_empty() {
        inputs.cadvisor.clear();
        for item in &args.cadvisor {
            let Some((node, file)) = item.split_once('=') else {
                bail!("--cadvisor {item:?}: expected NODE=FILE, e.g. --cadvisor kind-worker=worker.prom");
            };
            let file = PathBuf::from(file);
            if !file.is_file() {
                bail!("--cadvisor {item}: {} is not a file", file.display());
            }
            inputs.digests.remove(&file);
            inputs.cadvisor.push((node.to_string(), file));
        }
    }
    if let Some(pods) = &args.pods {
        inputs.digests.remove(pods);
        inputs.pods = Some(pods.clone());
    }
    if let Some(sm) = &args.servicemonitor {
        inputs.digests.remove(sm);
        inputs.servicemonitor = Some(sm.clone());
    }
    if args.dir.is_none()
        && (inputs.cadvisor.is_empty() || inputs.pods.is_none() || inputs.servicemonitor.is_none())
    {
        bail!("nothing to replay: give a capture directory (`cargo xtask capture --out DIR`), or all of --cadvisor NODE=FILE, --pods FILE and --servicemonitor FILE");
    }
    Ok(inputs)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let inputs = inputs(&args)?;
    let opts = ReplayOptions::default();
    let json = args.json;
    let metrics = crate::check::metrics_or_default(args.metrics.clone());
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async {
        // One Ctrl-C listener for the whole run: dropping the replay future removes the
        // container (ReplayPrometheus's Drop), whatever it was doing.
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        let work = async {
            let replay = Replay::start(&inputs, &opts).await?;
            // A job with a long `interval` needs a few of them: never less than the check's
            // default for that interval.
            let deadline = args
                .deadline
                .max(WaitOptions::for_scrape_interval(replay.scrape_interval(&opts)).deadline);
            let wait = WaitOptions {
                deadline,
                poll_interval: crate::check::poll_interval(deadline),
            };
            if !json {
                eprintln!(
                    "replaying {} node(s), {} pods, job {} ({} targets discovered) on {} (container label io.pod-metrics-e2e.run={})",
                    replay.kubelets().len(),
                    replay.pods().len(),
                    replay.spec().job_name(),
                    replay.target_count(),
                    replay.prometheus().url(),
                    replay.prometheus().run_id()
                );
            }
            let (report, findings) = replay
                .check(&metrics, &wait, &mut |r| {
                    if !json && !r.is_complete() {
                        for m in r.incomplete() {
                            eprintln!(
                                "waiting: {}/{} pods covered for {}",
                                m.pods_covered, m.pods_total, m.metric
                            );
                        }
                    }
                })
                .await?;
            anyhow::Ok((replay, report, findings))
        };
        let (replay, report, findings) = tokio::select! {
            r = work => r?,
            _ = &mut interrupted => {
                eprintln!("interrupted: the replay Prometheus is removed");
                return Ok(ExitCode::from(130));
            }
        };
        let code = crate::check::print_outcome(&report, &findings, json)?;
        if args.keep {
            eprintln!(
                "Prometheus: {} (container {}, label io.pod-metrics-e2e.run={}); Ctrl-C removes it",
                replay.prometheus().url(),
                replay.prometheus().container_id(),
                replay.prometheus().run_id()
            );
            let _ = (&mut interrupted).await;
            eprintln!("removing the replay Prometheus");
        }
        drop(replay);
        Ok(code)
    })
}
