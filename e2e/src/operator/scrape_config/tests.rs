use super::*;
use crate::yaml::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The job from FACTS.md ("The scrape job the operator generates for the cadvisor ServiceMonitor"),
/// copied here so the test runs without the shared directory.
const FACTS_JOB: &str = r#"
- job_name: serviceMonitor/kube-system/cadvisor/0
  honor_labels: false
  kubernetes_sd_configs:
  - role: endpoints
    namespaces:
      names: [kube-system]
  metrics_path: /metrics/cadvisor
  scheme: https
  tls_config:
    insecure_skip_verify: true
  bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
  relabel_configs:
  - source_labels: [job]
    target_label: __tmp_prometheus_job_name
  - action: keep
    source_labels: [__meta_kubernetes_service_label_app_kubernetes_io_name]
    regex: kubelet
  - action: keep
    source_labels: [__meta_kubernetes_endpoint_port_name]
    regex: https-metrics
  - source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name]
    separator: ";"
    regex: Node;(.*)
    replacement: ${1}
    target_label: node
  - source_labels: [__meta_kubernetes_endpoint_address_target_kind, __meta_kubernetes_endpoint_address_target_name]
    separator: ";"
    regex: Pod;(.*)
    replacement: ${1}
    target_label: pod
  - source_labels: [__meta_kubernetes_namespace]
    target_label: namespace
  - source_labels: [__meta_kubernetes_service_name]
    target_label: service
  - source_labels: [__meta_kubernetes_pod_name]
    target_label: pod
  - source_labels: [__meta_kubernetes_pod_container_name]
    target_label: container
  - source_labels: [__meta_kubernetes_service_name]
    target_label: job
    replacement: ${1}
  - target_label: endpoint
    replacement: https-metrics
  - source_labels: [__address__]
    target_label: __tmp_hash
    modulus: 1
    action: hashmod
  - source_labels: [__tmp_hash]
    regex: $(SHARD)
    action: keep
"#;

/// The recorded copy of the upstream job ([`FACTS_JOB`]).
fn facts_job() -> Value {
    let Value::Array(mut jobs) = crate::yaml::from_str(FACTS_JOB).unwrap() else {
        panic!("a list")
    };
    jobs.remove(0)
}

/// The job block of the shared `FACTS.md` named by `E2E_FACTS_MD` (an optional input: see
/// the table in `xtask/src/test.rs`); panics naming the variable when it is unset.
fn facts_md_job() -> Value {
    let Some(path) = std::env::var_os("E2E_FACTS_MD") else {
        panic!(
            "E2E_FACTS_MD is not set: this test compares the generated job with the one in the \
                 shared FACTS.md. Set E2E_FACTS_MD to its path (`.ci/run` does, from \
                 ../shared/upstream/FACTS.md), or run `cargo xtask test`, which lists this test as \
                 skipped when the input is missing"
        )
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("E2E_FACTS_MD={}: {e}", path.to_string_lossy()));
    let start = text
        .find("```yaml\n- job_name: serviceMonitor/kube-system/cadvisor/0")
        .expect("job block in FACTS.md");
    let block = &text[start + "```yaml\n".len()..];
    let block = &block[..block.find("```").expect("closing fence")];
    let Value::Array(mut jobs) = crate::yaml::from_str(block).unwrap() else {
        panic!("the FACTS.md job block is a list")
    };
    jobs.remove(0)
}

/// Keys in order, recursively: the operator's output is ordered and so is ours.
fn keys(v: &Value) -> Vec<String> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| std::iter::once(k.to_string()).chain(keys(v)))
            .collect(),
        Value::Array(s) => s.iter().flat_map(keys).collect(),
        _ => vec![],
    }
}

/// Against the shared FACTS.md itself (needs `E2E_FACTS_MD`).
#[test]
fn cadvisor_job_matches_facts_md_field_for_field_and_in_order() {
    let ours = scrape_job(
        &ServiceMonitorSpec::cadvisor(),
        &Discovery::Kubernetes,
        Shard::Placeholder,
    );
    assert_same_job(&ours, &facts_md_job());
    // The recorded copy the other tests use is still what FACTS.md says.
    assert_eq!(facts_job(), facts_md_job(), "FACTS_JOB is out of date");
}

/// Against the recorded copy, so the generator is checked on every machine.
#[test]
fn cadvisor_job_matches_the_recorded_operator_job_field_for_field_and_in_order() {
    let ours = scrape_job(
        &ServiceMonitorSpec::cadvisor(),
        &Discovery::Kubernetes,
        Shard::Placeholder,
    );
    assert_same_job(&ours, &facts_job());
}

