//! Real kubelet `/metrics/cadvisor` captures (`$E2E_CAPTURES_DIR`, provenance in its `SOURCES.md`)
//! served as they are by the fixture kubelet (sample timestamps dropped), scraped by a real
//! Prometheus with the operator's job, and checked against the pod list captured with them.
//!
//! The expected counts are made here, from the two files, without the library: the pod list is
//! read as plain JSON and the capture's rows with `e2e::relabel::parse_sample`.
//!
//! Needs `E2E_CAPTURES_DIR` (the `captures/` folder beside the project: `.ci/run` sets it);
//! `cargo xtask test` lists these tests as skipped when it is unset, and they fail without it.

use super::{check, check_with, finish, SCRAPE};
use e2e::coverage::{CoverageReport, MetricName, NamespaceLabel, WaitOptions};
use e2e::relabel::Sample;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use testkit::{FixtureKubelet, KubeletOptions, PrometheusSetup};

/// One capture: its folder, the pod list to check against, and the node it was taken on.
pub(super) struct Capture {
    pub(super) dir: &'static str,
    /// `pods-all-namespaces.json` (`kubectl get pods -A`), or the kubelet's own `/pods` when the
    /// source has nothing else (GKE).
    pub(super) pod_list: &'static str,
    pub(super) node: &'static str,
}

pub(super) const KIND_1_27: Capture = Capture {
    dir: "kind-1.27-containerd",
    pod_list: "pods-all-namespaces.json",
    node: "kind-control-plane",
};
pub(super) const MINIKUBE_1_35: Capture = Capture {
    dir: "minikube-1.35-containerd",
    pod_list: "pods-all-namespaces.json",
    node: "datagen-1-35",
};
pub(super) const GKE_1_9_DOCKER: Capture = Capture {
    dir: "gke-docker-legacy-pod_name",
    pod_list: "kubelet-pods.json",
    node: "gke-haissam-default-pool-be5066f1-wnvn",
};

pub(super) type Containers = BTreeMap<(String, String), BTreeSet<String>>;

/// Running containers per (namespace, pod), read from the pod list as plain JSON: phase
/// `Running` and `state.running` set (what the kubelet reports for a started container).
pub(super) fn running_containers(pod_list: &str) -> Containers {
    let list: Value = serde_json::from_str(pod_list).expect("the pod list is JSON");
    let mut out = Containers::new();
    for pod in list["items"].as_array().expect("an items array") {
        if pod["status"]["phase"] != "Running" {
            continue;
        }
        let running: BTreeSet<String> = pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|cs| cs["state"]["running"].is_object())
            .map(|cs| cs["name"].as_str().unwrap().to_string())
            .collect();
        if !running.is_empty() {
            let key = (
                pod["metadata"]["namespace"].as_str().unwrap().to_string(),
                pod["metadata"]["name"].as_str().unwrap().to_string(),
            );
            out.insert(key, running);
        }
    }
    out
}

fn label<'a>(s: &'a Sample<'_>, modern: &str, legacy: &str) -> &'a str {
    s.labels
        .get(modern)
        .or_else(|| s.labels.get(legacy))
        .map(String::as_str)
        .unwrap_or("")
}

