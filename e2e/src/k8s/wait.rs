//! One polling wait for every "until the cluster reaches a state" step, so that all of them treat
//! failures alike: transient errors (no connection yet, 5xx, 429, a Prometheus not answering yet)
//! are retried until the caller's deadline, anything else fails at once, and at the deadline the
//! caller gets the last thing the wait saw to explain itself with. Whether an error is transient
//! is said by the error itself ([`Transient`]); the waits for nodes, Deployments and StatefulSets,
//! and the Prometheus client's retries, are built on [`poll_with`].

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};
use std::future::Future;
use std::time::{Duration, Instant};

/// How often the object waits below look.
const POLL: Duration = Duration::from_secs(2);

/// Why a wait gave up: the caller branches on the variant (timeout or API trouble); the
/// message says what was seen last and what to do.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed with the condition unmet.
    #[error("{what} after {waited:?}: {state}; {fix}")]
    Timeout {
        /// What was not reached, e.g. "Deployment default/x not Available".
        what: String,
        /// The deadline the caller gave.
        waited: Duration,
        /// What the wait saw last (pods, conditions, missing parts).
        state: String,
        /// What to check or change.
        fix: String,
    },
    /// The API server refused (a permanent error, at once), or a transient error lasted until
    /// the deadline (then the source reads `still failing after N s: <last error>`).
    #[error("waiting for {what}")]
    Api {
        /// The condition waited for.
        what: String,
        /// The deadline the caller gave.
        waited: Duration,
        /// The permanent error, or the last transient one.
        #[source]
        source: anyhow::Error,
    },
}

impl WaitError {
    /// [`WaitError::Api`] from a [`Waited::Failed`] error.
    pub fn api(what: impl Into<String>, waited: Duration, source: anyhow::Error) -> Self {
        WaitError::Api {
            what: what.into(),
            waited,
            source,
        }
    }
}

/// What a wait saw last when it gave up.
#[derive(Debug)]
pub enum Waited<S, E = anyhow::Error> {
    /// The deadline passed with the condition unmet; the last observation.
    Pending(S),
    /// The last probe failed: a permanent error (returned at once), or a transient one that
    /// lasted until the deadline (its [`Transient::is_transient`] says which), or no answer
    /// before it ([`NoAnswer`]).
    Failed(E),
}

/// Whether an error may go away by itself, so that a wait retries it until its deadline. Each
/// error type a wait can see answers for itself; [`poll_with`] only asks.
pub trait Transient {
    /// True when the same request may succeed later (nothing answered yet, a 5xx, a 429); false
    /// when asking again cannot change the answer (a refusal, a bad request).
    fn is_transient(&self) -> bool;
}

/// The Kubernetes API server: not answering yet (connection refused, TLS, timeouts), a 5xx (an
/// apiserver still starting answers 503, TWIN-FACTS §2a) or 429 (priority and fairness) may heal;
/// a 4xx other than 429 never does, nor does a server-side apply the schema refuses
/// ([`is_schema_refusal`]). Bad requests, serde, discovery and auth configuration errors stay
/// what they are.
impl Transient for kube::Error {
    fn is_transient(&self) -> bool {
        match self {
            kube::Error::Api(status) => {
                (status.code >= 500 || status.code == 429) && !is_schema_refusal(status)
            }
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
                true
            }
            _ => false,
        }
    }
}

/// A server-side apply the API server answered with HTTP 500 although retrying cannot help: the
/// object does not fit the type's schema. The apply handler turns structured-merge-diff's type
/// errors into a plain error, so they reach the client as 500 InternalError
/// (kubernetes/apiserver pkg/endpoints/handlers/fieldmanager/structuredmerge.go@kubernetes-1.19.11
/// "failed to create typed patch object: %v"; kubernetes/apimachinery
/// pkg/util/managedfields/internal/structuredmerge.go@kubernetes-1.27.3 adds the object's name
/// and kind). The fragments are structured-merge-diff's (kubernetes-sigs/structured-merge-diff
/// typed/helpers.go@v4.0.3 "omits key field", typed/validate.go@v4.0.3 "field not declared in
/// schema"). Any 400 or 422 is permanent already, as every 4xx but 429.
pub fn is_schema_refusal(status: &kube::core::Status) -> bool {
    status.code == 500
        && [
            "failed to create typed patch object",
            "field not declared in schema",
            "omits key field",
        ]
        .iter()
        .any(|m| status.message.contains(m))
}