fn assert_same_job(ours: &Value, facts: &Value) {
    assert_eq!(ours, facts, "ours:\n{}", crate::yaml::to_string(ours));
    assert_eq!(keys(ours), keys(facts));
    let rules = |v: &Value| v["relabel_configs"].as_array().unwrap().clone();
    assert_eq!(
        rules(ours),
        rules(facts),
        "same relabel rules in the same order"
    );
}

#[test]
fn shard_substitution_honor_labels_and_file_sd() {
    let spec = ServiceMonitorSpec {
        honor_labels: true,
        ..ServiceMonitorSpec::cadvisor()
    };
    let job = scrape_job(
        &spec,
        &Discovery::File {
            path: "/etc/prometheus/sd/kubelet.json".into(),
        },
        Shard::Number(0),
    );
    assert_eq!(job["honor_labels"], Value::Bool(true));
    assert_eq!(job["relabel_configs"][12]["regex"], Value::from("0"));
    assert!(job.get("kubernetes_sd_configs").is_none());
    assert_eq!(
        job["file_sd_configs"][0]["files"][0],
        Value::from("/etc/prometheus/sd/kubelet.json")
    );
    // Everything else is the operator's job unchanged.
    let mut facts = facts_job();
    let mut ours = job.clone();
    for v in [&mut facts, &mut ours] {
        let m = v.as_object_mut().unwrap();
        m.remove("kubernetes_sd_configs");
        m.remove("file_sd_configs");
        m.remove("honor_labels");
        m.get_mut("relabel_configs")
            .unwrap()
            .as_array_mut()
            .unwrap()
            .pop();
    }
    assert_eq!(ours, facts);
}

#[test]
fn other_port_and_selector_flow_into_keep_rules_and_endpoint_label() {
    let spec = ServiceMonitorSpec {
        port: "http-metrics".into(),
        scheme: "http".into(),
        selector: LabelSelector {
            match_labels: [("k8s-app".to_string(), "kubelet".to_string())].into(),
            match_expressions: Vec::new(),
        },
        ..ServiceMonitorSpec::cadvisor()
    };
    let job = scrape_job(&spec, &Discovery::Kubernetes, Shard::Placeholder);
    assert_eq!(job["scheme"], Value::from("http"));
    assert_eq!(
        job["relabel_configs"][1]["source_labels"][0],
        Value::from("__meta_kubernetes_service_label_k8s_app")
    );
    assert_eq!(
        job["relabel_configs"][2]["regex"],
        Value::from("http-metrics")
    );
    assert_eq!(
        job["relabel_configs"][10]["replacement"],
        Value::from("http-metrics")
    );
}

#[test]
fn component_config_is_complete_and_parses_back() {
    let yml = file_sd_prometheus_yml(
        &ServiceMonitorSpec::cadvisor(),
        "/etc/prometheus/sd/kubelet.json",
        Duration::from_secs(1),
    );
    let v: Value = crate::yaml::from_str(&yml).unwrap();
    assert_eq!(v["global"]["scrape_interval"], Value::from("1000ms"));
    assert_eq!(v["global"]["scrape_timeout"], Value::from("1000ms"));
    let job = &v["scrape_configs"][0];
    assert_eq!(
        job["job_name"],
        Value::from("serviceMonitor/kube-system/cadvisor/0")
    );
    assert_eq!(job["bearer_token_file"], Value::from(SERVICE_ACCOUNT_TOKEN));
    assert!(
        !yml.contains("$(SHARD)"),
        "the reloader's placeholder is substituted:\n{yml}"
    );
}

// ---------- the fields beyond the mission's (promcfg.go `generateServiceMonitorConfig`) ----------

fn yaml(text: &str) -> Value {
    crate::yaml::from_str(text).unwrap()
}

fn job_of(spec: &ServiceMonitorSpec) -> Value {
    scrape_job(spec, &Discovery::Kubernetes, Shard::Placeholder)
}

fn top_keys(job: &Value) -> Vec<String> {
    job.as_object()
        .unwrap()
        .keys()
        .map(|k| k.to_string())
        .collect()
}

fn rules(job: &Value) -> Vec<Value> {
    job["relabel_configs"].as_array().unwrap().clone()
}

