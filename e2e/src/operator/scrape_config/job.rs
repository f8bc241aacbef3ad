//! The generator: the scrape job prometheus-operator v0.48.1 writes for one ServiceMonitor
//! endpoint (pkg/prometheus/promcfg.go `generateServiceMonitorConfig`), field for field and in
//! its order.

use super::spec::{
    Discovery, RelabelConfig, SelectorOperator, ServiceMonitorSpec, Shard, TargetPort,
};
use crate::relabel::{sanitize_label_name, Labels, RelabelError, ScrapeJob, SeriesOutcome};
use crate::yaml::{Mapping, Value};

/// The scrape job, field for field and relabel rule for rule as operator v0.48.1 generates it
/// (promcfg.go `generateServiceMonitorConfig`, for a Prometheus of 2.21 or newer, one shard,
/// no operator-level overrides or enforced limits).
pub fn scrape_job(spec: &ServiceMonitorSpec, discovery: &Discovery, shard: Shard) -> Value {
    let mut job = Mapping::new();
    job.insert("job_name".into(), spec.job_name().into());
    job.insert("honor_labels".into(), spec.honor_labels.into());
    // promcfg.go `honorTimestamps`: only when the user set it (Prometheus ≥ 2.9).
    if let Some(honor) = spec.honor_timestamps {
        job.insert("honor_timestamps".into(), honor.into());
    }
    match discovery {
        Discovery::Kubernetes => {
            let mut sd = Mapping::new();
            sd.insert("role".into(), "endpoints".into());
            // promcfg.go `generateK8SSDConfig`: no `namespaces` at all for every namespace.
            if !spec.namespaces.is_empty() {
                let names = Value::Array(
                    spec.namespaces
                        .iter()
                        .map(|n| Value::from(n.as_str()))
                        .collect(),
                );
                sd.insert("namespaces".into(), map([("names", names)]));
            }
            job.insert(
                "kubernetes_sd_configs".into(),
                Value::Array(vec![Value::Object(sd)]),
            );
        }
        Discovery::File { path } => {
            // Re-read every second so tests can change targets at runtime.
            let sd = map([("files", strs(&[path])), ("refresh_interval", "1s".into())]);
            job.insert("file_sd_configs".into(), Value::Array(vec![sd]));
        }
        Discovery::Http {
            url,
            refresh_interval,
        } => {
            let refresh = format!("{}ms", refresh_interval.as_millis());
            let sd = map([
                ("url", url.as_str().into()),
                ("refresh_interval", refresh.as_str().into()),
            ]);
            job.insert("http_sd_configs".into(), Value::Array(vec![sd]));
        }
    }
    // promcfg.go: interval, timeout, path, params, scheme, tls, bearer token file, in this order.
    if let Some(i) = &spec.interval {
        job.insert("scrape_interval".into(), i.as_str().into());
    }
    if let Some(t) = &spec.scrape_timeout {
        job.insert("scrape_timeout".into(), t.as_str().into());
    }
    if !spec.path.is_empty() {
        job.insert("metrics_path".into(), spec.path.clone().into());
    }
    if let Some(params) = &spec.params {
        // A Go map: yaml.v2 writes its keys sorted, as the BTreeMap iterates.
        let params: Mapping = params
            .iter()
            .map(|(k, vs)| {
                let vs: Vec<&str> = vs.iter().map(String::as_str).collect();
                (k.clone(), strs(&vs))
            })
            .collect();
        job.insert("params".into(), Value::Object(params));
    }
    if !spec.scheme.is_empty() {
        job.insert("scheme".into(), spec.scheme.clone().into());
    }
    if let Some(tls) = &spec.tls_config {
        // promcfg.go `addTLStoYaml`: insecure_skip_verify always, then the set fields.
        let mut t = Mapping::new();
        t.insert(
            "insecure_skip_verify".into(),
            tls.insecure_skip_verify.into(),
        );
        for (key, value) in [
            ("server_name", &tls.server_name),
            ("ca_file", &tls.ca_file),
            ("cert_file", &tls.cert_file),
            ("key_file", &tls.key_file),
        ] {
            if !value.is_empty() {
                t.insert(key.into(), value.as_str().into());
            }
        }
        job.insert("tls_config".into(), Value::Object(t));
    }
    if let Some(file) = &spec.bearer_token_file {
        job.insert("bearer_token_file".into(), file.clone().into());
    }
    job.insert("relabel_configs".into(), relabel_configs(spec, shard));
    if spec.sample_limit > 0 {
        job.insert("sample_limit".into(), spec.sample_limit.into());
    }
    if spec.target_limit > 0 {
        job.insert("target_limit".into(), spec.target_limit.into());
    }
    if let Some(rules) = &spec.metric_relabelings {
        let rules = rules.iter().map(relabel_rule).collect();
        job.insert("metric_relabel_configs".into(), Value::Array(rules));
    }
    Value::Object(job)
}

