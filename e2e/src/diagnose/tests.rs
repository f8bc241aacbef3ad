use super::catalogue as k;
use super::kube_checks::*;
use super::prom_checks::*;
use super::*;
use crate::prometheus::{ActiveTarget, DroppedTarget, Targets};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Service};
use serde_json::json;
use std::collections::BTreeMap;

fn ids(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.id).collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------- link 1: kubelet Service ----------

fn node(name: &str) -> Node {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

fn kubelet_service_obj() -> Service {
    serde_json::from_value(
        json!({"metadata": {"namespace": "kube-system", "name": "kubelet",
        "labels": {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"}},
        "spec": {"clusterIP": "None", "ports": [{"name": "https-metrics", "port": 10250}]}}),
    )
    .unwrap()
}

fn kubelet_endpoints(nodes: &[&str], port: &str) -> Endpoints {
    let addresses: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"ip": format!("172.18.0.{}", i + 2), "targetRef": {"kind": "Node", "name": n}}))
        .collect();
    serde_json::from_value(json!({"metadata": {"namespace": "kube-system", "name": "kubelet"},
        "subsets": [{"addresses": addresses, "ports": [{"name": port, "port": 10250}, {"name": "cadvisor", "port": 4194}]}]}))
    .unwrap()
}

const OPERATOR_ARGS: &[&str] = &[
    "--kubelet-service=kube-system/kubelet",
    "--prometheus-config-reloader=x",
];

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn kubelet_service_healthy_yields_nothing() {
    let nodes = [node("cp"), node("w1")];
    let a = args(OPERATOR_ARGS);
    let f = kubelet_service(
        Some(&kubelet_service_obj()),
        Some(&kubelet_endpoints(&["cp", "w1"], "https-metrics")),
        &nodes,
        Some(&a),
    );
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn kubelet_service_missing_names_the_operator_flag() {
    let a = args(&["--prometheus-config-reloader=x"]);
    let f = kubelet_service(None, None, &[node("cp")], Some(&a));
    assert_eq!(ids(&f), ["kubelet-service-missing"]);
    assert!(
        f[0].evidence[0].contains("lack --kubelet-service"),
        "{:?}",
        f[0].evidence
    );
    assert!(f[0].fix.contains("--kubelet-service=kube-system/kubelet"));
}

#[test]
fn kubelet_endpoints_missing_a_node_names_it() {
    let nodes = [node("cp"), node("w1"), node("w2")];
    let a = args(OPERATOR_ARGS);
    let f = kubelet_service(
        Some(&kubelet_service_obj()),
        Some(&kubelet_endpoints(&["cp", "w1"], "https-metrics")),
        &nodes,
        Some(&a),
    );
    assert_eq!(ids(&f), ["kubelet-endpoints-missing-nodes"]);
    assert!(
        f[0].observed.contains("1 of 3 nodes: w2"),
        "{}",
        f[0].observed
    );
    assert!(f[0].cause.contains("3 minutes"));
}

/// An operator told `--kubelet-service=monitoring/kubelet-svc` keeps that Service: the findings
/// name it, not the bundle's kube-system/kubelet (a missing or malformed flag falls back to it).
#[test]
fn the_kubelet_service_is_the_one_the_operators_flag_names() {
    let custom = args(&["--kubelet-service=monitoring/kubelet-svc"]);
    assert_eq!(
        crate::operator::kubelet_service_of(Some(&custom)),
        ("monitoring".to_string(), "kubelet-svc".to_string())
    );
    for fallback in [
        None,
        Some(args(&["--kubelet-service=nonamespace"])),
        Some(args(&["--prometheus-config-reloader=x"])),
    ] {
        assert_eq!(
            crate::operator::kubelet_service_of(fallback.as_deref()),
            ("kube-system".to_string(), "kubelet".to_string())
        );
    }
    let f = kubelet_service(None, None, &[node("cp")], Some(&custom));
    assert_eq!(ids(&f), ["kubelet-service-missing"]);
    assert_eq!(f[0].observed, "Service monitoring/kubelet-svc not found");
    let f = kubelet_service(
        Some(&kubelet_service_obj()),
        None,
        &[node("cp")],
        Some(&custom),
    );
    assert!(
        f[0].observed
            .starts_with("Endpoints monitoring/kubelet-svc lack 1 of 1 nodes"),
        "{}",
        f[0].observed
    );
}

#[test]
fn kubelet_endpoints_without_https_metrics_port_cover_no_node() {
    let f = kubelet_service(
        Some(&kubelet_service_obj()),
        Some(&kubelet_endpoints(&["cp"], "http-metrics")),
        &[node("cp")],
        None,
    );
    assert_eq!(ids(&f), ["kubelet-endpoints-missing-nodes"]);
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("no port named https-metrics")),
        "{:?}",
        f[0].evidence
    );
    assert!(
        f[0].evidence.iter().any(|e| e.contains("no Deployment")),
        "{:?}",
        f[0].evidence
    );
}

