use super::checks::*;
use super::*;
use crate::prometheus::{ActiveTarget, Targets};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde_json::json;
use std::collections::BTreeMap;

#[test]
fn prometheus_refs_parse_namespace_slash_name_only() {
    let p: PrometheusRef = "monitoring/k8s".parse().unwrap();
    assert_eq!(p, PrometheusRef::new("monitoring", "k8s"));
    assert_eq!(p.to_string(), "monitoring/k8s");
    assert_eq!(p.statefulset(), "prometheus-k8s");
    for bad in ["k8s", "/k8s", "monitoring/", "a/b/c", "Mon/k8s", ""] {
        let err = bad.parse::<PrometheusRef>().unwrap_err().to_string();
        assert!(err.contains("NAMESPACE/NAME"), "{bad}: {err}");
    }
}

fn pod(name: &str, owner: &str, ready: bool, port: Option<i32>) -> Pod {
    let ports = port.map(|p| json!([{"name": "web", "containerPort": p}]));
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "monitoring",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": owner, "uid": "u"}]},
        "spec": {"containers": [{"name": "prometheus", "ports": ports}, {"name": "config-reloader"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
    }))
    .unwrap()
}

#[test]
fn replicas_are_the_ready_pods_of_the_prometheus_statefulset() {
    let prom = PrometheusRef::new("monitoring", "k8s");
    let obj = json!({"spec": {"replicas": 2}});
    let pods = [
        pod("prometheus-k8s-1", "prometheus-k8s", true, Some(9091)),
        pod("prometheus-k8s-0", "prometheus-k8s", true, None),
        pod("prometheus-other-0", "prometheus-other", true, None),
    ];
    let found = ready_replicas(&prom, &obj, &pods).unwrap();
    assert_eq!(found.wanted, 2);
    let names: Vec<(&str, u16)> = found
        .ready
        .iter()
        .map(|r| (r.pod.as_str(), r.port))
        .collect();
    assert_eq!(
        names,
        [("prometheus-k8s-0", 9090), ("prometheus-k8s-1", 9091)]
    );
    assert_eq!(found.ready[0].key(), "monitoring/prometheus-k8s-0");

    let pods = [
        pod("prometheus-k8s-0", "prometheus-k8s", true, None),
        pod("prometheus-k8s-1", "prometheus-k8s", false, None),
    ];
    let found = ready_replicas(&prom, &obj, &pods).unwrap();
    assert_eq!(found.ready.len(), 1);
    assert!(
        found.not_ready[0].starts_with("prometheus-k8s-1: Running"),
        "{:?}",
        found.not_ready
    );

    let found = ready_replicas(&prom, &json!({"spec": {}}), &[]).unwrap();
    assert_eq!(found.wanted, 1, "replicas defaults to 1");
    assert!(found.not_ready[0].contains("no pod of StatefulSet monitoring/prometheus-k8s"));

    let err = ready_replicas(&prom, &json!({"spec": {"shards": 2}}), &pods).unwrap_err();
    assert!(
        err.contains("sharded") && err.contains("--prometheus"),
        "{err}"
    );
}

fn ns(name: &str, labels: serde_json::Value) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