fn rule_config(source: &[&str], target: &str, regex: &str, action: &str) -> RelabelConfig {
    RelabelConfig {
        source_labels: source.iter().map(|s| s.to_string()).collect(),
        target_label: target.into(),
        regex: regex.into(),
        action: action.into(),
        ..RelabelConfig::default()
    }
}

#[test]
fn every_job_field_in_promcfg_order() {
    let spec = ServiceMonitorSpec {
        interval: Some("30s".into()),
        scrape_timeout: Some("10s".into()),
        honor_timestamps: Some(false),
        params: Some(
            [
                ("b".into(), vec!["2".into()]),
                ("a".into(), vec!["1".into()]),
            ]
            .into(),
        ),
        sample_limit: 5000,
        target_limit: 10,
        metric_relabelings: Some(vec![rule_config(&["__name__"], "", "go_.*", "drop")]),
        ..ServiceMonitorSpec::cadvisor()
    };
    let job = job_of(&spec);
    assert_eq!(
        top_keys(&job),
        [
            "job_name",
            "honor_labels",
            "honor_timestamps",
            "kubernetes_sd_configs",
            "scrape_interval",
            "scrape_timeout",
            "metrics_path",
            "params",
            "scheme",
            "tls_config",
            "bearer_token_file",
            "relabel_configs",
            "sample_limit",
            "target_limit",
            "metric_relabel_configs",
        ]
    );
    assert_eq!(job["honor_timestamps"], Value::Bool(false));
    assert_eq!(job["scrape_interval"], Value::from("30s"));
    assert_eq!(job["scrape_timeout"], Value::from("10s"));
    // A Go map: yaml.v2 sorts its keys.
    assert_eq!(job["params"], yaml("{a: ['1'], b: ['2']}"));
    assert_eq!(keys(&job["params"]), ["a", "b"]);
    assert_eq!(job["sample_limit"], Value::from(5000));
    assert_eq!(job["target_limit"], Value::from(10));
    assert_eq!(
        job["metric_relabel_configs"],
        yaml("[{source_labels: [__name__], regex: go_.*, action: drop}]")
    );
    // The rest is the mission's job unchanged.
    assert_eq!(rules(&job), rules(&facts_job()));
}

#[test]
fn unset_fields_are_left_to_prometheus_defaults() {
    let spec = ServiceMonitorSpec {
        path: String::new(),
        scheme: String::new(),
        tls_config: None,
        bearer_token_file: None,
        ..ServiceMonitorSpec::cadvisor()
    };
    let keys = top_keys(&job_of(&spec));
    assert_eq!(
        keys,
        [
            "job_name",
            "honor_labels",
            "kubernetes_sd_configs",
            "relabel_configs"
        ]
    );
    // An empty metricRelabelings list is still written (Go: non-nil slice).
    let spec = ServiceMonitorSpec {
        metric_relabelings: Some(Vec::new()),
        params: Some(BTreeMap::new()),
        ..ServiceMonitorSpec::cadvisor()
    };
    let job = job_of(&spec);
    assert_eq!(job["metric_relabel_configs"], yaml("[]"));
    assert_eq!(job["params"], yaml("{}"));
}

#[test]
fn honor_timestamps_true_is_written_as_set() {
    let spec = ServiceMonitorSpec {
        honor_timestamps: Some(true),
        ..ServiceMonitorSpec::cadvisor()
    };
    assert_eq!(job_of(&spec)["honor_timestamps"], Value::Bool(true));
    assert!(job_of(&ServiceMonitorSpec::cadvisor())
        .get("honor_timestamps")
        .is_none());
}

#[test]
fn tls_config_fields_in_add_tls_to_yaml_order() {
    let spec = ServiceMonitorSpec {
        tls_config: Some(TlsConfig {
            insecure_skip_verify: false,
            server_name: "kubelet".into(),
            ca_file: "/etc/ca.crt".into(),
            cert_file: "/etc/tls.crt".into(),
            key_file: "/etc/tls.key".into(),
        }),
        ..ServiceMonitorSpec::cadvisor()
    };
    let tls = &job_of(&spec)["tls_config"];
    assert_eq!(
        keys(tls),
        [
            "insecure_skip_verify",
            "server_name",
            "ca_file",
            "cert_file",
            "key_file"
        ]
    );
    assert_eq!(tls["insecure_skip_verify"], Value::Bool(false));
    // A tlsConfig with nothing set still writes insecure_skip_verify: false.
    let spec = ServiceMonitorSpec {
        tls_config: Some(TlsConfig::default()),
        ..ServiceMonitorSpec::cadvisor()
    };
    assert_eq!(
        job_of(&spec)["tls_config"],
        yaml("{insecure_skip_verify: false}")
    );
}