// ---------- link 2: ServiceMonitor selection ----------

fn cadvisor_sm(labels: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"namespace": "kube-system", "name": "cadvisor", "labels": labels},
        "spec": {"endpoints": [{"port": "https-metrics", "scheme": "https", "path": "/metrics/cadvisor"}],
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "kubelet"}},
                 "namespaceSelector": {"matchNames": ["kube-system"]}}})
}

fn prometheus(ns: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"namespace": ns, "name": "k8s"}, "spec": spec})
}

fn namespace(name: &str, l: serde_json::Value) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": l}})).unwrap()
}

fn nss() -> Vec<Namespace> {
    vec![
        namespace(
            "kube-system",
            json!({"kubernetes.io/metadata.name": "kube-system"}),
        ),
        namespace(
            "monitoring",
            json!({"kubernetes.io/metadata.name": "monitoring"}),
        ),
    ]
}

#[test]
fn selected_by_empty_selectors() {
    let sm = cadvisor_sm(json!({}));
    let p = prometheus(
        "monitoring",
        json!({"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {}}),
    );
    assert_eq!(selection(&sm, &[p], &nss()).unwrap(), ["monitoring/k8s"]);
}

#[test]
fn nil_servicemonitor_selector_selects_nothing() {
    let sm = cadvisor_sm(json!({"team": "x"}));
    let p = prometheus("monitoring", json!({"serviceMonitorNamespaceSelector": {}}));
    let f = selection(&sm, &[p], &nss()).unwrap_err();
    assert_eq!(f.id, "servicemonitor-not-selected");
    assert!(
        f.evidence[0].contains("serviceMonitorSelector is not set"),
        "{:?}",
        f.evidence
    );
}

#[test]
fn label_mismatch_is_explained() {
    let sm = cadvisor_sm(json!({"team": "x"}));
    let p = prometheus(
        "monitoring",
        json!({"serviceMonitorSelector": {"matchLabels": {"team": "y"}}, "serviceMonitorNamespaceSelector": {}}),
    );
    let f = selection(&sm, &[p], &nss()).unwrap_err();
    assert!(
        f.evidence[0].contains("does not match the ServiceMonitor's labels"),
        "{:?}",
        f.evidence
    );
}

#[test]
fn nil_namespace_selector_means_own_namespace_only() {
    let sm = cadvisor_sm(json!({}));
    let elsewhere = prometheus("monitoring", json!({"serviceMonitorSelector": {}}));
    let f = selection(&sm, &[elsewhere], &nss()).unwrap_err();
    assert!(
        f.evidence[0].contains("only the Prometheus's own namespace monitoring"),
        "{:?}",
        f.evidence
    );
    // The same Prometheus in kube-system finds it.
    let same_ns = prometheus("kube-system", json!({"serviceMonitorSelector": {}}));
    assert!(selection(&sm, &[same_ns], &nss()).is_ok());
}

#[test]
fn namespace_selector_matches_namespace_labels() {
    let sm = cadvisor_sm(json!({}));
    let by_name = json!({"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}});
    let p = prometheus(
        "monitoring",
        json!({"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": by_name}),
    );
    assert!(selection(&sm, &[p], &nss()).is_ok());
    let other = json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}]});
    let p = prometheus(
        "monitoring",
        json!({"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": other}),
    );
    let f = selection(&sm, &[p], &nss()).unwrap_err();
    assert!(
        f.evidence[0].contains("namespace kube-system's labels"),
        "{:?}",
        f.evidence
    );
}

#[test]
fn no_prometheus_at_all() {
    let f = selection(&cadvisor_sm(json!({})), &[], &nss()).unwrap_err();
    assert_eq!(f.id, "servicemonitor-not-selected");
    assert!(f.observed.contains("no Prometheus object"));
}

