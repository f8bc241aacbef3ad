//! Kubernetes-side checks (chain links 1 and 2), pure: typed objects in, findings out.
//!
//! ServiceMonitor and Prometheus objects are plain JSON (as a kube `DynamicObject` serializes):
//! we read a handful of fields and do not want a CRD type crate for that.

use super::catalogue as k;
use super::Finding;
use crate::operator::selection::{why_not_selected, NamespaceLabels};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Service};
use serde_json::Value;
use std::collections::BTreeSet;

use crate::operator::{kubelet_service_of, KUBELET_PORT_NAME};
/// The kubelet path a cadvisor ServiceMonitor scrapes.
pub const CADVISOR_PATH: &str = "/metrics/cadvisor";

/// Link 1: the operator's kubelet Service ([`kubelet_service_of`] its args) exists and its
/// Endpoints hold an `https-metrics` address for every node. `operator_args` are the args of the
/// prometheus-operator container, when a Deployment running it was found; `service` and
/// `endpoints` are the objects of that name.
pub fn kubelet_service(
    service: Option<&Service>,
    endpoints: Option<&Endpoints>,
    nodes: &[Node],
    operator_args: Option<&[String]>,
) -> Vec<Finding> {
    let (svc_ns, svc_name) = kubelet_service_of(operator_args);
    let operator_evidence = match operator_args {
        None => "no Deployment running a prometheus-operator image was found".to_string(),
        Some(args) if args.iter().any(|a| a.starts_with("--kubelet-service=")) => {
            format!("the operator's args: {}", args.join(" "))
        }
        Some(args) => format!(
            "the operator's args lack --kubelet-service: [{}]",
            args.join(" ")
        ),
    };
    if service.is_none() {
        return vec![Finding::new(
            &k::KUBELET_SERVICE_MISSING,
            format!("Service {svc_ns}/{svc_name} not found"),
            vec![operator_evidence],
        )];
    }

    let subsets = endpoints
        .and_then(|e| e.subsets.as_deref())
        .unwrap_or_default();
    let mut covered = BTreeSet::new();
    let mut port_seen = false;
    for subset in subsets {
        let has_port = subset
            .ports
            .iter()
            .flatten()
            .any(|p| p.name.as_deref() == Some(KUBELET_PORT_NAME));
        port_seen |= has_port;
        let addresses = subset
            .addresses
            .iter()
            .flatten()
            .chain(subset.not_ready_addresses.iter().flatten());
        for a in addresses {
            if let Some(r) = a
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Node"))
            {
                if has_port {
                    covered.insert(r.name.clone().unwrap_or_default());
                }
            }
        }
    }
    let missing: Vec<&Node> = nodes
        .iter()
        .filter(|n| !covered.contains(n.metadata.name.as_deref().unwrap_or_default()))
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    let mut evidence: Vec<String> = missing
        .iter()
        .map(|n| {
            let created = n
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| format!(" (node created {})", t.0))
                .unwrap_or_default();
            format!(
                "node {} has no address{created}",
                n.metadata.name.as_deref().unwrap_or("?")
            )
        })
        .collect();
    if endpoints.is_none() {
        evidence.insert(0, format!("Endpoints {svc_ns}/{svc_name} not found"));
    } else if !port_seen {
        evidence.insert(
            0,
            format!("the Endpoints have no port named {KUBELET_PORT_NAME}"),
        );
    }
    evidence.push(operator_evidence);
    vec![Finding::new(
        &k::KUBELET_ENDPOINTS_MISSING_NODES,
        format!(
            "Endpoints {svc_ns}/{svc_name} lack {} of {} nodes: {}",
            missing.len(),
            nodes.len(),
            missing
                .iter()
                .map(|n| n.metadata.name.as_deref().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        evidence,
    )]
}

/// The ServiceMonitors (as JSON objects) with an endpoint scraping `/metrics/cadvisor`.
pub fn cadvisor_servicemonitors(all: &[Value]) -> Vec<&Value> {
    all.iter()
        .filter(|sm| {
            sm.pointer("/spec/endpoints")
                .and_then(Value::as_array)
                .is_some_and(|eps| {
                    eps.iter()
                        .any(|e| e.get("path").and_then(Value::as_str) == Some(CADVISOR_PATH))
                })
        })
        .collect()
}

/// `namespace/name` of an object.
pub fn object_key(obj: &Value) -> String {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    format!("{}/{}", s("/metadata/namespace"), s("/metadata/name"))
}

/// Link 2 when no cadvisor ServiceMonitor exists at all (`crd_missing`: the CRD is not installed).
pub fn servicemonitor_missing(total: usize, crd_missing: bool) -> Finding {
    let evidence = if crd_missing {
        vec!["the API server has no monitoring.coreos.com/v1 servicemonitors resource (CRD not installed)".to_string()]
    } else {
        vec![format!(
            "{total} ServiceMonitors exist; none has an endpoint with path {CADVISOR_PATH}"
        )]
    };
    Finding::new(
        &k::SERVICEMONITOR_MISSING,
        format!("no ServiceMonitor scrapes {CADVISOR_PATH}"),
        evidence,
    )
}

/// Link 2: whether any Prometheus selects `sm` (the operator's rule:
/// [`crate::operator::selection::why_not_selected`]). Returns `Ok(keys of selecting
/// Prometheuses)` or the finding explaining, per Prometheus, why it does not.
///
/// # Errors
/// The finding saying why no Prometheus selects the ServiceMonitor.
pub fn selection(
    sm: &Value,
    prometheuses: &[Value],
    namespaces: &[Namespace],
) -> Result<Vec<String>, Finding> {
    let sm_key = object_key(sm);
    let namespaces: NamespaceLabels = namespaces
        .iter()
        .map(|n| {
            (
                n.metadata.name.clone().unwrap_or_default(),
                n.metadata.labels.clone().unwrap_or_default(),
            )
        })
        .collect();
    let mut selecting = Vec::new();
    let mut reasons = Vec::new();
    for prom in prometheuses {
        let key = object_key(prom);
        let why = why_not_selected(prom, sm, &namespaces);
        if why.is_empty() {
            selecting.push(key);
        } else {
            let why: Vec<String> = why.iter().map(ToString::to_string).collect();
            reasons.push(format!("Prometheus {key}: {}", why.join("; ")));
        }
    }
    if !selecting.is_empty() {
        return Ok(selecting);
    }
    let (observed, evidence) = if prometheuses.is_empty() {
        (
            format!("no Prometheus object exists to select ServiceMonitor {sm_key}"),
            vec!["0 monitoring.coreos.com/v1 Prometheus objects".to_string()],
        )
    } else {
        (
            format!(
                "ServiceMonitor {sm_key} is selected by none of {} Prometheus objects",
                prometheuses.len()
            ),
            reasons,
        )
    };
    Err(Finding::new(
        &k::SERVICEMONITOR_NOT_SELECTED,
        observed,
        evidence,
    ))
}
