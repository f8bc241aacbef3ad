use super::super::{scrape_job, Discovery, Shard};
use super::*;

const MISSION: &str = include_str!("../../../../../manifests/servicemonitor-cadvisor.yaml");
const HONOR: &str =
    include_str!("../../../../../manifests/servicemonitor-cadvisor-honorlabels.yaml");

fn parse(text: &str) -> Result<Vec<ServiceMonitorSpec>> {
    specs_from_servicemonitor(&crate::yaml::from_str(text).unwrap())
}

/// A ServiceMonitor with one endpoint whose body is `endpoint` (YAML, indented 4) and extra
/// spec lines (indented 2).
fn sm(endpoint: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: m\n  namespace: ns\n\
         spec:\n  selector: {{}}\n{spec_extra}  endpoints:\n  - port: web\n{endpoint}"
    )
}

fn one(text: &str) -> ServiceMonitorSpec {
    let mut specs = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(specs.len(), 1);
    specs.remove(0)
}

fn err(text: &str) -> ServiceMonitorError {
    parse(text).expect_err("refused")
}

#[test]
fn the_mission_manifests_parse_to_the_mission_spec() {
    assert_eq!(one(MISSION), ServiceMonitorSpec::cadvisor());
    assert_eq!(
        one(HONOR),
        ServiceMonitorSpec {
            honor_labels: true,
            ..ServiceMonitorSpec::cadvisor()
        }
    );
    // And so the job is the mission's, byte for byte.
    let ours = crate::yaml::to_string(&scrape_job(
        &one(MISSION),
        &Discovery::Kubernetes,
        Shard::Placeholder,
    ));
    let mission = crate::yaml::to_string(&scrape_job(
        &ServiceMonitorSpec::cadvisor(),
        &Discovery::Kubernetes,
        Shard::Placeholder,
    ));
    assert_eq!(ours, mission);
}

#[test]
fn as_kubectl_get_gives_it_json_with_server_metadata() {
    let json = serde_json::json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": {"name": "cadvisor", "namespace": "kube-system", "uid": "u1", "resourceVersion": "7",
                     "generation": 1, "creationTimestamp": "2026-11-26T00:00:00Z",
                     "labels": {"app.kubernetes.io/part-of": "pod-metrics-e2e"},
                     "managedFields": [{"manager": "kubectl"}]},
        "spec": {"endpoints": [{"bearerTokenFile": SERVICE_ACCOUNT_TOKEN, "path": "/metrics/cadvisor",
                                "port": "https-metrics", "scheme": "https", "tlsConfig": {"insecureSkipVerify": true}}],
                 "namespaceSelector": {"matchNames": ["kube-system"]},
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "kubelet"}}}
    });
    let specs = specs_from_servicemonitor(&serde_json::to_value(&json).unwrap()).unwrap();
    assert_eq!(specs, vec![ServiceMonitorSpec::cadvisor()]);
}

use super::super::SERVICE_ACCOUNT_TOKEN;

#[test]
fn one_spec_per_endpoint_sharing_the_spec_fields() {
    let text = sm(
        "  - port: metrics\n    path: /other\n",
        "  jobLabel: k8s-app\n  sampleLimit: 100\n  targetLimit: 3\n",
    );
    let specs = parse(&text).unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!((specs[0].endpoint_index, specs[1].endpoint_index), (0, 1));
    assert_eq!(specs[1].job_name(), "serviceMonitor/ns/m/1");
    assert_eq!(specs[1].path, "/other");
    for s in &specs {
        assert_eq!(s.job_label.as_deref(), Some("k8s-app"));
        assert_eq!((s.sample_limit, s.target_limit), (100, 3));
    }
    let none = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n\
                metadata: {name: m, namespace: ns}\nspec: {selector: {}, endpoints: []}\n";
    assert!(parse(none).unwrap().is_empty());
}

