//! Reaching Prometheus through the API server's service proxy:
//! `/api/v1/namespaces/<ns>/services/prometheus-operated:web/proxy/<path>`.
//!
//! This is how prometheus-operator's own e2e tests query it: no port-forward, no host ports,
//! only the kubeconfig's credentials, so it works the same against kind and a remote cluster.

use crate::install::PROMETHEUS_NAMESPACE;
use crate::prometheus::{error_chain, HttpResponse, PrometheusClient, Transport, TransportError};
use futures::future::BoxFuture;
use kube::client::Body;
use kube::Client;
use std::sync::Arc;

/// The governing Service the operator creates for every Prometheus, and its port name.
pub const PROMETHEUS_SERVICE: &str = "prometheus-operated";
pub const PROMETHEUS_PORT: &str = "web";

/// A [`Transport`] over the Kubernetes API server's service proxy.
#[derive(Clone)]
pub struct KubeProxyTransport {
    client: Client,
    namespace: String,
    service: String,
    port: String,
}

impl KubeProxyTransport {
    /// `prometheus-operated:web` in our Prometheus namespace.
    pub fn new(client: Client) -> Self {
        Self::for_service(
            client,
            PROMETHEUS_NAMESPACE,
            PROMETHEUS_SERVICE,
            PROMETHEUS_PORT,
        )
    }

    pub fn for_service(client: Client, namespace: &str, service: &str, port: &str) -> Self {
        KubeProxyTransport {
            client,
            namespace: namespace.to_string(),
            service: service.to_string(),
            port: port.to_string(),
        }
    }

    /// The proxy prefix, without a trailing slash.
    pub fn proxy_prefix(&self) -> String {
        proxy_prefix(&self.namespace, &self.service, &self.port)
    }
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

/// A [`PrometheusClient`] for our Prometheus through the proxy.
pub fn prometheus_client(client: Client) -> PrometheusClient {
    PrometheusClient::with_transport(Arc::new(KubeProxyTransport::new(client)))
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
            // API's error JSON and must reach the client verbatim. The proxy's 503 while no
            // endpoint is ready is retried by the client like any 503.
            let response = self.client.send(request).await.map_err(classify)?;
            let status = response.status().as_u16();
            let body = response.into_body().collect_bytes().await.map_err(|e| {
                TransportError::Connect(format!("reading the proxied response broke off: {e}"))
            })?;
            Ok(HttpResponse { status, body })
        })
    }

    fn describe(&self) -> String {
        format!(
            "{}:{} in namespace {} via the API server proxy ({})",
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
pub(crate) mod fake_apiserver {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    pub struct FakeApiServer {
        pub kubeconfig: PathBuf,
        /// Every request, in order.
        pub requests: Arc<Mutex<Vec<Recorded>>>,
        _dir: tempfile::TempDir,
        server: tokio::task::JoinHandle<()>,
    }

    impl Drop for FakeApiServer {
        fn drop(&mut self) {
            self.server.abort();
        }
    }

    #[derive(Debug, Clone)]
    pub struct Recorded {
        pub method: String,
        pub path_and_query: String,
        pub authorization: Option<String>,
        pub content_type: Option<String>,
        pub body: String,
    }

    pub const TOKEN: &str = "fake-sa-token-0123456789";

    pub async fn start(routes: &[(&str, u16, &str)]) -> FakeApiServer {
        let routes: Arc<HashMap<String, (u16, String)>> = Arc::new(
            routes
                .iter()
                .map(|(path, status, body)| (path.to_string(), (*status, body.to_string())))
                .collect(),
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let routes = routes.clone();
            let seen = seen.clone();
            async move {
                let uri = req.uri().clone();
                // Built before the body is awaited: a borrow of the request is not Send.
                let recorded = {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    Recorded {
                        method: req.method().to_string(),
                        path_and_query: uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default(),
                        authorization: header("authorization"),
                        content_type: header("content-type"),
                        body: String::new(),
                    }
                };
                let bytes = axum::body::to_bytes(req.into_body(), usize::MAX).await.unwrap_or_default();
                seen.lock().unwrap().push(Recorded {
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                    ..recorded
                });
                let (status, body) = routes.get(uri.path()).cloned().unwrap_or((
                    404,
                    r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"not found","reason":"NotFound","code":404}"#
                        .to_string(),
                ));
                axum::response::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body))
                    .unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    token: {TOKEN}\n"
            ),
        )
        .unwrap();
        FakeApiServer {
            kubeconfig,
            requests,
            _dir: dir,
            server,
        }
    }
}

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

    const PREFIX: &str = "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy";

    #[tokio::test]
    async fn the_prometheus_client_works_through_the_proxy_and_api_errors_arrive_verbatim() {
        use crate::prometheus::PromError;
        let query = format!("{PREFIX}/api/v1/query");
        let ready = format!("{PREFIX}/-/ready");
        let server = fake_apiserver::start(&[
            (ready.as_str(), 200, "Prometheus is Ready.\n"),
            (
                query.as_str(),
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"web-1","container":"app"},"value":[1700000000.5,"3"]}]}}"#,
            ),
        ])
        .await;
        let client = crate::install::kube_client(&server.kubeconfig)
            .await
            .unwrap();
        let prom = prometheus_client(client.clone());
        prom.ready().await.unwrap();
        let answer = prom.query("up").await.unwrap();
        assert_eq!(answer.series.len(), 1);
        assert_eq!(answer.series[0].metric["pod"], "web-1");
        assert_eq!(answer.series[0].value, 3.0);

        let requests = server.requests.lock().unwrap().clone();
        assert_eq!(requests[0].path_and_query, format!("{PREFIX}/-/ready"));
        assert_eq!(requests[1].method, "GET");
        assert!(
            requests[1]
                .path_and_query
                .starts_with(&format!("{PREFIX}/api/v1/query?")),
            "{requests:?}"
        );
        assert!(
            requests[1].path_and_query.contains("query=up"),
            "{requests:?}"
        );
        // The kubeconfig's credentials authenticate to the API server, never appear in messages.
        assert_eq!(
            requests[1].authorization.as_deref(),
            Some(format!("Bearer {}", fake_apiserver::TOKEN).as_str())
        );
        assert!(!prom.describe().contains(fake_apiserver::TOKEN));

        // Prometheus's own 4xx error body passes the proxy untouched.
        let bad = fake_apiserver::start(&[(
            query.as_str(),
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:6: parse error"}"#,
        )])
        .await;
        let prom = prometheus_client(crate::install::kube_client(&bad.kubeconfig).await.unwrap());
        match prom.query("up{{").await {
            Err(PromError::Api {
                error_type, error, ..
            }) => {
                assert_eq!(error_type, "bad_data");
                assert!(error.contains("parse error"), "{error}");
            }
            other => panic!("expected the API error verbatim, got {other:?}"),
        }
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
        let client = crate::install::kube_client(&path).await.unwrap();
        let transport = KubeProxyTransport::new(client);
        let err = transport.get("/-/ready").await.unwrap_err();
        assert!(matches!(err, TransportError::Connect(_)), "{err:?}");
        let described = transport.describe();
        assert!(described.contains("prometheus-operated:web") && described.contains("monitoring"));
        assert!(!described.contains("sekrit-token") && !err.to_string().contains("sekrit-token"));
    }
}
