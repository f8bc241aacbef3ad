//! What the applied Prometheus CR and ServiceMonitor say, field by field, for the plan: the
//! settings that decide whether pods' metrics arrive (selector, honorLabels, interval, path).

/// The settings that decide whether the pods' metrics arrive, read from the manifests the run
/// applies, one line each (see [`describe_prometheus`], [`describe_servicemonitor`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// What the Prometheus CR says, one line per setting.
    pub prometheus: Vec<String>,
    /// What the ServiceMonitor says, one line per setting.
    pub servicemonitor: Vec<String>,
}

/// [`Applied`] from the Prometheus CR (among `prometheus_objects`) and the ServiceMonitor object.
///
/// # Errors
/// When there is no Prometheus object or the ServiceMonitor is not one.
pub fn describe_applied(
    prometheus_objects: &[serde_json::Value],
    servicemonitor: &serde_json::Value,
) -> anyhow::Result<Applied> {
    let prom = prometheus_objects
        .iter()
        .find(|o| o["kind"] == "Prometheus")
        .ok_or_else(|| anyhow::anyhow!("no Prometheus object among the Prometheus manifests"))?;
    if servicemonitor["kind"] != "ServiceMonitor" {
        anyhow::bail!(
            "expected a ServiceMonitor, found kind {}",
            servicemonitor["kind"]
        );
    }
    Ok(Applied {
        prometheus: describe_prometheus(prom),
        servicemonitor: describe_servicemonitor(servicemonitor),
    })
}

/// A JSON value in YAML flow style, the way the manifests read: `{matchNames: [kube-system]}`.
fn flow(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `value`, or what the operator does when the field is unset.
fn field(v: &serde_json::Value, unset: &str) -> String {
    if v.is_null() {
        format!("(unset: {unset})")
    } else {
        flow(v)
    }
}

fn ident(obj: &serde_json::Value) -> String {
    format!(
        "{} {}/{}",
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["namespace"].as_str().unwrap_or("default"),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The Prometheus CR's version, scrape interval and ServiceMonitor selectors. Unset selectors are
/// spelled out with their v0.48.1 meaning (nil selects nothing; a nil namespace selector means
/// the Prometheus's own namespace only: prometheus-operator Documentation/api.md, PrometheusSpec).
pub fn describe_prometheus(obj: &serde_json::Value) -> Vec<String> {
    let spec = &obj["spec"];
    vec![
        format!(
            "{}: version {}, scrapeInterval {}",
            ident(obj),
            field(&spec["version"], "the untagged (latest) image in v0.48.1"),
            field(&spec["scrapeInterval"], "30s")
        ),
        format!(
            "    serviceMonitorSelector {}",
            field(&spec["serviceMonitorSelector"], "selects no ServiceMonitor")
        ),
        format!(
            "    serviceMonitorNamespaceSelector {}{}",
            field(
                &spec["serviceMonitorNamespaceSelector"],
                "the Prometheus's own namespace only"
            ),
            if spec["serviceMonitorNamespaceSelector"]
                .as_object()
                .is_some_and(|m| m.is_empty())
            {
                " (every namespace)"
            } else {
                ""
            }
        ),
    ]
}

/// The ServiceMonitor's endpoints (port, scheme, path, bearer token file, tlsConfig,
/// honorLabels) and its namespace and label selectors.
pub fn describe_servicemonitor(obj: &serde_json::Value) -> Vec<String> {
    let spec = &obj["spec"];
    let labels = field(&obj["metadata"]["labels"], "no labels");
    let mut out = vec![format!("{} (labels {labels})", ident(obj))];
    for (i, ep) in spec["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        out.push(format!(
            "    endpoint {i}: port {}, scheme {}, path {}",
            field(&ep["port"], "none"),
            field(&ep["scheme"], "http"),
            field(&ep["path"], "/metrics")
        ));
        out.push(format!(
            "      bearerTokenFile {}",
            field(&ep["bearerTokenFile"], "no token sent")
        ));
        out.push(format!(
            "      tlsConfig {}",
            field(&ep["tlsConfig"], "verify against the system CAs")
        ));
        out.push(format!(
            "      honorLabels {}",
            field(
                &ep["honorLabels"],
                "false: pod namespaces arrive as exported_namespace"
            )
        ));
    }
    out.push(format!(
        "    namespaceSelector {}",
        field(
            &spec["namespaceSelector"],
            "the ServiceMonitor's own namespace"
        )
    ));
    out.push(format!(
        "    selector {}",
        field(&spec["selector"], "every Service")
    ));
    out
}