/// An error from `anyhow` is as transient as the first Kubernetes error in its chain; one without
/// any (a probe's own error) counts as transient. Probes whose errors carry their own
/// classification ([`crate::prometheus::PromError`]) use [`poll_with`] with that type instead.
impl Transient for anyhow::Error {
    fn is_transient(&self) -> bool {
        match self.chain().find_map(|c| c.downcast_ref::<kube::Error>()) {
            Some(kube) => kube.is_transient(),
            None => true,
        }
    }
}

/// A probe still running `every` past the deadline: nothing answered in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no answer within {within:?}")]
pub struct NoAnswer {
    /// The deadline the caller gave.
    pub within: Duration,
}

impl Transient for NoAnswer {
    fn is_transient(&self) -> bool {
        true
    }
}

/// Time between probes: `first`, doubling after each probe up to `max` (constant when equal).
/// A probe still running at the deadline gets `max` more before it is abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first pause.
    pub first: Duration,
    /// The longest pause, and how long a probe may run past the deadline.
    pub max: Duration,
}

impl Backoff {
    /// The same pause every time.
    pub const fn constant(every: Duration) -> Self {
        Backoff {
            first: every,
            max: every,
        }
    }
}

/// Time left until `deadline` (zero when passed).
pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// `N s` (whole seconds), or `N ms` under a second, for "still failing after …".
fn after(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Calls `probe` every `every` until it returns `Ok(Ok(value))`, and returns that value.
///
/// `probe` returns `Ok(Err(observation))` while the condition is not met yet, and `Err` when it
/// could not look. Transient errors ([`Transient`]; for `anyhow`, the first Kubernetes error of
/// the chain decides) are retried until the deadline.
///
/// # Errors
/// [`Waited::Failed`] at once for a permanent error; at the deadline [`Waited::Pending`] with the
/// last observation, or [`Waited::Failed`] with the last transient error under the context
/// "still failing after N s" (or [`NoAnswer`] when none answered).
///
/// # Caveats
/// The condition is always probed at least once, even with a zero timeout. A probe still running
/// at the deadline is abandoned after at most `every` more.
pub async fn poll_until<T, S, F, Fut>(
    timeout: Duration,
    every: Duration,
    probe: F,
) -> Result<T, Waited<S>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Result<T, S>>>,
{
    match poll_with(timeout, Backoff::constant(every), probe).await {
        Err(Waited::Failed(e)) if e.is_transient() && e.downcast_ref::<NoAnswer>().is_none() => {
            Err(Waited::Failed(
                e.context(format!("still failing after {}", after(timeout))),
            ))
        }
        other => other,
    }
}

/// [`poll_until`] for probes with a typed error `E` that classifies itself, with pauses from
/// `backoff`. The one polling loop: every wait, and the Prometheus client's retries, run on it.
///
/// # Errors
/// [`Waited::Failed`] at once for a permanent error (`!e.is_transient()`); at the deadline
/// [`Waited::Pending`] with the last observation, or [`Waited::Failed`] with the last transient
/// error (or `E::from(NoAnswer)` when no probe answered).
///
/// # Caveats
/// As [`poll_until`], with `backoff.max` as the time a probe may run past the deadline.
pub async fn poll_with<T, S, E, F, Fut>(
    timeout: Duration,
    backoff: Backoff,
    mut probe: F,
) -> Result<T, Waited<S, E>>
where
    E: Transient + From<NoAnswer> + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, S>, E>>,
{
    // tokio's clock, so tests can pause it; the same as the system's otherwise.
    let deadline = tokio::time::Instant::now() + timeout;
    let remaining = || deadline.saturating_duration_since(tokio::time::Instant::now());
    let mut last: Option<Waited<S, E>> = None;
    let mut pause = backoff.first;
    loop {
        // A probe gets `backoff.max` past the deadline, so even a zero timeout looks once, and a
        // probe with its own deadline equal to ours (a client's retries) reports its error
        // instead of racing our cut.
        let bound = remaining() + backoff.max;
        match tokio::time::timeout(bound, probe()).await {
            Ok(Ok(Ok(done))) => return Ok(done),
            Ok(Ok(Err(observed))) => last = Some(Waited::Pending(observed)),
            Ok(Err(e)) if !e.is_transient() => return Err(Waited::Failed(e)),
            Ok(Err(e)) => {
                tracing::debug!("transient error, retrying until the deadline: {e}");
                last = Some(Waited::Failed(e));
            }
            Err(_elapsed) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(
                last.unwrap_or_else(|| Waited::Failed(E::from(NoAnswer { within: timeout })))
            );
        }
        tokio::time::sleep(pause.min(remaining())).await;
        pause = (pause * 2).min(backoff.max);
    }
}

/// Waits until there is at least one Node and every Node is `Ready` (kind's `--wait` covers
/// only the control plane).
///
/// # Errors
/// When the deadline passes, naming the nodes that are not Ready and why; at once for a
/// permanent API error (see [`poll_until`]).
///
/// # Caveats
/// kind's `--wait` can time out and still exit 0, so the API server may not answer at first:
/// that is a transient error, retried until the deadline like every other wait's.
pub async fn wait_nodes_ready(client: &Client, timeout: Duration) -> Result<(), WaitError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let waited = poll_until(timeout, POLL, || async {
        let list = nodes
            .list(&ListParams::default())
            .await
            .context("cannot list nodes")?;
        let not_ready = not_ready_nodes(&list.items);
        if !list.items.is_empty() && not_ready.is_empty() {
            return Ok(Ok(()));
        }
        Ok(Err((list.items.len(), not_ready)))
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Pending((0, _))) => Err(WaitError::Timeout {
            what: "no Node registered".into(),
            waited: timeout,
            state: "the API server lists no nodes".into(),
            fix: "check the kubelet logs (kind export logs)".into(),
        }),
        Err(Waited::Pending((total, not_ready))) => Err(WaitError::Timeout {
            what: format!("{} of {total} nodes not Ready", not_ready.len()),
            waited: timeout,
            state: not_ready.join("; "),
            fix: "check the kubelet and CNI logs (kind export logs) or raise --timeout".into(),
        }),
        Err(Waited::Failed(e)) => Err(WaitError::api(
            "every node to be Ready (is the API server up?)",
            timeout,
            e,
        )),
    }
}