#[test]
fn one_selecting_prometheus_is_enough() {
    let sm = cadvisor_sm(json!({}));
    let nil = prometheus("monitoring", json!({}));
    let mut good = prometheus("kube-system", json!({"serviceMonitorSelector": {}}));
    good["metadata"]["name"] = json!("main");
    assert_eq!(
        selection(&sm, &[nil, good], &nss()).unwrap(),
        ["kube-system/main"]
    );
}

#[test]
fn finds_cadvisor_servicemonitors_by_path() {
    let other = json!({"metadata": {"namespace": "x", "name": "app"}, "spec": {"endpoints": [{"port": "web"}]}});
    let all = [other, cadvisor_sm(json!({}))];
    let found = cadvisor_servicemonitors(&all);
    assert_eq!(found.len(), 1);
    assert_eq!(object_key(found[0]), "kube-system/cadvisor");
    assert_eq!(
        servicemonitor_missing(1, false).id,
        "servicemonitor-missing"
    );
}

// ---------- links 3–7: Prometheus side ----------

const JOB: &str = "serviceMonitor/kube-system/cadvisor/0";

fn job(honor: bool) -> Job {
    Job {
        name: JOB.into(),
        metrics_path: "/metrics/cadvisor".into(),
        scheme: "https".into(),
        honor_labels: honor,
    }
}

fn target(node: &str, health: &str, url: &str, err: &str) -> ActiveTarget {
    ActiveTarget {
        labels: labels(&[
            ("node", node),
            ("namespace", "kube-system"),
            ("job", "kubelet"),
        ]),
        scrape_pool: JOB.into(),
        scrape_url: url.into(),
        health: health.into(),
        last_error: err.into(),
        last_scrape: "2021-06-01T10:00:30Z".into(),
        ..Default::default()
    }
}

fn up(node: &str) -> ActiveTarget {
    target(node, "up", "https://172.18.0.2:10250/metrics/cadvisor", "")
}

fn series(ns: &str, pod: &str, container: &str, honor: bool) -> BTreeMap<String, String> {
    if honor {
        labels(&[("namespace", ns), ("pod", pod), ("container", container)])
    } else {
        labels(&[
            ("namespace", "kube-system"),
            ("exported_namespace", ns),
            ("pod", pod),
            ("container", container),
        ])
    }
}

fn pod(ns: &str, name: &str, containers: &[&str], node: &str, started: i64) -> RunningPod {
    let mut p = RunningPod::new(ns, name, containers);
    p.node = Some(node.into());
    p.started_at = Some(started);
    p
}

/// 2021-06-01T10:00:30Z, the targets' last scrape.
const LAST_SCRAPE: i64 = 1_622_541_630;

fn healthy(honor: bool) -> (Snapshot, Vec<RunningPod>) {
    let snap = Snapshot {
        jobs: vec![job(honor)],
        targets: Targets {
            active: vec![up("w1")],
            dropped: vec![],
        },
        cpu_series: vec![
            series("apps", "web", "app", honor),
            series("apps", "web", "sidecar", honor),
        ],
        metric_series: Vec::new(),
        metric_names: Default::default(),
    };
    (
        snap,
        vec![pod(
            "apps",
            "web",
            &["app", "sidecar"],
            "w1",
            LAST_SCRAPE - 100,
        )],
    )
}

fn analyze_all(snap: &Snapshot, pods: &[RunningPod]) -> Vec<Finding> {
    analyze(snap, pods, &Expectation::default())
}

#[test]
fn healthy_with_honor_labels_yields_nothing() {
    let (snap, pods) = healthy(true);
    assert_eq!(ids(&analyze_all(&snap, &pods)), Vec::<&str>::new());
    assert_eq!(Verdict::of(&[]), Verdict::Healthy);
}

#[test]
fn honor_labels_false_yields_only_the_warning_and_exit_0() {
    let (snap, pods) = healthy(false);
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f), ["honor-labels-false"]);
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("honor_labels: false")),
        "{:?}",
        f[0].evidence
    );
    assert_eq!(Verdict::of(&f).exit_code(), 0);
}

#[test]
fn missing_job_stops_the_chain() {
    let (mut snap, pods) = healthy(true);
    let expect = Expectation {
        job_prefixes: vec!["serviceMonitor/kube-system/other/".into()],
    };
    let f = analyze(&snap, &pods, &expect);
    assert_eq!(ids(&f), ["no-scrape-job"]);
    assert!(f[0].evidence[0].contains(JOB), "{:?}", f[0].evidence);
    snap.jobs.clear();
    assert_eq!(ids(&analyze_all(&snap, &pods)), ["no-scrape-job"]);
}

