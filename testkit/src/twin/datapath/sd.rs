//! The http_sd endpoint that connects the twin's Prometheus to its objects: the target groups
//! Kubernetes service discovery (role endpoints) would produce, over plain HTTP.

use crate::twin::cluster::Cluster;
use anyhow::{Context, Result};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

/// Starts the endpoint on a free loopback port; it answers until `handle` shuts it down.
///
/// # Errors
/// When the listener cannot bind.
pub(super) fn serve(c: &Arc<Cluster>) -> Result<(SocketAddr, axum_server::Handle)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("binding the twin's http_sd endpoint")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let app = axum::Router::new()
        .route("/sd", axum::routing::get(sd))
        .with_state(Arc::downgrade(c));
    let server = axum_server::from_tcp(listener).handle(handle.clone());
    tokio::spawn(async move {
        let _ = server.serve(app.into_make_service()).await;
    });
    Ok((addr, handle))
}

/// Whether the twin's Prometheus may scrape a target: only loopback addresses (the twin's nodes and
/// Prometheus pods). The other pods' IPs are in the twin's pod CIDR (10.244.0.0/16, kindnet's), a
/// private range this machine must never send traffic to, so their targets are not served: a
/// named simplification (README, what the twin does not model).
fn scrapable_here(t: &e2e::discovery::Target) -> bool {
    let host = t
        .address
        .rsplit_once(':')
        .map_or(t.address.as_str(), |(h, _)| h)
        .trim_matches(|c| c == '[' || c == ']');
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[derive(serde::Deserialize)]
struct SdQuery {
    #[serde(default)]
    namespaces: String,
}

/// http_sd: one target group per (Endpoints subset address × port), labelled as kubernetes_sd
/// role endpoints labels it (TWIN-FACTS §8;
/// prometheus/prometheus discovery/kubernetes/endpoints.go@v2.42.0).
async fn sd(State(c): State<Weak<Cluster>>, Query(q): Query<SdQuery>) -> axum::response::Response {
    let Some(c) = c.upgrade() else {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "twin stopped").into_response();
    };
    let wanted: Vec<&str> = q.namespaces.split(',').filter(|s| !s.is_empty()).collect();
    let services = c.objects("", "Service");
    let pods = c.objects("", "Pod");
    let mut groups = Vec::new();
    for ep in c.objects("", "Endpoints") {
        let ns = ep["metadata"]["namespace"].as_str().unwrap_or_default();
        if !wanted.is_empty() && !wanted.contains(&ns) {
            continue;
        }
        let name = &ep["metadata"]["name"];
        let service = services
            .iter()
            .find(|s| s["metadata"]["namespace"] == ns && &s["metadata"]["name"] == name);
        groups.extend(
            e2e::discovery::endpoints_targets(&ep, service, &pods)
                .into_iter()
                .filter(scrapable_here)
                .map(e2e::discovery::Target::into_group),
        );
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        Value::Array(groups).to_string(),
    )
        .into_response()
}