/// A user relabeling as promcfg.go `generateRelabelConfig` writes it: set fields only, in this order.
pub(crate) fn relabel_rule(c: &RelabelConfig) -> Value {
    let mut m = Mapping::new();
    if !c.source_labels.is_empty() {
        let labels: Vec<&str> = c.source_labels.iter().map(String::as_str).collect();
        m.insert("source_labels".into(), strs(&labels));
    }
    for (key, value) in [
        ("separator", &c.separator),
        ("target_label", &c.target_label),
        ("regex", &c.regex),
    ] {
        if !value.is_empty() {
            m.insert(key.into(), value.as_str().into());
        }
    }
    if c.modulus != 0 {
        m.insert("modulus".into(), c.modulus.into());
    }
    for (key, value) in [("replacement", &c.replacement), ("action", &c.action)] {
        if !value.is_empty() {
            m.insert(key.into(), value.as_str().into());
        }
    }
    Value::Object(m)
}

fn keep_rule(action: &str, source: String, regex: &str) -> Value {
    map([
        ("action", action.into()),
        ("source_labels", strs(&[&source])),
        ("regex", regex.into()),
    ])
}

fn relabel_configs(spec: &ServiceMonitorSpec, shard: Shard) -> Value {
    let by_kind = || {
        strs(&[
            "__meta_kubernetes_endpoint_address_target_kind",
            "__meta_kubernetes_endpoint_address_target_name",
        ])
    };
    let shard = match shard {
        Shard::Placeholder => "$(SHARD)".to_string(),
        Shard::Number(n) => n.to_string(),
    };
    let mut rules = vec![map([
        ("source_labels", strs(&["job"])),
        ("target_label", "__tmp_prometheus_job_name".into()),
    ])];
    // promcfg.go: matchLabels sorted by key, then matchExpressions in order.
    for (k, v) in &spec.selector.match_labels {
        rules.push(keep_rule("keep", meta_service_label(k), v));
    }
    for e in &spec.selector.match_expressions {
        let values = e.values.join("|");
        let present = format!(
            "__meta_kubernetes_service_labelpresent_{}",
            sanitize_label_name(&e.key)
        );
        rules.push(match e.operator {
            SelectorOperator::In => keep_rule("keep", meta_service_label(&e.key), &values),
            SelectorOperator::NotIn => keep_rule("drop", meta_service_label(&e.key), &values),
            SelectorOperator::Exists => keep_rule("keep", present, "true"),
            SelectorOperator::DoesNotExist => keep_rule("drop", present, "true"),
        });
    }
    // promcfg.go: `port` wins over `targetPort`; a numeric targetPort of 0 keeps nothing.
    if !spec.port.is_empty() {
        rules.push(keep_rule(
            "keep",
            "__meta_kubernetes_endpoint_port_name".into(),
            &spec.port,
        ));
    } else {
        match &spec.target_port {
            Some(TargetPort::Name(n)) if !n.is_empty() => rules.push(keep_rule(
                "keep",
                "__meta_kubernetes_pod_container_port_name".into(),
                n,
            )),
            Some(TargetPort::Number(n)) if *n != 0 => rules.push(keep_rule(
                "keep",
                "__meta_kubernetes_pod_container_port_number".into(),
                &n.to_string(),
            )),
            _ => {}
        }
    }
    rules.extend([
        map([
            ("source_labels", by_kind()),
            ("separator", ";".into()),
            ("regex", "Node;(.*)".into()),
            ("replacement", "${1}".into()),
            ("target_label", "node".into()),
        ]),
        map([
            ("source_labels", by_kind()),
            ("separator", ";".into()),
            ("regex", "Pod;(.*)".into()),
            ("replacement", "${1}".into()),
            ("target_label", "pod".into()),
        ]),
        map([
            ("source_labels", strs(&["__meta_kubernetes_namespace"])),
            ("target_label", "namespace".into()),
        ]),
        map([
            ("source_labels", strs(&["__meta_kubernetes_service_name"])),
            ("target_label", "service".into()),
        ]),
        map([
            ("source_labels", strs(&["__meta_kubernetes_pod_name"])),
            ("target_label", "pod".into()),
        ]),
        map([
            (
                "source_labels",
                strs(&["__meta_kubernetes_pod_container_name"]),
            ),
            ("target_label", "container".into()),
        ]),
    ]);
    // promcfg.go: targetLabels from the Service, podTargetLabels from the Pod.
    for (prefix, names) in [
        ("__meta_kubernetes_service_label_", &spec.target_labels),
        ("__meta_kubernetes_pod_label_", &spec.pod_target_labels),
    ] {
        for l in names {
            rules.push(map([
                (
                    "source_labels",
                    strs(&[&format!("{prefix}{}", sanitize_label_name(l))]),
                ),
                ("target_label", sanitize_label_name(l).into()),
                ("regex", "(.+)".into()),
                ("replacement", "${1}".into()),
            ]));
        }
    }
    rules.push(map([
        ("source_labels", strs(&["__meta_kubernetes_service_name"])),
        ("target_label", "job".into()),
        ("replacement", "${1}".into()),
    ]));
    if let Some(label) = &spec.job_label {
        rules.push(map([
            ("source_labels", strs(&[&meta_service_label(label)])),
            ("target_label", "job".into()),
            ("regex", "(.+)".into()),
            ("replacement", "${1}".into()),
        ]));
    }
    // promcfg.go: the endpoint label is the port name, else targetPort's string form (even "0").
    let endpoint = if !spec.port.is_empty() {
        Some(spec.port.clone())
    } else {
        spec.target_port
            .as_ref()
            .map(TargetPort::to_string)
            .filter(|s| !s.is_empty())
    };
    if let Some(endpoint) = endpoint {
        rules.push(map([
            ("target_label", "endpoint".into()),
            ("replacement", endpoint.into()),
        ]));
    }
    // promcfg.go: the user's relabelings after the operator's, before the sharding rules.
    rules.extend(spec.relabelings.iter().map(relabel_rule));
    rules.extend([
        map([
            ("source_labels", strs(&["__address__"])),
            ("target_label", "__tmp_hash".into()),
            ("modulus", 1.into()),
            ("action", "hashmod".into()),
        ]),
        map([
            ("source_labels", strs(&["__tmp_hash"])),
            ("regex", shard.into()),
            ("action", "keep".into()),
        ]),
    ]);
    Value::Array(rules)
}