/// (namespace, pod, container) of every CPU row of a real container (not the pod's cgroup, not
/// the sandbox: `""` under containerd, `POD` under Docker).
fn cpu_containers(cadvisor: &str) -> BTreeSet<(String, String, String)> {
    cadvisor
        .lines()
        .filter_map(e2e::relabel::parse_sample)
        .filter(|s| s.name == "container_cpu_usage_seconds_total")
        .map(|s| {
            (
                s.labels.get("namespace").cloned().unwrap_or_default(),
                label(&s, "pod", "pod_name").to_string(),
                label(&s, "container", "container_name").to_string(),
            )
        })
        .filter(|(_, _, c)| !c.is_empty() && c != "POD")
        .collect()
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the check names as missing: (namespace, pod, containers), sorted.
fn missing(report: &CoverageReport) -> Vec<(String, String, Vec<String>)> {
    report
        .missing
        .iter()
        .map(|m| {
            (
                m.namespace.clone(),
                m.name.clone(),
                m.missing_containers.clone(),
            )
        })
        .collect()
}

/// Serves `body`, waits two scrapes so the removed rows are stale, and checks with a deadline
/// that still lets a complete answer come in (it never does when rows are missing).
async fn recheck(
    kubelet: &FixtureKubelet,
    prom: &testkit::RunningPrometheus,
    pods: &[e2e::pods::RunningPod],
    body: String,
) -> CoverageReport {
    kubelet.set_raw_body(body);
    kubelet
        .wait_scrapes(2, Duration::from_secs(30))
        .await
        .unwrap();
    let report = check_with(
        &prom.client(),
        pods,
        WaitOptions {
            deadline: Duration::from_secs(3),
            poll_interval: Duration::from_millis(500),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{report}");
    report
}

async fn capture_is_covered_then_names_exactly_what_is_removed(c: Capture) {
    let root = testkit::required_input(
        "E2E_CAPTURES_DIR",
        "the real kubelet captures (the `captures/` folder of ../shared/upstream)",
    );
    let dir = root.join(c.dir);
    let cadvisor = read(&dir.join("cadvisor.prom"));
    let pod_list = read(&dir.join(c.pod_list));

    // The independent count, and a sanity check of the capture itself: every running container
    // of the pod list has a CPU row.
    let expected = running_containers(&pod_list);
    let rows = cpu_containers(&cadvisor);
    let expected_containers: usize = expected.values().map(BTreeSet::len).sum();
    assert!(expected.len() >= 4, "{}: too few running pods", c.dir);
    for ((ns, pod), containers) in &expected {
        for container in containers {
            assert!(
                rows.contains(&(ns.clone(), pod.clone(), container.clone())),
                "{}: running container {ns}/{pod}/{container} has no CPU row in the capture",
                c.dir
            );
        }
    }

    // Served as it is, without the timestamps: every sample line survives.
    let body = e2e::relabel::strip_timestamps(&cadvisor);
    let samples = |t: &str| t.lines().filter_map(e2e::relabel::parse_sample).count();
    assert_eq!(samples(&body), samples(&cadvisor));
    assert!(body
        .lines()
        .filter_map(e2e::relabel::parse_sample)
        .all(|s| s.timestamp.is_none()));

    let opts = KubeletOptions {
        node: c.node.to_string(),
        ..KubeletOptions::default()
    };
    let kubelet = FixtureKubelet::start_raw(opts, body.clone())
        .await
        .expect("fixture kubelet starts");
    let prom = PrometheusSetup::new()
        .scrape_interval(SCRAPE)
        .kubelet(&kubelet)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    prom.wait_scraped(Duration::from_secs(30)).await.unwrap();

    let pods = e2e::pods::from_kubectl_json(&pod_list)
        .unwrap_or_else(|e| panic!("{}/{}: {e:#}", c.dir, c.pod_list));
    let report = check(&prom, &pods).await;
    eprintln!("{report}");
    assert!(report.is_complete(), "{}: {report}", c.dir);
    assert_eq!(
        (report.pods_total, report.pods_covered),
        (expected.len(), expected.len()),
        "{}: {report}",
        c.dir
    );
    assert_eq!(
        (report.containers_total, report.containers_covered),
        (expected_containers, expected_containers),
        "{}: {report}",
        c.dir
    );
    // The mission's ServiceMonitor (honorLabels: false): the pods' namespaces are exported.
    assert_eq!(report.namespace_label, NamespaceLabel::ExportedNamespace);
    // Memory too: every running container has a working-set row in a real kubelet's answer.
    let all = super::check_metrics(&prom, &pods, &MetricName::defaults()).await;
    assert!(all.is_complete(), "{}: {all}", c.dir);
    let mem = all.get(e2e::coverage::MEMORY_METRIC).unwrap();
    assert_eq!(
        (mem.containers_total, mem.containers_covered),
        (expected_containers, expected_containers),
        "{}: {mem}",
        c.dir
    );

    // One container's rows gone (of a pod with several when there is one): exactly it is named.
    let ((ns, pod), containers) = expected
        .iter()
        .max_by_key(|(_, cs)| cs.len())
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    let container = containers.iter().next_back().unwrap().clone();
    let without_container = testkit::without_samples(&body, |s| {
        s.labels.get("namespace") == Some(&ns)
            && label(s, "pod", "pod_name") == pod
            && label(s, "container", "container_name") == container
    });
    assert!(without_container.len() < body.len());
    let report = recheck(&kubelet, &prom, &pods, without_container).await;
    assert_eq!(
        missing(&report),
        [(ns.clone(), pod.clone(), vec![container.clone()])],
        "{}: {report}",
        c.dir
    );
    assert_eq!(report.pods_covered, expected.len() - 1);
    assert_eq!(report.containers_covered, expected_containers - 1);
    assert_eq!(report.missing[0].no_series_at_all, containers.len() == 1);

    // One whole pod's rows gone (another pod, every row of it): exactly it, every container.
    let ((ns2, pod2), containers2) = expected
        .iter()
        .find(|((n, p), _)| (n, p) != (&ns, &pod))
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    let without_pod = testkit::without_samples(&body, |s| {
        s.labels.get("namespace") == Some(&ns2) && label(s, "pod", "pod_name") == pod2
    });
    let report = recheck(&kubelet, &prom, &pods, without_pod).await;
    assert_eq!(
        missing(&report),
        [(ns2, pod2, containers2.iter().cloned().collect::<Vec<_>>())],
        "{}: {report}",
        c.dir
    );
    assert!(report.missing[0].no_series_at_all);
    assert_eq!(report.pods_covered, expected.len() - 1);
    finish(prom).await;
}

/// Label names of each row of `metric`, without `cpu`, as a set of sets.
fn label_sets(cadvisor: &str, metric: &str) -> BTreeSet<BTreeSet<String>> {
    cadvisor
        .lines()
        .filter_map(e2e::relabel::parse_sample)
        .filter(|s| s.name == metric)
        .map(|s| s.labels.keys().filter(|k| *k != "cpu").cloned().collect())
        .collect()
}

/// What the fixture kubelet's memory rows follow: in every real capture, memory rows carry the
/// CPU rows' label names without `cpu` (pod-level, pause/`POD` and container rows alike), and
/// there is one for every cgroup with a CPU row.
#[test]
fn memory_rows_have_the_cpu_rows_labels_without_cpu() {
    let root = testkit::required_input(
        "E2E_CAPTURES_DIR",
        "the real kubelet captures (the `captures/` folder of ../shared/upstream)",
    );
    for c in [KIND_1_27, MINIKUBE_1_35, GKE_1_9_DOCKER] {
        let cadvisor = read(&root.join(c.dir).join("cadvisor.prom"));
        let cpu = label_sets(&cadvisor, e2e::coverage::CPU_METRIC);
        let mem = label_sets(&cadvisor, e2e::coverage::MEMORY_METRIC);
        assert!(!mem.is_empty(), "{}: no memory rows", c.dir);
        assert_eq!(mem, cpu, "{}", c.dir);
        let ids = |metric: &str| -> BTreeSet<String> {
            cadvisor
                .lines()
                .filter_map(e2e::relabel::parse_sample)
                .filter(|s| s.name == metric)
                .filter_map(|s| s.labels.get("id").cloned())
                .collect()
        };
        let cpu_ids = ids(e2e::coverage::CPU_METRIC);
        let mem_ids = ids(e2e::coverage::MEMORY_METRIC);
        assert!(
            cpu_ids.is_subset(&mem_ids),
            "{}: cgroups with CPU but no memory row: {:?}",
            c.dir,
            cpu_ids.difference(&mem_ids).collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_1_27_containerd_capture() {
    capture_is_covered_then_names_exactly_what_is_removed(KIND_1_27).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minikube_1_35_containerd_capture() {
    capture_is_covered_then_names_exactly_what_is_removed(MINIKUBE_1_35).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gke_1_9_docker_legacy_labels_capture() {
    capture_is_covered_then_names_exactly_what_is_removed(GKE_1_9_DOCKER).await;
}
