//! What the replayed Prometheus scrapes: the cadvisor endpoints of the captured ServiceMonitor,
//! the kubelet Endpoints the operator writes, the targets Kubernetes discovery makes of them
//! (pointed at the replay kubelets), and the job's interval.

use super::ReplayError;
use crate::scrape_config::{specs_from_servicemonitor, ServiceMonitorSpec};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The cadvisor endpoints of a ServiceMonitor as [`ServiceMonitorSpec`]s, parsed by the
/// project's one parser ([`specs_from_servicemonitor`]), which refuses by path every field it
/// does not model.
///
/// # Errors
/// [`ReplayError::ServiceMonitor`] (with the parser's reason and the file),
/// [`ReplayError::NoCadvisorEndpoint`].
pub fn cadvisor_specs(
    doc: &crate::yaml::Value,
    path: &Path,
) -> Result<Vec<ServiceMonitorSpec>, ReplayError> {
    let specs = specs_from_servicemonitor(doc).map_err(|source| ReplayError::ServiceMonitor {
        path: path.to_path_buf(),
        source,
    })?;
    let paths: Vec<String> = specs.iter().map(|s| s.path.clone()).collect();
    let cadvisor: Vec<ServiceMonitorSpec> = specs
        .into_iter()
        .filter(|s| s.path == "/metrics/cadvisor")
        .collect();
    for spec in &cadvisor {
        let Some(tls) = &spec.tls_config else {
            continue;
        };
        for (field, value) in [
            ("caFile", &tls.ca_file),
            ("certFile", &tls.cert_file),
            ("keyFile", &tls.key_file),
        ] {
            if !value.is_empty() {
                return Err(ReplayError::NotReplayable {
                    path: path.to_path_buf(),
                    field: format!("spec.endpoints[{}].tlsConfig.{field}", spec.endpoint_index),
                    why: "a file inside the Prometheus pod, which the capture does not hold (and the replay kubelets' certificates are self-signed)",
                });
            }
        }
    }
    if cadvisor.is_empty() {
        return Err(ReplayError::NoCadvisorEndpoint {
            path: path.to_path_buf(),
            paths,
        });
    }
    Ok(cadvisor)
}

/// The kubelet Endpoints prometheus-operator v0.48.1 writes for `nodes` (TWIN-FACTS §7:
/// `pkg/prometheus/operator.go` syncNodeEndpoints; ports https-metrics 10250, http-metrics
/// 10255, cadvisor 4194; targetRef Node; the API server defaults protocol TCP).
pub fn operator_kubelet_endpoints(nodes: &[String]) -> (Value, Value) {
    use crate::operator::{KUBELET_LABELS, KUBELET_PORTS};
    let labels: serde_json::Map<String, Value> = KUBELET_LABELS
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let ports: Vec<Value> = KUBELET_PORTS
        .iter()
        .map(|(name, port)| json!({"name": name, "port": port, "protocol": "TCP"}))
        .collect();
    let addresses: Vec<Value> = nodes
        .iter()
        .map(|n| json!({"ip": "0.0.0.0", "targetRef": {"kind": "Node", "name": n}}))
        .collect();
    let meta = json!({
        "name": crate::operator::KUBELET_SERVICE_NAME,
        "namespace": crate::operator::KUBELET_SERVICE_NAMESPACE,
        "labels": labels,
    });
    (
        json!({"kind": "Endpoints", "metadata": meta, "subsets": [{"addresses": addresses, "ports": ports}]}),
        json!({"kind": "Service", "metadata": meta}),
    )
}

/// The target groups kubernetes_sd (role endpoints) yields for `endpoints` (and its Service),
/// one group per subset address × port (prometheus@v2.42.0 `discovery/kubernetes/endpoints.go`
/// `buildEndpoints`; TWIN-FACTS §8), with one change: the address of a Node target on the
/// kubelet port (10250) is that node's replay kubelet; other addresses are `closed` ports, as
/// nothing serves them here. Endpoints outside the job's namespaces yield nothing (the operator
/// restricts `kubernetes_sd_configs` to `namespaces.names`, promcfg.go).
pub fn replay_targets(
    endpoints: &Value,
    service: Option<&Value>,
    namespaces: &[String],
    kubelets: &BTreeMap<String, SocketAddr>,
    closed: &mut dyn FnMut() -> String,
) -> Value {
    let ns = endpoints["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    // Empty: every namespace (`namespaceSelector.any`, promcfg.go getNamespacesFromNamespaceSelector).
    if !namespaces.is_empty() && !namespaces.iter().any(|n| n == ns) {
        return json!([]);
    }
    let groups = crate::discovery::endpoints_targets(endpoints, service, &[])
        .into_iter()
        .map(|mut t| {
            let local = match t.label("__meta_kubernetes_endpoint_address_target_kind") {
                Some("Node") if t.port() == Some(10250) => t
                    .label("__meta_kubernetes_endpoint_address_target_name")
                    .and_then(|n| kubelets.get(n))
                    .map(|a| a.to_string()),
                _ => None,
            };
            t.address = local.unwrap_or_else(&mut *closed);
            t.into_group()
        })
        .collect();
    Value::Array(groups)
}

/// A Prometheus duration (`30s`, `1m30s`, `1h`, `500ms`; prometheus/common `model/time.go`
/// ParseDuration: units y, w, d, h, m, s, ms in decreasing order), or None.
pub fn prometheus_duration(text: &str) -> Option<Duration> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1000),
    ];
    // Order of units in the text (ms sorts between m and s in upstream's regex).
    const ORDER: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    let mut rest = text;
    let mut total = 0u64;
    let mut last = None;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, ms) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        let pos = ORDER.iter().position(|o| o == unit)?;
        if last.is_some_and(|l| l >= pos) {
            return None;
        }
        last = Some(pos);
        total = total.checked_add(n.checked_mul(*ms)?)?;
        rest = &rest[unit.len()..];
    }
    Some(Duration::from_millis(total))
}