#[test]
fn port_target_port_path_scheme() {
    let s = one(&sm("    path: /m\n    scheme: https\n", ""));
    assert_eq!(
        (s.port.as_str(), s.path.as_str(), s.scheme.as_str()),
        ("web", "/m", "https")
    );
    assert_eq!(s.target_port, None);
    let s = one(&sm("", "").replace("- port: web", "- targetPort: metrics"));
    assert_eq!(s.port, "");
    assert_eq!(s.target_port, Some(TargetPort::Name("metrics".into())));
    let s = one(&sm("", "").replace("- port: web", "- targetPort: 8080"));
    assert_eq!(s.target_port, Some(TargetPort::Number(8080)));
    // Unset path and scheme stay unset (Prometheus's defaults apply).
    let s = one(&sm("", ""));
    assert_eq!((s.path.as_str(), s.scheme.as_str()), ("", ""));
}

#[test]
fn params_interval_scrape_timeout() {
    let s = one(&sm(
        "    params:\n      module: [http_2xx]\n      target: [a, b]\n    interval: 30s\n    scrapeTimeout: 10s\n",
        "",
    ));
    assert_eq!(
        s.params,
        Some(
            [
                ("module".to_string(), vec!["http_2xx".to_string()]),
                ("target".to_string(), vec!["a".to_string(), "b".to_string()]),
            ]
            .into()
        )
    );
    assert_eq!(s.interval.as_deref(), Some("30s"));
    assert_eq!(s.scrape_timeout.as_deref(), Some("10s"));
    assert!(matches!(
        err(&sm("    interval: 30\n", "")),
        ServiceMonitorError::Invalid { path, .. } if path == "spec.endpoints[0].interval"
    ));
}

#[test]
fn honor_labels_and_honor_timestamps() {
    let s = one(&sm(
        "    honorLabels: true\n    honorTimestamps: false\n",
        "",
    ));
    assert!(s.honor_labels);
    assert_eq!(s.honor_timestamps, Some(false));
    let s = one(&sm("", ""));
    assert!(!s.honor_labels);
    assert_eq!(s.honor_timestamps, None);
    assert!(matches!(
        err(&sm("    honorLabels: \"yes\"\n", "")),
        ServiceMonitorError::Invalid { path, expected, .. }
            if path == "spec.endpoints[0].honorLabels" && expected == "true or false"
    ));
}

#[test]
fn bearer_token_file_and_tls_config_files() {
    let s = one(&sm(
        "    bearerTokenFile: /t\n    tlsConfig:\n      insecureSkipVerify: false\n      serverName: kubelet\n      caFile: /ca\n      certFile: /c\n      keyFile: /k\n",
        "",
    ));
    assert_eq!(s.bearer_token_file.as_deref(), Some("/t"));
    assert_eq!(
        s.tls_config,
        Some(TlsConfig {
            insecure_skip_verify: false,
            server_name: "kubelet".into(),
            ca_file: "/ca".into(),
            cert_file: "/c".into(),
            key_file: "/k".into(),
        })
    );
    // An empty tlsConfig is still a tlsConfig (the operator writes insecure_skip_verify: false).
    assert_eq!(
        one(&sm("    tlsConfig: {}\n", "")).tls_config,
        Some(TlsConfig::default())
    );
}

#[test]
fn relabelings_and_metric_relabelings() {
    let s = one(&sm(
        "    relabelings:\n    - sourceLabels: [__meta_kubernetes_pod_node_name]\n      targetLabel: node\n    metricRelabelings:\n    - sourceLabels: [__name__, namespace]\n      separator: /\n      regex: container_cpu.*/kube-system\n      action: drop\n    - action: hashmod\n      sourceLabels: [pod]\n      targetLabel: shard\n      modulus: 4\n      replacement: x\n",
        "",
    ));
    assert_eq!(
        s.relabelings,
        vec![RelabelConfig {
            source_labels: vec!["__meta_kubernetes_pod_node_name".into()],
            target_label: "node".into(),
            ..RelabelConfig::default()
        }]
    );
    let m = s.metric_relabelings.unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].separator, "/");
    assert_eq!(m[0].regex, "container_cpu.*/kube-system");
    assert_eq!(m[0].action, "drop");
    assert_eq!((m[1].modulus, m[1].replacement.as_str()), (4, "x"));
    assert_eq!(
        one(&sm("    metricRelabelings: []\n", "")).metric_relabelings,
        Some(vec![])
    );
    assert_eq!(one(&sm("", "")).metric_relabelings, None);
}

