//! The diagnosis against a real Prometheus scraping the fixture kubelet: every finding that can
//! be produced without a cluster, each asserted by id, and no finding at all for a healthy setup.

use crate::finish;
use e2e::coverage::{self, WaitOptions};
use e2e::diagnose::{self, Finding, Verdict};
use e2e::pods::RunningPod;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::{
    FixtureKubelet, FixturePod, KubeletOptions, Mode, PrometheusSetup, RunningPrometheus,
};

fn served() -> Vec<FixturePod> {
    vec![
        FixturePod::new("apps", "web-7d9f", &["app", "sidecar"]),
        FixturePod::new("kube-system", "coredns-x2k9q", &["coredns"]),
    ]
}

async fn start(
    opts: KubeletOptions,
    setup: PrometheusSetup,
) -> (FixtureKubelet, RunningPrometheus) {
    let kubelet = FixtureKubelet::start(opts, served())
        .await
        .expect("fixture kubelet starts");
    let prom = setup
        .kubelet(&kubelet)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    (kubelet, prom)
}

/// Waits until Prometheus has scraped every active target at least once (health no longer
/// `unknown`), so the diagnosis sees a settled state rather than "not scraped yet".
async fn scraped(prom: &RunningPrometheus) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let targets = prom.client().targets().await.expect("targets answer");
        if !targets.active.is_empty() && targets.active.iter().all(|t| t.health != "unknown") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "targets never scraped: {:?}",
            targets.active
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for full coverage (the healthy cases), then diagnoses.
async fn covered_then_diagnose(
    prom: &RunningPrometheus,
    pods: &[RunningPod],
    scrape: Duration,
) -> Vec<Finding> {
    let report = coverage::check(
        &prom.client(),
        pods,
        &WaitOptions::for_scrape_interval(scrape),
        &mut |_| {},
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.is_complete(), "{report}");
    diagnose_now(prom, pods).await
}

async fn diagnose_now(prom: &RunningPrometheus, pods: &[RunningPod]) -> Vec<Finding> {
    let findings = diagnose::prometheus_side(&prom.client(), pods)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprint!("{}", diagnose::render_text(&findings));
    findings
}

