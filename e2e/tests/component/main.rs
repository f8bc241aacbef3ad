//! Component tier: a real Prometheus (Docker, testcontainers) runs the scrape job
//! prometheus-operator v0.48.1 generates for the cadvisor ServiceMonitor against a fixture
//! kubelet in this process; the coverage check must pass or fail for the right reasons.
//!
//! Needs Docker and the image in `E2E_PROMETHEUS_IMAGE` (`cargo xtask image prometheus`);
//! without them the tests fail with that instruction rather than skip.

mod captures;
mod diagnose;
mod relabel;
mod replay;
use testkit as support;

use e2e::coverage::{self, CoverageReport, MetricName, MetricsReport, NamespaceLabel, WaitOptions};
use e2e::pods::RunningPod;
use e2e::prometheus::{PromError, PrometheusClient};
use std::time::{Duration, Instant};
use testkit::{
    containers_with_run_label, FixtureKubelet, FixturePod, KubeletOptions, LabelStyle, PauseStyle,
    PrometheusSetup, RunningPrometheus,
};

const SCRAPE: Duration = Duration::from_secs(1);

fn pods() -> Vec<FixturePod> {
    vec![
        FixturePod::new("apps", "web-7d9f", &["app", "sidecar"]),
        FixturePod::new("apps", "worker-0", &["worker"]),
        FixturePod::new("kube-system", "coredns-558bd4d5db-x2k9q", &["coredns"]),
    ]
}

async fn start(
    opts: KubeletOptions,
    served: Vec<FixturePod>,
    setup: PrometheusSetup,
) -> (FixtureKubelet, RunningPrometheus) {
    let kubelet = FixtureKubelet::start(opts, served)
        .await
        .expect("fixture kubelet starts");
    let prom = setup
        .kubelet(&kubelet)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    // Discovery hands targets over in 5 s batches: start the clock at the first scrape.
    prom.wait_scraped(Duration::from_secs(30)).await.unwrap();
    (kubelet, prom)
}

/// The coverage check with the default deadline for 1 s scrapes, progress on stderr.
async fn check(prom: &RunningPrometheus, pods: &[RunningPod]) -> CoverageReport {
    check_with(
        &prom.client(),
        pods,
        WaitOptions::for_scrape_interval(SCRAPE),
    )
    .await
    .unwrap_or_else(|e| panic!("{}", e2e::errors::error_chain(&e)))
}

async fn check_with(
    client: &PrometheusClient,
    pods: &[RunningPod],
    opts: WaitOptions,
) -> Result<CoverageReport, PromError> {
    let mut progress =
        |r: &CoverageReport| eprintln!("  … {}/{} pods covered", r.pods_covered, r.pods_total);
    coverage::check(client, pods, &opts, &mut progress).await
}

/// [`coverage::check_metrics`] with the default deadline for 1 s scrapes.
async fn check_metrics(
    prom: &RunningPrometheus,
    pods: &[RunningPod],
    metrics: &[MetricName],
) -> MetricsReport {
    let opts = WaitOptions::for_scrape_interval(SCRAPE);
    let mut progress = |r: &MetricsReport| {
        let per: Vec<String> = r
            .metrics
            .iter()
            .map(|m| format!("{} {}/{}", m.metric, m.pods_covered, m.pods_total))
            .collect();
        eprintln!("  … {}", per.join(", "));
    };
    coverage::check_metrics(&prom.client(), pods, metrics, &opts, &mut progress)
        .await
        .unwrap_or_else(|e| panic!("{}", e2e::errors::error_chain(&e)))
}