#[test]
fn the_expected_jobs_are_the_cadvisor_endpoints_of_the_selected_servicemonitors() {
    // kube-prometheus's kubelet ServiceMonitor: endpoint 1 is cadvisor.
    let kubelet = json!({"metadata": {"name": "kubelet", "namespace": "monitoring", "labels": {"app.kubernetes.io/name": "kubelet"}},
        "spec": {"endpoints": [{"port": "https-metrics"}, {"port": "https-metrics", "path": "/metrics/cadvisor"},
                               {"port": "https-metrics", "path": "/metrics/probes"}]}});
    let other = json!({"metadata": {"name": "node-exporter", "namespace": "monitoring"},
        "spec": {"endpoints": [{"port": "https"}]}});
    let k8s = json!({"metadata": {"name": "k8s", "namespace": "monitoring"},
        "spec": {"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {}}});
    let namespaces = [ns("monitoring", json!({}))];
    assert_eq!(
        cadvisor_jobs(&k8s, &[kubelet.clone(), other.clone()], &namespaces).unwrap(),
        ["serviceMonitor/monitoring/kubelet/1"]
    );
    // A Prometheus selecting by a label the ServiceMonitor lacks: the reason is named.
    let picky = json!({"metadata": {"name": "apps", "namespace": "monitoring"},
        "spec": {"serviceMonitorSelector": {"matchLabels": {"team": "apps"}}}});
    let err = cadvisor_jobs(&picky, &[kubelet, other.clone()], &namespaces).unwrap_err();
    assert!(
        err.contains("Prometheus monitoring/apps selects no cadvisor ServiceMonitor")
            && err.contains("monitoring/kubelet is not selected")
            && err.contains("team"),
        "{err}"
    );
    let err = cadvisor_jobs(&k8s, &[other], &namespaces).unwrap_err();
    assert!(
        err.contains("no ServiceMonitor scrapes /metrics/cadvisor"),
        "{err}"
    );
}

const LOADED: &str = "scrape_configs:\n- job_name: serviceMonitor/kube-system/cadvisor/0\n  honor_labels: false\n  scheme: https\n  metrics_path: /metrics/cadvisor\n  bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token\n  tls_config:\n    insecure_skip_verify: true\n";

#[test]
fn our_job_must_say_what_our_servicemonitor_says() {
    let job = "serviceMonitor/kube-system/cadvisor/0";
    assert!(job_problems(LOADED, job, ServiceMonitorVariant::Mission).is_empty());
    let problems = job_problems(LOADED, job, ServiceMonitorVariant::HonorLabels);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("honor_labels is false"),
        "{problems:?}"
    );
    let http = LOADED.replace("scheme: https", "scheme: http").replace(
        "  bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token\n",
        "",
    );
    let problems = job_problems(&http, job, ServiceMonitorVariant::Mission);
    assert!(
        problems.iter().any(|p| p.contains("scheme"))
            && problems.iter().any(|p| p.contains("bearer token")),
        "{problems:?}"
    );
    assert_eq!(
        job_problems(LOADED, "nope", ServiceMonitorVariant::Mission),
        ["no job nope"]
    );
}

fn target(node: &str, health: &str, error: &str) -> ActiveTarget {
    ActiveTarget {
        labels: BTreeMap::from([
            ("node".to_string(), node.to_string()),
            ("namespace".to_string(), "kube-system".to_string()),
            ("endpoint".to_string(), "https-metrics".to_string()),
        ]),
        scrape_pool: "serviceMonitor/kube-system/cadvisor/0".into(),
        scrape_url: format!("https://{node}:10250/metrics/cadvisor"),
        health: health.into(),
        last_error: error.into(),
        ..Default::default()
    }
}

#[test]
fn every_node_needs_an_up_target_and_gaps_name_the_node_and_error() {
    let jobs = ["serviceMonitor/kube-system/cadvisor/0".to_string()];
    let nodes = ["cp".to_string(), "w1".to_string(), "w2".to_string()];
    let targets = Targets {
        active: vec![
            target("cp", "up", ""),
            target("w1", "down", "server returned HTTP status 401 Unauthorized"),
        ],
        dropped: vec![],
    };
    let gaps = target_gaps(&targets, &jobs, &nodes, true);
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    assert!(
        gaps[0].starts_with("node w1: no target up") && gaps[0].contains("401 Unauthorized"),
        "{gaps:?}"
    );
    assert!(gaps[1].starts_with("node w2: no target"), "{gaps:?}");
    let all_up = Targets {
        active: nodes.iter().map(|n| target(n, "up", "")).collect(),
        dropped: vec![],
    };
    assert!(target_gaps(&all_up, &jobs, &nodes, true).is_empty());
    // Ours must be the kubelet's secure port; a stack's job may scrape what it likes.
    let mut plain = all_up.clone();
    plain.active[0].scrape_url = "http://cp:10255/metrics/cadvisor".into();
    assert_eq!(target_gaps(&plain, &jobs, &nodes, true).len(), 1);
    assert!(target_gaps(&plain, &jobs, &nodes, false).is_empty());
    assert_eq!(
        target_gaps(&all_up, &jobs, &[], false),
        ["the cluster lists no nodes"]
    );
}

#[test]
fn required_namespaces_need_a_running_pod() {
    let pods = [crate::pods::RunningPod::new("kube-system", "a", &["c"])];
    assert!(required_namespaces(&pods, &["kube-system".into()]).is_ok());
    let err = required_namespaces(&pods, &["kube-system".into(), "pme2e-apps".into()]).unwrap_err();
    assert_eq!(err, "no running pod in namespace pme2e-apps");
    assert!(required_namespaces(&[], &[])
        .unwrap_err()
        .contains("no running pods"));
}

#[test]
fn coverage_passes_only_complete_and_for_ours_with_the_variants_namespace_label() {
    let pods = [crate::pods::RunningPod::new(
        "pme2e-apps",
        "web-0",
        &["app"],
    )];
    let series = vec![BTreeMap::from([
        ("exported_namespace".to_string(), "pme2e-apps".to_string()),
        ("pod".to_string(), "web-0".to_string()),
        ("container".to_string(), "app".to_string()),
    ])];
    let report = crate::coverage::MetricsReport::from(crate::coverage::evaluate(&pods, &series));
    let (ok, detail) = coverage_verdict(&report, Some(ServiceMonitorVariant::Mission));
    assert!(ok, "{detail}");
    assert!(detail.contains("1/1 pods"), "{detail}");
    let (ok, detail) = coverage_verdict(&report, Some(ServiceMonitorVariant::HonorLabels));
    assert!(
        !ok && detail.contains("not where the honor-labels ServiceMonitor puts it"),
        "{detail}"
    );
    assert!(coverage_verdict(&report, None).0);
    let empty = crate::coverage::MetricsReport::from(crate::coverage::evaluate(&pods, &[]));
    let (ok, detail) = coverage_verdict(&empty, None);
    assert!(!ok && detail.contains("web-0"), "{detail}");
}

#[test]
fn junit_has_a_suite_per_subject_and_never_counts_a_skip_as_a_pass() {
    let r = |check, subject: &str, verdict, detail: &str| CheckResult {
        check,
        subject: subject.into(),
        verdict,
        detail: detail.into(),
        duration: Duration::from_millis(1500),
    };
    let results = [
        r(
            Check::Replicas,
            "monitoring/k8s",
            Verdict::Passed,
            "2 of 2 ready",
        ),
        r(
            Check::JobLoaded,
            "monitoring/prometheus-k8s-0",
            Verdict::Failed,
            "not loaded\nsecond line",
        ),
        r(
            Check::TargetsPerNode,
            "monitoring/prometheus-k8s-0",
            Verdict::Skipped,
            "not run",
        ),
    ];
    let xml = junit::render(&results).unwrap();
    assert!(
        xml.contains(r#"<testsuites name="pod-metrics-e2e" tests="3" skipped="1" failures="1""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testsuite name="pod-metrics-e2e monitoring/k8s" tests="1" skipped="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testsuite name="pod-metrics-e2e monitoring/prometheus-k8s-0" tests="2""#),
        "{xml}"
    );
    assert!(xml.contains(r#"<failure message="not loaded""#), "{xml}");
    assert!(xml.contains(r#"<skipped message="not run""#), "{xml}");
    assert_eq!(
        results[0].line(),
        "ok      monitoring/k8s: its replicas are running and ready — 2 of 2 ready (1.5s)"
    );
    assert!(
        results[1]
            .line()
            .starts_with("FAILED  monitoring/prometheus-k8s-0"),
        "{}",
        results[1].line()
    );
}
