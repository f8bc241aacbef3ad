//! The service proxy `/api/v1/namespaces/<ns>/services/<[scheme:]svc[:port]>/proxy/<path>`
//! (ResourceLocation in kubernetes/kubernetes pkg/registry/core/service/storage/rest.go@v1.21.1;
//! TWIN-FACTS §2e): picks a
//! ready address of the Service's Endpoints carrying the port, checks it against its Pod, and
//! forwards over plain HTTP; a refused connection answers per profile. [`Unreachable`](crate::twin::cluster::Unreachable) is a
//! fault: pods the proxy cannot reach while their Endpoints still list them.

use super::response::{self as st, status};
use crate::twin::cluster::Cluster;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
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
    let parts: Vec<&str> = id.split(':').collect();
    let (svc, port) = match parts.as_slice() {
        [svc] => (*svc, ""),
        [svc, port] => (*svc, *port),
        [_, svc, port] => (*svc, *port),
        _ => return st::bad_request(&format!("invalid service request {id:?}")),
    };
    let ep_rt = c.rt("", "Endpoints");
    let Some(ep) = c
        .store
        .get(&crate::twin::storage::store::key(&ep_rt), ns, svc)
    else {
        // A named port skips the Service GET, so the missing Endpoints is what is reported (§2e).
        return st::not_found(&ep_rt, svc);
    };
    let subsets = ep["subsets"].as_array().cloned().unwrap_or_default();
    if subsets.is_empty() {
        return status(
            503,
            Some("ServiceUnavailable"),
            &format!("no endpoints available for service \"{svc}\""),
            None,
        );
    }
    let pod_rt = c.rt("", "Pod");
    let mut target = None;
    'outer: for s in &subsets {
        let Some(p) = s["ports"].as_array().into_iter().flatten().find(|p| {
            port.is_empty()
                || p["name"].as_str() == Some(port)
                || p["port"].as_i64().map(|n| n.to_string()).as_deref() == Some(port)
        }) else {
            continue;
        };
        for a in s["addresses"].as_array().into_iter().flatten() {
            let ip = a["ip"].as_str().unwrap_or_default();
            // isValidAddress: the targetRef Pod must be in this namespace and have the IP (§2e).
            let valid = a["targetRef"]["kind"] == "Pod"
                && c.store
                    .get(
                        &crate::twin::storage::store::key(&pod_rt),
                        ns,
                        a["targetRef"]["name"].as_str().unwrap_or_default(),
                    )
                    .is_some_and(|pod| {
                        pod["status"]["podIPs"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|i| i["ip"].as_str() == Some(ip))
                    });
            if valid {
                let pod = a["targetRef"]["name"].as_str().unwrap_or_default();
                target = Some((format!("{ip}:{}", p["port"]), pod.to_string()));
                break 'outer;
            }
        }
    }
    let Some((addr, pod)) = target else {
        return status(
            503,
            Some("ServiceUnavailable"),
            &format!("no endpoints available for service \"{id}\""),
            None,
        );
    };
    if c.unreachable.contains(ns, &pod) {
        return dial_error(c, &addr, "connect: connection refused");
    }
    let url = target_url("http", &addr, path, q);
    let req = with_body(c.http.request(method.clone(), &url), headers, body);
    forward(c, req, &addr).await
}

/// The upstream URL a proxy request goes to: `scheme://addr/path`, with the request's query
/// passed on. Shared by the service, node and pod proxies.
pub(super) fn target_url(
    scheme: &str,
    addr: &str,
    path: &[&str],
    q: &HashMap<String, String>,
) -> String {
    let url = format!("{scheme}://{addr}/{}", path.join("/"));
    if q.is_empty() {
        return url;
    }
    let qs: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q.iter())
        .finish();
    format!("{url}?{qs}")
}

/// The request's body and its content type, passed on (the service and pod proxies).
pub(super) fn with_body(
    req: reqwest::RequestBuilder,
    headers: &HeaderMap,
    body: Bytes,
) -> reqwest::RequestBuilder {
    match headers.get(header::CONTENT_TYPE) {
        Some(ct) => req.body(body).header(header::CONTENT_TYPE, ct),
        None => req.body(body),
    }
}

/// Sends a proxied request and answers as the API server's proxy does: the upstream's status,
/// content type and body, or the dial error per profile (TWIN-FACTS §2e). Shared by the service
/// and node proxies.
pub(super) async fn forward(c: &Cluster, req: reqwest::RequestBuilder, addr: &str) -> Response {
    match req.send().await {
        Ok(resp) => {
            let code = StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let ct = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("text/plain")
                .to_string();
            let bytes = resp.bytes().await.unwrap_or_default();
            (code, [(header::CONTENT_TYPE, ct)], bytes).into_response()
        }
        Err(e) => {
            let why = if e.is_connect() {
                "connect: connection refused".to_string()
            } else {
                e.to_string()
            };
            dial_error(c, addr, &why)
        }
    }
}

/// The proxy's answer when it cannot reach `addr`: "error trying to reach service: dial tcp
/// …", 500 without a reason on 1.19/1.20, 503 ServiceUnavailable from 1.21
/// ([`crate::twin::profile::Profile::proxy_dial_error`]).
fn dial_error(c: &Cluster, addr: &str, why: &str) -> Response {
    let (code, reason) = c.profile.proxy_dial_error();
    status(
        code,
        reason,
        &format!("error trying to reach service: dial tcp {addr}: {why}"),
        None,
    )
}
