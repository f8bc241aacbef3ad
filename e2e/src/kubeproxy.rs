//! Reaching Prometheus through the API server's service proxy
//! (`/api/v1/namespaces/<ns>/services/prometheus-operated:web/proxy/<path>`) or, for one
//! specific Prometheus server, its pod proxy (`/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/<path>`:
//! `prometheus-operated` selects every Prometheus pod of a namespace, so only the pod proxy asks
//! one replica of one Prometheus).
//!
//! This is how prometheus-operator's own e2e tests query it: no port-forward, no host ports,
//! only the kubeconfig's credentials, so it works the same against kind and a remote cluster.

use crate::errors::error_chain;
use crate::prometheus::{HttpResponse, PrometheusClient, Transport, TransportError};
use futures::future::BoxFuture;
use kube::client::Body;
use kube::Client;
use std::sync::Arc;

/// The governing Service the operator creates for every Prometheus, and its port name.
pub const PROMETHEUS_SERVICE: &str = "prometheus-operated";
/// The Service port name of the Prometheus web UI and API.
pub const PROMETHEUS_PORT: &str = "web";

/// A [`Transport`] over the Kubernetes API server's service proxy.
#[derive(Clone)]
pub struct KubeProxyTransport {
    client: Client,
    /// `services` or `pods`.
    resource: &'static str,
    namespace: String,
    service: String,
    port: String,
}

impl KubeProxyTransport {
    /// `prometheus-operated:web` in `namespace`: every Prometheus of that namespace.
    pub fn new(client: Client, namespace: &str) -> Self {
        Self::for_service(client, namespace, PROMETHEUS_SERVICE, PROMETHEUS_PORT)
    }

    /// A transport to `namespace/service:port` through the API server's service proxy.
    pub fn for_service(client: Client, namespace: &str, service: &str, port: &str) -> Self {
        KubeProxyTransport {
            client,
            resource: "services",
            namespace: namespace.to_string(),
            service: service.to_string(),
            port: port.to_string(),
        }
    }

    /// A transport to one pod's `port` through the API server's pod proxy. The port is a number:
    /// the pod proxy joins it to the pod IP as it is and resolves no port names (k/k
    /// `pkg/registry/core/pod/strategy.go` ResourceLocation).
    pub fn for_pod(client: Client, namespace: &str, pod: &str, port: u16) -> Self {
        KubeProxyTransport {
            client,
            resource: "pods",
            namespace: namespace.to_string(),
            service: pod.to_string(),
            port: port.to_string(),
        }
    }

    /// The proxy prefix, without a trailing slash.
    pub fn proxy_prefix(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/{}/{}:{}/proxy",
            self.namespace, self.resource, self.service, self.port
        )
    }
}

/// `/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy`
pub fn pod_proxy_prefix(namespace: &str, pod: &str, port: u16) -> String {
    format!("/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy")
}

/// `/api/v1/namespaces/<ns>/services/<service>:<port>/proxy`
pub fn proxy_prefix(namespace: &str, service: &str, port: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy")
}

/// The API server path for a Prometheus `path_and_query` (which must start with `/`; the query
/// string is passed through untouched, already percent-encoded by the caller).
pub fn proxy_path(prefix: &str, path_and_query: &str) -> String {
    if path_and_query.starts_with('/') {
        format!("{prefix}{path_and_query}")
    } else {
        format!("{prefix}/{path_and_query}")
    }
}

/// A [`PrometheusClient`] for one Prometheus pod through the pod proxy, retrying for
/// `retry_deadline`.
pub fn pod_prometheus_client(
    client: Client,
    namespace: &str,
    pod: &str,
    port: u16,
    retry_deadline: std::time::Duration,
) -> PrometheusClient {
    PrometheusClient::with_transport(
        Arc::new(KubeProxyTransport::for_pod(client, namespace, pod, port)),
        retry_deadline,
    )
}

