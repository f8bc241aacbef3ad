//! The component tier's Prometheus: file_sd target groups carrying the labels kubernetes_sd
//! gives the operator's kubelet Endpoints, and a whole `prometheus.yml` around the generated job.

use super::job::map;
use super::{scrape_job, Discovery, ServiceMonitorSpec, Shard};
use crate::yaml::{Mapping, Value};
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
/// operator's kubelet Endpoints and Service: one target per (node, port), target kind `Node`,
/// labelled by [`crate::discovery`] exactly as TWIN-FACTS §8 lists them.
pub fn kubelet_file_sd(nodes: &[KubeletNode]) -> serde_json::Value {
    let names: Vec<String> = nodes.iter().map(|n| n.node.clone()).collect();
    let (endpoints, service) = crate::replay::operator_kubelet_endpoints(&names);
    let groups = crate::discovery::endpoints_targets(&endpoints, Some(&service), &[])
        .into_iter()
        .filter_map(|mut t| {
            // Each (node, port) goes where the test points it; a port it lists not is left out.
            let node = nodes.iter().find(|n| {
                Some(n.node.as_str()) == t.label("__meta_kubernetes_endpoint_address_target_name")
            })?;
            let port_name = t.label("__meta_kubernetes_endpoint_port_name")?;
            let (_, address) = node.ports.iter().find(|(p, _)| p == port_name)?;
            t.address = address.clone();
            Some(t.into_group())
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
