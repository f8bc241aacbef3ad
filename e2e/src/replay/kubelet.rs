//! The replay kubelet: an HTTPS server on `127.0.0.1:<port>` that answers `/metrics/cadvisor`
//! with one captured body, to the one bearer token the replay Prometheus presents, as a
//! kubelet's port 10250 does (401 for any other token: k/k `pkg/kubelet/server/auth.go`).
//! Built on hyper directly (already in the dependency tree through kube) to keep `xtask` lean.

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Why a replay kubelet could not start.
/// Why a replay kubelet could not start.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("generating the replay kubelet's self-signed certificate: {0}")]
    /// rcgen refused to make the certificate.
    Certificate(String),
    #[error("binding the replay kubelet for node {node} to 127.0.0.1")]
    /// The listener could not bind.
    Bind {
        /// The node it serves.
        node: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

struct Shared {
    body: Bytes,
    token: String,
    scrapes: AtomicU64,
}

/// A kubelet serving one node's captured `/metrics/cadvisor`; stops when dropped.
pub struct ReplayKubelet {
    node: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl ReplayKubelet {
    /// Serves `body` (already without timestamps) for `node` to `token`.
    ///
    /// # Errors
    /// The certificate cannot be generated or no local port can be bound.
    pub async fn start(node: &str, body: String, token: &str) -> Result<Self, KubeletError> {
        // Err means another provider is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .map_err(|e| KubeletError::Certificate(e.to_string()))?;
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .map_err(|e| KubeletError::Certificate(e.to_string()))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener =
            TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|source| KubeletError::Bind {
                    node: node.to_string(),
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| KubeletError::Bind {
            node: node.to_string(),
            source,
        })?;
        let shared = Arc::new(Shared {
            body: Bytes::from(body),
            token: token.to_string(),
            scrapes: AtomicU64::new(0),
        });
        let served = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let shared = served.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(&shared, &req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(ReplayKubelet {
            node: node.to_string(),
            addr,
            shared,
            task,
        })
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node whose capture this serves.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The body it serves.
    pub fn body(&self) -> &str {
        // Built from a String in `start`: always UTF-8.
        std::str::from_utf8(&self.shared.body).unwrap_or_default()
    }

    /// `/metrics/cadvisor` answers served with 200 so far.
    pub fn scrapes(&self) -> u64 {
        self.shared.scrapes.load(Ordering::Relaxed)
    }
}

impl Drop for ReplayKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let plain = |code: StatusCode, text: &'static str| {
        Response::builder()
            .status(code)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(text.as_bytes())))
            .expect("a valid response")
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(shared.token.as_str()) {
        return plain(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    if req.uri().path() != "/metrics/cadvisor" {
        return plain(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    shared.scrapes.fetch_add(1, Ordering::Relaxed);
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(Full::new(shared.body.clone()))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_the_body_to_the_token_only() {
        let k = ReplayKubelet::start("n1", "x 1\n".into(), "tok-123456")
            .await
            .unwrap();
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let url = format!("https://{}/metrics/cadvisor", k.addr());
        let ok = client
            .get(&url)
            .bearer_auth("tok-123456")
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200);
        assert_eq!(ok.text().await.unwrap(), "x 1\n");
        let denied = client.get(&url).bearer_auth("other").send().await.unwrap();
        assert_eq!(denied.status().as_u16(), 401);
        assert_eq!(k.scrapes(), 1);
    }
}
