//! What the replayed Prometheus scrapes: the targets Kubernetes discovery makes of the kubelet
//! Endpoints the operator writes (pointed at the replay kubelets), and the job's interval.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The target groups kubernetes_sd (role endpoints) yields for `endpoints` (and its Service),
/// one group per subset address × port (prometheus/prometheus discovery/kubernetes/endpoints.go@v2.42.0
/// `buildEndpoints`), with one change: the address of a Node target on the
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
