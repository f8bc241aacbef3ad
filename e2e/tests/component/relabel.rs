//! The relabel simulator and the generator against a real Prometheus: the operator's job with
//! `metricRelabelings` runs in Prometheus; the target labels and the stored series must be
//! exactly what `e2e::relabel` predicts from the kubelet's body, and the containers a rule
//! removes must be diagnosed as `metric-relabel-drops` with that rule quoted.

use super::{check, finish, pods, start};
use e2e::diagnose::relabel_drop::metric_relabel_drops;
use e2e::operator::scrape_config::{compiled_job, RelabelConfig};
use e2e::relabel::{exposition_series, Labels, Outcome, TargetOutcome};
use std::collections::BTreeSet;
use testkit::{KubeletOptions, PrometheusSetup};

const CPU: &str = "container_cpu_usage_seconds_total";

fn rule(
    source: &[&str],
    regex: &str,
    action: &str,
    target: &str,
    replacement: &str,
) -> RelabelConfig {
    RelabelConfig {
        source_labels: source.iter().map(|s| s.to_string()).collect(),
        regex: regex.into(),
        action: action.into(),
        target_label: target.into(),
        replacement: replacement.into(),
        ..RelabelConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_what_the_simulator_predicts_and_the_drop_is_diagnosed() {
    let mut setup = PrometheusSetup::new();
    setup.spec.metric_relabelings = Some(vec![
        // Drops one container's rows: after the merge its namespace is in exported_namespace.
        rule(
            &["exported_namespace", "container"],
            "apps;sidecar",
            "drop",
            "",
            "",
        ),
        // Rewrites a label with a capture, and drops a label by name.
        rule(&["container"], "work(.*)", "", "role", "w-${1}"),
        rule(&[], "image", "labeldrop", "", ""),
    ]);
    let spec = setup.spec.clone();
    let (kubelet, prom) = start(KubeletOptions::default(), pods(), setup).await;
    let report = check(&prom, &kubelet.running_pods()).await;
    assert!(
        !report.is_complete(),
        "the sidecar's series are dropped: {report}"
    );
    assert_eq!(report.missing.len(), 1, "{report}");
    assert_eq!(report.missing[0].missing_containers, ["sidecar"]);

    // The target: populateLabels as simulated equals what Prometheus shows.
    let targets = prom.client().targets().await.unwrap();
    let active = &targets.active[0];
    let job = compiled_job(&spec).unwrap();
    match job.target(&active.discovered_labels) {
        TargetOutcome::Kept { labels, .. } => assert_eq!(labels, active.labels),
        other => panic!("{other:?}"),
    }

    // The series: every kubelet row through mutateSampleLabels, as simulated, equals what is stored.
    let body = kubelet.render_cadvisor();
    let predicted: BTreeSet<Labels> = exposition_series(&body, CPU)
        .filter_map(|s| match job.series(&active.labels, &s) {
            Outcome::Kept(l) => Some(l),
            Outcome::Dropped { .. } => None,
        })
        .collect();
    let stored: BTreeSet<Labels> = prom
        .client()
        .query(CPU)
        .await
        .unwrap()
        .series
        .into_iter()
        .map(|s| s.metric)
        .collect();
    assert!(!stored.is_empty());
    assert_eq!(predicted, stored, "simulated vs stored by Prometheus");
    assert!(stored
        .iter()
        .any(|s| s.get("role").map(String::as_str) == Some("w-er")));
    assert!(stored.iter().all(|s| !s.contains_key("image")));

    // The diagnosis names the rule and the pod.
    let finding = metric_relabel_drops(
        &spec,
        &active.labels,
        &report.missing,
        exposition_series(&body, CPU),
    )
    .unwrap()
    .expect("metric-relabel-drops");
    let text = e2e::diagnose::render_text(std::slice::from_ref(&finding));
    eprintln!("{text}");
    assert_eq!(finding.id, "metric-relabel-drops");
    assert!(
        text.contains(r#"{source_labels: [exported_namespace, container], regex: "apps;sidecar", action: drop}"#),
        "{text}"
    );
    assert!(
        text.contains("spec.endpoints[0].metricRelabelings[0]"),
        "{text}"
    );
    assert!(text.contains("apps/web-7d9f: container sidecar"), "{text}");
    finish(prom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_every_modelled_field_loads_scrapes_and_matches_the_simulated_target() {
    use e2e::operator::scrape_config::specs_from_servicemonitor;
    // The mission's ServiceMonitor grown by every field the generator models (what the
    // fixture kubelet can serve: its Service labels, https with insecureSkipVerify).
    let sm = r#"
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: cadvisor, namespace: kube-system}
spec:
  jobLabel: k8s-app
  targetLabels: [app.kubernetes.io/managed-by]
  podTargetLabels: [team]
  sampleLimit: 100000
  targetLimit: 10
  namespaceSelector: {matchNames: [kube-system]}
  selector:
    matchLabels: {app.kubernetes.io/name: kubelet}
    matchExpressions:
    - {key: k8s-app, operator: In, values: [kubelet, other]}
    - {key: legacy, operator: DoesNotExist}
  endpoints:
  - port: https-metrics
    path: /metrics/cadvisor
    scheme: https
    params: {collect: [cpu]}
    interval: 1s
    scrapeTimeout: 1s
    honorLabels: false
    honorTimestamps: false
    bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
    tlsConfig: {insecureSkipVerify: true, serverName: kubelet}
    relabelings:
    - {sourceLabels: [__meta_kubernetes_endpoint_address_target_name], targetLabel: instance, replacement: "node/$1"}
    metricRelabelings:
    - {sourceLabels: [__name__], regex: "container_fs_.*", action: drop}
"#;
    let spec = specs_from_servicemonitor(&e2e::yaml::from_str(sm).unwrap())
        .unwrap()
        .remove(0);
    let mut setup = PrometheusSetup::new();
    setup.spec = spec.clone();
    let (kubelet, prom) = start(KubeletOptions::default(), pods(), setup).await;
    let config = prom.config_text();
    for field in [
        "honor_timestamps: false",
        "scrape_interval: 1s",
        "params:",
        "server_name: kubelet",
        "sample_limit: 100000",
        "target_limit: 10",
        "metric_relabel_configs:",
    ] {
        assert!(config.contains(field), "{field} in the job:\n{config}");
    }
    let report = check(&prom, &kubelet.running_pods()).await;
    assert!(report.is_complete(), "{report}");

    let targets = prom.client().targets().await.unwrap();
    let active = &targets.active[0];
    assert_eq!(active.health, "up", "{active:?}");
    let job = compiled_job(&spec).unwrap();
    let TargetOutcome::Kept { labels, .. } = job.target(&active.discovered_labels) else {
        panic!("kept")
    };
    assert_eq!(
        labels, active.labels,
        "simulated vs Prometheus's target labels"
    );
    // jobLabel, targetLabels and the user's relabeling took effect.
    assert_eq!(labels["job"], "kubelet");
    assert_eq!(
        labels["app_kubernetes_io_managed_by"],
        "prometheus-operator"
    );
    assert_eq!(labels["instance"], format!("node/{}", kubelet.node()));
    finish(prom).await;
}