#[test]
fn a_relabeling_prometheus_would_refuse_is_refused_with_its_path() {
    for (rule, says) in [
        ("    - action: Dropp\n", "unknown relabel action"),
        (
            "    - regex: '(unclosed'\n      action: drop\n",
            "does not compile",
        ),
        ("    - sourceLabels: [a]\n", "requires 'target_label'"),
        (
            "    - action: hashmod\n      targetLabel: x\n",
            "non-zero modulus",
        ),
        (
            "    - action: labeldrop\n      regex: x\n      targetLabel: \"y\"\n",
            "only 'regex'",
        ),
    ] {
        let e = err(&sm(&format!("    metricRelabelings:\n{rule}"), ""));
        let text = crate::errors::error_chain(&e);
        assert!(
            matches!(&e, ServiceMonitorError::Relabel { path, .. } if path == "spec.endpoints[0].metricRelabelings[0]"),
            "{text}"
        );
        assert!(text.contains(says), "{text}");
        assert!(text.contains("Prometheus would refuse"), "{text}");
    }
    let e = err(&sm(
        "    relabelings:\n    - {sourceLabels: [a], targetLabel: x}\n    - {action: foo}\n",
        "",
    ));
    assert!(
        e.to_string()
            .starts_with("spec.endpoints[0].relabelings[1]:"),
        "{e}"
    );
}

#[test]
fn selector_match_labels_and_expressions() {
    let text = sm("", "").replace(
        "  selector: {}\n",
        "  selector:\n    matchLabels: {b: \"2\", a: \"1\"}\n    matchExpressions:\n    - {key: tier, operator: In, values: [x, \"y\"]}\n    - {key: env, operator: NotIn, values: [dev]}\n    - {key: p, operator: Exists}\n    - {key: q, operator: DoesNotExist}\n",
    );
    let s = one(&text);
    assert_eq!(
        s.selector.match_labels,
        [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string())
        ]
        .into()
    );
    let ops: Vec<_> = s
        .selector
        .match_expressions
        .iter()
        .map(|e| e.operator)
        .collect();
    assert_eq!(
        ops,
        [
            SelectorOperator::In,
            SelectorOperator::NotIn,
            SelectorOperator::Exists,
            SelectorOperator::DoesNotExist
        ]
    );
    assert_eq!(s.selector.match_expressions[0].values, ["x", "y"]);
    let bad = text.replace("operator: In,", "operator: in,");
    assert!(matches!(
        err(&bad),
        ServiceMonitorError::Invalid { path, .. } if path == "spec.selector.matchExpressions[0].operator"
    ));
    let missing_selector = sm("", "").replace("  selector: {}\n", "");
    assert!(matches!(
        err(&missing_selector),
        ServiceMonitorError::Missing { path, .. } if path == "spec.selector"
    ));
}

#[test]
fn namespace_selector_any_match_names_or_own_namespace() {
    assert_eq!(one(&sm("", "")).namespaces, ["ns"]);
    assert_eq!(
        one(&sm("", "  namespaceSelector: {any: true}\n")).namespaces,
        Vec::<String>::new()
    );
    assert_eq!(
        one(&sm("", "  namespaceSelector: {matchNames: [a, b]}\n")).namespaces,
        ["a", "b"]
    );
    assert_eq!(
        one(&sm("", "  namespaceSelector: {matchNames: []}\n")).namespaces,
        ["ns"]
    );
}

#[test]
fn job_label_target_labels_pod_target_labels_sample_limit() {
    let s = one(&sm(
        "",
        "  jobLabel: app\n  targetLabels: [team]\n  podTargetLabels: [version]\n  sampleLimit: 10\n",
    ));
    assert_eq!(s.job_label.as_deref(), Some("app"));
    assert_eq!(s.target_labels, ["team"]);
    assert_eq!(s.pod_target_labels, ["version"]);
    assert_eq!(s.sample_limit, 10);
    assert!(matches!(
        err(&sm("", "  sampleLimit: -1\n")),
        ServiceMonitorError::Invalid { path, .. } if path == "spec.sampleLimit"
    ));
}

