//! The node proxy `/api/v1/nodes/<[scheme:]node[:port]>/proxy/<path>`: the API server forwards to
//! the node's kubelet over HTTPS with its own kubelet-client credentials (Connect in
//! kubernetes/kubernetes pkg/registry/core/node/rest/proxy.go@v1.21.1 → ResourceLocation in
//! kubernetes/kubernetes pkg/registry/core/node/strategy.go@v1.21.1 → GetConnectionInfo in
//! kubernetes/kubernetes pkg/kubelet/client/kubelet_client.go@v1.21.1).

use super::response::{self as st, status};
use crate::twin::cluster::Cluster;
use axum::http::Method;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// kind's API server runs without `--kubelet-certificate-authority`, so it does not verify the
/// kubelet's self-signed serving certificate (the kubelet client: `TLSClientConfig.Insecure` when
/// no CA is given).
fn kubelet_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("building the node proxy's HTTPS client")
    })
}

/// Forwards a GET to the kubelet of node `id` (`path` is what follows `/proxy/`).
pub async fn handle(
    c: &Arc<Cluster>,
    method: &Method,
    id: &str,
    path: &[&str],
    q: &HashMap<String, String>,
) -> Response {
    // SplitSchemeNamePort: `[scheme:]name[:port]` (ResourceLocation).
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [n] => ("", *n, ""),
        [n, p] => ("", *n, *p),
        [s, n, p] => (*s, *n, *p),
        _ => return st::bad_request(&format!("invalid node request {id:?}")),
    };
    let node_rt = c.rt("", "Node");
    let Some(node) = c
        .store
        .get(&crate::twin::storage::store::key(&node_rt), "", name)
    else {
        return st::not_found(&node_rt, name);
    };
    // GetConnectionInfo: kind's kubeadm sets `--kubelet-preferred-address-types=InternalIP,…`,
    // and the port is the node's reported `daemonEndpoints.kubeletEndpoint.Port`.
    let Some(ip) = crate::twin::controllers::nodes::internal_ip(&node) else {
        return status(
            500,
            None,
            &format!(
                "no preferred addresses found; known addresses: {}",
                node["status"]["addresses"]
            ),
            None,
        );
    };
    let kubelet_port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_i64()
        .unwrap_or(10250)
        .to_string();
    // Only the kubelet port gets the kubelet transport (credentials, https); another port is a
    // plain proxy without credentials (ResourceLocation).
    let to_kubelet = port.is_empty() || port == kubelet_port;
    let scheme = match (scheme, to_kubelet) {
        ("", true) => "https",
        ("", false) => "http",
        (s, _) => s,
    };
    let port = if port.is_empty() { &kubelet_port } else { port };
    let addr = format!("{ip}:{port}");
    let url = super::proxy::target_url(scheme, &addr, path, q);
    let mut req = kubelet_client().request(method.clone(), &url);
    if to_kubelet {
        req = req.bearer_auth(c.apiserver_kubelet_credential());
    }
    // The same upgrade-aware proxy error handler as the service proxy (TWIN-FACTS §2e).
    super::proxy::forward(c, req, &addr).await
}