#[test]
fn selector_match_labels_sorted_then_match_expressions() {
    let spec = ServiceMonitorSpec {
        selector: LabelSelector {
            match_labels: [
                ("k8s-app".to_string(), "kubelet".to_string()),
                ("app.kubernetes.io/name".to_string(), "kubelet".to_string()),
            ]
            .into(),
            match_expressions: vec![
                SelectorRequirement {
                    key: "tier".into(),
                    operator: SelectorOperator::In,
                    values: vec!["a".into(), "b".into()],
                },
                SelectorRequirement {
                    key: "env".into(),
                    operator: SelectorOperator::NotIn,
                    values: vec!["dev".into()],
                },
                SelectorRequirement {
                    key: "app.kubernetes.io/part-of".into(),
                    operator: SelectorOperator::Exists,
                    values: vec![],
                },
                SelectorRequirement {
                    key: "legacy".into(),
                    operator: SelectorOperator::DoesNotExist,
                    values: vec![],
                },
            ],
        },
        ..ServiceMonitorSpec::cadvisor()
    };
    let got = rules(&job_of(&spec));
    let want = yaml(
        r#"
- {action: keep, source_labels: [__meta_kubernetes_service_label_app_kubernetes_io_name], regex: kubelet}
- {action: keep, source_labels: [__meta_kubernetes_service_label_k8s_app], regex: kubelet}
- {action: keep, source_labels: [__meta_kubernetes_service_label_tier], regex: a|b}
- {action: drop, source_labels: [__meta_kubernetes_service_label_env], regex: dev}
- {action: keep, source_labels: [__meta_kubernetes_service_labelpresent_app_kubernetes_io_part_of], regex: "true"}
- {action: drop, source_labels: [__meta_kubernetes_service_labelpresent_legacy], regex: "true"}
- {action: keep, source_labels: [__meta_kubernetes_endpoint_port_name], regex: https-metrics}
"#,
    );
    assert_eq!(Value::Array(got[1..8].to_vec()), want);
    assert_eq!(keys(&got[1]), ["action", "source_labels", "regex"]);
}

#[test]
fn target_port_by_name_or_number_when_port_is_unset() {
    let named = ServiceMonitorSpec {
        port: String::new(),
        target_port: Some(TargetPort::Name("metrics".into())),
        ..ServiceMonitorSpec::cadvisor()
    };
    let r = rules(&job_of(&named));
    assert_eq!(
            r[2],
            yaml("{action: keep, source_labels: [__meta_kubernetes_pod_container_port_name], regex: metrics}")
        );
    assert_eq!(
        r[10],
        yaml("{target_label: endpoint, replacement: metrics}")
    );
    let numbered = ServiceMonitorSpec {
        target_port: Some(TargetPort::Number(8080)),
        ..named.clone()
    };
    let r = rules(&job_of(&numbered));
    assert_eq!(
            r[2],
            yaml("{action: keep, source_labels: [__meta_kubernetes_pod_container_port_number], regex: '8080'}")
        );
    assert_eq!(r[10], yaml("{target_label: endpoint, replacement: '8080'}"));
    // `port` wins when both are set.
    let both = ServiceMonitorSpec {
        target_port: Some(TargetPort::Number(8080)),
        ..ServiceMonitorSpec::cadvisor()
    };
    assert_eq!(rules(&job_of(&both)), rules(&facts_job()));
    // Neither: no port filter and no endpoint label (13 - 2 rules).
    let neither = ServiceMonitorSpec {
        target_port: None,
        ..named
    };
    let r = rules(&job_of(&neither));
    assert_eq!(r.len(), 11);
    assert!(r.iter().all(|r| r["target_label"] != "endpoint"));
}

