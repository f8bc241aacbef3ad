//! Reads a ServiceMonitor object (as `kubectl get servicemonitor -o yaml` or a manifest gives
//! it) into one [`ServiceMonitorSpec`] per endpoint.
//!
//! Every field prometheus-operator v0.48.1 has (`pkg/apis/monitoring/v1/types.go`) is either
//! modelled or refused by name ([`ServiceMonitorError::Unsupported`]); a field v0.48.1 does not
//! have is refused as [`ServiceMonitorError::Unknown`]. Nothing is silently ignored.

use super::job::relabel_rule;
use super::spec::{
    LabelSelector, RelabelConfig, SelectorOperator, SelectorRequirement, ServiceMonitorSpec,
    TargetPort, TlsConfig,
};
use crate::yaml::Value;
use std::collections::BTreeMap;

mod error;
mod fields;

use error::Result;
pub use error::ServiceMonitorError;
use fields::*;

/// One [`ServiceMonitorSpec`] per `spec.endpoints[]` of a ServiceMonitor object (a YAML or JSON
/// value as `kubectl get servicemonitor -o yaml` or a manifest gives it).
///
/// # Errors
///
/// - [`ServiceMonitorError::Unsupported`] for a v0.48.1 field not modelled here (`basicAuth`,
///   `bearerTokenSecret`, `proxyUrl`, `tlsConfig.ca`/`cert`/`keySecret`), with its path;
/// - [`ServiceMonitorError::Unknown`] for a field v0.48.1 does not have (e.g. `oauth2`);
/// - [`ServiceMonitorError::Invalid`]/[`ServiceMonitorError::Missing`] for wrong types, a wrong
///   `kind`, or no `metadata.name`/`metadata.namespace`/`spec.endpoints`/`spec.selector`;
/// - [`ServiceMonitorError::Relabel`] for a relabeling Prometheus would refuse to load.
pub fn specs_from_servicemonitor(obj: &Value) -> Result<Vec<ServiceMonitorSpec>> {
    let top = mapping(obj, "the ServiceMonitor")?;
    known_keys(top, "", &["apiVersion", "kind", "metadata", "spec"])?;
    if let Some(v) = top.get("apiVersion") {
        expect_exact(v, "apiVersion", "monitoring.coreos.com/v1")?;
    }
    if let Some(v) = top.get("kind") {
        expect_exact(v, "kind", "ServiceMonitor")?;
    }
    let meta = mapping(
        top.get("metadata").ok_or_else(|| {
            missing(
                "metadata",
                "a ServiceMonitor needs metadata.name and metadata.namespace (they name the job)",
            )
        })?,
        "metadata",
    )?;
    let name = required_str(
        meta,
        "metadata.name",
        "the job is named serviceMonitor/<namespace>/<name>/<i>",
    )?;
    let namespace = required_str(
        meta,
        "metadata.namespace",
        "the job name and the default discovery namespace come from it; add it (kubectl get -o yaml includes it)",
    )?;
    let spec = mapping(
        top.get("spec")
            .ok_or_else(|| missing("spec", "the CRD requires spec"))?,
        "spec",
    )?;
    known_keys(
        spec,
        "spec",
        &[
            "jobLabel",
            "targetLabels",
            "podTargetLabels",
            "endpoints",
            "selector",
            "namespaceSelector",
            "sampleLimit",
            "targetLimit",
        ],
    )?;
    let job_label = opt_str(spec, "spec.jobLabel")?.filter(|s| !s.is_empty());
    let target_labels = opt_strs(spec, "spec.targetLabels")?.unwrap_or_default();
    let pod_target_labels = opt_strs(spec, "spec.podTargetLabels")?.unwrap_or_default();
    let sample_limit = opt_u64(spec, "spec.sampleLimit")?.unwrap_or(0);
    let target_limit = opt_u64(spec, "spec.targetLimit")?.unwrap_or(0);
    let selector = selector(spec.get("selector").ok_or_else(|| {
        missing(
            "spec.selector",
            "the CRD requires it; `{}` selects every Service",
        )
    })?)?;
    let namespaces = namespaces(spec.get("namespaceSelector"), &namespace)?;
    let endpoints = spec.get("endpoints").ok_or_else(|| {
        missing(
            "spec.endpoints",
            "the CRD requires the list of endpoints to scrape",
        )
    })?;
    let endpoints = sequence(endpoints, "spec.endpoints")?;
    endpoints
        .iter()
        .enumerate()
        .map(|(i, ep)| {
            let base = ServiceMonitorSpec {
                namespace: namespace.clone(),
                name: name.clone(),
                endpoint_index: i,
                port: String::new(),
                target_port: None,
                path: String::new(),
                scheme: String::new(),
                params: None,
                interval: None,
                scrape_timeout: None,
                honor_labels: false,
                honor_timestamps: None,
                bearer_token_file: None,
                tls_config: None,
                selector: selector.clone(),
                namespaces: namespaces.clone(),
                job_label: job_label.clone(),
                target_labels: target_labels.clone(),
                pod_target_labels: pod_target_labels.clone(),
                relabelings: Vec::new(),
                metric_relabelings: None,
                sample_limit,
                target_limit,
            };
            endpoint(ep, &format!("spec.endpoints[{i}]"), base)
        })
        .collect()
}

