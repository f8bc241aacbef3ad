//! Coverage-check benchmark: 10,000 pods × 2 containers served by the fixture kubelet and
//! scraped by a real Prometheus (the operator's cadvisor job). Times the coverage check end to end
//! and counts its HTTP requests, next to the naive one-query-per-pod approach on the same data.
//!
//! Run with `cargo xtask bench coverage` (needs Docker and `E2E_PROMETHEUS_IMAGE`, like the
//! component tier). Targets: under 300 ms, at most 3 requests, at least 50× faster than naive.

use anyhow::{bail, Context, Result};
use e2e::coverage::{self, CoverageReport, WaitOptions};
use e2e::pods::RunningPod;
use e2e::prometheus::PrometheusClient;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use testkit::{FixtureKubelet, FixturePod, KubeletOptions, PrometheusSetup};

const PODS: usize = 10_000;
const CONTAINERS_PER_POD: usize = 2;
const RUNS: usize = 7;
/// A 10,000-pod scrape is ~10 MB of text: leave Prometheus room on a 2-core machine.
const SCRAPE: Duration = Duration::from_secs(5);

const TARGET_MS: f64 = 300.0;
const TARGET_REQUESTS: u64 = 3;
const TARGET_SPEEDUP: f64 = 50.0;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool> {
    let served = FixturePod::many(PODS, CONTAINERS_PER_POD);
    let kubelet = FixtureKubelet::start(KubeletOptions::default(), served).await?;
    let pods = kubelet.running_pods();
    let started = Instant::now();
    let body = kubelet.render_cadvisor();
    println!(
        "fixture kubelet: {PODS} pods × {CONTAINERS_PER_POD} containers, /metrics/cadvisor {:.1} MB, {} lines, rendered in {:?}",
        body.len() as f64 / 1e6,
        body.lines().count(),
        started.elapsed()
    );
    drop(body);

    let prom = PrometheusSetup::new()
        .scrape_interval(SCRAPE)
        .kubelet(&kubelet)
        .start()
        .await?;
    println!("Prometheus {} at {}", prom.setup().image, prom.url());
    prom.wait_scraped(Duration::from_secs(60)).await?;

    // Until every pod is in: not timed.
    let client = prom.client().with_retry_deadline(Duration::from_secs(30));
    let warmup = WaitOptions {
        deadline: Duration::from_secs(180),
        poll_interval: Duration::from_secs(2),
    };
    let mut progress = |r: &CoverageReport| {
        eprintln!(
            "  waiting: {}/{} pods covered",
            r.pods_covered, r.pods_total
        )
    };
    let report = coverage::check(&client, &pods, &warmup, &mut progress).await?;
    if !report.is_complete() {
        bail!("the fixture's pods never all reached Prometheus:\n{report}");
    }

    // The check as the harness runs it, already complete: one poll.
    let opts = WaitOptions {
        deadline: Duration::from_secs(30),
        poll_interval: Duration::from_secs(1),
    };
    let mut times = Vec::new();
    let mut requests = Vec::new();
    for _ in 0..RUNS {
        let fresh = prom.client();
        let t = Instant::now();
        let r = coverage::check(&fresh, &pods, &opts, &mut |_| {}).await?;
        times.push(t.elapsed());
        requests.push(fresh.request_count());
        if !r.is_complete() {
            bail!("coverage regressed during the benchmark:\n{r}");
        }
    }
    let check_time = median(&mut times);
    // Prometheus's own share: the check's queries sent raw, their times added.
    let (mut raw_time, mut raw_bytes) = (Duration::ZERO, 0);
    for q in coverage::coverage_queries() {
        let (t, b) = raw_query_time(&prom.url(), &q).await?;
        raw_time += t;
        raw_bytes += b;
    }
    for q in std::env::var("E2E_BENCH_EXTRA_QUERIES")
        .unwrap_or_default()
        .split(';')
        .filter(|q| !q.is_empty())
    {
        let (t, b) = raw_query_time(&prom.url(), q).await?;
        println!(
            "extra query {q}: {:.1} ms, {b} bytes",
            t.as_secs_f64() * 1000.0
        );
    }
    let check_requests = *requests.iter().max().unwrap();

    let naive = prom.client();
    let t = Instant::now();
    let naive_report = naive_check(&naive, &pods).await?;
    let naive_time = t.elapsed();
    let naive_requests = naive.request_count();
    if (naive_report.pods_covered, naive_report.containers_covered)
        != (report.pods_covered, report.containers_covered)
    {
        bail!("the naive check disagrees with the aggregated one:\n{naive_report}\nvs\n{report}");
    }

    let speedup = naive_time.as_secs_f64() / check_time.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!();
    println!("{:<34} {:>12} {:>10}", "approach", "time", "requests");
    println!(
        "{:<34} {:>9.1} ms {:>10}",
        format!("coverage check (median of {RUNS})"),
        ms(check_time),
        check_requests
    );
    println!(
        "  of which Prometheus answering the query over HTTP: {:.1} ms ({:.1} MB of JSON); the rest is decoding and evaluation",
        ms(raw_time),
        raw_bytes as f64 / 1e6
    );
    println!(
        "{:<34} {:>9.1} ms {:>10}",
        "naive: one query per pod",
        ms(naive_time),
        naive_requests
    );
    println!(
        "  naive: {:.2} ms per request on loopback; through the API server proxy each request costs more, \
         so the gap grows with latency (the check's request count does not grow with pods)",
        ms(naive_time) / naive_requests.max(1) as f64
    );
    println!(
        "speed-up: {speedup:.0}×   (all runs: {:?})",
        times
            .iter()
            .map(|d| format!("{:.1}ms", ms(*d)))
            .collect::<Vec<_>>()
    );
    println!();
    let verdicts = [
        (
            format!("check under {TARGET_MS} ms"),
            ms(check_time) < TARGET_MS,
        ),
        (
            format!("at most {TARGET_REQUESTS} HTTP requests"),
            check_requests <= TARGET_REQUESTS,
        ),
        (
            format!("at least {TARGET_SPEEDUP}× faster than naive"),
            speedup >= TARGET_SPEEDUP,
        ),
    ];
    for (what, ok) in &verdicts {
        println!("{} {what}", if *ok { "PASS" } else { "FAIL" });
    }
    prom.remove().await?;
    Ok(verdicts.iter().all(|(_, ok)| *ok))
}

/// Median time of the bare HTTP round trip for `promql` (no JSON decoding), and the body size.
async fn raw_query_time(base: &str, promql: &str) -> Result<(Duration, usize)> {
    let http = reqwest::Client::new();
    let url = format!("{base}/api/v1/query");
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let body = http
            .get(&url)
            .query(&[("query", promql)])
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        times.push(t.elapsed());
        bytes = body.len();
    }
    Ok((median(&mut times), bytes))
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// What a harness without aggregation does: ask about each pod separately.
async fn naive_check(client: &PrometheusClient, pods: &[RunningPod]) -> Result<CoverageReport> {
    let mut series = Vec::new();
    for pod in pods {
        let sel = format!("pod=\"{}\",container!~\"|POD\"", pod.name);
        let q = format!(
            "{m}{{namespace=\"{ns}\",{sel}}} or {m}{{exported_namespace=\"{ns}\",{sel}}}",
            m = coverage::CPU_METRIC,
            ns = pod.namespace
        );
        let answer = client
            .query(&q)
            .await
            .with_context(|| format!("naive query for {}/{}", pod.namespace, pod.name))?;
        series.extend(answer.series.into_iter().map(|s| s.metric));
    }
    Ok(coverage::evaluate(pods, series.iter()))
}