#[test]
fn all_targets_dropped_shows_port_names() {
    let (mut snap, pods) = healthy(true);
    snap.targets.active.clear();
    snap.targets.dropped = vec![DroppedTarget {
        discovered_labels: labels(&[
            ("job", JOB),
            ("__address__", "172.18.0.2:10255"),
            ("__meta_kubernetes_endpoint_port_name", "http-metrics"),
            ("__meta_kubernetes_service_name", "kubelet"),
        ]),
    }];
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f), ["targets-all-dropped"]);
    assert!(
        f[0].evidence[0].contains("\"http-metrics\""),
        "{:?}",
        f[0].evidence
    );
    snap.targets.dropped.clear();
    assert_eq!(ids(&analyze_all(&snap, &pods)), ["targets-none-discovered"]);
}

/// Prometheus 2.42 may report a dropped target's discovered labels after the operator's first
/// rule copied `job` into `__tmp_prometheus_job_name` and pushed `job` out (seen on the twin).
#[test]
fn all_targets_dropped_when_prometheus_2_42_lost_the_job_label() {
    let (mut snap, pods) = healthy(true);
    snap.targets.active.clear();
    snap.targets.dropped = vec![DroppedTarget {
        discovered_labels: labels(&[
            ("__tmp_prometheus_job_name", JOB),
            ("__address__", "172.18.0.2:10250"),
            ("__meta_kubernetes_endpoint_port_name", "https-metrics"),
        ]),
    }];
    assert_eq!(ids(&analyze_all(&snap, &pods)), ["targets-all-dropped"]);
    // Another job's dropped target is still not this job's.
    snap.targets.dropped[0]
        .discovered_labels
        .insert("__tmp_prometheus_job_name".into(), "other".into());
    assert_eq!(ids(&analyze_all(&snap, &pods)), ["targets-none-discovered"]);
}

#[test]
fn classifies_last_errors() {
    let cases = [
        ("https://n:10250/metrics/cadvisor", "server returned HTTP status 401 Unauthorized", "target-unauthorized"),
        ("https://n:10250/metrics/cadvisor", "server returned HTTP status 403 Forbidden", "target-forbidden"),
        (
            "http://127.0.0.1:10255/metrics",
            r#"Get "http://127.0.0.1:10255/metrics": dial tcp 127.0.0.1:10255: connect: connection refused"#,
            "target-connection-refused",
        ),
        (
            "http://127.0.0.1:10250/metrics/cadvisor",
            "read tcp 127.0.0.1:5555->127.0.0.1:10250: read: connection reset by peer",
            "target-scheme-mismatch",
        ),
        ("http://n:10250/metrics/cadvisor", "server returned HTTP status 400 Bad Request", "target-scheme-mismatch"),
        ("http://n:10250/metrics/cadvisor", "net/http: HTTP/1.x transport connection broken: malformed HTTP response \"\\x15\\x03\"", "target-scheme-mismatch"),
        ("https://n:10250/metrics/cadvisor", "http: server gave HTTP response to HTTPS client", "target-scheme-mismatch"),
        ("https://n:10250/metrics/cadvisor", "x509: certificate signed by unknown authority", "target-tls"),
        ("https://n:10250/metrics/cadvisor", "context deadline exceeded", "target-timeout"),
        ("https://n:10250/metrics/cadvisor", "dial tcp 10.0.0.1:10250: i/o timeout", "target-timeout"),
        ("https://n:10250/metrics", "server returned HTTP status 404 Not Found", "target-down"),
    ];
    for (url, err, want) in cases {
        assert_eq!(classify_error(url, err).id, want, "{err}");
    }
}

#[test]
fn refused_on_10255_explains_the_read_only_port() {
    let (mut snap, pods) = healthy(true);
    snap.targets.active = vec![target(
        "w1",
        "down",
        "http://172.18.0.2:10255/metrics/cadvisor",
        "dial tcp 172.18.0.2:10255: connect: connection refused",
    )];
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f), ["target-connection-refused"]);
    assert!(f[0].cause.contains("readOnlyPort: 0"), "{}", f[0].cause);
    // Any other port gets the generic text (still mentioning the legacy ports).
    snap.targets.active[0].scrape_url = "https://172.18.0.2:12345/metrics/cadvisor".into();
    let f = analyze_all(&snap, &pods);
    assert!(f[0].cause.contains("port 12345"), "{}", f[0].cause);
}

