//! `e2e::operator::scrape_config` against prometheus-operator v0.48.1 `pkg/prometheus/promcfg_test.go`.

use super::{cases, load, name, same_yaml, Report};
use e2e::operator::scrape_config::{
    scrape_job, specs_from_servicemonitor, Discovery, ServiceMonitorError, Shard,
};
use e2e::yaml::{Mapping, Value};

/// PrometheusSpec fields that change the job and that the generator does not take: a case
/// setting one must say `not_modelled` naming it.
const PROMETHEUS_OVERRIDES: &[&str] = &[
    "ignoreNamespaceSelectors",
    "apiserverConfig",
    "enforcedNamespaceLabel",
    "overrideHonorLabels",
    "overrideHonorTimestamps",
    "enforcedSampleLimit",
    "enforcedTargetLimit",
];

/// PrometheusSpec fields that choose which ServiceMonitors are used, not what their job says.
const PROMETHEUS_SELECTION: &[&str] = &["serviceMonitorSelector"];

#[test]
fn the_job_generator_matches_promcfg_test_go() {
    let data = load("scrape_config/promcfg_test.yaml");
    let mut report = Report::default();
    for case in cases(&data) {
        let name = name(case);
        match run(case) {
            Ok(Scope::In) => report.pass(name),
            Ok(Scope::Out) => report.out(name),
            Err(why) => report.fail(name, why),
        }
    }
    // 32 test functions in promcfg_test.go@v0.48.1: 15 ported (37 cases), 17 not (listed with why).
    let not_ported = data["not_ported"]
        .as_array()
        .expect("`not_ported` is a list");
    let mut functions: Vec<&str> = cases(&data)
        .iter()
        .map(|c| function(name(c)))
        .chain(not_ported.iter().map(name))
        .collect();
    functions.sort();
    functions.dedup();
    assert_eq!(
        (functions.len(), not_ported.len()),
        (32, 17),
        "every test function of promcfg_test.go is ported or listed in `not_ported`"
    );
    for f in not_ported {
        assert!(
            f["why"].as_str().is_some_and(|w| !w.is_empty()),
            "{}: say why it is not ported",
            name(f)
        );
    }
    report.finish("scrape_config", 18, 19);
}

/// `TestX[0]` and `TestX/sub` belong to `TestX`.
fn function(case: &str) -> &str {
    case.split(['[', '/']).next().unwrap_or(case)
}

enum Scope {
    In,
    Out,
}