#[test]
fn target_labels_pod_target_labels_and_job_label() {
    let spec = ServiceMonitorSpec {
        target_labels: vec!["app.kubernetes.io/name".into()],
        pod_target_labels: vec!["team".into()],
        job_label: Some("k8s-app".into()),
        ..ServiceMonitorSpec::cadvisor()
    };
    let r = rules(&job_of(&spec));
    let want = yaml(
        r#"
- {source_labels: [__meta_kubernetes_pod_container_name], target_label: container}
- {source_labels: [__meta_kubernetes_service_label_app_kubernetes_io_name], target_label: app_kubernetes_io_name, regex: (.+), replacement: "${1}"}
- {source_labels: [__meta_kubernetes_pod_label_team], target_label: team, regex: (.+), replacement: "${1}"}
- {source_labels: [__meta_kubernetes_service_name], target_label: job, replacement: "${1}"}
- {source_labels: [__meta_kubernetes_service_label_k8s_app], target_label: job, regex: (.+), replacement: "${1}"}
- {target_label: endpoint, replacement: https-metrics}
"#,
    );
    assert_eq!(Value::Array(r[8..14].to_vec()), want);
}

#[test]
fn user_relabelings_go_after_the_operators_and_before_sharding() {
    let spec = ServiceMonitorSpec {
        relabelings: vec![
            RelabelConfig {
                source_labels: vec!["__meta_kubernetes_node_name".into()],
                separator: "/".into(),
                target_label: "instance".into(),
                regex: "(.*)".into(),
                modulus: 0,
                replacement: "node-$1".into(),
                action: "replace".into(),
            },
            RelabelConfig {
                source_labels: vec!["__address__".into()],
                target_label: "__tmp_x".into(),
                modulus: 4,
                action: "hashmod".into(),
                ..RelabelConfig::default()
            },
        ],
        ..ServiceMonitorSpec::cadvisor()
    };
    let r = rules(&job_of(&spec));
    assert_eq!(r.len(), 15);
    assert_eq!(
        r[10],
        yaml("{target_label: endpoint, replacement: https-metrics}")
    );
    // generateRelabelConfig: set fields only, in this order.
    assert_eq!(
        keys(&r[11]),
        [
            "source_labels",
            "separator",
            "target_label",
            "regex",
            "replacement",
            "action"
        ]
    );
    assert_eq!(
        keys(&r[12]),
        ["source_labels", "target_label", "modulus", "action"]
    );
    assert_eq!(r[12]["modulus"], Value::from(4));
    assert_eq!(r[13]["target_label"], Value::from("__tmp_hash"));
    assert_eq!(r[14]["regex"], Value::from("$(SHARD)"));
}

#[test]
fn namespace_selector_any_omits_the_sd_namespaces() {
    let spec = ServiceMonitorSpec {
        namespaces: Vec::new(),
        ..ServiceMonitorSpec::cadvisor()
    };
    assert_eq!(
        job_of(&spec)["kubernetes_sd_configs"],
        yaml("[{role: endpoints}]")
    );
    let spec = ServiceMonitorSpec {
        namespaces: vec!["a".into(), "b".into()],
        ..ServiceMonitorSpec::cadvisor()
    };
    assert_eq!(
        job_of(&spec)["kubernetes_sd_configs"],
        yaml("[{role: endpoints, namespaces: {names: [a, b]}}]")
    );
}

mod prometheus_runs_it {
    //! The generated job through the Prometheus model: the mission's target and series.
    use super::*;
    use crate::relabel::{Labels, Outcome, ScrapeJob, TargetOutcome};

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // ---------- what Prometheus does with the job (crate::relabel) ----------

    fn kubelet_target(job: &ScrapeJob) -> Labels {
        // The operator's kubelet Endpoints for one node, through Prometheus's discovery.
        let (endpoints, service) = crate::operator::kubelet_endpoints(&["kind-worker".to_string()]);
        let mut target = crate::discovery::endpoints_targets(&endpoints, Some(&service), &[])
            .into_iter()
            .find(|t| t.label("__meta_kubernetes_endpoint_port_name") == Some("https-metrics"))
            .expect("an https-metrics target");
        target.address = "172.18.0.3:10250".into();
        match job.target(&target.discovered_labels()) {
            TargetOutcome::Kept { labels, address } => {
                assert_eq!(address, "172.18.0.3:10250");
                labels
            }
            other => panic!("the kubelet target is kept: {other:?}"),
        }
    }

    fn cadvisor_row() -> Labels {
        labels(&[
            ("__name__", "container_cpu_usage_seconds_total"),
            ("container", "app"),
            ("cpu", "total"),
            ("id", "/kubepods/pod1/abc"),
            ("image", "nginx"),
            ("name", "abc"),
            ("namespace", "pme2e-apps"),
            ("pod", "web-0"),
        ])
    }