#[test]
fn one_finding_per_class_with_every_target_as_evidence() {
    let (mut snap, pods) = healthy(true);
    let e401 = "server returned HTTP status 401 Unauthorized";
    snap.targets.active = vec![
        target("w1", "down", "https://a:10250/metrics/cadvisor", e401),
        target("w2", "down", "https://b:10250/metrics/cadvisor", e401),
        up("w3"),
    ];
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f), ["target-unauthorized"]);
    assert_eq!(f[0].evidence.len(), 2);
    assert!(
        f[0].observed.starts_with("2 of 3 targets"),
        "{}",
        f[0].observed
    );
}

#[test]
fn metrics_server_target_is_called_out() {
    let (mut snap, pods) = healthy(true);
    let mut t = up("w1");
    t.scrape_url = "https://10.96.0.5:443/metrics".into();
    t.labels.insert("service".into(), "metrics-server".into());
    snap.targets.active = vec![t];
    snap.cpu_series.clear();
    assert_eq!(ids(&analyze_all(&snap, &pods)), ["metrics-server-target"]);
}

#[test]
fn node_exporter_only() {
    let (mut snap, pods) = healthy(true);
    snap.cpu_series.clear();
    snap.metric_names = ["node_cpu_seconds_total".to_string()].into();
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f), ["only-node-metrics"]);
    snap.metric_names.clear();
    assert_eq!(ids(&analyze_all(&snap, &pods)), ["no-container-metrics"]);
}

#[test]
fn pod_started_after_last_scrape_is_info_and_not_yet() {
    let (snap, mut pods) = healthy(true);
    pods.push(pod("apps", "new", &["app"], "w1", LAST_SCRAPE + 5));
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f), ["pod-newer-than-scrape"]);
    assert!(
        f[0].evidence[0].contains("apps/new (node w1)"),
        "{:?}",
        f[0].evidence
    );
    assert_eq!(Verdict::of(&f), Verdict::NotYet);
    assert_eq!(Verdict::NotYet.exit_code(), 2);
}

#[test]
fn old_pod_without_series_is_an_error() {
    let (snap, mut pods) = healthy(true);
    pods.push(pod("apps", "old", &["app"], "w1", LAST_SCRAPE - 600));
    pods.push(pod("apps", "lost", &["app"], "w9", LAST_SCRAPE - 600));
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f), ["pods-missing"]);
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("apps/lost (node w9)") && e.contains("no scraped target")),
        "{:?}",
        f[0].evidence
    );
    assert_eq!(Verdict::of(&f), Verdict::Broken);
}

const MEMORY: &str = crate::coverage::MEMORY_METRIC;

#[test]
fn memory_absent_while_cpu_present_names_the_metric() {
    let (mut snap, pods) = healthy(true);
    snap.metric_series = vec![(MEMORY.to_string(), vec![])];
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f), ["metric-absent"]);
    assert!(f[0].observed.contains(MEMORY), "{}", f[0].observed);
    assert!(f[0].observed.contains(CPU_METRIC), "{}", f[0].observed);
    assert!(f[0].fix.contains("metricRelabelings"), "{}", f[0].fix);
    assert_eq!(Verdict::of(&f), Verdict::Broken);
}

#[test]
fn a_container_missing_for_memory_only_is_named_with_the_metric() {
    let (mut snap, pods) = healthy(true);
    // Memory for app only; CPU for both containers.
    snap.metric_series = vec![(MEMORY.to_string(), vec![series("apps", "web", "app", true)])];
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f), ["pods-missing"]);
    assert_eq!(
        f[0].evidence,
        [format!(
            "apps/web (node w1): no {MEMORY} series for container sidecar; pod started 100s before the last scrape"
        )]
    );
    assert!(
        f[0].observed
            .starts_with(&format!("1 running pods lack {MEMORY} series")),
        "{}",
        f[0].observed
    );
    // Both metrics complete: nothing to say.
    snap.metric_series[0].1 = snap.cpu_series.clone();
    assert!(analyze_all(&snap, &pods).is_empty());
}