fn run(case: &Value) -> Result<Scope, String> {
    let overrides = prometheus_overrides(case)?;
    let not_modelled = case
        .get("not_modelled")
        .map(|n| n["setting"].as_str().unwrap_or_default());
    match (not_modelled, overrides.as_slice()) {
        (None, []) => {}
        (None, set) => {
            return Err(format!(
                "the case sets prometheus.{set:?}, which the generator does not take; list it as \
                 `not_modelled` (or model the setting)"
            ))
        }
        (Some(setting), set) if set == [setting] => {
            if case["not_modelled"]["why"]
                .as_str()
                .is_none_or(str::is_empty)
            {
                return Err("`not_modelled` must say why".into());
            }
        }
        (Some(setting), set) => {
            return Err(format!(
                "`not_modelled` names prometheus.{setting}, but the case sets {set:?}"
            ))
        }
    }
    let parsed = specs_from_servicemonitor(&case["servicemonitor"]);
    if let Some(refused) = case.get("refused") {
        let err = match parsed {
            Err(e) => e,
            Ok(_) => {
                return Err(format!(
                    "the model accepts the ServiceMonitor; expected {refused}"
                ))
            }
        };
        let (variant, path) = variant(&err);
        if variant != refused["error"] || Some(path) != refused["path"].as_str() {
            return Err(format!(
                "refused as {variant} at {path:?} ({err}); expected {} at {}",
                refused["error"], refused["path"]
            ));
        }
        return Ok(Scope::Out);
    }
    let specs = parsed.map_err(|e| format!("the model refuses the ServiceMonitor: {e}"))?;
    if not_modelled.is_some() {
        // The override is the only reason: the ServiceMonitor itself is one the model takes.
        return Ok(Scope::Out);
    }
    version_gates(case)?;
    let [spec] = specs.as_slice() else {
        return Err(format!(
            "expected one endpoint, the model read {}",
            specs.len()
        ));
    };
    let job = scrape_job(spec, &Discovery::Kubernetes, Shard::Placeholder);
    let expected: Value = e2e::yaml::from_str(case["expected"].as_str().unwrap_or_default())
        .map_err(|e| format!("`expected` is not YAML: {e}"))?;
    let (ours, theirs) = match &case["compare"] {
        Value::String(s) if s == "job" => {
            let jobs = expected["scrape_configs"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let [theirs] = jobs.as_slice() else {
                return Err(format!(
                    "upstream's configuration holds {} jobs, not one",
                    jobs.len()
                ));
            };
            (job, theirs.clone())
        }
        Value::Array(keys) => {
            // Upstream compared what one helper writes: those keys of the job, when present.
            let mut part = Mapping::new();
            for k in keys {
                let k = k.as_str().expect("`compare` lists key names");
                if let Some(v) = job.get(k) {
                    part.insert(k.to_string(), v.clone());
                }
            }
            (Value::Object(part), expected)
        }
        other => {
            return Err(format!(
                "`compare` must be `job` or a list of keys, not {other}"
            ))
        }
    };
    same_yaml(&ours, &theirs)?;
    Ok(Scope::In)
}

/// The job-shaping Prometheus-level settings a case sets (non-default values).
fn prometheus_overrides(case: &Value) -> Result<Vec<&str>, String> {
    let prometheus = case["prometheus"]
        .as_object()
        .ok_or("`prometheus` must be a mapping (the PrometheusSpec fields the test sets)")?;
    let mut set = Vec::new();
    for (k, v) in prometheus {
        if k == "version" || PROMETHEUS_SELECTION.contains(&k.as_str()) {
            continue;
        }
        let key = PROMETHEUS_OVERRIDES
            .iter()
            .find(|o| **o == k)
            .ok_or_else(|| format!("prometheus.{k}: the runner does not know this setting"))?;
        // Pointers (the enforced limits, apiserverConfig) are set when present; the rest when
        // not their zero value.
        let is_set = match v {
            Value::Bool(b) => *b,
            Value::String(s) => !s.is_empty(),
            Value::Null => false,
            _ => true,
        };
        if is_set {
            set.push(*key);
        }
    }
    Ok(set)
}

/// The generator writes the job for Prometheus v2.21 or newer. promcfg.go gates two of the fields
/// it models on the version (honor_timestamps from 2.9, target_limit from 2.21; prometheus-operator
/// pkg/prometheus/promcfg.go@v0.48.1 generateServiceMonitorConfig); an older version is in scope
/// only where no gate applies. No version: the operator's default, v2.26.0.
fn version_gates(case: &Value) -> Result<(), String> {
    let Some(version) = case["prometheus"]["version"].as_str() else {
        return Ok(());
    };
    let minor: u64 = version
        .trim_start_matches('v')
        .strip_prefix("2.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("prometheus.version {version:?} is not v2.<minor>.<patch>"))?;
    let spec = &case["servicemonitor"]["spec"];
    let endpoints = spec["endpoints"].as_array().cloned().unwrap_or_default();
    let uses_honor_timestamps = endpoints.iter().any(|e| !e["honorTimestamps"].is_null());
    let uses_target_limit = spec["targetLimit"].as_u64().is_some_and(|l| l > 0);
    for (uses, gate, field) in [
        (uses_honor_timestamps, 9, "honorTimestamps"),
        (uses_target_limit, 21, "targetLimit"),
    ] {
        if uses && minor < gate {
            return Err(format!(
                "Prometheus {version} is below v2.{gate}, from which the operator writes {field}; \
                 the generator assumes v2.21 or newer: list the case as not modelled"
            ));
        }
    }
    Ok(())
}

/// The error's variant and the field path it names.
fn variant(e: &ServiceMonitorError) -> (&'static str, &str) {
    match e {
        ServiceMonitorError::Unsupported { path, .. } => ("Unsupported", path),
        ServiceMonitorError::Unknown { path, .. } => ("Unknown", path),
        ServiceMonitorError::Invalid { path, .. } => ("Invalid", path),
        ServiceMonitorError::Missing { path, .. } => ("Missing", path),
        ServiceMonitorError::Relabel { path, .. } => ("Relabel", path),
    }
}
