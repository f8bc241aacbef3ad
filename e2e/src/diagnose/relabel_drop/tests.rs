use super::*;
use crate::operator::scrape_config::specs_from_servicemonitor;
use crate::relabel::{exposition_series, TargetOutcome};

const CPU: &str = "container_cpu_usage_seconds_total";

/// A kubelet body: the cpu rows of three pods, a pod-level row and the pause row.
const BODY: &str = "# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container=\"app\",cpu=\"total\",id=\"/kubepods/a/1\",image=\"nginx\",name=\"1\",namespace=\"pme2e-apps\",pod=\"web-0\"} 1.5 1700000000000
container_cpu_usage_seconds_total{container=\"sidecar\",cpu=\"total\",id=\"/kubepods/a/2\",image=\"envoy\",name=\"2\",namespace=\"pme2e-apps\",pod=\"web-0\"} 0.5 1700000000000
container_cpu_usage_seconds_total{container=\"\",cpu=\"total\",id=\"/kubepods/a\",image=\"\",name=\"\",namespace=\"pme2e-apps\",pod=\"web-0\"} 2 1700000000000
container_cpu_usage_seconds_total{container=\"POD\",cpu=\"total\",id=\"/kubepods/a/0\",image=\"pause\",name=\"0\",namespace=\"pme2e-apps\",pod=\"web-0\"} 0.01 1700000000000
container_cpu_usage_seconds_total{container=\"job\",cpu=\"total\",id=\"/kubepods/b/1\",image=\"busybox\",name=\"3\",namespace=\"pme2e-batch\",pod=\"once-x\"} 0.1 1700000000000
container_cpu_usage_seconds_total{container=\"coredns\",cpu=\"total\",id=\"/kubepods/c/1\",image=\"coredns\",name=\"4\",namespace=\"kube-system\",pod=\"coredns-1\"} 9 1700000000000
";

/// The mission's ServiceMonitor with these endpoint lines added.
fn spec(extra: &str) -> ServiceMonitorSpec {
    let text = format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {{name: cadvisor, namespace: kube-system}}\n\
         spec:\n  selector: {{matchLabels: {{app.kubernetes.io/name: kubelet}}}}\n  namespaceSelector: {{matchNames: [kube-system]}}\n\
         \x20 endpoints:\n  - port: https-metrics\n    path: /metrics/cadvisor\n    scheme: https\n\
         \x20   bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n    tlsConfig: {{insecureSkipVerify: true}}\n{extra}"
    );
    let mut specs = specs_from_servicemonitor(&crate::yaml::from_str(&text).unwrap())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    specs.remove(0)
}

fn target(spec: &ServiceMonitorSpec) -> Labels {
    // The operator's kubelet Endpoints for one node, through Prometheus's discovery.
    let (endpoints, service) = crate::operator::kubelet_endpoints(&["kind-worker".to_string()]);
    let mut t = crate::discovery::endpoints_targets(&endpoints, Some(&service), &[])
        .into_iter()
        .find(|t| t.label("__meta_kubernetes_endpoint_port_name") == Some("https-metrics"))
        .expect("an https-metrics target");
    t.address = "172.18.0.3:10250".into();
    let discovered = t.discovered_labels();
    match compiled_job(spec).unwrap().target(&discovered) {
        TargetOutcome::Kept { labels, .. } => labels,
        other => panic!("{other:?}"),
    }
}

fn missing(ns: &str, pod: &str, containers: &[&str]) -> MissingPod {
    MissingPod {
        namespace: ns.into(),
        name: pod.into(),
        node: Some("kind-worker".into()),
        missing_containers: containers.iter().map(|c| c.to_string()).collect(),
        no_series_at_all: true,
    }
}

fn diagnose(spec: &ServiceMonitorSpec, missing: &[MissingPod]) -> Option<Finding> {
    metric_relabel_drops(spec, &target(spec), missing, exposition_series(BODY, CPU)).unwrap()
}

#[test]
fn a_rule_dropping_some_pods_series_is_the_cause_quoted_with_the_pods() {
    // honorLabels false: the pod's namespace is in exported_namespace by the time the rule runs.
    let spec = spec(
        "    metricRelabelings:\n    - sourceLabels: [__name__]\n      regex: go_.*\n      action: drop\n\
         \x20   - sourceLabels: [__name__, exported_namespace]\n      regex: container_cpu_usage_seconds_total;pme2e-.*\n      action: drop\n",
    );
    let f = diagnose(
        &spec,
        &[
            missing("pme2e-apps", "web-0", &["app", "sidecar"]),
            missing("pme2e-batch", "once-x", &["job"]),
        ],
    )
    .expect("a finding");
    assert_eq!(f.id, "metric-relabel-drops");
    assert!(f.is_error());
    assert!(
        f.observed.contains("3 missing containers in 2 pods"),
        "{}",
        f.observed
    );
    let rule = r#"{source_labels: [__name__, exported_namespace], regex: "container_cpu_usage_seconds_total;pme2e-.*", action: drop}"#;
    assert_eq!(
        f.evidence[0],
        format!(
            "spec.endpoints[0].metricRelabelings[1] (metric_relabel_configs[1] of job serviceMonitor/kube-system/cadvisor/0): {rule} drops the series of:"
        )
    );
    assert_eq!(
        f.evidence[1..],
        [
            "  pme2e-apps/web-0: container app (1 of 1 series)",
            "  pme2e-apps/web-0: container sidecar (1 of 1 series)",
            "  pme2e-batch/once-x: container job (1 of 1 series)",
        ]
    );
    assert!(f.cause.contains(rule), "{}", f.cause);
    assert!(
        f.fix.contains("spec.endpoints[0].metricRelabelings[1]"),
        "{}",
        f.fix
    );
    assert!(f.fix.contains("kube-system/cadvisor"), "{}", f.fix);
    // The human rendering carries the quoted rule.
    assert!(super::super::render_text(&[f]).contains(rule));
}

#[test]
fn no_metric_relabelings_no_finding() {
    assert_eq!(
        diagnose(&spec(""), &[missing("pme2e-apps", "web-0", &["app"])]),
        None
    );
}

#[test]
fn a_rule_on_namespace_with_honor_labels_false_sees_kube_system_and_drops_nothing() {
    // Upstream order: the target's namespace="kube-system" wins before metric relabeling.
    let rule = "    metricRelabelings:\n    - sourceLabels: [namespace]\n      regex: pme2e-.*\n      action: drop\n";
    assert_eq!(
        diagnose(&spec(rule), &[missing("pme2e-apps", "web-0", &["app"])]),
        None
    );
    // With honorLabels: true the same rule sees the pod's namespace and drops its series.
    let honoring = spec(&format!("    honorLabels: true\n{rule}"));
    let f = diagnose(&honoring, &[missing("pme2e-apps", "web-0", &["app"])]).expect("finding");
    assert!(
        f.evidence[0].contains("metricRelabelings[0]"),
        "{:?}",
        f.evidence
    );
}

#[test]
fn a_rule_stripping_the_container_label_is_named_too() {
    let spec = spec("    metricRelabelings:\n    - regex: container\n      action: labeldrop\n");
    let f = diagnose(&spec, &[missing("pme2e-batch", "once-x", &["job"])]).expect("finding");
    assert!(
        f.evidence[0].ends_with("{regex: container, action: labeldrop} strips the pod/container/namespace labels of the series of:"),
        "{}",
        f.evidence[0]
    );
}

#[test]
fn containers_with_no_captured_series_or_surviving_series_are_not_blamed_on_the_rules() {
    let spec = spec(
        "    metricRelabelings:\n    - sourceLabels: [container]\n      regex: sidecar\n      action: drop\n",
    );
    // `app` survives the rule; `ghost` has no series in the capture: neither is explained.
    assert_eq!(
        diagnose(
            &spec,
            &[
                missing("pme2e-apps", "web-0", &["app"]),
                missing("pme2e-apps", "ghost", &["c"])
            ]
        ),
        None
    );
    let f = diagnose(
        &spec,
        &[
            missing("pme2e-apps", "web-0", &["sidecar"]),
            missing("pme2e-apps", "ghost", &["c"]),
        ],
    )
    .expect("finding");
    assert!(
        f.observed.contains("1 missing containers in 1 pods"),
        "{}",
        f.observed
    );
    assert_eq!(
        f.evidence.last().unwrap(),
        "1 other missing containers are not explained by metricRelabelings (no series of theirs in the capture, or some survive the rules)"
    );
}

#[test]
fn legacy_pod_name_and_container_name_rows_are_understood() {
    let body = "container_cpu_usage_seconds_total{container_name=\"app\",namespace=\"default\",pod_name=\"old-0\"} 1\n";
    let spec = spec("    metricRelabelings:\n    - sourceLabels: [container_name]\n      regex: app\n      action: drop\n");
    let f = metric_relabel_drops(
        &spec,
        &target(&spec),
        &[missing("default", "old-0", &["app"])],
        exposition_series(body, CPU),
    )
    .unwrap()
    .expect("finding");
    assert!(
        f.evidence[1].contains("default/old-0: container app"),
        "{:?}",
        f.evidence
    );
}

#[test]
fn the_catalogue_knows_the_finding() {
    let k = catalogue::by_id("metric-relabel-drops").expect("in the catalogue");
    assert_eq!(k.severity, super::super::Severity::Error);
}