#[test]
fn a_pod_without_a_node_is_said_to_have_none_not_a_node_without_a_target() {
    let (snap, mut pods) = healthy(true);
    let mut pending = RunningPod::new("apps", "nowhere", &["app"]);
    pending.started_at = Some(LAST_SCRAPE - 100);
    pods.push(pending);
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f), ["pods-missing"]);
    assert_eq!(
        f[0].evidence,
        [format!(
            "apps/nowhere: no {CPU_METRIC} series for container app; the pod list gives it no node (spec.nodeName is empty)"
        )]
    );
}

#[test]
fn a_pod_missing_for_both_metrics_is_one_pod_with_a_line_per_metric() {
    let (mut snap, mut pods) = healthy(true);
    pods.push(pod("apps", "old", &["app"], "w1", LAST_SCRAPE - 600));
    snap.metric_series = vec![(MEMORY.to_string(), snap.cpu_series.clone())];
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f), ["pods-missing"]);
    assert!(
        f[0].observed.starts_with(&format!(
            "1 running pods lack {CPU_METRIC} / {MEMORY} series"
        )),
        "{}",
        f[0].observed
    );
    assert_eq!(f[0].evidence.len(), 2, "{:?}", f[0].evidence);
    assert!(f[0].evidence[0].contains(&format!("no {CPU_METRIC} series for container app")));
    assert!(f[0].evidence[1].contains(&format!("no {MEMORY} series for container app")));
}

#[test]
fn legacy_label_spelling_counts_as_covered() {
    let (mut snap, pods) = healthy(true);
    snap.cpu_series = vec![
        labels(&[
            ("namespace", "apps"),
            ("pod_name", "web"),
            ("container_name", "app"),
        ]),
        labels(&[
            ("namespace", "apps"),
            ("pod_name", "web"),
            ("container_name", "sidecar"),
        ]),
    ];
    assert!(analyze_all(&snap, &pods).is_empty());
}

#[test]
fn unknown_health_is_info() {
    let (mut snap, pods) = healthy(true);
    snap.targets.active[0].health = "unknown".into();
    let f = analyze_all(&snap, &pods);
    assert_eq!(ids(&f)[0], "targets-not-scraped-yet");
}

#[test]
fn parses_jobs_with_defaults() {
    let yaml = "global:\n  scrape_interval: 15s\nscrape_configs:\n- job_name: serviceMonitor/kube-system/cadvisor/0\n  honor_labels: false\n  metrics_path: /metrics/cadvisor\n  scheme: https\n- job_name: prometheus\n";
    let jobs = parse_jobs(yaml).unwrap();
    assert_eq!(jobs[0], job(false));
    assert_eq!(jobs[1].metrics_path, "/metrics");
    assert_eq!(jobs[1].scheme, "http");
    assert!(parse_jobs("scrape_configs: [").is_err());
}

// ---------- output and documentation ----------

#[test]
fn renders_one_headline_per_finding_with_indented_evidence() {
    let f = vec![Finding::new(
        &k::TARGET_FORBIDDEN,
        "1 of 1 targets".into(),
        vec!["https://a: 403".into()],
    )];
    let text = render_text(&f);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "error[target-forbidden]: 1 of 1 targets");
    assert_eq!(lines[1], "    https://a: 403");
    assert!(
        lines[2].starts_with("  cause: ") && lines[3].starts_with("  fix: "),
        "{text}"
    );
    assert!(render_text(&[]).starts_with("no findings"));
    let j = to_json(&f);
    assert_eq!(j["verdict"], "broken");
    assert_eq!(j["findings"][0]["id"], "target-forbidden");
    assert_eq!(j["findings"][0]["severity"], "error");
}

#[test]
fn catalogue_ids_are_unique_and_kebab_case() {
    let mut seen = std::collections::BTreeSet::new();
    for kind in k::ALL {
        assert!(seen.insert(kind.id), "duplicate id {}", kind.id);
        assert!(
            kind.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "{}",
            kind.id
        );
        assert!(k::by_id(kind.id).is_some());
    }
}

/// docs/findings.md lists every finding id, and nothing else.
#[test]
fn readme_lists_exactly_the_finding_ids() {
    let readme = std::fs::read_to_string(crate::workspace_root().join("docs/findings.md")).unwrap();
    let start = readme
        .find("# Why are my pod metrics missing?")
        .expect("docs/findings.md has the section");
    let section = &readme[start..];
    let end = section[3..]
        .find("\n## ")
        .map(|i| i + 3)
        .unwrap_or(section.len());
    let section = &section[..end];
    // Ids are the first backticked word of each list item of the section's table.
    let documented: std::collections::BTreeSet<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let known: std::collections::BTreeSet<&str> = k::ALL.iter().map(|k| k.id).collect();
    let undocumented: Vec<_> = known.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&known).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/findings.md out of date: missing rows {undocumented:?}, rows for unknown ids {unknown:?}; \
         regenerate the table with `UPDATE_DOCS=1 cargo test -p e2e --test docs`"
    );
}

