use super::*;
use crate::yaml::Value;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn rule(yaml: &str) -> Rule {
    Rule::from_yaml(&crate::yaml::from_str(yaml).unwrap()).unwrap()
}

fn refused(yaml: &str) -> String {
    Rule::from_yaml(&crate::yaml::from_str(yaml).unwrap())
        .expect_err(yaml)
        .to_string()
}

// ---------- relabel.go, rule by rule ----------

#[test]
fn replace_defaults_separator_anchoring_and_capture_syntax() {
    let l = labels(&[("a", "foo"), ("b", "bar")]);
    // Defaults: regex (.*), replacement $1, separator ;.
    let r = rule("{source_labels: [a, b], target_label: c}");
    assert_eq!(r.apply(l.clone()).unwrap()["c"], "foo;bar");
    // Fully anchored: `o` does not match "foo", so nothing happens.
    let r = rule("{source_labels: [a], regex: o, target_label: c}");
    assert_eq!(r.apply(l.clone()).unwrap(), l);
    // ${1} and $1, a named group, and a literal $$.
    let r = rule(
        r#"{source_labels: [a], regex: "f(?P<rest>o+)", replacement: "${1}-$rest-$$", target_label: c}"#,
    );
    assert_eq!(r.apply(l.clone()).unwrap()["c"], "oo-oo-$");
    // `$1x` is the group named "1x" (empty), as Go's Expand reads it.
    let r = rule(r#"{source_labels: [a], regex: "f(o+)", replacement: "$1x", target_label: c}"#);
    assert!(!r.apply(l.clone()).unwrap().contains_key("c"));
    // The target label may hold captures.
    let r = rule(r#"{source_labels: [a], regex: "(f)oo", target_label: "x_${1}"}"#);
    assert_eq!(r.apply(l.clone()).unwrap()["x_f"], "f");
    // An empty result deletes the target label.
    let r = rule("{source_labels: [missing], target_label: a}");
    assert!(!r.apply(l.clone()).unwrap().contains_key("a"));
    // No source labels: the empty string, which (.*) matches: a constant label.
    let r = rule("{target_label: endpoint, replacement: https-metrics}");
    assert_eq!(r.apply(l).unwrap()["endpoint"], "https-metrics");
}

/// Go's Expand, not the regex crate's: braced names are word characters only (else the `$` is
/// literal), `${}` is literal, `$01` is a name (so nothing), non-ASCII letters make names.
#[test]
fn templates_expand_as_go_expands_them() {
    let l = labels(&[("a", "foo")]);
    let got = |replacement: &str| {
        let r = Rule::from_yaml(&serde_json::json!({
            "source_labels": ["a"], "regex": "(f)(?P<x>o+)", "target_label": "c", "replacement": replacement,
        }))
        .unwrap();
        r.apply(l.clone())
            .unwrap()
            .get("c")
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(got("${a-b}"), "${a-b}");
    assert_eq!(got("${}"), "${}");
    assert_eq!(got("$"), "$");
    assert_eq!(got("$-$1"), "$-f");
    assert_eq!(got("${1 }"), "${1 }");
    assert_eq!(got("$01|${01}|$1|${2}|$x|${x}"), "||f|oo|oo|oo");
    assert_eq!(got("$é"), "", "a Unicode letter is part of a name");
    assert_eq!(got("$$1 ${1"), "$1 ${1");
    // labelmap's replacement too (relabelTarget refuses `${a-b}` there at load).
    let r = rule(r#"{regex: "(a)", replacement: "x_${1}_$01", action: labelmap}"#);
    assert_eq!(r.apply(l.clone()).unwrap()["x_a_"], "foo");
}

#[test]
fn keep_and_drop_match_the_joined_source_values() {
    let l = labels(&[
        ("__name__", "container_cpu_usage_seconds_total"),
        ("container", "POD"),
    ]);
    let drop =
        rule(r#"{source_labels: [__name__, container], regex: "container_.*;POD", action: drop}"#);
    assert_eq!(drop.apply(l.clone()), None);
    let keep = rule(r#"{source_labels: [container], regex: "app|sidecar", action: keep}"#);
    assert_eq!(keep.apply(l.clone()), None);
    let keep = rule(r#"{source_labels: [container], regex: "POD", action: KEEP}"#);
    assert_eq!(keep.apply(l.clone()), Some(l));
}

#[test]
fn hashmod_is_md5_modulus_as_prometheus_computes_it() {
    let r = rule(
        "{source_labels: [__address__], target_label: __tmp_hash, modulus: 1, action: hashmod}",
    );
    let l = labels(&[("__address__", "10.0.0.1:10250")]);
    assert_eq!(r.apply(l.clone()).unwrap()["__tmp_hash"], "0");
    // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8; its last 8 bytes big-endian,
    // 0xedef654fccc4a4d8 = 17145248513735374040, mod 1000 = 40.
    let r = rule("{source_labels: [a], target_label: h, modulus: 1000, action: hashmod}");
    assert_eq!(
        r.apply(labels(&[("a", "foo")])).unwrap()["h"],
        (0xedef_654f_ccc4_a4d8_u64 % 1000).to_string()
    );
}

#[test]
fn labelmap_labeldrop_labelkeep_work_on_names() {
    let l = labels(&[
        ("__meta_kubernetes_pod_label_app", "web"),
        ("__meta_kubernetes_pod_label_tier", "front"),
        ("job", "x"),
    ]);
    let r = rule(r#"{regex: "__meta_kubernetes_pod_label_(.+)", action: labelmap}"#);
    let out = r.apply(l.clone()).unwrap();
    assert_eq!(
        (out["app"].as_str(), out["tier"].as_str()),
        ("web", "front")
    );
    let r = rule(r#"{regex: "__meta_.*", action: labeldrop}"#);
    assert_eq!(r.apply(l.clone()).unwrap(), labels(&[("job", "x")]));
    let r = rule(r#"{regex: "__meta_.*", action: labelkeep}"#);
    assert_eq!(r.apply(l).unwrap().len(), 2);
}

#[test]
fn rules_prometheus_refuses_are_refused() {
    assert!(refused("{action: dropp}").contains("unknown relabel action"));
    assert!(refused("{regex: '(', action: drop}").contains("does not compile"));
    assert!(refused("{source_labels: [a]}").contains("requires 'target_label'"));
    assert!(refused("{target_label: x, action: hashmod}").contains("non-zero modulus"));
    assert!(
        refused("{target_label: 'a-b', modulus: 2, action: hashmod}")
            .contains("invalid 'target_label'")
    );
    assert!(refused("{target_label: '1x'}").contains("invalid 'target_label'"));
    assert!(
        refused("{regex: x, replacement: '-', action: labelmap}").contains("invalid 'replacement'")
    );
    assert!(refused("{regex: x, source_labels: [a], action: labeldrop}").contains("only 'regex'"));
    assert!(refused("{sourceLabels: [a], action: drop}").contains("not one Prometheus has"));
}

#[test]
fn process_stops_at_the_first_drop_and_names_it() {
    let rules = rules_from_yaml(
        Some(&crate::yaml::from_str("[{target_label: a, replacement: b}, {source_labels: [a], regex: b, action: drop}, {target_label: z, replacement: y}]").unwrap()),
        "metric_relabel_configs",
    )
    .unwrap();
    assert_eq!(
        process(Labels::new(), &rules),
        Outcome::Dropped {
            rule_index: 1,
            rule: "{source_labels: [a], regex: b, action: drop}".into()
        }
    );
}

#[test]
fn quoted_rules_are_one_line_of_yaml_that_reads_back() {
    let text = r#"{source_labels: [__name__, container], separator: ";", regex: "container_.*;(POD|)", replacement: "${1}", action: drop}"#;
    let r = rule(text);
    assert!(!r.quoted().contains('\n'));
    let back: Value = crate::yaml::from_str(r.quoted()).unwrap();
    assert_eq!(back, crate::yaml::from_str::<Value>(text).unwrap());
    assert_eq!(
        rule(r#"{regex: "true", action: keep}"#).quoted(),
        r#"{regex: "true", action: keep}"#
    );
}

#[test]
fn a_job_read_from_prometheus_config_yaml() {
    let job: Value = crate::yaml::from_str(
        "job_name: j\nmetric_relabel_configs:\n- {source_labels: [container], regex: POD, action: drop}\n",
    )
    .unwrap();
    let job = ScrapeJob::from_job_yaml(&job).unwrap();
    assert_eq!(
        (job.metrics_path.as_str(), job.scheme.as_str()),
        ("/metrics", "http")
    );
    assert!(!job.honor_labels);
    let series = labels(&[("__name__", "x"), ("container", "POD")]);
    assert!(matches!(
        job.series(&Labels::new(), &series),
        Outcome::Dropped { rule_index: 0, .. }
    ));
}

// ---------- exposition ----------

#[test]
fn exposition_series_reads_one_metrics_samples() {
    let body = "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed\n\
# TYPE container_cpu_usage_seconds_total counter\n\
container_cpu_usage_seconds_total{container=\"app\",cpu=\"total\",id=\"/x\",image=\"\",name=\"a\\\"b\",namespace=\"ns\",pod=\"p\"} 1.5 1700000000000\n\
container_cpu_usage_seconds_total_extra{pod=\"q\"} 1\n\
container_memory_working_set_bytes{pod=\"p\"} 7\n\
container_cpu_usage_seconds_total{id=\"/\"} 9\n\
container_cpu_usage_seconds_total 3\n";
    let all: Vec<Labels> = exposition_series(body, "container_cpu_usage_seconds_total").collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["pod"], "p");
    assert_eq!(all[0]["name"], "a\"b");
    assert!(
        !all[0].contains_key("image"),
        "an empty value is an absent label"
    );
    assert_eq!(all[0]["__name__"], "container_cpu_usage_seconds_total");
    assert_eq!(
        all[1],
        labels(&[
            ("__name__", "container_cpu_usage_seconds_total"),
            ("id", "/")
        ])
    );
    assert_eq!(all[2].len(), 1);
}