/// Nodes whose `Ready` condition is not `True`, each with the condition's reason/message.
pub fn not_ready_nodes(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|node| {
            let name = node.metadata.name.clone().unwrap_or_default();
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
            match ready {
                Some(c) if c.status == "True" => None,
                Some(c) => Some(format!(
                    "{name} (Ready={}: {} {})",
                    c.status,
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or("")
                )),
                None => Some(format!("{name} (no Ready condition yet)")),
            }
        })
        .collect()
}

/// Waits for a Deployment's `Available` condition; on timeout says what its pods are doing.
///
/// # Errors
/// When the deadline passes (with the pods' state), or at once for a permanent API error.
pub async fn wait_deployment_available(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let waited = poll_until(timeout, POLL, || async {
        let deployment = api
            .get_opt(name)
            .await
            .with_context(|| format!("cannot get Deployment {ns}/{name}"))?;
        match deployment {
            Some(d) if deployment_available(&d) => Ok(Ok(())),
            other => Ok(Err(other)),
        }
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Pending(deployment)) => {
            let selector = deployment
                .as_ref()
                .and_then(|d| d.spec.as_ref())
                .and_then(|s| s.selector.match_labels.as_ref())
                .map(label_selector);
            let pods = crate::pods::describe_pods(client, ns, selector.as_deref()).await;
            Err(WaitError::Timeout {
                what: format!("Deployment {ns}/{name} not Available"),
                waited: timeout,
                state: format!("pods: {pods}"),
                fix: "the pods' state says why; raise --timeout if they are still starting".into(),
            })
        }
        Err(Waited::Failed(e)) => Err(WaitError::api(
            format!("Deployment {ns}/{name} to be Available"),
            timeout,
            e,
        )),
    }
}

