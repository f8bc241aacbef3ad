//! A small typed client over the Prometheus HTTP API: instant queries, targets, loaded config,
//! readiness.
//!
//! The transport is pluggable so the same client talks to a Prometheus on an URL (reqwest) or
//! through the Kubernetes API server's service proxy (see `kubeproxy`). Error responses and
//! warnings are surfaced verbatim. What may heal is retried with backoff up to a deadline (on
//! [`crate::k8s::wait::poll_with`], the one polling loop), then reported as
//! [`PromError::Unreachable`]: connection failures, 503s (Prometheus still starting, or the
//! proxy finding no ready endpoint) and the API server's other 5xx and 429 answers (the proxy
//! not reaching the pod). The API server's own answers (a Kubernetes `Status`, not Prometheus's
//! envelope) are recognised as such ([`PromError::ApiServer`]); a 403 or 404 from it is final.

mod transport;

pub use transport::{HttpResponse, HttpTransport, Transport, TransportError};

use crate::k8s::wait::{poll_with, Backoff, NoAnswer, Transient, Waited};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    /// The Kubernetes API server answered instead of Prometheus (its service proxy: a Status
    /// body, TWIN-FACTS §2e), with its code, reason and message verbatim. A 403 (no `get` on
    /// `services/proxy`) or 404 (no such Service or Endpoints) is final; a 5xx or 429 is retried
    /// until the deadline and then reported as [`PromError::Unreachable`].
    #[error("the Kubernetes API server answered{} instead of Prometheus: {status}", at(.target))]
    ApiServer {
        /// Where the client was sending requests (empty when not known).
        target: String,
        /// The API server's answer.
        status: ApiServerStatus,
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

fn at(target: &str) -> String {
    if target.is_empty() {
        String::new()
    } else {
        format!(" for {target}")
    }
}

/// The API server, not Prometheus, may heal: only nothing answering yet, and the API server's
/// 5xx and 429 (the service proxy not reaching a pod, priority and fairness). Prometheus's own
/// errors (bad PromQL), a 403/404 from the proxy and bodies of another shape stay what they are.
impl Transient for PromError {
    fn is_transient(&self) -> bool {
        match self {
            PromError::Unreachable { .. } => true,
            PromError::ApiServer { status, .. } => status.is_transient(),
            PromError::Api { .. }
            | PromError::Http { .. }
            | PromError::Request { .. }
            | PromError::Decode { .. } => false,
        }
    }
}

/// A probe cut off at its deadline: nothing answered (the client fills in where it asked).
impl From<NoAnswer> for PromError {
    fn from(e: NoAnswer) -> Self {
        PromError::Unreachable {
            target: String::new(),
            waited: e.within,
            last_error: "no answer".into(),
        }
    }
}

/// The Kubernetes API server's own answer (`{"kind":"Status","status":"Failure",…}`), as its
/// service proxy gives it when it cannot or may not forward the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiServerStatus {
    /// The HTTP status.
    pub code: u16,
    /// `reason` (`ServiceUnavailable`, `Forbidden`, `NotFound`, …); empty when the API server
    /// sent none (the 1.19/1.20 proxy's 500).
    pub reason: String,
    /// `message`, verbatim.
    pub message: String,
}

