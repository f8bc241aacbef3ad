//! `e2e::replay` (what `cargo xtask replay` runs): the three real captures of `$E2E_CAPTURES_DIR`
//! replayed with the mission's ServiceMonitor are fully covered, counted independently from
//! their pod lists, and with `metricRelabelings` dropping one namespace exactly its pods are
//! missing with the rule named; and a capture taken from the cluster twin with `e2e::capture` (through the
//! twin's node proxy) replays to the same verdict as the check on the live twin.
//!
//! Needs Docker and `E2E_PROMETHEUS_IMAGE`; the captures `E2E_CAPTURES_DIR`; the twin test
//! `E2E_OPERATOR_BUNDLE`. At most two Prometheus containers at once (the twin test runs the
//! twin's and the replay's, one after the other overlapping).

use super::captures::{self, Capture};
use e2e::coverage::{
    self, MetricName, MetricsReport, NamespaceLabel, WaitOptions, CPU_METRIC, MEMORY_METRIC,
};
use e2e::diagnose::{self, Finding, Verdict};
use e2e::replay::{Replay, ReplayInputs, ReplayOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

fn mission_servicemonitor() -> PathBuf {
    e2e::workspace_root().join("manifests/servicemonitor-cadvisor.yaml")
}

fn wait() -> WaitOptions {
    WaitOptions {
        deadline: Duration::from_secs(20),
        poll_interval: Duration::from_millis(500),
    }
}

async fn replay_check_with(replay: &Replay, wait: &WaitOptions) -> (MetricsReport, Vec<Finding>) {
    let mut progress = |r: &MetricsReport| {
        for m in r.incomplete() {
            eprintln!(
                "  … {}/{} pods covered for {}",
                m.pods_covered, m.pods_total, m.metric
            )
        }
    };
    let (report, findings) = replay
        .check(&MetricName::defaults(), wait, &mut progress)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprint!("{report}{}", diagnose::render_text(&findings));
    (report, findings)
}

async fn replay_check(replay: &Replay) -> (MetricsReport, Vec<Finding>) {
    replay_check_with(replay, &wait()).await
}

/// No container with the replay's run label is left once it dropped.
fn assert_removed(run_id: &str) {
    let left = testkit::containers_with_run_label(run_id).unwrap();
    assert!(
        left.is_empty(),
        "replay container {run_id} left behind: {left:?}"
    );
}

fn capture_inputs(c: &Capture, servicemonitor: PathBuf) -> (ReplayInputs, captures::Containers) {
    let root = testkit::required_input(
        "E2E_CAPTURES_DIR",
        "the real kubelet captures (the `captures/` folder of ../shared/upstream)",
    );
    let dir = root.join(c.dir);
    let pod_list = dir.join(c.pod_list);
    let text = std::fs::read_to_string(&pod_list)
        .unwrap_or_else(|e| panic!("{}: {e}", pod_list.display()));
    let inputs = ReplayInputs {
        cadvisor: vec![(c.node.to_string(), dir.join("cadvisor.prom"))],
        pods: Some(pod_list),
        servicemonitor: Some(servicemonitor),
        ..Default::default()
    };
    (inputs, captures::running_containers(&text))
}

async fn capture_replays_covered_then_a_dropped_namespace_is_named(c: Capture) {
    let (inputs, expected) = capture_inputs(&c, mission_servicemonitor());
    let containers: usize = expected.values().map(BTreeSet::len).sum();
    let replay = Replay::start(&inputs, &ReplayOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", c.dir));
    // The operator's kubelet Endpoints: three ports of one node, only https-metrics served.
    assert_eq!(replay.target_count(), 3);
    let (all, findings) = replay_check(&replay).await;
    assert!(all.is_complete(), "{}: {all}", c.dir);
    for metric in [CPU_METRIC, MEMORY_METRIC] {
        let report = all.get(metric).unwrap();
        assert_eq!(
            (report.pods_covered, report.containers_covered),
            (expected.len(), containers),
            "{}: {report}",
            c.dir
        );
        assert_eq!(report.namespace_label, NamespaceLabel::ExportedNamespace);
    }
    assert_eq!(Verdict::of(&findings), Verdict::Healthy, "{findings:#?}");
    let run_id = replay.prometheus().run_id().to_string();
    drop(replay);
    assert_removed(&run_id);

    // The same capture with a ServiceMonitor whose metricRelabelings drop one namespace (the
    // one with most running pods besides kube-system; `exported_namespace`, as honorLabels is
    // false): exactly its pods are missing, and the rule is named as the cause.
    let mut per_ns: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (ns, pod) in expected.keys() {
        per_ns.entry(ns.as_str()).or_default().insert(pod.as_str());
    }
    let (dropped_ns, dropped_pods) = per_ns
        .iter()
        .filter(|(ns, _)| **ns != "kube-system")
        .max_by_key(|(_, pods)| pods.len())
        .map(|(ns, pods)| (ns.to_string(), pods.clone()))
        .expect("a namespace besides kube-system");
    let dir = tempfile::tempdir().unwrap();
    let sm = dir.path().join("servicemonitor-drops.yaml");
    let text = std::fs::read_to_string(mission_servicemonitor()).unwrap().replace(
        "    path: /metrics/cadvisor\n",
        &format!(
            "    path: /metrics/cadvisor\n    metricRelabelings:\n    - sourceLabels: [exported_namespace]\n      regex: {dropped_ns}\n      action: drop\n"
        ),
    );
    std::fs::write(&sm, text).unwrap();
    let (inputs, _) = capture_inputs(&c, sm);
    let replay = Replay::start(&inputs, &ReplayOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", c.dir));
    let short = WaitOptions {
        deadline: Duration::from_secs(8),
        poll_interval: Duration::from_millis(500),
    };
    let (all, findings) = replay_check_with(&replay, &short).await;
    let want: BTreeSet<(&str, &str)> = dropped_pods
        .iter()
        .map(|p| (dropped_ns.as_str(), *p))
        .collect();
    // Both metrics' series go: the rule matches every series of the namespace.
    for metric in [CPU_METRIC, MEMORY_METRIC] {
        let report = all.get(metric).unwrap();
        let missing: BTreeSet<(&str, &str)> = report
            .missing
            .iter()
            .map(|m| (m.namespace.as_str(), m.name.as_str()))
            .collect();
        assert_eq!(missing, want, "{}: {report}", c.dir);
        assert_eq!(report.pods_covered, expected.len() - want.len());
    }
    let drop_finding = findings
        .iter()
        .find(|f| f.id == "metric-relabel-drops")
        .unwrap_or_else(|| panic!("{}: no metric-relabel-drops finding: {findings:#?}", c.dir));
    let text = diagnose::render_text(std::slice::from_ref(drop_finding));
    assert!(
        text.contains("spec.endpoints[0].metricRelabelings[0]"),
        "{text}"
    );
    assert!(text.contains(&dropped_ns), "{text}");
    assert_eq!(Verdict::of(&findings), Verdict::Broken, "{findings:#?}");
    let run_id = replay.prometheus().run_id().to_string();
    drop(replay);
    assert_removed(&run_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_kind_1_27_capture_covered_then_a_metric_relabel_drop_named() {
    capture_replays_covered_then_a_dropped_namespace_is_named(captures::KIND_1_27).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_minikube_1_35_capture_covered_then_a_metric_relabel_drop_named() {
    capture_replays_covered_then_a_dropped_namespace_is_named(captures::MINIKUBE_1_35).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_gke_1_9_docker_capture_covered_then_a_metric_relabel_drop_named() {
    capture_replays_covered_then_a_dropped_namespace_is_named(captures::GKE_1_9_DOCKER).await;
}

/// What the verdict is made of: completeness, which pods are missing per metric, the namespace
/// label and the overall verdict (the finding ids are compared separately).
#[allow(clippy::type_complexity)]
fn verdict(
    report: &MetricsReport,
    findings: &[Finding],
) -> (
    bool,
    Vec<(String, Vec<(String, String)>, NamespaceLabel)>,
    Verdict,
) {
    (
        report.is_complete(),
        report
            .metrics
            .iter()
            .map(|m| {
                (
                    m.metric.clone(),
                    m.missing
                        .iter()
                        .map(|p| (p.namespace.clone(), p.name.clone()))
                        .collect(),
                    m.namespace_label,
                )
            })
            .collect(),
        Verdict::of(findings),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_a_twin_capture_gives_the_live_check_verdict() {
    twin_capture_replays_to_the_live_verdict(None).await;
}

/// The same with a ServiceMonitor whose `metricRelabelings` drop the workloads' `pme2e-apps`
/// namespace: the same pods missing live and replayed, both broken; the replay also names the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_a_broken_twin_capture_gives_the_live_check_verdict_and_names_the_rule() {
    twin_capture_replays_to_the_live_verdict(Some("pme2e-apps")).await;
}

async fn twin_capture_replays_to_the_live_verdict(drop_namespace: Option<&str>) {
    use e2e::install::{apply_servicemonitor, apply_workloads};
    use e2e::k8s::client::kube_client;
    use e2e::matrix::ServiceMonitorVariant;
    use testkit::twin::{Profile, Twin, TwinOptions};

    let t = Twin::start(TwinOptions::new(Profile::V1_21)).await.unwrap();
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let timeout = Duration::from_secs(120);
    testkit::install_operator_and_prometheus(&client, timeout).await;
    let prom = e2e::kubeproxy::prometheus_client(
        client.clone(),
        e2e::install::PROMETHEUS_NAMESPACE,
        Duration::from_secs(10),
    );
    match drop_namespace {
        None => apply_servicemonitor(&client, ServiceMonitorVariant::Mission, timeout)
            .await
            .unwrap_or_else(|e| panic!("{e:#}")),
        Some(ns) => {
            let text = std::fs::read_to_string(mission_servicemonitor())
                .unwrap()
                .replace(
                    "    path: /metrics/cadvisor\n",
                    &format!("    path: /metrics/cadvisor\n    metricRelabelings:\n    - sourceLabels: [exported_namespace]\n      regex: {ns}\n      action: drop\n"),
                );
            let docs =
                e2e::k8s::manifests::parse_documents(&text, "servicemonitor with a drop rule")
                    .unwrap();
            e2e::k8s::apply::Applier::new(client.clone(), timeout)
                .apply_all(&docs.iter().collect::<Vec<_>>())
                .await
                .unwrap_or_else(|e| panic!("{e:#}"));
            e2e::install::wait_scrape_job_loaded(
                &prom,
                "serviceMonitor/kube-system/cadvisor/0",
                timeout,
            )
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        }
    }
    apply_workloads(&client, timeout)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    // The live check, as `check`/the main job run it (Prometheus through the service proxy).
    // With pods missing it runs to its deadline: four of the twin's 10 s scrapes.
    let pods = e2e::pods::list_running_pods(&client).await.unwrap();
    let live_opts = WaitOptions {
        deadline: Duration::from_secs(if drop_namespace.is_some() { 45 } else { 60 }),
        poll_interval: Duration::from_secs(1),
    };
    let metrics = MetricName::defaults();
    let live = coverage::check_metrics(&prom, &pods, &metrics, &live_opts, &mut |_| {})
        .await
        .unwrap();
    let live_findings = diagnose::prometheus_side_for(&prom, &pods, &metrics)
        .await
        .unwrap();
    eprint!("live: {live}{}", diagnose::render_text(&live_findings));
    let live_cpu = live.get(CPU_METRIC).unwrap();
    assert!(live_cpu.pods_total >= 5, "{live}");

    // The capture, through the node proxy, with a progress line per node.
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("capture");
    let mut lines = Vec::new();
    let manifest = e2e::capture::capture(&client, &dir, ("kube-system", "kubelet"), &mut |l| {
        lines.push(l.to_string())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(manifest.nodes.len() >= 2, "{manifest:?}");
    assert_eq!(lines.len(), manifest.nodes.len(), "{lines:?}");
    assert!(
        manifest.nodes.iter().all(|n| n.cadvisor.is_some()),
        "{manifest:?}"
    );
    assert_eq!(
        manifest.servicemonitors,
        ["servicemonitors/kube-system_cadvisor.yaml"]
    );
    assert!(manifest.kubelet_endpoints.is_some() && manifest.kubelet_service.is_some());
    assert_eq!(manifest.cluster_version, Profile::V1_21.git_version());
    // Redacted: the twin's admin token and the service-account tokens never reach the files.
    for entry in walk(&dir) {
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(
            !text.contains(&t.cluster().admin_token),
            "{}",
            entry.display()
        );
        assert!(!text.contains("eyJ"), "{} holds a JWT", entry.display());
    }

    let inputs = ReplayInputs::from_capture_dir(&dir).unwrap();
    let replay = Replay::start(&inputs, &ReplayOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (report, findings) = replay_check(&replay).await;
    assert_eq!(verdict(&report, &findings), verdict(&live, &live_findings));
    // The findings: the live ones, and where a rule removed series the replay names it (it has
    // the kubelets' bodies, which the live Prometheus-side diagnosis does not).
    let ids = |f: &[Finding]| f.iter().map(|f| f.id).collect::<BTreeSet<_>>();
    let extra: Vec<&str> = ids(&findings)
        .difference(&ids(&live_findings))
        .copied()
        .collect();
    assert!(
        ids(&live_findings).is_subset(&ids(&findings)),
        "{findings:#?}\n{live_findings:#?}"
    );
    match drop_namespace {
        None => assert_eq!(extra, Vec::<&str>::new()),
        Some(ns) => {
            assert_eq!(extra, ["metric-relabel-drops"]);
            assert_eq!(Verdict::of(&findings), Verdict::Broken);
            let cpu = report.get(CPU_METRIC).unwrap();
            assert!(
                !cpu.missing.is_empty() && cpu.missing.iter().all(|m| m.namespace == ns),
                "{report}"
            );
        }
    }
    for (r, l) in report.metrics.iter().zip(&live.metrics) {
        assert_eq!(
            (
                &r.metric,
                r.pods_total,
                r.pods_covered,
                r.containers_covered
            ),
            (
                &l.metric,
                l.pods_total,
                l.pods_covered,
                l.containers_covered
            )
        );
    }
    let run_id = replay.prometheus().run_id().to_string();
    drop(replay);
    assert_removed(&run_id);
    t.shutdown().await;
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
