//! The cluster tier: against the cluster `cargo xtask e2e` brought up (kubeconfig in
//! `E2E_KUBECONFIG`), every running container of every Running pod must have a series of each
//! checked metric (`E2E_METRICS`; by default `container_cpu_usage_seconds_total` and
//! `container_memory_working_set_bytes`) in Prometheus, reached through the API server's service proxy (no port-forward, no host ports).
//!
//! Every test is `#[ignore]`d, so `cargo test --workspace` and the unit/component profiles pass
//! without a cluster; the nextest `e2e` profile runs them with `--run-ignored only`
//! (`e2e::lifecycle::plan::NEXTEST_ARGS`). Run by hand without `E2E_KUBECONFIG` (`--ignored`), every test
//! FAILS: a cluster test that passes without a cluster would prove nothing.
//!
//! Environment: `E2E_KUBECONFIG` (required), `E2E_CELL` (matrix cell; default cell otherwise:
//! decides which ServiceMonitor variant is expected), `E2E_METRICS` (comma-separated metric names;
//! the cell's `metrics` otherwise), `E2E_ARTIFACTS_DIR` (where `coverage.json` and, on failure,
//! `diagnose.json` go; `target/e2e/artifacts` otherwise).

use e2e::coverage::{self, MetricName, MetricsReport, NamespaceLabel, WaitOptions};
use e2e::install;
use e2e::matrix::{Cell, Matrix, ServiceMonitorVariant};
use e2e::pods::RunningPod;
use e2e::prometheus::PrometheusClient;
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The job the operator generates for ServiceMonitor kube-system/cadvisor, endpoint 0.
const CADVISOR_JOB: &str = "serviceMonitor/kube-system/cadvisor/0";

async fn client() -> Client {
    let Some(path) = std::env::var_os("E2E_KUBECONFIG") else {
        panic!(
            "E2E_KUBECONFIG is not set: the cluster tier needs a cluster. Run it via `cargo xtask e2e` \
             (it creates a kind cluster, or uses --kubeconfig PATH, and runs this test with \
             E2E_KUBECONFIG, E2E_CELL and E2E_ARTIFACTS_DIR set)"
        );
    };
    e2e::k8s::client::kube_client(&PathBuf::from(path))
        .await
        .unwrap_or_else(|e| panic!("E2E_KUBECONFIG: {e:#}"))
}

fn cell() -> Cell {
    let matrix = Matrix::load_default().unwrap_or_else(|e| panic!("{e:#}"));
    match std::env::var("E2E_CELL") {
        Ok(name) if !name.is_empty() => matrix
            .cell(&name)
            .unwrap_or_else(|e| panic!("E2E_CELL: {e:#}"))
            .clone(),
        _ => matrix.default_cell().clone(),
    }
}

fn variant() -> ServiceMonitorVariant {
    cell().servicemonitor
}

/// `E2E_METRICS` (what `cargo xtask e2e` passes: the cell's list or `--metric`'s), else the
/// cell's own list.
fn metrics() -> Vec<MetricName> {
    match std::env::var("E2E_METRICS") {
        Ok(list) if !list.trim().is_empty() => MetricName::parse_list(&list).unwrap_or_else(|e| {
            panic!("E2E_METRICS={list:?}: {e}; give comma-separated metric names, e.g. E2E_METRICS=container_cpu_usage_seconds_total,container_memory_working_set_bytes")
        }),
        _ => cell().metrics,
    }
}

fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("E2E_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| e2e::workspace_root().join("target/e2e/artifacts"));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The Prometheus CR's scrapeInterval (e.g. `10s`), so waits follow the manifest.
fn scrape_interval() -> Duration {
    install::scrape_interval().unwrap_or_else(|e| panic!("{e:#}"))
}

async fn prometheus(client: &Client) -> PrometheusClient {
    // The StatefulSet was ready before this test started, but the proxy may still answer 503
    // for a moment: ready() retries that.
    let prom = e2e::kubeproxy::prometheus_client(client.clone(), Duration::from_secs(120));
    prom.ready()
        .await
        .unwrap_or_else(|e| panic!("Prometheus through the API server proxy: {e}"));
    prom
}

async fn list_running(client: &Client) -> Vec<RunningPod> {
    e2e::pods::list_running_pods(client)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn write_json(name: &str, value: &serde_json::Value) -> PathBuf {
    let path = artifacts_dir().join(name);
    let text = e2e::redact::redact(&serde_json::to_string_pretty(value).unwrap());
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

async fn check(
    prom: &PrometheusClient,
    pods: &[RunningPod],
    metrics: &[MetricName],
    opts: &WaitOptions,
) -> MetricsReport {
    let mut progress = |r: &MetricsReport| {
        for m in &r.metrics {
            eprintln!(
                "coverage of {}: {}/{} pods, {}/{} containers after {:.1}s",
                m.metric,
                m.pods_covered,
                m.pods_total,
                m.containers_covered,
                m.containers_total,
                r.waited_ms as f64 / 1000.0
            )
        }
    };
    coverage::check_metrics(prom, pods, metrics, opts, &mut progress)
        .await
        .unwrap_or_else(|e| panic!("the coverage query failed: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: cargo xtask e2e"]
async fn every_running_container_has_each_metric_in_prometheus() {
    let metrics = metrics();
    let client = client().await;
    let prom = prometheus(&client).await;
    let mut pods = list_running(&client).await;
    assert!(
        !pods.is_empty(),
        "the cluster has no Running pods (not even kube-system's)"
    );
    for ns in [
        "kube-system",
        install::PROMETHEUS_NAMESPACE,
        "pme2e-apps",
        "pme2e-batch",
    ] {
        assert!(
            pods.iter().any(|p| p.namespace == ns),
            "no Running pod in namespace {ns}: {pods:#?}"
        );
    }

    let mut opts = WaitOptions::for_scrape_interval(scrape_interval());
    // Workloads started moments ago and the cluster is busy: allow a couple of minutes.
    opts.deadline = opts.deadline.max(Duration::from_secs(120));
    let mut report = check(&prom, &pods, &metrics, &opts).await;
    if !report.is_complete() {
        // A pod that stopped running during the wait is not a coverage gap: check once more
        // against the pods running now.
        let now = list_running(&client).await;
        if report.incomplete().flat_map(|r| &r.missing).any(|m| {
            !now.iter()
                .any(|p| p.namespace == m.namespace && p.name == m.name)
        }) {
            pods = now;
            opts.deadline = opts.deadline.min(Duration::from_secs(60));
            report = check(&prom, &pods, &metrics, &opts).await;
        }
    }
    let coverage_path = write_json("coverage.json", &report.to_json());
    eprintln!("{report}coverage report: {}", coverage_path.display());

    if !report.is_complete() {
        let diagnosis = match e2e::diagnose::cluster_for(&client, &prom, &pods, &metrics).await {
            Ok(findings) => {
                let path = write_json("diagnose.json", &serde_json::to_value(&findings).unwrap());
                format!(
                    "{}\n(diagnosis: {})",
                    e2e::diagnose::render_text(&findings),
                    path.display()
                )
            }
            Err(e) => format!("diagnosis failed too: {e:#}"),
        };
        panic!("{report}\n{diagnosis}");
    }

    let expected = match variant() {
        ServiceMonitorVariant::Mission => NamespaceLabel::ExportedNamespace,
        ServiceMonitorVariant::HonorLabels => NamespaceLabel::Namespace,
    };
    for r in &report.metrics {
        assert_eq!(
            r.namespace_label,
            expected,
            "every pod is covered for {}, but the namespace label is not where the {:?} ServiceMonitor puts it",
            r.metric,
            variant()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: cargo xtask e2e"]
async fn the_cadvisor_job_has_one_healthy_target_per_node() {
    let client = client().await;
    let prom = prometheus(&client).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let mut node_names: Vec<String> = nodes
        .list(&ListParams::default())
        .await
        .expect("list nodes")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    node_names.sort();
    assert!(!node_names.is_empty());

    // A new target is "unknown" until its first scrape: give it a few intervals.
    let deadline = Instant::now() + scrape_interval() * 4 + Duration::from_secs(30);
    loop {
        let targets = prom
            .targets()
            .await
            .unwrap_or_else(|e| panic!("/api/v1/targets: {e}"));
        let cadvisor: Vec<_> = targets
            .active
            .iter()
            .filter(|t| t.scrape_pool == CADVISOR_JOB)
            .collect();
        let mut target_nodes: Vec<String> = cadvisor
            .iter()
            .filter_map(|t| t.labels.get("node").cloned())
            .collect();
        target_nodes.sort();
        let all_up = cadvisor.iter().all(|t| t.health == "up");
        if target_nodes == node_names && all_up {
            for t in &cadvisor {
                assert!(
                    t.scrape_url.starts_with("https://")
                        && t.scrape_url.ends_with(":10250/metrics/cadvisor"),
                    "{}",
                    t.scrape_url
                );
                assert_eq!(
                    t.labels.get("namespace").map(String::as_str),
                    Some("kube-system")
                );
                assert_eq!(
                    t.labels.get("endpoint").map(String::as_str),
                    Some("https-metrics")
                );
            }
            return;
        }
        if Instant::now() >= deadline {
            let detail: Vec<String> = cadvisor
                .iter()
                .map(|t| format!("{} {} {}", t.scrape_url, t.health, t.last_error))
                .collect();
            panic!(
                "job {CADVISOR_JOB}: targets for nodes {target_nodes:?}, cluster nodes {node_names:?}; \
                 not all up: {detail:#?}"
            );
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: cargo xtask e2e"]
async fn prometheus_loaded_the_operator_generated_cadvisor_job() {
    let client = client().await;
    let prom = prometheus(&client).await;
    // The servicemonitor phase waited for this already; waiting again keeps this test correct
    // on its own (the Secret → kubelet sync → reload chain takes up to ~2 minutes).
    install::wait_scrape_job_loaded(&prom, CADVISOR_JOB, Duration::from_secs(180))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let yaml = prom
        .config_yaml()
        .await
        .unwrap_or_else(|e| panic!("/api/v1/status/config: {e}"));
    let config: e2e::yaml::Value =
        e2e::yaml::from_str(&yaml).expect("Prometheus's loaded config is YAML");
    let jobs = config["scrape_configs"].as_array().expect("scrape_configs");
    let job = jobs
        .iter()
        .find(|j| j["job_name"].as_str() == Some(CADVISOR_JOB))
        .unwrap_or_else(|| {
            panic!(
                "no job {CADVISOR_JOB} in the loaded config:\n{}",
                e2e::redact::redact(&yaml)
            )
        });
    assert_eq!(job["metrics_path"].as_str(), Some("/metrics/cadvisor"));
    assert_eq!(job["scheme"].as_str(), Some("https"));
    assert_eq!(
        job["bearer_token_file"]
            .as_str()
            .or_else(|| job["authorization"]["credentials_file"].as_str()),
        Some("/var/run/secrets/kubernetes.io/serviceaccount/token")
    );
    assert_eq!(
        job["tls_config"]["insecure_skip_verify"].as_bool(),
        Some(true)
    );
    let honor = job["honor_labels"].as_bool().unwrap_or(false);
    assert_eq!(
        honor,
        variant() == ServiceMonitorVariant::HonorLabels,
        "honor_labels of {CADVISOR_JOB}"
    );
}
