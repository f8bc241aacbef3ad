//! `cargo xtask check --prometheus URL --pods FILE [--metric NAME]… [--json] [--deadline 30s]`:
//! the coverage check (per metric; default `e2e::coverage::DEFAULT_METRICS`) and the
//! Prometheus-side diagnosis, without any Kubernetes access (for a Prometheus you
//! port-forwarded; FILE is `kubectl get pods -A -o json`).

use anyhow::{Context, Result};
use e2e::coverage::{self, MetricName, WaitOptions};
use e2e::diagnose::{self, Verdict};
use e2e::prometheus::PrometheusClient;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Prometheus base URL, e.g. http://127.0.0.1:9090 (after `kubectl port-forward svc/prometheus-operated 9090`).
    #[arg(long, value_name = "URL")]
    prometheus: String,
    /// Output of `kubectl get pods -A -o json`.
    #[arg(long, value_name = "FILE")]
    pods: PathBuf,
    /// Print coverage and findings as one JSON document.
    #[arg(long)]
    json: bool,
    /// A metric every running container must have a series of; repeat for several. Default:
    /// container_cpu_usage_seconds_total and container_memory_working_set_bytes.
    #[arg(long = "metric", value_name = "NAME")]
    metrics: Vec<MetricName>,
    /// How long to wait for every pod to be covered (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::duration::parse)]
    deadline: Duration,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.pods).with_context(|| {
        format!(
            "cannot read --pods {}; create it with `kubectl get pods -A -o json > FILE`",
            args.pods.display()
        )
    })?;
    let pods = e2e::pods::from_kubectl_json(&text)
        .with_context(|| format!("--pods {}", args.pods.display()))?;
    let prom = PrometheusClient::new(&args.prometheus, args.deadline)?;
    let opts = WaitOptions {
        deadline: args.deadline,
        poll_interval: poll_interval(args.deadline),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let json = args.json;
    let metrics = metrics_or_default(args.metrics);
    let (report, findings) = runtime.block_on(async {
        let report = coverage::check_metrics(&prom, &pods, &metrics, &opts, &mut |r| {
            if !json && !r.is_complete() {
                for m in r.incomplete() {
                    eprintln!(
                        "waiting: {}/{} pods covered for {}",
                        m.pods_covered, m.pods_total, m.metric
                    );
                }
            }
        })
        .await
        .with_context(|| format!("coverage check against {}", args.prometheus))?;
        let findings = diagnose::prometheus_side_for(&prom, &pods, &metrics).await?;
        anyhow::Ok((report, findings))
    })?;
    print_outcome(&report, &findings, json)
}

/// Prints coverage and findings (text, or one JSON document) and returns `check`'s exit code;
/// `replay` prints its answer the same way.
pub(crate) fn print_outcome(
    report: &coverage::MetricsReport,
    findings: &[diagnose::Finding],
    json: bool,
) -> Result<ExitCode> {
    if json {
        let doc = serde_json::json!({ "coverage": report.to_json(), "diagnosis": diagnose::to_json(findings) });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{report}");
        print!("{}", diagnose::render_text(findings));
    }
    Ok(ExitCode::from(exit_code(
        report.is_complete(),
        Verdict::of(findings),
    )))
}

/// `--metric` values, or every command's default list.
pub fn metrics_or_default(given: Vec<MetricName>) -> Vec<MetricName> {
    if given.is_empty() {
        MetricName::defaults()
    } else {
        given
    }
}

/// A few polls within the deadline, never hammering Prometheus.
pub(crate) fn poll_interval(deadline: Duration) -> Duration {
    (deadline / 10).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

/// 0 healthy (warnings allowed), 1 broken, 2 only "not yet" findings. An incomplete coverage the
/// diagnosis did not explain still fails.
fn exit_code(complete: bool, verdict: Verdict) -> u8 {
    match (complete, verdict) {
        (true, Verdict::Healthy) => 0,
        (false, Verdict::Healthy) => 1,
        (_, v) => v.exit_code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(true, Verdict::Healthy), 0);
        assert_eq!(exit_code(false, Verdict::Healthy), 1);
        assert_eq!(exit_code(false, Verdict::Broken), 1);
        assert_eq!(exit_code(false, Verdict::NotYet), 2);
    }

    #[test]
    fn metric_flags_replace_the_default_list() {
        assert_eq!(metrics_or_default(vec![]), MetricName::defaults());
        let one = vec![MetricName::new("container_fs_usage_bytes").unwrap()];
        assert_eq!(metrics_or_default(one.clone()), one);
    }

    #[test]
    fn polls_a_few_times_per_deadline() {
        assert_eq!(
            poll_interval(Duration::from_secs(30)),
            Duration::from_secs(3)
        );
        assert_eq!(
            poll_interval(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(
            poll_interval(Duration::from_secs(600)),
            Duration::from_secs(5)
        );
    }
}