const ENDPOINT_FIELDS: &[&str] = &[
    "port",
    "targetPort",
    "path",
    "scheme",
    "params",
    "interval",
    "scrapeTimeout",
    "tlsConfig",
    "bearerTokenFile",
    "bearerTokenSecret",
    "honorLabels",
    "honorTimestamps",
    "basicAuth",
    "metricRelabelings",
    "relabelings",
    "proxyUrl",
];

fn endpoint(v: &Value, at: &str, mut s: ServiceMonitorSpec) -> Result<ServiceMonitorSpec> {
    let ep = mapping(v, at)?;
    known_keys(ep, at, ENDPOINT_FIELDS)?;
    let p = |k: &str| format!("{at}.{k}");
    // Pointers in v0.48.1's Endpoint: any non-null value takes effect (promcfg.go).
    if present(ep, "basicAuth") {
        return Err(unsupported(
            p("basicAuth"),
            "the operator reads the username and password from Secrets and writes basic_auth",
        ));
    }
    if present(ep, "proxyUrl") {
        return Err(unsupported(
            p("proxyUrl"),
            "the scrape would go through a proxy that replay does not run",
        ));
    }
    // A struct, not a pointer: only a Secret name has an effect (assets.Store.AddBearerToken).
    if let Some(sel) = ep.get("bearerTokenSecret").filter(|v| !v.is_null()) {
        let sel = mapping(sel, &p("bearerTokenSecret"))?;
        if sel
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
        {
            return Err(unsupported(
                p("bearerTokenSecret"),
                "the operator reads the token from a Secret and writes it into the config",
            ));
        }
    }
    s.port = opt_str(ep, &p("port"))?.unwrap_or_default();
    s.target_port = match ep.get("targetPort") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => Some(TargetPort::Name(n.clone())),
        Some(t @ Value::Number(n)) => Some(TargetPort::Number(
            n.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(p("targetPort"), "a port name or a 32-bit port number", t)
                })?,
        )),
        Some(other) => return Err(invalid(p("targetPort"), "a port name or number", other)),
    };
    s.path = opt_str(ep, &p("path"))?.unwrap_or_default();
    s.scheme = opt_str(ep, &p("scheme"))?.unwrap_or_default();
    s.params = match ep.get("params") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let m = mapping(v, &p("params"))?;
            let mut out = BTreeMap::new();
            for (k, vs) in m {
                let k = k.clone();
                let vs = strings(vs, &format!("{at}.params.{k}"))?;
                out.insert(k, vs);
            }
            Some(out)
        }
    };
    s.interval = opt_str(ep, &p("interval"))?.filter(|x| !x.is_empty());
    s.scrape_timeout = opt_str(ep, &p("scrapeTimeout"))?.filter(|x| !x.is_empty());
    s.honor_labels = opt_bool(ep, &p("honorLabels"))?.unwrap_or(false);
    s.honor_timestamps = opt_bool(ep, &p("honorTimestamps"))?;
    s.bearer_token_file = opt_str(ep, &p("bearerTokenFile"))?.filter(|x| !x.is_empty());
    s.tls_config = match ep.get("tlsConfig") {
        None | Some(Value::Null) => None,
        Some(v) => Some(tls_config(v, &p("tlsConfig"))?),
    };
    s.relabelings = match ep.get("relabelings") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => relabel_configs(v, &p("relabelings"))?,
    };
    s.metric_relabelings = match ep.get("metricRelabelings") {
        None | Some(Value::Null) => None,
        Some(v) => Some(relabel_configs(v, &p("metricRelabelings"))?),
    };
    Ok(s)
}

fn tls_config(v: &Value, at: &str) -> Result<TlsConfig> {
    let m = mapping(v, at)?;
    known_keys(
        m,
        at,
        &[
            "ca",
            "cert",
            "keySecret",
            "serverName",
            "insecureSkipVerify",
            "caFile",
            "certFile",
            "keyFile",
        ],
    )?;
    let p = |k: &str| format!("{at}.{k}");
    // SecretOrConfigMap: only a secret or configMap reference has an effect (addSafeTLStoYaml).
    for k in ["ca", "cert"] {
        if let Some(sel) = m.get(k).filter(|v| !v.is_null()) {
            let sel = mapping(sel, &p(k))?;
            known_keys(sel, &p(k), &["secret", "configMap"])?;
            if present(sel, "secret") || present(sel, "configMap") {
                return Err(unsupported(
                    p(k),
                    "the operator copies the Secret/ConfigMap into its tls-assets Secret; use caFile/certFile with a path in the Prometheus container",
                ));
            }
        }
    }
    if present(m, "keySecret") {
        return Err(unsupported(
            p("keySecret"),
            "the operator copies the Secret into its tls-assets Secret; use keyFile with a path in the Prometheus container",
        ));
    }
    Ok(TlsConfig {
        insecure_skip_verify: opt_bool(m, &p("insecureSkipVerify"))?.unwrap_or(false),
        server_name: opt_str(m, &p("serverName"))?.unwrap_or_default(),
        ca_file: opt_str(m, &p("caFile"))?.unwrap_or_default(),
        cert_file: opt_str(m, &p("certFile"))?.unwrap_or_default(),
        key_file: opt_str(m, &p("keyFile"))?.unwrap_or_default(),
    })
}