impl std::fmt::Display for ApiServerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.code)?;
        if !self.reason.is_empty() {
            write!(f, " {}", self.reason)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ApiServerStatus {
    /// A `Status` body with `status: Failure`: the API server's own answer. Prometheus's
    /// envelope never has `kind` (its `status` is `success` or `error`), and a proxied body
    /// reaches the client unchanged, so this is never Prometheus speaking
    /// (kubernetes/apimachinery pkg/apis/meta/v1/types.go@kubernetes-1.21.1 `Status`).
    pub fn parse(code: u16, body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Status {
            kind: String,
            status: String,
            #[serde(default)]
            message: String,
            #[serde(default)]
            reason: String,
        }
        let s: Status = serde_json::from_slice(body).ok()?;
        (s.kind == "Status" && s.status == "Failure").then_some(ApiServerStatus {
            code,
            reason: s.reason,
            message: s.message,
        })
    }

    /// The proxy not reaching the pod: 503 from 1.21 on, a 500 without reason on 1.19 and 1.20
    /// ("error trying to reach service: …", kubernetes/apimachinery
    /// pkg/util/proxy/transport.go@kubernetes-1.20.7 vs @kubernetes-1.21.1); 503 also for no
    /// ready endpoint; 429 from priority and fairness. Every 5xx and 429 of the API server may
    /// heal, as for every other Kubernetes call (`k8s::wait`); 4xx never do.
    pub fn is_transient(&self) -> bool {
        self.code >= 500 || self.code == 429
    }
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

/// The Prometheus HTTP API client. Cheap to clone; clones share the request counter and the
/// time waited.
#[derive(Clone)]
pub struct PrometheusClient {
    transport: Arc<dyn Transport>,
    retry_deadline: Duration,
    requests: Arc<AtomicU64>,
    /// Nanoseconds spent awaiting the transport (request sent to body read), all requests.
    waiting_ns: Arc<AtomicU64>,
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
            waiting_ns: Arc::new(AtomicU64::new(0)),
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

    /// Time spent awaiting answers so far, from each request sent to its body read (retries
    /// included, the pauses between them not): what a caller's own work is measured against.
    pub fn time_waiting(&self) -> Duration {
        Duration::from_nanos(self.waiting_ns.load(Ordering::Relaxed))
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

    /// Any GET path's HTTP answer as it came (`/api/v1/targets` for an artifact), with the same
    /// retries as every request.
    ///
    /// # Errors
    /// [`PromError::Unreachable`] when nothing answers before the retry deadline; the API
    /// server's own refusal ([`PromError::ApiServer`]).
    pub async fn get_raw(&self, path_and_query: &str) -> Result<HttpResponse, PromError> {
        self.get(path_and_query).await
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

    /// GET with retries of what may heal ([`classify`]) until the retry deadline, on the one
    /// polling loop every wait uses.
    async fn get(&self, path: &str) -> Result<HttpResponse, PromError> {
        let start = tokio::time::Instant::now();
        let target = self.transport.describe();
        let waited = poll_with(self.retry_deadline, RETRY, || async {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sent = std::time::Instant::now();
            let answer = self.transport.get(path).await;
            let waited = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.waiting_ns.fetch_add(waited, Ordering::Relaxed);
            let answer = match answer {
                Ok(resp) => classify(resp, &target),
                Err(TransportError::Connect(last_error)) => Err(PromError::Unreachable {
                    target: target.clone(),
                    waited: start.elapsed(),
                    last_error,
                }),
                Err(TransportError::Other(reason)) => Err(PromError::Request {
                    target: target.clone(),
                    reason,
                }),
            };
            answer.map(Ok::<_, std::convert::Infallible>)
        })
        .await;
        match waited {
            Ok(resp) => Ok(resp),
            Err(Waited::Pending(never)) => match never {},
            // At the deadline: what failed last, and how long the client tried.
            Err(Waited::Failed(e)) if e.is_transient() => Err(PromError::Unreachable {
                target,
                waited: start.elapsed(),
                last_error: match e {
                    PromError::Unreachable { last_error, .. } => last_error,
                    PromError::ApiServer { status, .. } => {
                        format!("the Kubernetes API server answered {status}")
                    }
                    other => other.to_string(),
                },
            }),
            Err(Waited::Failed(e)) => Err(e),
        }
    }
}

/// Pauses between retries: 100 ms doubling to 2 s.
const RETRY: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(2),
};

/// One answer, classified: the API server's own answer ([`ApiServerStatus`]) is an error
/// (transient or not, as it says); a 503 without one is Prometheus not ready yet (transient);
/// anything else is Prometheus's, decoded by the caller.
fn classify(resp: HttpResponse, target: &str) -> Result<HttpResponse, PromError> {
    if !(200..300).contains(&resp.status) {
        if let Some(status) = ApiServerStatus::parse(resp.status, &resp.body) {
            return Err(PromError::ApiServer {
                target: target.to_string(),
                status,
            });
        }
        if resp.status == 503 {
            return Err(PromError::Unreachable {
                target: target.to_string(),
                waited: Duration::ZERO,
                last_error: format!("HTTP 503: {}", body_text(&resp.body)),
            });
        }
    }
    Ok(resp)
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
/// `body`.
pub(crate) fn decode_envelope<'a, T: Deserialize<'a>>(
    status: u16,
    body: &'a [u8],
    what: &str,
) -> Result<(T, Vec<String>), PromError> {
    if status != 200 {
        if let Some(status) = ApiServerStatus::parse(status, body) {
            return Err(PromError::ApiServer {
                target: String::new(),
                status,
            });
        }
    }
    let env: Envelope<T> = match serde_json::from_slice(body) {
        Ok(env) => env,
        // Not the API's JSON: a proxy, a wrong URL, or a non-Prometheus server.
        Err(_) if status != 200 => {
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

/// An instant query's answer (HTTP status and body) that must be an instant vector, as label
/// maps and values, the way [`PrometheusClient::query`] reads answers. Pure.
///
/// # Errors
/// As [`decode_envelope`], and a result that is not an instant vector.
pub(crate) fn decode_vector(
    status: u16,
    body: &[u8],
    what: &str,
) -> Result<QueryResult, PromError> {
    let (data, warnings): (QueryData, _) = decode_envelope(status, body, what)?;
    let decoded = match data.result_type.as_str() {
        "vector" => decode_result(&data),
        other => Err(format!("result type {other:?}; expected an instant vector")),
    };
    let series = decoded.map_err(|detail| PromError::Decode {
        what: what.to_string(),
        detail,
    })?;
    Ok(QueryResult { series, warnings })
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

    /// The service proxy's answers as the API server writes them (TWIN-FACTS §2d, §2e).
    const PROXY_500_1_20: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"error trying to reach service: dial tcp 10.244.0.7:9090: connect: connection refused","code":500}"#;
    const PROXY_503_1_21: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"error trying to reach service: dial tcp 10.244.0.7:9090: connect: connection refused","reason":"ServiceUnavailable","code":503}"#;
    const PROXY_503_NO_ENDPOINTS: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"no endpoints available for service \"prometheus-operated:web\"","reason":"ServiceUnavailable","code":503}"#;
    const PROXY_403: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"services \"prometheus-operated:web\" is forbidden: User \"system:serviceaccount:ci:runner\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"monitoring\"","reason":"Forbidden","details":{"name":"prometheus-operated:web","kind":"services"},"code":403}"#;
    const PROXY_404: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"endpoints \"prometheus-operated\" not found","reason":"NotFound","details":{"name":"prometheus-operated","kind":"endpoints"},"code":404}"#;

    /// A Kubernetes `Status` is the API server speaking, not a Prometheus envelope: its
    /// message and reason are kept (it used to read "Prometheus API error (): ").
    #[test]
    fn a_kubernetes_status_is_the_api_servers_answer_not_a_prometheus_error() {
        let err = decode_envelope::<QueryData>(404, PROXY_404.as_bytes(), "q").unwrap_err();
        match &err {
            PromError::ApiServer { status, .. } => assert_eq!(
                status,
                &ApiServerStatus {
                    code: 404,
                    reason: "NotFound".into(),
                    message: "endpoints \"prometheus-operated\" not found".into()
                }
            ),
            other => panic!("expected the API server's answer, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "the Kubernetes API server answered instead of Prometheus: HTTP 404 NotFound: endpoints \"prometheus-operated\" not found"
        );
        assert!(!err.is_transient());
        // The 1.19/1.20 proxy's 500 has no reason; it still reads as the API server's.
        let err = decode_envelope::<QueryData>(500, PROXY_500_1_20.as_bytes(), "q").unwrap_err();
        assert!(
            err.to_string().ends_with(": HTTP 500: error trying to reach service: dial tcp 10.244.0.7:9090: connect: connection refused"),
            "{err}"
        );
        assert!(err.is_transient());
        // Prometheus's own error envelope is not mistaken for one.
        let body = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(matches!(
            decode_envelope::<QueryData>(400, body, "q"),
            Err(PromError::Api { .. })
        ));
    }

    #[tokio::test]
    async fn the_proxy_not_reaching_prometheus_is_retried_on_every_version() {
        let status = |code, body: &'static str| {
            Ok(HttpResponse {
                status: code,
                body: Bytes::from_static(body.as_bytes()),
            })
        };
        let t = Scripted {
            answers: Mutex::new(vec![
                status(503, PROXY_503_NO_ENDPOINTS),
                status(500, PROXY_500_1_20),
                status(503, PROXY_503_1_21),
                ok("Prometheus is Ready."),
            ]),
        };
        let client = PrometheusClient::with_transport(Arc::new(t), Duration::from_secs(30));
        client.ready().await.unwrap();
        assert_eq!(client.request_count(), 4);
    }

    #[tokio::test]
    async fn a_proxy_that_keeps_failing_is_unreachable_with_the_api_servers_words() {
        let t = Scripted {
            answers: Mutex::new(
                (0..100)
                    .map(|_| {
                        Ok(HttpResponse {
                            status: 500,
                            body: Bytes::from_static(PROXY_500_1_20.as_bytes()),
                        })
                    })
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
                assert_eq!(last_error, "the Kubernetes API server answered HTTP 500: error trying to reach service: dial tcp 10.244.0.7:9090: connect: connection refused");
                assert!(*waited >= Duration::from_millis(500), "{waited:?}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        assert!(client.request_count() > 2);
    }

    #[tokio::test]
    async fn forbidden_and_not_found_from_the_proxy_fail_at_once_with_their_message() {
        for (code, body, words) in [
            (403, PROXY_403, "HTTP 403 Forbidden: services \"prometheus-operated:web\" is forbidden: User \"system:serviceaccount:ci:runner\" cannot get resource \"services/proxy\""),
            (404, PROXY_404, "HTTP 404 NotFound: endpoints \"prometheus-operated\" not found"),
        ] {
            let t = Scripted {
                answers: Mutex::new(vec![Ok(HttpResponse {
                    status: code,
                    body: Bytes::from_static(body.as_bytes()),
                })]),
            };
            let client = PrometheusClient::with_transport(Arc::new(t), Duration::from_secs(30));
            let err = client.targets().await.unwrap_err();
            assert!(
                matches!(&err, PromError::ApiServer { target, status } if target == "scripted" && status.code == code),
                "{err:?}"
            );
            assert!(err.to_string().contains(words), "{err}");
            assert!(err.to_string().contains("for scripted"), "{err}");
            assert_eq!(client.request_count(), 1, "{code} is not retried");
        }
    }

    #[test]
    fn what_heals_is_transient() {
        let unreachable = PromError::Unreachable {
            target: "t".into(),
            waited: Duration::from_secs(1),
            last_error: "connection refused".into(),
        };
        assert!(unreachable.is_transient());
        let bad_query = PromError::Api {
            error_type: "bad_data".into(),
            error: "parse error".into(),
            warnings: vec![],
        };
        assert!(!bad_query.is_transient());
        assert!(!PromError::Http {
            status: 502,
            body: "bad gateway".into()
        }
        .is_transient());
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

    /// Answers after blocking its thread for `delay`.
    struct Slow {
        delay: Duration,
    }

    impl Transport for Slow {
        fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<HttpResponse, TransportError>> {
            Box::pin(async move {
                std::thread::sleep(self.delay);
                ok("Prometheus is Ready.")
            })
        }
        fn describe(&self) -> String {
            "slow".into()
        }
    }

    #[tokio::test]
    async fn time_waiting_counts_only_the_transport_and_is_shared_by_clones() {
        let client = PrometheusClient::with_transport(
            Arc::new(Slow {
                delay: Duration::from_millis(30),
            }),
            Duration::from_secs(1),
        );
        assert_eq!(client.time_waiting(), Duration::ZERO);
        let clone = client.clone().with_retry_deadline(Duration::from_secs(2));
        clone.get_raw("/-/ready").await.unwrap();
        client.get_raw("/-/ready").await.unwrap();
        let waited = client.time_waiting();
        assert!(waited >= Duration::from_millis(60), "{waited:?}");
        assert_eq!(clone.time_waiting(), waited);
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
