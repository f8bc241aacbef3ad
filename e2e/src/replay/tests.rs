use super::*;
use serde_json::json;

fn mission_sm() -> crate::yaml::Value {
    let text = std::fs::read_to_string(
        crate::workspace_root().join("manifests/servicemonitor-cadvisor.yaml"),
    )
    .unwrap();
    crate::yaml::from_str(&text).unwrap()
}

#[test]
fn the_missions_servicemonitor_gives_the_missions_spec() {
    let specs = cadvisor_specs(&mission_sm(), Path::new("sm.yaml")).unwrap();
    assert_eq!(specs, vec![ServiceMonitorSpec::cadvisor()]);
}

#[test]
fn an_unmodelled_field_is_refused_by_name() {
    let mut sm = mission_sm();
    sm["spec"]["endpoints"][0]["proxyUrl"] = "http://proxy:3128".into();
    let err = cadvisor_specs(&sm, Path::new("sm.yaml")).unwrap_err();
    let msg = crate::errors::error_chain(&err);
    assert!(matches!(err, ReplayError::ServiceMonitor { .. }), "{msg}");
    assert!(msg.contains("spec.endpoints[0].proxyUrl"), "{msg}");
    assert!(msg.contains("sm.yaml"), "{msg}");
}

#[test]
fn metric_relabelings_are_modelled() {
    let mut sm = mission_sm();
    sm["spec"]["endpoints"][0]["metricRelabelings"] =
        crate::yaml::from_str("[{action: drop, sourceLabels: [namespace], regex: x}]").unwrap();
    let specs = cadvisor_specs(&sm, Path::new("sm.yaml")).unwrap();
    assert_eq!(specs[0].metric_relabelings.as_ref().map(Vec::len), Some(1));
}

#[test]
fn a_servicemonitor_without_a_cadvisor_endpoint_is_refused() {
    let mut sm = mission_sm();
    sm["spec"]["endpoints"][0]["path"] = "/metrics".into();
    let err = cadvisor_specs(&sm, Path::new("sm.yaml")).unwrap_err();
    assert!(
        matches!(err, ReplayError::NoCadvisorEndpoint { .. }),
        "{err}"
    );
}

#[test]
fn targets_carry_kubernetes_sd_labels_and_point_at_the_replay_kubelets() {
    let (ep, svc) = crate::operator::kubelet_endpoints(&["n1".to_string(), "n2".to_string()]);
    let kubelets = BTreeMap::from([("n1".to_string(), "127.0.0.1:4001".parse().unwrap())]);
    let mut n = 0;
    let mut closed = || {
        n += 1;
        format!("127.0.0.1:{}", 5000 + n)
    };
    let groups = replay_targets(
        &ep,
        Some(&svc),
        &["kube-system".into()],
        &kubelets,
        &mut closed,
    );
    let groups = groups.as_array().unwrap();
    // 2 nodes × 3 ports.
    assert_eq!(groups.len(), 6);
    let n1_https = groups
        .iter()
        .find(|g| {
            g["labels"]["__meta_kubernetes_endpoint_address_target_name"] == "n1"
                && g["labels"]["__meta_kubernetes_endpoint_port_name"] == "https-metrics"
        })
        .unwrap();
    assert_eq!(n1_https["targets"], json!(["127.0.0.1:4001"]));
    let l = &n1_https["labels"];
    for (k, v) in [
        ("__meta_kubernetes_namespace", "kube-system"),
        ("__meta_kubernetes_endpoints_name", "kubelet"),
        ("__meta_kubernetes_service_name", "kubelet"),
        (
            "__meta_kubernetes_service_label_app_kubernetes_io_name",
            "kubelet",
        ),
        (
            "__meta_kubernetes_service_labelpresent_app_kubernetes_io_name",
            "true",
        ),
        ("__meta_kubernetes_endpoints_label_k8s_app", "kubelet"),
        ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
        ("__meta_kubernetes_endpoint_ready", "true"),
        ("__meta_kubernetes_endpoint_address_target_kind", "Node"),
    ] {
        assert_eq!(l[k], v, "{k}");
    }
    // TWIN-FACTS §8: no node-name or hostname for the kubelet Endpoints.
    assert!(l.get("__meta_kubernetes_endpoint_node_name").is_none());
    // n2 was not captured: its kubelet port is a closed local port (the target is down).
    let n2_https = groups
        .iter()
        .find(|g| {
            g["labels"]["__meta_kubernetes_endpoint_address_target_name"] == "n2"
                && g["labels"]["__meta_kubernetes_endpoint_port_name"] == "https-metrics"
        })
        .unwrap();
    assert!(n2_https["targets"][0]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:50"));

    // Empty namespaces: every namespace (`any: true`).
    let all = replay_targets(&ep, Some(&svc), &[], &kubelets, &mut || "x:1".into());
    assert_eq!(all.as_array().unwrap().len(), 6);
    // Endpoints outside the job's namespaces are never discovered.
    let none = replay_targets(
        &ep,
        Some(&svc),
        &["monitoring".into()],
        &kubelets,
        &mut || "x:1".into(),
    );
    assert_eq!(none, json!([]));
}

#[test]
fn a_capture_dir_without_a_manifest_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let err = ReplayInputs::from_capture_dir(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("capture.json") && err.contains("cargo xtask capture"),
        "{err}"
    );
}

#[test]
fn an_edited_file_fails_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pods.json");
    std::fs::write(&path, "{\"items\":[]}").unwrap();
    let inputs = ReplayInputs {
        digests: BTreeMap::from([(path.clone(), crate::pins::sha256_hex(b"other"))]),
        ..Default::default()
    };
    let err = inputs.read(&path).unwrap_err();
    assert!(matches!(err, ReplayError::Digest { .. }), "{err}");
    assert!(err.to_string().contains("--pods FILE"), "{err}");
}

#[test]
fn tls_files_are_refused_by_name() {
    let mut sm = mission_sm();
    sm["spec"]["endpoints"][0]["tlsConfig"]["caFile"] = "/etc/prometheus/secrets/ca.crt".into();
    let err = cadvisor_specs(&sm, Path::new("sm.yaml")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ReplayError::NotReplayable { .. }), "{msg}");
    assert!(msg.contains("spec.endpoints[0].tlsConfig.caFile"), "{msg}");
}

#[test]
fn prometheus_durations() {
    assert_eq!(prometheus_duration("30s"), Some(Duration::from_secs(30)));
    assert_eq!(prometheus_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(
        prometheus_duration("500ms"),
        Some(Duration::from_millis(500))
    );
    assert_eq!(prometheus_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(
        prometheus_duration("1m500ms"),
        Some(Duration::from_millis(60_500))
    );
    assert_eq!(prometheus_duration("30s1m"), None);
    assert_eq!(prometheus_duration(""), None);
    assert_eq!(prometheus_duration("10"), None);
    assert_eq!(prometheus_duration("1.5s"), None);
}
