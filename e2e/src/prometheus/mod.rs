//! A small typed client over the Prometheus HTTP API: instant queries, targets, loaded config,
//! readiness.
//!
//! The transport is pluggable so the same client talks to a Prometheus on an URL (reqwest) or
//! through the Kubernetes API server's service proxy (see `kubeproxy`). Error responses and
//! warnings are surfaced verbatim; connection failures and 503s (Prometheus still starting) are
//! retried with backoff up to a deadline, then reported as [`PromError::Unreachable`].

mod transport;

pub use transport::{HttpResponse, HttpTransport, Transport, TransportError};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What went wrong asking Prometheus; [`crate::diagnose`] branches on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PromError {
    /// Prometheus answered `status: "error"`; fields are verbatim.
    #[error("Prometheus API error ({error_type}): {error}{}", warnings_suffix(.warnings))]
    Api {
        /// `errorType`, e.g. `bad_data`.
        error_type: String,
        /// `error`, Prometheus's message.
        error: String,
        /// `warnings`, if any.
        warnings: Vec<String>,
    },
    /// Nothing usable answered before the deadline.
    #[error(
        "Prometheus at {target} not reachable after {waited:?}: {last_error} \
         (is it running and is the address right? it may still be starting: raise the deadline)"
    )]
    Unreachable {
        /// Where the client was sending requests.
        target: String,
        /// How long it retried.
        waited: Duration,
        /// The last connection error or 503 body.
        last_error: String,
    },
    /// An HTTP status that is not the API's own error format.
    #[error("Prometheus answered HTTP {status}: {body}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The body as text, shortened.
        body: String,
    },
    /// The request could not be made and retrying would not help (an invalid URL or proxy path,
    /// a client that cannot be built): nothing answered at all.
    #[error("the request to Prometheus at {target} could not be made: {reason}")]
    Request {
        /// Where the request was going.
        target: String,
        /// Why it could not be made.
        reason: String,
    },
    /// The body did not have the shape the API documents.
    #[error("unexpected response for {what}: {detail}")]
    Decode {
        /// Which request.
        what: String,
        /// What did not match.
        detail: String,
    },
}

fn warnings_suffix(w: &[String]) -> String {
    if w.is_empty() {
        String::new()
    } else {
        format!(" (warnings: {})", w.join("; "))
    }
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The series' labels (`__name__` included when the query keeps it).
    pub metric: BTreeMap<String, String>,
    /// The sample value.
    pub value: f64,
    /// Evaluation time, Unix seconds.
    pub timestamp: f64,
}

/// The answer to an instant query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryResult {
    /// One entry per series of the vector.
    pub series: Vec<Sample>,
    /// Warnings Prometheus attached to a successful answer, verbatim.
    pub warnings: Vec<String>,
}

/// `/api/v1/targets`: what Prometheus scrapes and what its relabeling dropped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Targets {
    /// Targets kept by `relabel_configs`.
    #[serde(rename = "activeTargets", default)]
    pub active: Vec<ActiveTarget>,
    /// Targets `relabel_configs` dropped.
    #[serde(rename = "droppedTargets", default)]
    pub dropped: Vec<DroppedTarget>,
}

/// A target Prometheus scrapes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ActiveTarget {
    /// Labels from service discovery, before relabeling.
    pub discovered_labels: BTreeMap<String, String>,
    /// Labels after relabeling (what the target's series carry).
    pub labels: BTreeMap<String, String>,
    /// The scrape job (`job_name`).
    pub scrape_pool: String,
    /// The URL scraped.
    pub scrape_url: String,
    /// `up`, `down` or `unknown` (not scraped yet).
    pub health: String,
    /// Why the last scrape failed; empty when it succeeded.
    pub last_error: String,
    /// RFC 3339; `0001-01-01T00:00:00Z` before the first scrape.
    pub last_scrape: String,
    /// Seconds the last scrape took.
    pub last_scrape_duration: f64,
}

/// A discovered target that `relabel_configs` dropped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DroppedTarget {
    /// Its labels from service discovery.
    pub discovered_labels: BTreeMap<String, String>,
}