/// A mapping in the order given (the operator's output is ordered; `crate::yaml` keeps it).
pub(crate) fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn strs(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(*s)).collect())
}

/// `__meta_kubernetes_service_label_<name>` with the name sanitised as Prometheus does
/// (every character outside `[a-zA-Z0-9_]` becomes `_`).
pub fn meta_service_label(label: &str) -> String {
    format!(
        "__meta_kubernetes_service_label_{}",
        sanitize_label_name(label)
    )
}

/// The job the operator generates for `spec` (kubernetes_sd, shard 0 as the reloader
/// substitutes it), loaded by the Prometheus model as Prometheus loads it.
///
/// # Errors
/// A rule of the job Prometheus would refuse (only possible with hand-made relabelings).
pub fn compiled_job(spec: &ServiceMonitorSpec) -> Result<ScrapeJob, RelabelError> {
    ScrapeJob::from_job_yaml(&scrape_job(spec, &Discovery::Kubernetes, Shard::Number(0)))
}

/// One series through the job `spec` generates: `target` are the target's labels (as
/// [`ScrapeJob::target`] returns them, or `/api/v1/targets` shows them), `series` the labels
/// of a sample line as the kubelet exposes it (with `__name__`).
///
/// # Errors
/// A relabeling in `spec` Prometheus would refuse to load.
pub fn scrape_series(
    spec: &ServiceMonitorSpec,
    target: &Labels,
    series: &Labels,
) -> Result<SeriesOutcome, RelabelError> {
    Ok(compiled_job(spec)?.series(target, series))
}
