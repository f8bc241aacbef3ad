//! The pod proxy `/api/v1/namespaces/<ns>/pods/<[scheme:]pod[:port]>/proxy/<path>` (ProxyREST.Connect
//! in kubernetes/kubernetes pkg/registry/core/pod/rest/subresources.go@v1.21.1 →
//! ResourceLocation in kubernetes/kubernetes pkg/registry/core/pod/strategy.go@v1.21.1): the pod by name (404 as any missing pod), the port taken
//! as written — a number; no port names are resolved — or else the first container's first port,
//! then the pod's IP; forwarded over plain HTTP unless the scheme says `https`. A refused
//! connection answers as the service proxy's does, per profile (the same apimachinery transport).
//!
//! Not modelled: ResourceLocation's refusal of non-global-unicast pod IPs ("address not allowed",
//! `proxyutil.IsProxyableIP`): the twin's pods live on loopback addresses on purpose (README, what
//! the twin does not model).

use super::response::{self as st};
use crate::twin::cluster::Cluster;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

#[allow(clippy::too_many_arguments)]
pub async fn handle(
    c: &Arc<Cluster>,
    method: &Method,
    ns: &str,
    id: &str,
    path: &[&str],
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    // utilnet.SplitSchemeNamePort: `name`, `name:port` or `scheme:name:port`.
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [n] if !n.is_empty() => ("http", *n, String::new()),
        [n, p] if !n.is_empty() => ("http", *n, p.to_string()),
        [s @ ("http" | "https" | ""), n, p] if !n.is_empty() => {
            (if s.is_empty() { "http" } else { s }, *n, p.to_string())
        }
        _ => return st::bad_request(&format!("invalid pod request {id:?}")),
    };
    let pod_rt = c.rt("", "Pod");
    let Some(pod) = c
        .store
        .get(&crate::twin::storage::store::key(&pod_rt), ns, name)
    else {
        return st::not_found(&pod_rt, name);
    };
    let port = if port.is_empty() {
        first_container_port(&pod).unwrap_or_default()
    } else {
        port
    };
    let Some(ip) = pod["status"]["podIPs"][0]["ip"]
        .as_str()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
    else {
        // ResourceLocation: an unparsable (or absent) pod IP is not proxyable.
        return st::bad_request("address not allowed");
    };
    let addr = if port.is_empty() {
        ip.to_string()
    } else {
        format!("{ip}:{port}")
    };
    let url = super::proxy::target_url(scheme, &addr, path, q);
    let req = super::proxy::with_body(c.http.request(method.clone(), &url), headers, body);
    super::proxy::forward(c, req, &addr).await
}

/// The first port of the first container that has any (ResourceLocation's default).
fn first_container_port(pod: &Value) -> Option<String> {
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .find_map(|c| c["ports"].as_array()?.first()?["containerPort"].as_i64())
        .map(|p| p.to_string())
}