/// The API's envelope: `{"status":"success","data":…,"warnings":[…]}` or
/// `{"status":"error","errorType":…,"error":…}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(default)]
    error_type: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    result_type: String,
    // Decoded once the type is known; avoids building a `Value` tree for large answers.
    result: Box<serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct VectorItem {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct ConfigData {
    yaml: String,
}

/// The Prometheus HTTP API client. Cheap to clone; clones share the request counter.
#[derive(Clone)]
pub struct PrometheusClient {
    transport: Arc<dyn Transport>,
    retry_deadline: Duration,
    requests: Arc<AtomicU64>,
}

impl PrometheusClient {
    /// A client for a Prometheus reachable at `base_url`.
    ///
    /// # Errors
    /// The URL does not parse or is not http(s).
    pub fn new(base_url: &str, retry_deadline: Duration) -> anyhow::Result<Self> {
        Ok(Self::with_transport(
            Arc::new(HttpTransport::new(base_url)?),
            retry_deadline,
        ))
    }

    /// A client over any transport (the API server proxy, a scripted one in tests) that retries
    /// connection failures and 503s for `retry_deadline`, the caller's choice.
    pub fn with_transport(transport: Arc<dyn Transport>, retry_deadline: Duration) -> Self {
        PrometheusClient {
            transport,
            retry_deadline,
            requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How long connection failures and 503s are retried before giving up.
    pub fn with_retry_deadline(mut self, deadline: Duration) -> Self {
        self.retry_deadline = deadline;
        self
    }

    /// HTTP requests sent so far (retries included).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Where the client sends requests, for messages.
    pub fn describe(&self) -> String {
        self.transport.describe()
    }

    /// Succeeds once `/-/ready` answers 200.
    ///
    /// # Errors
    /// [`PromError::Unreachable`] when `/-/ready` does not answer 200 before the retry deadline.
    pub async fn ready(&self) -> Result<(), PromError> {
        let resp = self.get("/-/ready").await?;
        match resp.status {
            200 => Ok(()),
            status => Err(PromError::Http {
                status,
                body: body_text(&resp.body),
            }),
        }
    }

    /// An instant query; the result must be a vector (or a scalar, returned as one series).
    ///
    /// # Errors
    /// [`PromError`]: unreachable, an HTTP error, the API's own error (bad PromQL), or a body of
    /// another shape.
    pub async fn query(&self, promql: &str) -> Result<QueryResult, PromError> {
        let path = format!("/api/v1/query?query={}", encode_query_value(promql));
        let (data, warnings): (QueryData, _) = self.api(&path, "query").await?;
        let series = decode_result(&data).map_err(|detail| PromError::Decode {
            what: format!("query {promql:?}"),
            detail,
        })?;
        Ok(QueryResult { series, warnings })
    }

    /// An instant query's HTTP answer, undecoded: for callers that decode large answers
    /// themselves, borrowing from the body (see `coverage`). Counts as one request like
    /// [`PrometheusClient::query`], with the same retries.
    ///
    /// # Errors
    /// [`PromError::Unreachable`] when nothing answers before the retry deadline.
    pub async fn query_response(&self, promql: &str) -> Result<HttpResponse, PromError> {
        self.get(&format!(
            "/api/v1/query?query={}",
            encode_query_value(promql)
        ))
        .await
    }

    /// `/api/v1/targets`: active and dropped targets with their health and last error.
    ///
    /// # Errors
    /// As [`PrometheusClient::query`].
    pub async fn targets(&self) -> Result<Targets, PromError> {
        let (data, _): (Targets, _) = self.api("/api/v1/targets", "/api/v1/targets").await?;
        Ok(data)
    }

    /// The configuration Prometheus has loaded, as YAML (`/api/v1/status/config`).
    ///
    /// # Errors
    /// As [`PrometheusClient::query`].
    pub async fn config_yaml(&self) -> Result<String, PromError> {
        let (data, _): (ConfigData, _) = self
            .api("/api/v1/status/config", "/api/v1/status/config")
            .await?;
        Ok(data.yaml)
    }

    /// GET an API path and unwrap the envelope.
    async fn api<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<(T, Vec<String>), PromError> {
        let resp = self.get(path).await?;
        decode_envelope(resp.status, &resp.body, what)
    }

    /// GET with retries on connection failures and 503 until the retry deadline.
    async fn get(&self, path: &str) -> Result<HttpResponse, PromError> {
        let start = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let last_error = match self.transport.get(path).await {
                Ok(resp) if resp.status == 503 => format!("HTTP 503: {}", body_text(&resp.body)),
                Ok(resp) => return Ok(resp),
                Err(TransportError::Connect(e)) => e,
                Err(TransportError::Other(e)) => {
                    return Err(PromError::Request {
                        target: self.transport.describe(),
                        reason: e,
                    });
                }
            };
            let waited = start.elapsed();
            if waited >= self.retry_deadline {
                return Err(PromError::Unreachable {
                    target: self.transport.describe(),
                    waited,
                    last_error,
                });
            }
            tracing::debug!(%last_error, ?backoff, "Prometheus not answering yet; retrying");
            // The last wait is cut short so the error comes at the deadline, not before it.
            tokio::time::sleep(backoff.min(self.retry_deadline - waited)).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

fn body_text(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    // Keep messages readable when a proxy answers with a whole HTML page.
    if s.len() > 500 {
        let cut = (0..=500)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}…", &s[..cut])
    } else {
        s.to_string()
    }
}

/// Unwraps the API envelope. Pure, so the error paths are unit-tested. `T` may borrow from
/// `body` (the coverage check decodes its answer without copying the label values).
pub(crate) fn decode_envelope<'a, T: Deserialize<'a>>(
    status: u16,
    body: &'a [u8],
    what: &str,
) -> Result<(T, Vec<String>), PromError> {
    let env: Envelope<T> = match serde_json::from_slice(body) {
        Ok(env) => env,
        // Not the API's JSON: a proxy, a wrong URL, or a non-Prometheus server.
        Err(e) if status != 200 => {
            let _ = e;
            return Err(PromError::Http {
                status,
                body: body_text(body),
            });
        }
        Err(e) => {
            return Err(PromError::Decode {
                what: what.to_string(),
                detail: format!("{e} (is this a Prometheus?)"),
            })
        }
    };
    if env.status != "success" {
        return Err(PromError::Api {
            error_type: env.error_type,
            error: env.error,
            warnings: env.warnings,
        });
    }
    let data = env.data.ok_or_else(|| PromError::Decode {
        what: what.to_string(),
        detail: "status success without data".to_string(),
    })?;
    Ok((data, env.warnings))
}

fn decode_result(data: &QueryData) -> Result<Vec<Sample>, String> {
    match data.result_type.as_str() {
        "vector" => {
            let items: Vec<VectorItem> =
                serde_json::from_str(data.result.get()).map_err(|e| e.to_string())?;
            items
                .into_iter()
                .map(|item| {
                    Ok(Sample {
                        metric: item.metric,
                        value: parse_sample_value(&item.value.1)?,
                        timestamp: item.value.0,
                    })
                })
                .collect()
        }
        "scalar" => {
            let (ts, v): (f64, String) =
                serde_json::from_str(data.result.get()).map_err(|e| e.to_string())?;
            Ok(vec![Sample {
                metric: BTreeMap::new(),
                value: parse_sample_value(&v)?,
                timestamp: ts,
            }])
        }
        other => Err(format!("result type {other:?}; expected an instant vector")),
    }
}

/// Prometheus renders values as strings, including `NaN`, `+Inf` and `-Inf`.
fn parse_sample_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => v
            .parse()
            .map_err(|_| format!("sample value {v:?} is not a number")),
    }
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`) is encoded.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters pass through).
pub fn encode_query_value(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::future::BoxFuture;
    use std::sync::Mutex;

    #[test]
    fn decodes_a_vector_with_special_values() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"a","container":"app"},"value":[1700000000.5,"3"]},
            {"metric":{"pod":"b"},"value":[1700000000.5,"NaN"]},
            {"metric":{},"value":[1700000000.5,"+Inf"]}]},
            "warnings":["query touched many series"]}"#;
        let (data, warnings): (QueryData, _) = decode_envelope(200, body, "q").unwrap();
        let series = decode_result(&data).unwrap();
        assert_eq!(series.len(), 3);
        assert_eq!(series[0].metric["container"], "app");
        assert_eq!(series[0].value, 3.0);
        assert!(series[1].value.is_nan());
        assert_eq!(series[2].value, f64::INFINITY);
        assert_eq!(warnings, vec!["query touched many series"]);
    }

    #[test]
    fn surfaces_api_errors_verbatim() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"1:7: parse error: unexpected end of input","warnings":["w1"]}"#;
        let err = decode_envelope::<QueryData>(400, body, "q").unwrap_err();
        match &err {
            PromError::Api {
                error_type,
                error,
                warnings,
            } => {
                assert_eq!(error_type, "bad_data");
                assert_eq!(error, "1:7: parse error: unexpected end of input");
                assert_eq!(warnings, &vec!["w1".to_string()]);
            }
            other => panic!("expected Api error, got {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("bad_data") && text.contains("parse error") && text.contains("w1"),
            "{text}"
        );
    }

    #[test]
    fn non_api_bodies_become_http_errors() {
        let err = decode_envelope::<QueryData>(404, b"404 page not found", "q").unwrap_err();
        assert!(
            matches!(err, PromError::Http { status: 404, ref body } if body == "404 page not found")
        );
        let err = decode_envelope::<QueryData>(200, b"<html>", "q").unwrap_err();
        assert!(matches!(err, PromError::Decode { .. }), "{err:?}");
    }

    #[test]
    fn rejects_matrix_results() {
        let data = QueryData {
            result_type: "matrix".into(),
            result: serde_json::value::RawValue::from_string("[]".into()).unwrap(),
        };
        assert!(decode_result(&data).unwrap_err().contains("matrix"));
    }

    #[test]
    fn decodes_targets_in_prometheus_2_26_shape() {
        let body = br#"{"status":"success","data":{"activeTargets":[{"discoveredLabels":{"__address__":"10.0.0.1:10250"},
          "labels":{"job":"kubelet","node":"kind-worker"},"scrapePool":"serviceMonitor/kube-system/cadvisor/0",
          "scrapeUrl":"https://10.0.0.1:10250/metrics/cadvisor","globalUrl":"x","lastError":"server returned HTTP status 401 Unauthorized",
          "lastScrape":"2021-06-01T10:00:00.000Z","lastScrapeDuration":0.01,"health":"down"}],
          "droppedTargets":[{"discoveredLabels":{"__meta_kubernetes_endpoint_port_name":"http-metrics"}}]}}"#;
        let (t, _): (Targets, _) = decode_envelope(200, body, "targets").unwrap();
        assert_eq!(t.active[0].health, "down");
        assert!(t.active[0].last_error.contains("401"));
        assert_eq!(
            t.active[0].scrape_pool,
            "serviceMonitor/kube-system/cadvisor/0"
        );
        assert_eq!(t.dropped.len(), 1);
    }

    #[test]
    fn encodes_promql() {
        assert_eq!(
            encode_query_value(r#"count by (pod) (x{container!~"|POD"})"#),
            "count%20by%20%28pod%29%20%28x%7Bcontainer%21~%22%7CPOD%22%7D%29"
        );
    }

    /// A transport that answers from a script, to test retries without a network.
    struct Scripted {
        answers: Mutex<Vec<Result<HttpResponse, TransportError>>>,
    }

    impl Transport for Scripted {
        fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<HttpResponse, TransportError>> {
            let next = self.answers.lock().unwrap().remove(0);
            Box::pin(async move { next })
        }
        fn describe(&self) -> String {
            "scripted".into()
        }
    }

    fn ok(body: &'static str) -> Result<HttpResponse, TransportError> {
        Ok(HttpResponse {
            status: 200,
            body: Bytes::from_static(body.as_bytes()),
        })
    }

    #[tokio::test]
    async fn retries_connection_refused_and_503_then_succeeds() {
        let t = Scripted {
            answers: Mutex::new(vec![
                Err(TransportError::Connect("connection refused".into())),
                Ok(HttpResponse {
                    status: 503,
                    body: Bytes::from_static(b"Service Unavailable"),
                }),
                ok("Prometheus is Ready."),
            ]),
        };
        let client = PrometheusClient::with_transport(Arc::new(t), Duration::from_secs(30));
        client.ready().await.unwrap();
        assert_eq!(client.request_count(), 3);
    }

    #[tokio::test]
    async fn gives_up_after_the_deadline_with_the_last_error() {
        let t = Scripted {
            answers: Mutex::new(
                (0..100)
                    .map(|_| Err(TransportError::Connect("connection refused".into())))
                    .collect(),
            ),
        };
        let client = PrometheusClient::with_transport(Arc::new(t), Duration::from_millis(500));
        let err = client.query("up").await.unwrap_err();
        match &err {
            PromError::Unreachable {
                target,
                last_error,
                waited,
            } => {
                assert_eq!(target, "scripted");
                assert_eq!(last_error, "connection refused");
                assert!(*waited >= Duration::from_millis(500), "{waited:?}");
                assert!(*waited < Duration::from_millis(900), "{waited:?}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        assert!(err.to_string().contains("not reachable"));
    }

    #[tokio::test]
    async fn a_request_that_cannot_be_made_is_not_retried_nor_called_an_http_status() {
        let t = Scripted {
            answers: Mutex::new(vec![Err(TransportError::Other(
                "invalid proxy path \"/x y\"".into(),
            ))]),
        };
        let client = PrometheusClient::with_transport(Arc::new(t), Duration::from_secs(30));
        let err = client.query("up").await.unwrap_err();
        assert!(
            matches!(&err, PromError::Request { target, reason }
                if target == "scripted" && reason.contains("invalid proxy path")),
            "{err:?}"
        );
        assert!(!err.to_string().contains("HTTP"), "{err}");
        assert_eq!(client.request_count(), 1);
    }

    #[test]
    fn rejects_bad_urls() {
        assert!(PrometheusClient::new("localhost:9090", Duration::from_secs(1)).is_err());
        assert!(PrometheusClient::new("ftp://x", Duration::from_secs(1)).is_err());
        assert!(PrometheusClient::new("http://127.0.0.1:9090/", Duration::from_secs(1)).is_ok());
    }
}