#[test]
fn without_expectations_unrelated_jobs_are_ignored_when_a_cadvisor_job_exists() {
    let (mut snap, pods) = healthy(true);
    snap.jobs.push(Job {
        name: "blackbox".into(),
        metrics_path: "/probe".into(),
        scheme: "http".into(),
        honor_labels: false,
    });
    let mut other = target(
        "w1",
        "down",
        "http://10.0.0.9:9115/probe",
        "context deadline exceeded",
    );
    other.scrape_pool = "blackbox".into();
    snap.targets.active.push(other);
    assert!(analyze_all(&snap, &pods).is_empty());
    // Without any cadvisor job every job counts, so the same down target is reported.
    snap.jobs.remove(0);
    snap.targets.active.remove(0);
    assert_eq!(ids(&analyze_all(&snap, &pods))[0], "target-timeout");
}

#[test]
fn evidence_is_redacted() {
    let f = vec![Finding::new(
        &k::TARGET_DOWN,
        "x".into(),
        vec!["Authorization: Bearer abc.def-secret-token-value".into()],
    )];
    let out = super::redacted(f);
    assert!(
        !out[0].evidence[0].contains("abc.def-secret-token-value"),
        "{:?}",
        out[0].evidence
    );
}

// `cluster()` end to end runs against the cluster twin: `e2e/tests/twin_diagnose.rs` and
// `xtask/tests/twin.rs` (doctor), one breakage per link.

#[test]
fn a_plain_text_404_means_the_crd_is_not_served() {
    // What kube 5 makes of `404 page not found` (text/plain) from an unregistered group
    // (kube-client 5.0.0 handle_api_errors; TWIN-FACTS §2).
    let plain = kube::core::Status::failure("404 page not found", "Failed to parse error data")
        .with_code(404);
    assert!(
        !plain.is_not_found(),
        "kube's own check misses it: that was the defect"
    );
    assert!(super::resource_not_served(&kube::Error::Api(Box::new(
        plain
    ))));
    let json = kube::core::Status::failure(
        "servicemonitors.monitoring.coreos.com not found",
        "NotFound",
    )
    .with_code(404);
    assert!(super::resource_not_served(&kube::Error::Api(Box::new(
        json
    ))));
    let forbidden = kube::core::Status::failure("forbidden", "Forbidden").with_code(403);
    assert!(!super::resource_not_served(&kube::Error::Api(Box::new(
        forbidden
    ))));
}

/// The API server's refusal to proxy (403, 404) is what `prometheus-unreachable` says, with its
/// code, reason and message; anything else is "does not answer".
#[test]
fn prometheus_unreachable_names_the_api_servers_refusal() {
    use crate::prometheus::{ApiServerStatus, PromError};
    let refused = anyhow::Error::new(PromError::ApiServer {
        target: "prometheus-operated:web in namespace monitoring".into(),
        status: ApiServerStatus {
            code: 403,
            reason: "Forbidden".into(),
            message: "services \"prometheus-operated:web\" is forbidden: User \"ci\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"monitoring\"".into(),
        },
    })
    .context("cannot diagnose: Prometheus did not answer /api/v1/status/config");
    assert_eq!(
        super::unreachable_observed(&refused, "prometheus-operated:web"),
        "the API server's service proxy refused the request to Prometheus at prometheus-operated:web: \
         HTTP 403 Forbidden: services \"prometheus-operated:web\" is forbidden: User \"ci\" cannot get \
         resource \"services/proxy\" in API group \"\" in the namespace \"monitoring\""
    );
    let silent = anyhow::Error::new(PromError::Unreachable {
        target: "t".into(),
        waited: std::time::Duration::from_secs(2),
        last_error: "the Kubernetes API server answered HTTP 503 ServiceUnavailable: no endpoints available for service \"prometheus-operated:web\"".into(),
    });
    assert_eq!(
        super::unreachable_observed(&silent, "t"),
        "Prometheus at t does not answer"
    );
}

// ---------- several Prometheus servers; the operator version modelled ----------

