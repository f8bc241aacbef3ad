//! The kubelet Service and Endpoints prometheus-operator keeps (`--kubelet-service`): their
//! name, ports and labels (prometheus-operator/prometheus-operator pkg/prometheus/operator.go@v0.48.1
//! `syncNodeEndpoints`), what is still missing from them, and waiting until they are complete.

use crate::k8s::wait::{self, WaitError, Waited};
use anyhow::Context;
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::{json, Value};
use std::time::Duration;

/// The Service the bundle's operator is told to maintain (`--kubelet-service`).
pub const KUBELET_SERVICE_NAMESPACE: &str = "kube-system";
/// Its name.
pub const KUBELET_SERVICE_NAME: &str = "kubelet";
/// The kubelet port that works on modern kubelets (HTTPS, authenticated).
pub const KUBELET_PORT_NAME: &str = "https-metrics";
/// The ports v0.48.1 gives the kubelet Service and Endpoints, in its order
/// (prometheus-operator/prometheus-operator pkg/prometheus/operator.go@v0.48.1 `syncNodeEndpoints`).
pub const KUBELET_PORTS: [(&str, i32); 3] = [
    (KUBELET_PORT_NAME, 10250),
    ("http-metrics", 10255),
    ("cadvisor", 4194),
];
/// The labels v0.48.1 puts on the kubelet Service and Endpoints (operator.go syncNodeEndpoints).
pub const KUBELET_LABELS: [(&str, &str); 3] = [
    ("k8s-app", "kubelet"),
    ("app.kubernetes.io/name", "kubelet"),
    ("app.kubernetes.io/managed-by", "prometheus-operator"),
];

/// The Service the operator keeps for the kubelets: its `--kubelet-service=<ns>/<name>`
/// (prometheus-operator cmd/operator/main.go@v0.48.1 takes any namespace and name), else the
/// bundle's `kube-system/kubelet` (also when no operator was found, or the flag is malformed).
pub fn kubelet_service_of(operator_args: Option<&[String]>) -> (String, String) {
    operator_args
        .into_iter()
        .flatten()
        .find_map(|a| a.strip_prefix("--kubelet-service="))
        .and_then(|v| v.split_once('/'))
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
        .map(|(ns, name)| (ns.to_string(), name.to_string()))
        .unwrap_or_else(|| {
            (
                KUBELET_SERVICE_NAMESPACE.to_string(),
                KUBELET_SERVICE_NAME.to_string(),
            )
        })
}

/// The kubelet Endpoints (and their Service) prometheus-operator v0.48.1 writes for `nodes`
/// (prometheus-operator/prometheus-operator pkg/prometheus/operator.go@v0.48.1 `syncNodeEndpoints`:
/// ports https-metrics 10250, http-metrics 10255, cadvisor 4194; targetRef Node; the API server
/// defaults protocol TCP). Addresses are `0.0.0.0`: callers point them where they serve.
pub fn kubelet_endpoints(nodes: &[String]) -> (Value, Value) {
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
        "name": KUBELET_SERVICE_NAME,
        "namespace": KUBELET_SERVICE_NAMESPACE,
        "labels": labels,
    });
    (
        json!({"kind": "Endpoints", "metadata": meta, "subsets": [{"addresses": addresses, "ports": ports}]}),
        json!({"kind": "Service", "metadata": meta}),
    )
}

/// Waits until the operator has written Service `kube-system/kubelet` with port `https-metrics`
/// and Endpoints holding one address per Node.
///
/// # Errors
/// When the deadline passes, naming what is missing; at once for a permanent API error.
pub async fn wait_kubelet_service(client: &Client, timeout: Duration) -> Result<(), WaitError> {
    wait_kubelet_service_at(
        client,
        KUBELET_SERVICE_NAMESPACE,
        KUBELET_SERVICE_NAME,
        timeout,
    )
    .await
}

