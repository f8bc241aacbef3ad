//! How requests reach Prometheus: directly over HTTP(S) ([`HttpTransport`]) or through the
//! API server's service proxy ([`crate::kubeproxy`]); the client above retries what they report
//! as [`TransportError::Connect`].

use crate::errors::error_chain;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::time::Duration;

/// A status code and body, as the transport received them.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// The whole body.
    pub body: Bytes,
}

/// Why a transport could not deliver an answer; decides whether the client retries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The request never reached Prometheus (refused, reset, DNS, timeout): worth retrying.
    #[error("{0}")]
    Connect(String),
    /// Anything else; not retried.
    #[error("{0}")]
    Other(String),
}

/// How requests reach Prometheus.
pub trait Transport: Send + Sync + 'static {
    /// GET `path_and_query` (e.g. `/api/v1/query?query=up`), relative to the Prometheus root.
    fn get<'a>(
        &'a self,
        path_and_query: &'a str,
    ) -> BoxFuture<'a, Result<HttpResponse, TransportError>>;
    /// Where requests go, for messages (never contains credentials).
    fn describe(&self) -> String;
}

/// Plain HTTP(S) to a Prometheus base URL, e.g. `http://127.0.0.1:9090`.
pub struct HttpTransport {
    base: String,
    http: reqwest::Client,
}

impl HttpTransport {
    /// A transport for `base_url` (`http(s)://host:port[/prefix]`).
    ///
    /// # Errors
    /// The URL does not parse or is not http(s), or the HTTP client cannot be built.
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let base = base_url.trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base).map_err(|e| {
            anyhow::anyhow!(
                "invalid Prometheus URL {base_url:?}: {e}; expected e.g. http://127.0.0.1:9090"
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            anyhow::bail!("invalid Prometheus URL {base_url:?}: scheme must be http or https");
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(HttpTransport { base, http })
    }
}

impl Transport for HttpTransport {
    fn get<'a>(
        &'a self,
        path_and_query: &'a str,
    ) -> BoxFuture<'a, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let url = format!("{}{}", self.base, path_and_query);
            let resp = self.http.get(&url).send().await.map_err(|e| {
                if e.is_connect() || e.is_timeout() || e.is_request() {
                    TransportError::Connect(error_chain(&e))
                } else {
                    TransportError::Other(error_chain(&e))
                }
            })?;
            let status = resp.status().as_u16();
            let body = resp
                .bytes()
                .await
                .map_err(|e| TransportError::Connect(error_chain(&e)))?;
            Ok(HttpResponse { status, body })
        })
    }

    fn describe(&self) -> String {
        self.base.clone()
    }
}
