//! file_sd target groups for the component tier's Prometheus: the targets kubernetes_sd (role
//! endpoints) makes of prometheus-operator's kubelet Endpoints, each (node, port) pointed at the
//! local address a test serves it on. The labels are the library's: the operator's Endpoints
//! ([`e2e::operator::kubelet_endpoints`]) through Prometheus's discovery
//! ([`e2e::discovery::endpoints_targets`]); only the addresses are the test's.

/// One node of the operator's `kube-system/kubelet` Endpoints, as file_sd will present it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletNode {
    /// The Node's name (`targetRef.name`).
    pub node: String,
    /// `host:port` for each Service port name (`https-metrics`, `http-metrics`, `cadvisor`).
    /// Real Endpoints share one IP per node; tests may point ports at different local addresses.
    pub ports: Vec<(String, String)>,
}

/// The `__meta_kubernetes_*` target groups for `nodes`: one target per (node, port) the test
/// lists, target kind `Node`; a port it does not list is left out.
pub fn kubelet_file_sd(nodes: &[KubeletNode]) -> serde_json::Value {
    let names: Vec<String> = nodes.iter().map(|n| n.node.clone()).collect();
    let (endpoints, service) = e2e::operator::kubelet_endpoints(&names);
    let groups = e2e::discovery::endpoints_targets(&endpoints, Some(&service), &[])
        .into_iter()
        .filter_map(|mut t| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use e2e::operator::scrape_config::meta_service_label;
    use serde_json::json;

    #[test]
    fn file_sd_groups_carry_the_kubelet_endpoints_meta_labels() {
        let groups = kubelet_file_sd(&[KubeletNode {
            node: "kind-worker".into(),
            ports: vec![
                ("https-metrics".into(), "127.0.0.1:10250".into()),
                ("http-metrics".into(), "127.0.0.1:10255".into()),
            ],
        }]);
        let groups = groups.as_array().unwrap();
        assert_eq!(
            groups.len(),
            2,
            "one target per (node, port), as kubernetes_sd gives"
        );
        let g = &groups[0];
        assert_eq!(g["targets"], json!(["127.0.0.1:10250"]));
        let l = &g["labels"];
        assert_eq!(l["__meta_kubernetes_namespace"], "kube-system");
        assert_eq!(l["__meta_kubernetes_service_name"], "kubelet");
        assert_eq!(l[meta_service_label("app.kubernetes.io/name")], "kubelet");
        assert_eq!(l["__meta_kubernetes_endpoint_port_name"], "https-metrics");
        assert_eq!(l["__meta_kubernetes_endpoint_address_target_kind"], "Node");
        assert_eq!(
            l["__meta_kubernetes_endpoint_address_target_name"],
            "kind-worker"
        );
        assert_eq!(
            groups[1]["labels"]["__meta_kubernetes_endpoint_port_name"],
            "http-metrics"
        );
    }
}
