//! The component tier's Prometheus: file_sd target groups carrying the labels kubernetes_sd
//! gives the operator's kubelet Endpoints, and a whole `prometheus.yml` around the generated job.

use super::job::map;
use super::{scrape_job, Discovery, ServiceMonitorSpec, Shard};
use crate::yaml::{Mapping, Value};
use serde_json::json;
use std::time::Duration;

/// One node of the operator's `kube-system/kubelet` Endpoints, as file_sd will present it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletNode {
    /// The Node's name (`targetRef.name`).
    pub node: String,
    /// `host:port` for each Service port name (`https-metrics`, `http-metrics`, `cadvisor`).
    /// Real Endpoints share one IP per node; tests may point ports at different local addresses.
    pub ports: Vec<(String, String)>,
}

/// The `__meta_kubernetes_*` target groups kubernetes_sd (role endpoints) yields for the
/// operator's kubelet Service: one target per (node, port), target kind `Node`.
pub fn kubelet_file_sd(nodes: &[KubeletNode]) -> serde_json::Value {
    let groups: Vec<serde_json::Value> = nodes
        .iter()
        .flat_map(|n| {
            n.ports.iter().map(move |(port_name, address)| {
                let port = address.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
                json!({
                    "targets": [address],
                    "labels": {
                        "__meta_kubernetes_namespace": "kube-system",
                        "__meta_kubernetes_endpoints_name": "kubelet",
                        "__meta_kubernetes_endpoints_label_k8s_app": "kubelet",
                        "__meta_kubernetes_endpoints_label_app_kubernetes_io_name": "kubelet",
                        "__meta_kubernetes_endpoints_label_app_kubernetes_io_managed_by": "prometheus-operator",
                        "__meta_kubernetes_service_name": "kubelet",
                        "__meta_kubernetes_service_label_k8s_app": "kubelet",
                        "__meta_kubernetes_service_labelpresent_k8s_app": "true",
                        "__meta_kubernetes_service_label_app_kubernetes_io_name": "kubelet",
                        "__meta_kubernetes_service_labelpresent_app_kubernetes_io_name": "true",
                        "__meta_kubernetes_service_label_app_kubernetes_io_managed_by": "prometheus-operator",
                        "__meta_kubernetes_service_labelpresent_app_kubernetes_io_managed_by": "true",
                        "__meta_kubernetes_endpoint_port_name": port_name,
                        "__meta_kubernetes_endpoint_port_protocol": "TCP",
                        "__meta_kubernetes_endpoint_ready": "true",
                        "__meta_kubernetes_endpoint_address_target_kind": "Node",
                        "__meta_kubernetes_endpoint_address_target_name": n.node,
                        "__meta_kubernetes_endpoint_node_name": n.node,
                        "__meta_kubernetes_endpoint_port_number": port,
                    }
                })
            })
        })
        .collect();
    serde_json::Value::Array(groups)
}

/// A complete prometheus.yml for the component tier: the operator's global settings for a
/// Prometheus CR with `scrapeInterval`, and the job with file_sd discovery, shard 0.
pub fn component_prometheus_yml(
    spec: &ServiceMonitorSpec,
    file_sd_path: &str,
    scrape_interval: Duration,
) -> String {
    let interval = format!("{}ms", scrape_interval.as_millis());
    let global = map([
        ("scrape_interval", interval.as_str().into()),
        // Never longer than the interval (Prometheus refuses that).
        ("scrape_timeout", interval.as_str().into()),
        ("evaluation_interval", interval.as_str().into()),
        (
            "external_labels",
            map([
                ("prometheus", "monitoring/k8s".into()),
                ("prometheus_replica", "prometheus-k8s-0".into()),
            ]),
        ),
    ]);
    let job = scrape_job(
        spec,
        &Discovery::File {
            path: file_sd_path.to_string(),
        },
        Shard::Number(0),
    );
    let mut root = Mapping::new();
    root.insert("global".into(), global);
    root.insert("scrape_configs".into(), Value::Array(vec![job]));
    crate::yaml::to_string(&Value::Object(root))
}