/// `Available=True` and the latest spec rolled out: on a re-run (`--reuse`) a changed
/// Deployment is "Available" while old pods still serve, and those must not be counted.
pub fn deployment_available(d: &Deployment) -> bool {
    let Some(status) = d.status.as_ref() else {
        return false;
    };
    let available = status.conditions.as_ref().is_some_and(|cs| {
        cs.iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    });
    let observed = match (d.metadata.generation, status.observed_generation) {
        (Some(generation), Some(observed)) => observed >= generation,
        (Some(_), None) => false,
        (None, _) => true,
    };
    let rolled_out = match d.spec.as_ref() {
        Some(spec) => {
            let wanted = spec.replicas.unwrap_or(1);
            status.updated_replicas.unwrap_or(0) >= wanted
                && status.available_replicas.unwrap_or(0) >= wanted
                && status.replicas.unwrap_or(0) == wanted
        }
        None => true,
    };
    available && observed && rolled_out
}

/// Waits until StatefulSet `ns/name` exists and all its replicas are ready.
///
/// # Errors
/// When the deadline passes (saying whether the StatefulSet was ever created, and what its pods
/// are doing), or at once for a permanent API error.
pub async fn wait_statefulset_ready(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let waited = poll_until(timeout, POLL, || async {
        let sts = api
            .get_opt(name)
            .await
            .with_context(|| format!("cannot get StatefulSet {ns}/{name}"))?;
        match sts {
            Some(s) if statefulset_ready(&s) => Ok(Ok(())),
            other => Ok(Err(other)),
        }
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Pending(None)) => Err(WaitError::Timeout {
            what: format!("StatefulSet {ns}/{name} was never created"),
            waited: timeout,
            state: "prometheus-operator creates it from the Prometheus CR".into(),
            fix: "check the operator log (default/prometheus-operator) for errors about the CR or RBAC"
                .into(),
        }),
        Err(Waited::Pending(Some(sts))) => {
            let selector = sts
                .spec
                .as_ref()
                .and_then(|s| s.selector.match_labels.as_ref())
                .map(label_selector);
            let pods = crate::pods::describe_pods(client, ns, selector.as_deref()).await;
            Err(WaitError::Timeout {
                what: format!("StatefulSet {ns}/{name} not ready"),
                waited: timeout,
                state: format!("pods: {pods}"),
                fix: "the pods' state says why; raise --timeout if they are still starting".into(),
            })
        }
        Err(Waited::Failed(e)) => Err(WaitError::api(
            format!("StatefulSet {ns}/{name} to be ready"),
            timeout,
            e,
        )),
    }
}

/// At least one replica wanted, all of them ready, and the latest revision rolled out (on a
/// re-run the operator may have just changed the pod template).
pub fn statefulset_ready(sts: &StatefulSet) -> bool {
    let wanted = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = sts.status.as_ref() else {
        return false;
    };
    let ready = status.ready_replicas.unwrap_or(0);
    let observed = match sts.metadata.generation {
        Some(generation) => status.observed_generation.is_some_and(|o| o >= generation),
        None => true,
    };
    let rolled_out = match (&status.current_revision, &status.update_revision) {
        (Some(current), Some(update)) => current == update,
        _ => true,
    };
    wanted >= 1 && ready >= wanted && observed && rolled_out
}