/// A [`PrometheusClient`] for `prometheus-operated:web` in `namespace` through the proxy (our
/// own Prometheus is in [`crate::install::PROMETHEUS_NAMESPACE`]), retrying for `retry_deadline`.
pub fn prometheus_client(
    client: Client,
    namespace: &str,
    retry_deadline: std::time::Duration,
) -> PrometheusClient {
    PrometheusClient::with_transport(
        Arc::new(KubeProxyTransport::new(client, namespace)),
        retry_deadline,
    )
}

impl Transport for KubeProxyTransport {
    fn get<'a>(
        &'a self,
        path_and_query: &'a str,
    ) -> BoxFuture<'a, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let path = proxy_path(&self.proxy_prefix(), path_and_query);
            let request = http::Request::get(&path)
                .body(Body::empty())
                .map_err(|e| TransportError::Other(format!("invalid proxy path {path:?}: {e}")))?;
            // `send`, not `request_text`: Prometheus's own 4xx answers (bad PromQL) carry the
            // API's error JSON and must reach the client verbatim. The proxy's own answers (a
            // Status: 503 no endpoint ready, 500/503 "error trying to reach service", 403, 404)
            // pass too; the client tells them from Prometheus's and retries what may heal.
            let response = self.client.send(request).await.map_err(classify)?;
            let status = response.status().as_u16();
            let body = response.into_body().collect_bytes().await.map_err(|e| {
                TransportError::Connect(format!("reading the proxied response broke off: {e}"))
            })?;
            Ok(HttpResponse { status, body })
        })
    }

    fn describe(&self) -> String {
        let what = if self.resource == "pods" { "pod " } else { "" };
        format!(
            "{what}{}:{} in namespace {} via the API server proxy ({})",
            self.service,
            self.port,
            self.namespace,
            self.proxy_prefix()
        )
    }
}

/// Transport-level failures (API server unreachable, connection reset) are worth retrying;
/// anything else (TLS/auth configuration, request building) is not.
fn classify(e: kube::Error) -> TransportError {
    match e {
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            TransportError::Connect(error_chain(&e))
        }
        other => TransportError::Other(error_chain(&other)),
    }
}

/// A stand-in API server for tests: answers fixed (status, body) per path, 404 otherwise, and
/// records every request's path+query and whether it carried credentials.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths_point_at_the_governing_service_web_port() {
        let prefix = proxy_prefix("monitoring", PROMETHEUS_SERVICE, PROMETHEUS_PORT);
        assert_eq!(
            prefix,
            "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy"
        );
        assert_eq!(
            proxy_path(&prefix, "/api/v1/query?query=count%20by%20(pod)%20(up)"),
            "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy/api/v1/query?query=count%20by%20(pod)%20(up)"
        );
        assert_eq!(proxy_path(&prefix, "-/ready"), format!("{prefix}/-/ready"));
    }

    #[test]
    fn pod_proxy_paths_name_the_pod_and_a_numeric_port() {
        assert_eq!(
            pod_proxy_prefix("monitoring", "prometheus-k8s-1", 9090),
            "/api/v1/namespaces/monitoring/pods/prometheus-k8s-1:9090/proxy"
        );
    }

    #[test]
    fn built_paths_are_valid_request_uris() {
        let path = proxy_path(
            &proxy_prefix("monitoring", "prometheus-operated", "web"),
            "/api/v1/targets?state=active",
        );
        let req = http::Request::get(&path).body(()).unwrap();
        assert_eq!(
            req.uri().path(),
            "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy/api/v1/targets"
        );
        assert_eq!(req.uri().query(), Some("state=active"));
    }

    #[tokio::test]
    async fn an_unreachable_api_server_is_a_retryable_connect_error_and_describe_has_no_credentials(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:9\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    token: sekrit-token\n",
        )
        .unwrap();
        let client = crate::k8s::client::kube_client(&path).await.unwrap();
        let transport = KubeProxyTransport::new(client, "monitoring");
        let err = transport.get("/-/ready").await.unwrap_err();
        assert!(matches!(err, TransportError::Connect(_)), "{err:?}");
        let described = transport.describe();
        assert!(described.contains("prometheus-operated:web") && described.contains("monitoring"));
        assert!(!described.contains("sekrit-token") && !err.to_string().contains("sekrit-token"));
    }
}