/// [`wait_kubelet_service`] for the Service an operator's `--kubelet-service=<ns>/<name>` names.
///
/// # Errors
/// As [`wait_kubelet_service`].
pub async fn wait_kubelet_service_at(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let at = format!("{ns}/{name}");
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let nodes: Api<Node> = Api::all(client.clone());
    let waited = wait::poll_until(timeout, Duration::from_secs(2), || async {
        let svc = services
            .get_opt(name)
            .await
            .with_context(|| format!("cannot get Service {at}"))?;
        let eps = endpoints
            .get_opt(name)
            .await
            .with_context(|| format!("cannot get Endpoints {at}"))?;
        let node_names: Vec<String> = nodes
            .list(&ListParams::default())
            .await
            .context("cannot list nodes")?
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        let gaps = kubelet_service_gaps(&at, svc.as_ref(), eps.as_ref(), &node_names);
        Ok(if gaps.is_empty() { Ok(()) } else { Err(gaps) })
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Pending(gaps)) => Err(WaitError::Timeout {
            what: "the kubelet Service is not complete".into(),
            waited: timeout,
            state: gaps.join("; "),
            fix: format!(
                "prometheus-operator (--kubelet-service={at}) writes it at start-up and then every \
                 3 minutes; it does not watch nodes, so a node added later can take up to 3 minutes \
                 to appear. Raise --timeout above 3m, or check the operator's log"
            ),
        }),
        Err(Waited::Failed(e)) => Err(WaitError::api(
            format!("the operator's kubelet Service {at}"),
            timeout,
            e,
        )),
    }
}

/// What is still missing from the kubelet Service/Endpoints; empty when complete.
pub fn kubelet_service_gaps(
    at: &str,
    svc: Option<&Service>,
    eps: Option<&Endpoints>,
    nodes: &[String],
) -> Vec<String> {
    let mut gaps = Vec::new();
    let Some(svc) = svc else {
        return vec![format!("Service {at} does not exist yet")];
    };
    let has_port = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|ports| {
            ports
                .iter()
                .any(|p| p.name.as_deref() == Some(KUBELET_PORT_NAME))
        });
    if !has_port {
        gaps.push(format!(
            "Service {at} has no port named {KUBELET_PORT_NAME}"
        ));
    }
    let Some(eps) = eps else {
        gaps.push(format!("Endpoints {at} does not exist yet"));
        return gaps;
    };
    let mut covered: Vec<&str> = Vec::new();
    for subset in eps.subsets.iter().flatten() {
        let serves_port = subset
            .ports
            .iter()
            .flatten()
            .any(|p| p.name.as_deref() == Some(KUBELET_PORT_NAME));
        if !serves_port {
            continue;
        }
        for addr in subset.addresses.iter().flatten() {
            if let Some(t) = addr.target_ref.as_ref() {
                if t.kind.as_deref() == Some("Node") {
                    covered.extend(t.name.as_deref());
                }
            }
        }
    }
    let missing: Vec<&str> = nodes
        .iter()
        .map(String::as_str)
        .filter(|n| !covered.contains(n))
        .collect();
    if nodes.is_empty() {
        gaps.push("the cluster has no nodes".into());
    } else if !missing.is_empty() {
        gaps.push(format!(
            "Endpoints {at} has no {KUBELET_PORT_NAME} address for node(s) {}",
            missing.join(", ")
        ));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(port: &str) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "kubelet", "namespace": "kube-system"},
            "spec": {"clusterIP": "None", "ports": [{"name": port, "port": 10250}]}}),
        )
        .unwrap()
    }

    fn eps(nodes: &[&str]) -> Endpoints {
        let addresses: Vec<Value> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"ip": format!("172.18.0.{}", i + 2), "targetRef": {"kind": "Node", "name": n}}))
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "kubelet"}, "subsets": [{
            "addresses": addresses,
            "ports": [{"name": "https-metrics", "port": 10250}, {"name": "http-metrics", "port": 10255}]}]}))
        .unwrap()
    }

    #[test]
    fn kubelet_service_is_complete_with_one_address_per_node() {
        let nodes = ["cp".to_string(), "w1".to_string()];
        assert!(kubelet_service_gaps(
            "kube-system/kubelet",
            Some(&svc("https-metrics")),
            Some(&eps(&["cp", "w1"])),
            &nodes
        )
        .is_empty());
    }

    #[test]
    fn kubelet_service_gaps_name_what_is_missing() {
        let nodes = ["cp".to_string(), "w1".to_string(), "w2".to_string()];
        assert_eq!(
            kubelet_service_gaps("kube-system/kubelet", None, None, &nodes),
            ["Service kube-system/kubelet does not exist yet"]
        );
        let gaps = kubelet_service_gaps(
            "kube-system/kubelet",
            Some(&svc("http-metrics")),
            Some(&eps(&["cp"])),
            &nodes,
        );
        assert_eq!(
            gaps,
            [
                "Service kube-system/kubelet has no port named https-metrics",
                "Endpoints kube-system/kubelet has no https-metrics address for node(s) w1, w2"
            ]
        );
        let gaps = kubelet_service_gaps(
            "kube-system/kubelet",
            Some(&svc("https-metrics")),
            None,
            &nodes,
        );
        assert_eq!(gaps, ["Endpoints kube-system/kubelet does not exist yet"]);
    }
}