fn ids(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_honor_labels_true_yields_no_finding() {
    let (kubelet, prom) = start(
        KubeletOptions::default(),
        PrometheusSetup::new().honor_labels(true),
    )
    .await;
    let findings =
        covered_then_diagnose(&prom, &kubelet.running_pods(), Duration::from_secs(1)).await;
    assert_eq!(ids(&findings), Vec::<&str>::new(), "{findings:#?}");
    assert_eq!(Verdict::of(&findings), Verdict::Healthy);
    finish(prom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_labels_false_yields_only_the_exported_namespace_warning() {
    let (kubelet, prom) = start(KubeletOptions::default(), PrometheusSetup::new()).await;
    let findings =
        covered_then_diagnose(&prom, &kubelet.running_pods(), Duration::from_secs(1)).await;
    assert_eq!(ids(&findings), ["honor-labels-false"], "{findings:#?}");
    let f = &findings[0];
    assert!(
        f.evidence[0].contains("exported_namespace=\"apps\""),
        "{:?}",
        f.evidence
    );
    assert!(f
        .evidence
        .iter()
        .any(|e| e.contains("serviceMonitor/kube-system/cadvisor/0")
            && e.contains("honor_labels: false")));
    assert!(f.fix.contains("honorLabels: true"));
    assert_eq!(
        Verdict::of(&findings).exit_code(),
        0,
        "a warning alone is healthy"
    );
    finish(prom).await;
}

/// A setup whose scrapes fail: exactly one finding, with the target's error as evidence.
async fn failing(opts: KubeletOptions, setup: PrometheusSetup, want: &str) -> Finding {
    let (kubelet, prom) = start(opts, setup).await;
    scraped(&prom).await;
    let findings = diagnose_now(&prom, &kubelet.running_pods()).await;
    assert_eq!(
        ids(&findings),
        [want],
        "the chain stops at the down targets: {findings:#?}"
    );
    assert_eq!(Verdict::of(&findings), Verdict::Broken);
    finish(prom).await;
    findings.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_target_unauthorized() {
    let f = failing(
        KubeletOptions::default(),
        PrometheusSetup::new().token("not-the-token"),
        "target-unauthorized",
    )
    .await;
    assert!(f.evidence[0].contains("401"), "{:?}", f.evidence);
    assert!(f.fix.contains("bearerTokenFile"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_without_nodes_metrics_is_target_forbidden() {
    let opts = KubeletOptions {
        forbidden_token: Some("no-rbac-token".into()),
        ..Default::default()
    };
    let f = failing(
        opts,
        PrometheusSetup::new().token("no-rbac-token"),
        "target-forbidden",
    )
    .await;
    assert!(f.evidence[0].contains("403"), "{:?}", f.evidence);
    assert!(f.fix.contains("nodes/metrics"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_connection_refused_with_the_10255_explanation() {
    // `http-metrics` is the read-only port 10255 on a real kubelet; the fixture points it at a
    // free local port where nothing listens, as on kind.
    let f = failing(
        KubeletOptions::default(),
        PrometheusSetup::new().port_name("http-metrics"),
        "target-connection-refused",
    )
    .await;
    assert!(
        f.evidence[0].contains("connection refused"),
        "{:?}",
        f.evidence
    );
    assert!(
        f.cause.contains("10255") && f.cause.contains("4194"),
        "{}",
        f.cause
    );
    assert!(f.fix.contains("https-metrics"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_against_the_https_port_is_a_scheme_mismatch() {
    let f = failing(
        KubeletOptions::default(),
        PrometheusSetup::new().scheme("http"),
        "target-scheme-mismatch",
    )
    .await;
    assert!(f.evidence[0].starts_with("http://"), "{:?}", f.evidence);
    assert!(f.fix.contains("scheme: https"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_exporter_endpoint_is_only_node_metrics() {
    let opts = KubeletOptions {
        mode: Mode::NodeExporter,
        ..Default::default()
    };
    let (kubelet, prom) = start(opts, PrometheusSetup::new().path("/metrics")).await;
    scraped(&prom).await;
    let findings = diagnose_now(&prom, &kubelet.running_pods()).await;
    assert_eq!(ids(&findings), ["only-node-metrics"], "{findings:#?}");
    assert!(
        findings[0].evidence[0].contains("node_cpu_seconds_total"),
        "{:?}",
        findings[0].evidence
    );
    finish(prom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_started_after_the_last_scrape_is_info_until_the_next_scrape() {
    // Scrapes 5 s apart leave room to diagnose between two of them.
    let scrape = Duration::from_secs(5);
    let setup = PrometheusSetup::new()
        .honor_labels(true)
        .scrape_interval(scrape);
    let (kubelet, prom) = start(KubeletOptions::default(), setup).await;
    assert_eq!(
        ids(&covered_then_diagnose(&prom, &kubelet.running_pods(), scrape).await),
        Vec::<&str>::new()
    );

    // Right after a scrape, a pod starts: Kubernetes lists it, no scrape has seen it yet.
    kubelet.wait_scrapes(1, scrape * 3).await.expect("a scrape");
    let newcomer = FixturePod::new("late", "newcomer", &["main"]);
    let mut pods = kubelet.running_pods();
    let mut running = newcomer.running(kubelet.node());
    running.started_at = Some(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    pods.push(running);
    let findings = diagnose_now(&prom, &pods).await;
    assert_eq!(ids(&findings), ["pod-newer-than-scrape"], "{findings:#?}");
    assert!(
        findings[0].evidence[0].contains("late/newcomer"),
        "{:?}",
        findings[0].evidence
    );
    assert_eq!(Verdict::of(&findings), Verdict::NotYet);

    // The kubelet reports it from now on; after the next scrapes the finding is gone.
    kubelet.add_pod(newcomer);
    kubelet
        .wait_scrapes(2, scrape * 3)
        .await
        .expect("two more scrapes");
    let findings = covered_then_diagnose(&prom, &pods, scrape).await;
    assert_eq!(ids(&findings), Vec::<&str>::new(), "{findings:#?}");
    finish(prom).await;
}