#[test]
fn v0_48_1_fields_not_modelled_are_refused_by_name() {
    for (endpoint, path) in [
        (
            "    basicAuth:\n      username: {name: s, key: u}\n      password: {name: s, key: p}\n",
            "spec.endpoints[0].basicAuth",
        ),
        (
            "    bearerTokenSecret: {name: s, key: token}\n",
            "spec.endpoints[0].bearerTokenSecret",
        ),
        ("    proxyUrl: http://proxy:3128\n", "spec.endpoints[0].proxyUrl"),
        (
            "    tlsConfig:\n      ca: {secret: {name: s, key: ca.crt}}\n",
            "spec.endpoints[0].tlsConfig.ca",
        ),
        (
            "    tlsConfig:\n      cert: {configMap: {name: c, key: tls.crt}}\n",
            "spec.endpoints[0].tlsConfig.cert",
        ),
        (
            "    tlsConfig:\n      keySecret: {name: s, key: tls.key}\n",
            "spec.endpoints[0].tlsConfig.keySecret",
        ),
    ] {
        let e = err(&sm(endpoint, ""));
        let text = e.to_string();
        assert!(
            matches!(&e, ServiceMonitorError::Unsupported { path: p, .. } if p == path),
            "{text}"
        );
        assert!(text.starts_with(path), "names the field first: {text}");
        assert!(text.contains("remove it"), "says what to do: {text}");
    }
    // Empty references have no effect upstream (AddBearerToken needs a name): accepted.
    let s = one(&sm(
        "    bearerTokenSecret: {key: \"\"}\n    tlsConfig: {ca: {}}\n",
        "",
    ));
    assert_eq!(s.tls_config, Some(TlsConfig::default()));
}

#[test]
fn fields_v0_48_1_does_not_have_are_unknown() {
    for (endpoint, spec_extra, path) in [
        (
            "    oauth2: {clientId: {secret: {name: s, key: id}}}\n",
            "",
            "spec.endpoints[0].oauth2",
        ),
        (
            "    authorization: {type: Bearer}\n",
            "",
            "spec.endpoints[0].authorization",
        ),
        (
            "    followRedirects: true\n",
            "",
            "spec.endpoints[0].followRedirects",
        ),
        (
            "    honorlabels: true\n",
            "",
            "spec.endpoints[0].honorlabels",
        ),
        ("", "  labelLimit: 10\n", "spec.labelLimit"),
        (
            "    tlsConfig: {insecure: true}\n",
            "",
            "spec.endpoints[0].tlsConfig.insecure",
        ),
        (
            "    metricRelabelings:\n    - {source_labels: [a], action: drop}\n",
            "",
            "spec.endpoints[0].metricRelabelings[0].source_labels",
        ),
    ] {
        let e = err(&sm(endpoint, spec_extra));
        let text = e.to_string();
        assert!(
            matches!(&e, ServiceMonitorError::Unknown { path: p, .. } if p == path),
            "{path}: {text}"
        );
        assert!(text.contains("has no such field"), "{text}");
        assert!(text.contains("Remove it or fix its spelling"), "{text}");
    }
    let e = err(&sm("", "").replace(
        "kind: ServiceMonitor\n",
        "kind: ServiceMonitor\nstatus: {}\n",
    ));
    assert!(matches!(e, ServiceMonitorError::Unknown { path, .. } if path == "status"));
}

#[test]
fn wrong_kind_or_missing_metadata_is_refused() {
    let e = err(&sm("", "").replace("kind: ServiceMonitor", "kind: PodMonitor"));
    assert!(matches!(e, ServiceMonitorError::Invalid { path, .. } if path == "kind"));
    let e = err(&sm("", "").replace("  namespace: ns\n", ""));
    let text = e.to_string();
    assert!(matches!(e, ServiceMonitorError::Missing { path, .. } if path == "metadata.namespace"));
    assert!(text.contains("add it"), "{text}");
    let e = err(&sm("", "").replace("  endpoints:\n  - port: web\n", ""));
    assert!(matches!(e, ServiceMonitorError::Missing { path, .. } if path == "spec.endpoints"));
}