/// Removes the container and proves nothing with its run label is left.
async fn finish(prom: RunningPrometheus) {
    let run_id = prom.run_id().to_string();
    prom.remove().await.expect("container removed");
    assert_eq!(
        containers_with_run_label(&run_id).unwrap(),
        Vec::<String>::new(),
        "container {run_id} left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_pods_covered_with_honor_labels_false_namespace_in_exported_namespace() {
    let (kubelet, prom) = start(KubeletOptions::default(), pods(), PrometheusSetup::new()).await;
    let report = check(&prom, &kubelet.running_pods()).await;
    eprintln!("{report}");
    assert!(report.is_complete(), "{report}");
    assert_eq!((report.pods_covered, report.pods_total), (3, 3));
    assert_eq!((report.containers_covered, report.containers_total), (4, 4));
    assert_eq!(report.namespace_label, NamespaceLabel::ExportedNamespace);

    // What makes it ExportedNamespace: the target's namespace wins, the pod's is renamed.
    let series = prom
        .client()
        .query("container_cpu_usage_seconds_total{pod=\"worker-0\",container=\"worker\"}")
        .await
        .unwrap()
        .series;
    assert_eq!(series.len(), 1, "{series:?}");
    let m = &series[0].metric;
    assert_eq!(m.get("namespace").map(String::as_str), Some("kube-system"));
    assert_eq!(
        m.get("exported_namespace").map(String::as_str),
        Some("apps")
    );
    assert_eq!(m.get("job").map(String::as_str), Some("kubelet"));

    // Prometheus writes its answers in the compact form the check reads without serde.
    for q in coverage::coverage_queries() {
        let answer = prom.client().query_response(&q).await.unwrap();
        assert!(
            coverage::reads_compact(&answer.body),
            "{q}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }

    // A pod started later is covered by a later check.
    kubelet.add_pod(FixturePod::new("late", "newcomer", &["main"]));
    let report = check(&prom, &kubelet.running_pods()).await;
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.pods_total, 4);
    finish(prom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_pods_covered_with_honor_labels_true_namespace_in_namespace() {
    let (kubelet, prom) = start(
        KubeletOptions::default(),
        pods(),
        PrometheusSetup::new().honor_labels(true),
    )
    .await;
    let report = check(&prom, &kubelet.running_pods()).await;
    eprintln!("{report}");
    assert!(report.is_complete(), "{report}");
    assert_eq!((report.containers_covered, report.containers_total), (4, 4));
    assert_eq!(report.namespace_label, NamespaceLabel::Namespace);
    let json = report.to_json();
    assert_eq!(json["namespace_label"], "namespace", "{json}");
    finish(prom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_job_runs_as_generated_and_keeps_only_the_https_metrics_port() {
    let (kubelet, prom) = start(KubeletOptions::default(), pods(), PrometheusSetup::new()).await;
    let client = prom.client();
    let loaded = client.config_yaml().await.unwrap();
    assert!(
        loaded.contains("job_name: serviceMonitor/kube-system/cadvisor/0"),
        "{loaded}"
    );
    assert!(
        !loaded.contains(support::DEFAULT_TOKEN),
        "the token itself never appears in the config"
    );

    let targets = client.targets().await.unwrap();
    assert_eq!(targets.active.len(), 1, "{:?}", targets.active);
    let t = &targets.active[0];
    let label = |k: &str| t.labels.get(k).cloned().unwrap_or_default();
    assert_eq!(label("job"), "kubelet");
    assert_eq!(label("namespace"), "kube-system");
    assert_eq!(label("service"), "kubelet");
    assert_eq!(label("endpoint"), "https-metrics");
    assert_eq!(label("node"), "fixture-node");
    assert!(
        !t.labels.contains_key("pod"),
        "Node targets carry no pod label: {:?}",
        t.labels
    );
    assert_eq!(
        t.scrape_url,
        format!("https://{}/metrics/cadvisor", kubelet.addr())
    );
    assert_eq!(t.scrape_pool, "serviceMonitor/kube-system/cadvisor/0");
    // http-metrics (10255) and cadvisor (4194) are discovered but dropped by the port keep rule.
    let mut dropped: Vec<String> = targets
        .dropped
        .iter()
        .filter_map(|d| {
            d.discovered_labels
                .get("__meta_kubernetes_endpoint_port_name")
                .cloned()
        })
        .collect();
    dropped.sort();
    assert_eq!(dropped, ["cadvisor", "http-metrics"]);
    finish(prom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_the_kubelet_does_not_serve_is_reported_missing_by_name() {
    let (kubelet, prom) = start(KubeletOptions::default(), pods(), PrometheusSetup::new()).await;
    let mut running = kubelet.running_pods();
    running.push(FixturePod::new("apps", "ghost-5c8d", &["app"]).running("fixture-node"));
    let started = Instant::now();
    let report = check(&prom, &running).await;
    eprintln!("{report}");
    assert!(!report.is_complete());
    assert_eq!(
        (report.pods_covered, report.pods_total),
        (3, 4),
        "the served pods are covered: {report}"
    );
    assert_eq!(report.missing.len(), 1, "{report}");
    let missing = &report.missing[0];
    assert_eq!(
        (missing.namespace.as_str(), missing.name.as_str()),
        ("apps", "ghost-5c8d")
    );
    assert!(missing.no_series_at_all);
    assert_eq!(missing.missing_containers, ["app"]);
    assert!(report.to_string().contains("ghost-5c8d"), "{report}");
    // It waited for the deadline before giving up, and says so.
    let opts = WaitOptions::for_scrape_interval(SCRAPE);
    assert!(
        started.elapsed() + opts.poll_interval >= opts.deadline,
        "gave up after {:?}",
        started.elapsed()
    );
    assert!(report.waited_ms > 0 && report.polls > 1, "{report:?}");
    finish(prom).await;
}

/// Both default metrics, checked together against a real Prometheus: every container has a CPU
/// and a memory series, and each metric costs two requests per poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_default_metrics_are_covered_per_container() {
    let (kubelet, prom) = start(KubeletOptions::default(), pods(), PrometheusSetup::new()).await;
    let report = check_metrics(&prom, &kubelet.running_pods(), &MetricName::defaults()).await;
    eprintln!("{report}");
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.metric_names(), coverage::DEFAULT_METRICS);
    for r in &report.metrics {
        assert_eq!(
            (
                r.pods_covered,
                r.pods_total,
                r.containers_covered,
                r.containers_total
            ),
            (3, 3, 4, 4),
            "{r}"
        );
        assert_eq!(r.namespace_label, NamespaceLabel::ExportedNamespace, "{r}");
        assert_eq!(r.requests, 2, "two queries per metric per poll: {r}");
    }
    assert_eq!(report.requests, 4 * report.polls as u64, "{report}");
    finish(prom).await;
}

/// One container's memory rows absent (its CPU rows served): missing for memory only, by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_rows_absent_for_one_container_are_missing_for_memory_only() {
    let mut served = pods();
    served[0] = served[0].clone().without_memory_for("sidecar");
    let (kubelet, prom) = start(KubeletOptions::default(), served, PrometheusSetup::new()).await;
    let body = kubelet.render_cadvisor();
    assert!(body.contains("container_cpu_usage_seconds_total{container=\"sidecar\""));
    assert!(!body.contains("container_memory_working_set_bytes{container=\"sidecar\""));
    let running = kubelet.running_pods();
    let report = check_metrics(&prom, &running, &MetricName::defaults()).await;
    eprintln!("{report}");
    assert!(!report.is_complete(), "{report}");
    let cpu = report.get(coverage::CPU_METRIC).expect("cpu checked");
    assert!(
        cpu.is_complete(),
        "CPU is served for every container: {cpu}"
    );
    let mem = report.get(coverage::MEMORY_METRIC).expect("memory checked");
    assert_eq!((mem.pods_covered, mem.containers_covered), (2, 3), "{mem}");
    assert_eq!(mem.missing.len(), 1, "{mem}");
    assert_eq!(
        (
            mem.missing[0].name.as_str(),
            mem.missing[0].missing_containers.as_slice()
        ),
        ("web-7d9f", ["sidecar".to_string()].as_slice())
    );
    assert!(
        !mem.missing[0].no_series_at_all,
        "the pod's app has memory rows"
    );
    let incomplete: Vec<_> = report.incomplete().map(|r| r.metric.as_str()).collect();
    assert_eq!(incomplete, [coverage::MEMORY_METRIC]);
    let text = report.to_string();
    assert!(text.contains("NOT covered: 1/2 metrics"), "{text}");
    finish(prom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_missing_from_a_covered_pod_is_reported() {
    let mut served = pods();
    served[0].containers.retain(|c| c == "app"); // web-7d9f's sidecar has no CPU series
    let (_kubelet, prom) = start(KubeletOptions::default(), served, PrometheusSetup::new()).await;
    let running: Vec<RunningPod> = pods().iter().map(|p| p.running("fixture-node")).collect();
    let report = check(&prom, &running).await;
    eprintln!("{report}");
    assert_eq!((report.pods_covered, report.pods_total), (2, 3), "{report}");
    assert_eq!(
        (report.containers_covered, report.containers_total),
        (3, 4),
        "{report}"
    );
    assert_eq!(report.missing.len(), 1);
    assert_eq!(report.missing[0].name, "web-7d9f");
    assert_eq!(report.missing[0].missing_containers, ["sidecar"]);
    assert!(
        !report.missing[0].no_series_at_all,
        "the pod has series, just not for sidecar"
    );
    finish(prom).await;
}

/// The check fails and `/api/v1/targets` names the kubelet's answer.
async fn rejected_token(opts: KubeletOptions, token: &str, expect: &str) {
    let (kubelet, prom) = start(opts, pods(), PrometheusSetup::new().token(token)).await;
    let report = check_with(
        &prom.client(),
        &kubelet.running_pods(),
        WaitOptions {
            deadline: Duration::from_secs(5),
            poll_interval: Duration::from_millis(500),
        },
    )
    .await
    .unwrap();
    assert!(!report.is_complete());
    assert_eq!(report.pods_covered, 0, "{report}");
    assert!(
        report.missing.iter().all(|m| m.no_series_at_all),
        "{report}"
    );
    let targets = prom.client().targets().await.unwrap();
    let t = &targets.active[0];
    assert!(
        kubelet.rejected_requests() > 0,
        "Prometheus did scrape and was rejected: {t:?}"
    );
    assert_eq!(t.health, "down", "{t:?}");
    assert!(
        t.last_error.contains(expect),
        "lastError {:?} should contain {expect:?}",
        t.last_error
    );
    finish(prom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_fails_the_check_and_targets_carry_401() {
    rejected_token(
        KubeletOptions::default(),
        "not-the-service-account-token",
        "401",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_without_nodes_metrics_rbac_gets_403() {
    let opts = KubeletOptions {
        forbidden_token: Some("no-rbac-token".into()),
        ..KubeletOptions::default()
    };
    rejected_token(opts, "no-rbac-token", "403").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_not_reachable_is_a_clear_error_after_the_deadline() {
    let port = support::free_port();
    // The client alone would retry for 30 s: the check's own deadline must win.
    let client =
        PrometheusClient::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(30))
            .unwrap();
    let deadline = Duration::from_secs(2);
    let started = Instant::now();
    let pods = [RunningPod::new("apps", "web", &["app"])];
    let err = check_with(
        &client,
        &pods,
        WaitOptions {
            deadline,
            poll_interval: Duration::from_millis(200),
        },
    )
    .await
    .expect_err("nothing listens there");
    let elapsed = started.elapsed();
    // Retried until the deadline (not given up at the first refusal), and stopped there.
    assert!(elapsed >= deadline, "gave up after {elapsed:?}");
    assert!(
        elapsed <= deadline + Duration::from_secs(1),
        "kept going for {elapsed:?}"
    );
    match &err {
        PromError::Unreachable {
            target,
            waited,
            last_error,
        } => {
            assert!(target.contains(&port.to_string()), "{target}");
            assert!(*waited >= deadline, "{waited:?}");
            assert!(
                last_error.to_lowercase().contains("connect"),
                "{last_error}"
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("not reachable") && msg.contains(&port.to_string()),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pause_rows_and_pod_rows_never_count_as_coverage() {
    let opts = KubeletOptions {
        pause: PauseStyle::Docker,
        ..KubeletOptions::default()
    };
    let mut served = pods();
    // Only the pod-level cgroup row and the POD (pause) row for this pod.
    served.push(FixturePod::new("apps", "sandbox-only", &[]));
    let (kubelet, prom) = start(opts, served, PrometheusSetup::new()).await;
    let mut running = kubelet.running_pods();
    running
        .iter_mut()
        .find(|p| p.name == "sandbox-only")
        .unwrap()
        .containers = vec!["app".into()];
    let report = check_with(
        &prom.client(),
        &running,
        WaitOptions {
            deadline: Duration::from_secs(6),
            poll_interval: Duration::from_millis(500),
        },
    )
    .await
    .unwrap();
    eprintln!("{report}");
    assert_eq!((report.pods_covered, report.pods_total), (3, 4), "{report}");
    assert_eq!(report.missing.len(), 1);
    assert_eq!(report.missing[0].name, "sandbox-only");
    assert!(report.missing[0].no_series_at_all, "{report}");
    // Not vacuous: Prometheus does hold the pause row for that pod.
    let pause = prom
        .client()
        .query("container_cpu_usage_seconds_total{pod=\"sandbox-only\",container=\"POD\"}")
        .await
        .unwrap();
    assert_eq!(pause.series.len(), 1, "{:?}", pause.series);
    finish(prom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_pause_rows_and_pod_rows_never_count_as_coverage() {
    let mut served = pods();
    served.push(FixturePod::new("apps", "sandbox-only", &[]));
    let (kubelet, prom) = start(KubeletOptions::default(), served, PrometheusSetup::new()).await;
    let mut running = kubelet.running_pods();
    running
        .iter_mut()
        .find(|p| p.name == "sandbox-only")
        .unwrap()
        .containers = vec!["app".into()];
    let report = check_with(
        &prom.client(),
        &running,
        WaitOptions {
            deadline: Duration::from_secs(6),
            poll_interval: Duration::from_millis(500),
        },
    )
    .await
    .unwrap();
    assert_eq!(report.missing.len(), 1, "{report}");
    assert_eq!(report.missing[0].name, "sandbox-only");
    // Not vacuous: the pod-level and the sandbox rows are there, without a container label.
    let rows = prom
        .client()
        .query("container_cpu_usage_seconds_total{pod=\"sandbox-only\"}")
        .await
        .unwrap();
    assert_eq!(rows.series.len(), 2, "{:?}", rows.series);
    assert!(
        rows.series
            .iter()
            .all(|s| !s.metric.contains_key("container")),
        "{:?}",
        rows.series
    );
    finish(prom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_pod_name_and_container_name_labels_count_once() {
    let legacy = KubeletOptions {
        node: "old-node".into(),
        labels: LabelStyle::Legacy,
        ..KubeletOptions::default()
    };
    let both = KubeletOptions {
        node: "mid-node".into(),
        labels: LabelStyle::Both,
        ..KubeletOptions::default()
    };
    let old = FixtureKubelet::start(
        legacy,
        vec![FixturePod::new("apps", "old-pod", &["app", "sidecar"])],
    )
    .await
    .unwrap();
    let mid = FixtureKubelet::start(
        both,
        vec![FixturePod::new("apps", "mid-pod", &["app", "sidecar"])],
    )
    .await
    .unwrap();
    let prom = PrometheusSetup::new()
        .kubelet(&old)
        .kubelet(&mid)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    prom.wait_scraped(Duration::from_secs(30)).await.unwrap();
    let running: Vec<RunningPod> = old
        .running_pods()
        .into_iter()
        .chain(mid.running_pods())
        .collect();
    let report = check(&prom, &running).await;
    eprintln!("{report}");
    assert!(report.is_complete(), "{report}");
    assert_eq!(
        (report.containers_covered, report.containers_total),
        (4, 4),
        "each container counted once: {report}"
    );
    // Not vacuous: the old node's series really have only the legacy spelling.
    let old_rows = prom
        .client()
        .query("container_cpu_usage_seconds_total{node=\"old-node\",container_name=\"app\"}")
        .await
        .unwrap();
    assert_eq!(old_rows.series.len(), 1);
    assert!(
        !old_rows.series[0].metric.contains_key("container"),
        "{:?}",
        old_rows.series[0].metric
    );
    finish(prom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_container_is_left_running_when_a_test_panics() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let prom = PrometheusSetup::new()
            .start()
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        tx.send(prom.run_id().to_string()).unwrap();
        assert_eq!(
            containers_with_run_label(prom.run_id()).unwrap().len(),
            1,
            "the container runs"
        );
        panic!("simulated test failure while Prometheus runs");
    });
    let run_id = rx.await.expect("the container started before the panic");
    assert!(task.await.unwrap_err().is_panic());
    // Drop removes the container in the background; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = containers_with_run_label(&run_id).unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "container {left:?} (run {run_id}) still there after a panic"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_fails_with_the_command_that_builds_it() {
    let setup = PrometheusSetup {
        image: "localhost/e2e-prometheus:no-such-tag".into(),
        ..PrometheusSetup::new()
    };
    let err = match setup.start().await {
        Ok(_) => panic!("started a Prometheus from an image that does not exist"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("cargo xtask image prometheus") && err.contains("E2E_PROMETHEUS_IMAGE"),
        "{err}"
    );
    assert!(
        err.contains("localhost/e2e-prometheus:no-such-tag"),
        "{err}"
    );
}

/// Label names of each `container_cpu_usage_seconds_total` row, and whether it has a timestamp.
fn cpu_rows(text: &str) -> Vec<(std::collections::BTreeSet<String>, bool)> {
    rows_of(text, coverage::CPU_METRIC)
}

/// Label names of each `metric` row, and whether it has a timestamp.
fn rows_of(text: &str, metric: &str) -> Vec<(std::collections::BTreeSet<String>, bool)> {
    let prefix = format!("{metric}{{");
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|rest| {
            let (labels, tail) = rest.rsplit_once("} ").expect("a sample line");
            let names = labels
                .split("\",")
                .filter_map(|kv| kv.split_once("=\""))
                .map(|(k, _)| k.to_string())
                .collect();
            (names, tail.split_whitespace().count() == 2)
        })
        .collect()
}

/// The label names of a kubelet 1.21 CPU row (FACTS.md, kubelet 1.21 `/metrics/cadvisor`).
fn kubelet_1_21_labels() -> std::collections::BTreeSet<String> {
    [
        "container",
        "cpu",
        "id",
        "image",
        "name",
        "namespace",
        "pod",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_rows_have_the_kubelet_1_21_label_set_and_timestamps() {
    let kubelet = FixtureKubelet::start(KubeletOptions::default(), pods())
        .await
        .unwrap();
    let ours = cpu_rows(&kubelet.render_cadvisor());
    // 2 machine rows + per pod: pod row, pause row, one per container.
    assert_eq!(ours.len(), 2 + 3 * 2 + 4);
    let facts = kubelet_1_21_labels();
    assert!(
        ours.iter().all(|(names, ts)| *names == facts && *ts),
        "{ours:?}"
    );
    // Memory: one row per CPU row, the same labels without `cpu` (every memory row of the real
    // captures; `captures::memory_rows_have_the_cpu_rows_labels_without_cpu`).
    let memory = rows_of(&kubelet.render_cadvisor(), coverage::MEMORY_METRIC);
    assert_eq!(memory.len(), ours.len());
    let mut without_cpu = facts.clone();
    without_cpu.remove("cpu");
    assert!(
        memory
            .iter()
            .all(|(names, ts)| *names == without_cpu && *ts),
        "{memory:?}"
    );
}

/// The label set above is a real kubelet 1.21's: the shared sample scrape (`E2E_CADVISOR_SAMPLE`)
/// has exactly those label names, with timestamps, on every CPU row.
#[test]
fn the_kubelet_1_21_sample_has_the_fixture_label_set_and_timestamps() {
    let path = testkit::required_input(
        "E2E_CADVISOR_SAMPLE",
        "a real kubelet 1.21 /metrics/cadvisor scrape (../shared/upstream/kubelet-cadvisor-1.21-sample.txt)",
    );
    let sample = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("E2E_CADVISOR_SAMPLE={}: {e}", path.display()));
    let real = cpu_rows(&sample);
    assert!(
        !real.is_empty(),
        "no container_cpu_usage_seconds_total rows in {}",
        path.display()
    );
    assert!(
        real.iter()
            .all(|(names, ts)| *names == kubelet_1_21_labels() && *ts),
        "the sample's rows differ from the fixture's label set: {real:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_kubelet_answers_401_403_and_200_like_a_kubelet() {
    let opts = KubeletOptions {
        forbidden_token: Some("no-rbac".into()),
        ..KubeletOptions::default()
    };
    let kubelet = FixtureKubelet::start(opts, pods()).await.unwrap();
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let url = format!("https://{}/metrics/cadvisor", kubelet.addr());
    let status = |token: Option<&'static str>| {
        let mut req = http.get(&url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some("wrong")).await, 401);
    assert_eq!(status(Some("no-rbac")).await, 403);
    assert_eq!(status(Some(support::DEFAULT_TOKEN)).await, 200);
    assert_eq!(kubelet.rejected_requests(), 3);
    let metrics = http
        .get(format!("https://{}/metrics", kubelet.addr()))
        .bearer_auth(support::DEFAULT_TOKEN)
        .send()
        .await
        .unwrap();
    let body = metrics.text().await.unwrap();
    assert!(body.contains("kubelet_running_pods 3"), "{body}");
    assert!(
        !body.lines().any(|l| l.starts_with("container_")),
        "no container_ series on /metrics: {body}"
    );
    // Counters go up between scrapes.
    let value = |text: String| cpu_value(&text, "pod=\"worker-0\"");
    let first = value(kubelet.render_cadvisor());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(value(kubelet.render_cadvisor()) > first);
}

fn cpu_value(text: &str, needle: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.contains(needle) && l.contains("container=\"worker\""))
        .expect("row");
    line.rsplit(' ').nth(1).unwrap().parse().unwrap()
}