fn label_selector(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use serde_json::json;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn api_error(code: u16) -> anyhow::Error {
        let status = Status::failure("boom", "").with_code(code);
        anyhow::Error::new(kube::Error::Api(Box::new(status))).context("cannot get it")
    }

    #[test]
    fn transient_means_5xx_429_and_transport() {
        assert!(api_error(503).is_transient());
        assert!(api_error(500).is_transient());
        assert!(api_error(429).is_transient());
        assert!(!api_error(403).is_transient());
        assert!(!api_error(404).is_transient());
        assert!(!api_error(422).is_transient());
        // A probe's own error (nothing from the API server in its chain) may heal.
        assert!(anyhow::anyhow!("not a kube error").is_transient());
        assert!(NoAnswer {
            within: Duration::from_secs(1)
        }
        .is_transient());
    }

    /// kube errors are found through `anyhow` contexts, whatever wraps them.
    #[test]
    fn the_first_kube_error_of_the_chain_decides() {
        let e = api_error(403).context("outer").context("outermost");
        assert!(!e.is_transient());
        let e = api_error(503).context("outer");
        assert!(e.is_transient());
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let got = poll_until(Duration::from_secs(5), Duration::from_millis(1), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(api_error(503)),
                2 => Ok(Err("not yet")),
                n => Ok(Ok(n)),
            }
        })
        .await;
        assert_eq!(got.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_permanent_error_fails_at_once() {
        let calls = AtomicU32::new(0);
        let got: Result<(), Waited<()>> = poll_until(
            Duration::from_secs(60),
            Duration::from_millis(1),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(api_error(403))
            },
        )
        .await;
        assert!(matches!(got, Err(Waited::Failed(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_deadline_returns_the_last_observation() {
        let got: Result<(), Waited<&str>> = poll_until(
            Duration::from_millis(50),
            Duration::from_millis(5),
            || async { Ok(Err("still 1 of 3")) },
        )
        .await;
        assert!(matches!(got, Err(Waited::Pending("still 1 of 3"))));
    }

    #[tokio::test]
    async fn a_zero_timeout_still_looks_once() {
        let got: Result<u8, Waited<()>> =
            poll_until(Duration::ZERO, Duration::from_millis(100), || async {
                Ok(Ok(7))
            })
            .await;
        assert_eq!(got.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_transient_error_at_the_deadline_is_returned() {
        let got: Result<(), Waited<()>> = poll_until(
            Duration::from_millis(50),
            Duration::from_millis(5),
            || async { Err(api_error(503)) },
        )
        .await;
        match got {
            Err(Waited::Failed(e)) => {
                assert!(e.is_transient());
                // Never "rejected": the wording says the failure lasted until the deadline.
                let text = crate::errors::error_chain(e.as_ref());
                assert!(
                    text.starts_with("still failing after 50 ms: cannot get it: "),
                    "{text}"
                );
            }
            other => panic!("expected the last transient error, got {other:?}"),
        }
    }

    /// A probe that keeps its own deadline equal to the wait's (the Prometheus client's retries)
    /// answers a moment after it: its error is what the wait reports, not "no answer".
    #[tokio::test(start_paused = true)]
    async fn a_probe_answering_just_after_the_deadline_is_heard() {
        let got: Result<(), Waited<()>> = poll_until(
            Duration::from_secs(2),
            Duration::from_millis(200),
            || async {
                tokio::time::sleep(Duration::from_millis(2050)).await;
                Err(anyhow::anyhow!("connection refused"))
            },
        )
        .await;
        match got {
            Err(Waited::Failed(e)) => assert_eq!(
                crate::errors::error_chain(e.as_ref()),
                "still failing after 2 s: connection refused"
            ),
            other => panic!("expected the probe's own error, got {other:?}"),
        }
    }

    /// A probe that never answers is abandoned `every` past the deadline.
    #[tokio::test(start_paused = true)]
    async fn a_hanging_probe_is_abandoned_every_past_the_deadline() {
        let start = tokio::time::Instant::now();
        let got: Result<(), Waited<()>> =
            poll_until(Duration::from_secs(2), Duration::from_millis(200), || {
                std::future::pending()
            })
            .await;
        assert_eq!(start.elapsed(), Duration::from_millis(2200));
        match got {
            Err(Waited::Failed(e)) => assert!(e.to_string().contains("no answer within"), "{e}"),
            other => panic!("expected no answer, got {other:?}"),
        }
    }

    /// A typed error that says itself whether it heals, for [`poll_with`].
    #[derive(Debug, thiserror::Error)]
    enum Probe {
        #[error("transient")]
        Again,
        #[error("permanent")]
        Never,
        #[error("{0}")]
        NoAnswer(#[from] NoAnswer),
    }

    impl Transient for Probe {
        fn is_transient(&self) -> bool {
            !matches!(self, Probe::Never)
        }
    }

    /// The pauses double from `first` to `max`; the typed error comes back as it is.
    #[tokio::test(start_paused = true)]
    async fn poll_with_backs_off_and_keeps_the_typed_error() {
        let start = tokio::time::Instant::now();
        let mut at = Vec::new();
        let got: Result<(), Waited<(), Probe>> = poll_with(
            Duration::from_millis(3000),
            Backoff {
                first: Duration::from_millis(100),
                max: Duration::from_millis(1000),
            },
            || {
                at.push(start.elapsed().as_millis());
                async { Err(Probe::Again) }
            },
        )
        .await;
        assert!(matches!(got, Err(Waited::Failed(Probe::Again))), "{got:?}");
        // 100, 200, 400, 800, then 1000 each, the last cut short at the deadline.
        assert_eq!(at, [0, 100, 300, 700, 1500, 2500, 3000]);

        let calls = AtomicU32::new(0);
        let got: Result<(), Waited<(), Probe>> = poll_with(
            Duration::from_secs(60),
            Backoff::constant(Duration::from_millis(1)),
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(Probe::Never) }
            },
        )
        .await;
        assert!(matches!(got, Err(Waited::Failed(Probe::Never))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let got: Result<(), Waited<(), Probe>> = poll_with(
            Duration::from_secs(1),
            Backoff::constant(Duration::from_millis(100)),
            std::future::pending,
        )
        .await;
        assert!(
            matches!(&got, Err(Waited::Failed(Probe::NoAnswer(n))) if n.within == Duration::from_secs(1)),
            "{got:?}"
        );
    }

    fn node(name: &str, ready: Option<&str>) -> Node {
        let conditions = ready.map(|s| {
            json!([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": s, "reason": "KubeletNotReady", "message": "cni not initialized"}])
        });
        serde_json::from_value(
            json!({"metadata": {"name": name}, "status": {"conditions": conditions}}),
        )
        .unwrap()
    }

    #[test]
    fn not_ready_nodes_names_each_with_its_reason() {
        let nodes = [
            node("cp", Some("True")),
            node("w1", Some("False")),
            node("w2", None),
        ];
        let not_ready = not_ready_nodes(&nodes);
        assert_eq!(not_ready.len(), 2);
        assert!(
            not_ready[0].starts_with("w1 (Ready=False: KubeletNotReady cni not initialized"),
            "{not_ready:?}"
        );
        assert_eq!(not_ready[1], "w2 (no Ready condition yet)");
    }

    #[test]
    fn statefulset_and_deployment_readiness() {
        let sts = |replicas: Option<i32>, ready: Option<i32>| -> StatefulSet {
            serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"replicas": replicas, "selector": {}, "serviceName": "x", "template": {}}, "status": {"replicas": 1, "readyReplicas": ready}})).unwrap()
        };
        assert!(statefulset_ready(&sts(Some(1), Some(1))));
        assert!(statefulset_ready(&sts(None, Some(1))));
        assert!(!statefulset_ready(&sts(Some(2), Some(1))));
        assert!(!statefulset_ready(&sts(Some(1), None)));
        assert!(!statefulset_ready(&sts(Some(0), Some(0))));
        let rolling: StatefulSet =
            serde_json::from_value(json!({"metadata": {"name": "p", "generation": 3},
            "spec": {"replicas": 1, "selector": {}, "serviceName": "x", "template": {}},
            "status": {"replicas": 1, "readyReplicas": 1, "observedGeneration": 3,
                       "currentRevision": "p-1", "updateRevision": "p-2"}}))
            .unwrap();
        assert!(!statefulset_ready(&rolling), "old revision still running");

        let dep = |status: &str| -> Deployment {
            serde_json::from_value(json!({"metadata": {"name": "d"}, "status": {"conditions": [
                {"type": "Progressing", "status": "True"}, {"type": "Available", "status": status}]}}))
            .unwrap()
        };
        assert!(deployment_available(&dep("True")));
        assert!(!deployment_available(&dep("False")));

        // Mid-rollout: Available (old pods serve) but the new spec is not out yet.
        let rollout = |generation: i64, observed: i64, updated: i32, total: i32| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "d", "generation": generation},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
                "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                           "availableReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]}}))
            .unwrap()
        };
        assert!(deployment_available(&rollout(2, 2, 2, 2)));
        assert!(
            !deployment_available(&rollout(2, 1, 2, 2)),
            "spec change not yet observed"
        );
        assert!(
            !deployment_available(&rollout(2, 2, 1, 3)),
            "an old pod is still there"
        );
    }
}