#[test]
fn findings_resting_on_v0_48_1_name_the_version_they_model_for_another_operator() {
    let f = |kind| Finding::new(kind, "x".into(), vec![]);
    let mut findings = vec![
        f(&k::NO_SCRAPE_JOB),
        f(&k::TARGET_UNAUTHORIZED),
        f(&k::TARGETS_ALL_DROPPED),
    ];
    note_operator_version(
        &mut findings,
        "quay.io/prometheus-operator/prometheus-operator:v0.60.1",
        Some("v0.60.1"),
    );
    assert_eq!(findings[0].evidence.len(), 1);
    assert!(
        findings[0].evidence[0].contains("models prometheus-operator v0.48.1")
            && findings[0].evidence[0].contains("this cluster's operator is v0.60.1 (quay.io/"),
        "{:?}",
        findings[0].evidence
    );
    assert!(
        findings[1].evidence.is_empty(),
        "a 401 is a 401 in any version"
    );
    assert_eq!(findings[2].evidence.len(), 1);
    // The version modelled: nothing added.
    let mut same = vec![f(&k::NO_SCRAPE_JOB)];
    note_operator_version(&mut same, "quay.io/x:v0.48.1", Some("v0.48.1"));
    assert!(same[0].evidence.is_empty());
    let mut unknown = vec![f(&k::NO_SCRAPE_JOB)];
    note_operator_version(&mut unknown, "mirror/prometheus-operator", None);
    assert!(unknown[0].evidence[0].contains("of unknown version (mirror/prometheus-operator)"));
}

#[test]
fn several_diagnoses_keep_each_prometheus_and_the_worst_verdict() {
    let diagnoses = vec![
        Diagnosis {
            prometheus: "monitoring/prometheus-k8s-0".into(),
            findings: vec![],
        },
        Diagnosis {
            prometheus: "monitoring/prometheus-k8s-1".into(),
            findings: vec![Finding::new(&k::TARGET_UNAUTHORIZED, "401".into(), vec![])],
        },
    ];
    let json = to_json_per_prometheus(&diagnoses);
    assert_eq!(json["verdict"], "broken");
    assert_eq!(json["findings"][0]["id"], "target-unauthorized");
    assert_eq!(
        json["findings"][0]["prometheus"],
        "monitoring/prometheus-k8s-1"
    );
    assert_eq!(json["prometheuses"][0]["verdict"], "healthy");
    assert_eq!(
        json["prometheuses"][1]["prometheus"],
        "monitoring/prometheus-k8s-1"
    );
    let text = render_text_per_prometheus(&diagnoses);
    assert!(
        text.starts_with("Prometheus monitoring/prometheus-k8s-0:\nno findings")
            && text.contains(
                "\nPrometheus monitoring/prometheus-k8s-1:\nerror[target-unauthorized]: 401"
            ),
        "{text}"
    );
}

#[test]
fn only_the_cadvisor_endpoints_of_a_selected_servicemonitor_count() {
    // kube-prometheus's kubelet ServiceMonitor: /metrics (0), /metrics/cadvisor (1), /metrics/probes
    // (2); a probes target that is down explains no missing container series.
    let job = |i: usize, path: &str| Job {
        name: format!("serviceMonitor/monitoring/kubelet/{i}"),
        metrics_path: path.into(),
        scheme: "https".into(),
        honor_labels: true,
    };
    let target = |i: usize, health: &str| ActiveTarget {
        scrape_pool: format!("serviceMonitor/monitoring/kubelet/{i}"),
        scrape_url: format!("https://n:10250/{i}"),
        health: health.into(),
        last_error: if health == "up" {
            String::new()
        } else {
            "server returned HTTP status 404 Not Found".into()
        },
        labels: labels(&[("node", "n")]),
        ..Default::default()
    };
    let snap = Snapshot {
        jobs: vec![
            job(0, "/metrics"),
            job(1, "/metrics/cadvisor"),
            job(2, "/metrics/probes"),
        ],
        targets: Targets {
            active: vec![target(0, "up"), target(1, "up"), target(2, "down")],
            dropped: vec![],
        },
        ..Default::default()
    };
    let expect = Expectation {
        job_prefixes: vec!["serviceMonitor/monitoring/kubelet/".into()],
    };
    let f = analyze(&snap, &[], &expect);
    assert!(!ids(&f).contains(&"target-down"), "{f:#?}");
}