    #[test]
    fn the_mission_job_gives_the_kubelet_target_the_operators_labels() {
        let job = compiled_job(&ServiceMonitorSpec::cadvisor()).unwrap();
        let target = kubelet_target(&job);
        assert_eq!(
            target,
            labels(&[
                ("endpoint", "https-metrics"),
                ("instance", "172.18.0.3:10250"),
                ("job", "kubelet"),
                ("namespace", "kube-system"),
                ("node", "kind-worker"),
                ("service", "kubelet"),
            ])
        );
    }

    #[test]
    fn the_mission_job_keeps_cadvisor_rows_and_renames_namespace_to_exported_namespace() {
        let spec = ServiceMonitorSpec::cadvisor();
        let job = compiled_job(&spec).unwrap();
        let target = kubelet_target(&job);
        let Outcome::Kept(out) = scrape_series(&spec, &target, &cadvisor_row()).unwrap() else {
            panic!("kept")
        };
        assert_eq!(out["namespace"], "kube-system");
        assert_eq!(out["exported_namespace"], "pme2e-apps");
        assert_eq!(out["pod"], "web-0");
        assert_eq!(out["container"], "app");
        assert_eq!(out["job"], "kubelet");
        assert_eq!(out["node"], "kind-worker");
    }

    #[test]
    fn honor_labels_keeps_the_series_namespace() {
        let spec = ServiceMonitorSpec {
            honor_labels: true,
            ..ServiceMonitorSpec::cadvisor()
        };
        let job = compiled_job(&spec).unwrap();
        let target = kubelet_target(&job);
        let Outcome::Kept(out) = job.series(&target, &cadvisor_row()) else {
            panic!("kept")
        };
        assert_eq!(out["namespace"], "pme2e-apps");
        assert!(!out.contains_key("exported_namespace"));
        assert_eq!(
            out["service"], "kubelet",
            "target labels the series lacks are added"
        );
    }

    #[test]
    fn a_metric_relabeling_drop_is_reported_with_its_index_and_rule() {
        let spec = ServiceMonitorSpec {
            metric_relabelings: Some(vec![
                RelabelConfig {
                    source_labels: vec!["__name__".into()],
                    regex: "go_.*".into(),
                    action: "drop".into(),
                    ..RelabelConfig::default()
                },
                RelabelConfig {
                    source_labels: vec!["__name__".into(), "namespace".into()],
                    regex: "container_cpu_usage_seconds_total;pme2e-.*".into(),
                    action: "drop".into(),
                    ..RelabelConfig::default()
                },
            ]),
            ..ServiceMonitorSpec::cadvisor()
        };
        let job = compiled_job(&spec).unwrap();
        let target = kubelet_target(&job);
        // honorLabels false: by now `namespace` is the target's kube-system, so the rule on
        // `namespace` does not see the pod's namespace…
        assert!(matches!(
            job.series(&target, &cadvisor_row()),
            Outcome::Kept(_)
        ));
        // …while with honorLabels true it does.
        let honoring = compiled_job(&ServiceMonitorSpec {
            honor_labels: true,
            ..spec
        })
        .unwrap();
        assert_eq!(
        honoring.series(&target, &cadvisor_row()),
        Outcome::Dropped {
            rule_index: 1,
            rule: r#"{source_labels: [__name__, namespace], regex: "container_cpu_usage_seconds_total;pme2e-.*", action: drop}"#.into()
        }
    );
    }

    #[test]
    fn a_target_dropped_by_the_port_filter_names_the_rule() {
        let job = compiled_job(&ServiceMonitorSpec {
            port: "http-metrics".into(),
            ..ServiceMonitorSpec::cadvisor()
        })
        .unwrap();
        let mut discovered = labels(&[
            ("__address__", "10.0.0.1:10250"),
            ("__meta_kubernetes_endpoint_port_name", "https-metrics"),
            (
                "__meta_kubernetes_service_label_app_kubernetes_io_name",
                "kubelet",
            ),
        ]);
        assert_eq!(
        job.target(&discovered),
        TargetOutcome::Dropped {
            rule_index: 2,
            rule: "{action: keep, source_labels: [__meta_kubernetes_endpoint_port_name], regex: http-metrics}".into()
        }
    );
        // No port: Prometheus adds the scheme's.
        discovered.insert("__address__".into(), "10.0.0.1".into());
        discovered.insert(
            "__meta_kubernetes_endpoint_port_name".into(),
            "http-metrics".into(),
        );
        let TargetOutcome::Kept { address, .. } = job.target(&discovered) else {
            panic!()
        };
        assert_eq!(address, "10.0.0.1:443");
    }
}