fn relabel_configs(v: &Value, at: &str) -> Result<Vec<RelabelConfig>> {
    sequence(v, at)?
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = format!("{at}[{i}]");
            let m = mapping(r, &at)?;
            known_keys(
                m,
                &at,
                &[
                    "sourceLabels",
                    "separator",
                    "targetLabel",
                    "regex",
                    "modulus",
                    "replacement",
                    "action",
                ],
            )?;
            let p = |k: &str| format!("{at}.{k}");
            let c = RelabelConfig {
                source_labels: opt_strs(m, &p("sourceLabels"))?.unwrap_or_default(),
                separator: opt_str(m, &p("separator"))?.unwrap_or_default(),
                target_label: opt_str(m, &p("targetLabel"))?.unwrap_or_default(),
                regex: opt_str(m, &p("regex"))?.unwrap_or_default(),
                modulus: opt_u64(m, &p("modulus"))?.unwrap_or(0),
                replacement: opt_str(m, &p("replacement"))?.unwrap_or_default(),
                action: opt_str(m, &p("action"))?.unwrap_or_default(),
            };
            // What Prometheus will load: the rule as the operator writes it.
            crate::relabel::Rule::from_yaml(&relabel_rule(&c))
                .map_err(|source| ServiceMonitorError::Relabel { path: at, source })?;
            Ok(c)
        })
        .collect()
}

fn selector(v: &Value) -> Result<LabelSelector> {
    let at = "spec.selector";
    if v.is_null() {
        return Ok(LabelSelector::default());
    }
    let m = mapping(v, at)?;
    known_keys(m, at, &["matchLabels", "matchExpressions"])?;
    let mut out = LabelSelector::default();
    if let Some(labels) = m.get("matchLabels").filter(|v| !v.is_null()) {
        for (k, v) in mapping(labels, "spec.selector.matchLabels")? {
            let k = k.clone();
            let v = scalar_string(v)
                .ok_or_else(|| invalid(format!("spec.selector.matchLabels.{k}"), "a string", v))?;
            out.match_labels.insert(k, v);
        }
    }
    if let Some(exprs) = m.get("matchExpressions").filter(|v| !v.is_null()) {
        for (i, e) in sequence(exprs, "spec.selector.matchExpressions")?
            .iter()
            .enumerate()
        {
            let at = format!("spec.selector.matchExpressions[{i}]");
            let e = mapping(e, &at)?;
            known_keys(e, &at, &["key", "operator", "values"])?;
            let key = required_str(e, &format!("{at}.key"), "the CRD requires key")?;
            let op_at = format!("{at}.operator");
            let op = required_str(e, &op_at, "the CRD requires operator")?;
            // promcfg.go maps exactly these four; any other operator would generate no rule.
            let operator = match op.as_str() {
                "In" => SelectorOperator::In,
                "NotIn" => SelectorOperator::NotIn,
                "Exists" => SelectorOperator::Exists,
                "DoesNotExist" => SelectorOperator::DoesNotExist,
                _ => {
                    return Err(ServiceMonitorError::Invalid {
                        path: op_at,
                        expected: "In, NotIn, Exists or DoesNotExist".into(),
                        found: format!("{op:?}"),
                    })
                }
            };
            let values = opt_strs(e, &format!("{at}.values"))?.unwrap_or_default();
            out.match_expressions.push(SelectorRequirement {
                key,
                operator,
                values,
            });
        }
    }
    Ok(out)
}

/// promcfg.go `getNamespacesFromNamespaceSelector`: `any` → all (empty), no names → own namespace.
fn namespaces(v: Option<&Value>, own: &str) -> Result<Vec<String>> {
    let at = "spec.namespaceSelector";
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(vec![own.to_string()]);
    };
    let m = mapping(v, at)?;
    known_keys(m, at, &["any", "matchNames"])?;
    if opt_bool(m, "spec.namespaceSelector.any")?.unwrap_or(false) {
        return Ok(Vec::new());
    }
    let names = opt_strs(m, "spec.namespaceSelector.matchNames")?.unwrap_or_default();
    Ok(if names.is_empty() {
        vec![own.to_string()]
    } else {
        names
    })
}

#[cfg(test)]
mod tests;
