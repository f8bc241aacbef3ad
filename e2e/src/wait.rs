//! One polling wait for every "until the cluster reaches a state" step, so that all of them treat
//! the API server alike: transient errors (no connection yet, 5xx, 429) are retried until the
//! caller's deadline, anything else fails at once, and at the deadline the caller gets the last
//! thing the wait saw to explain itself with.

use std::future::Future;
use std::time::{Duration, Instant};

/// What a wait saw last when it gave up.
#[derive(Debug)]
pub enum Waited<S> {
    /// The deadline passed with the condition unmet; the last observation.
    Pending(S),
    /// The last probe failed: a permanent error (returned at once), or a transient one that
    /// lasted until the deadline, or no answer before it.
    Failed(anyhow::Error),
}

/// Time left until `deadline` (zero when passed).
pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Whether an error from a Kubernetes API call may go away by itself: the API server not
/// answering yet (connection refused, TLS, timeouts), a 5xx (an apiserver still starting answers
/// 503, TWIN-FACTS §2a) or 429 (priority and fairness). A 4xx other than 429 never heals and is
/// reported at once. Errors that do not come from the kube client count as transient.
pub fn is_transient(err: &anyhow::Error) -> bool {
    match err.chain().find_map(|c| c.downcast_ref::<kube::Error>()) {
        Some(kube::Error::Api(status)) => status.code >= 500 || status.code == 429,
        Some(kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_)) => {
            true
        }
        // Bad requests, serde, discovery, auth config: retrying changes nothing.
        Some(_) => false,
        None => true,
    }
}

/// Calls `probe` every `every` until it returns `Ok(Ok(value))`, and returns that value.
///
/// `probe` returns `Ok(Err(observation))` while the condition is not met yet, and `Err` when it
/// could not look. Transient errors ([`is_transient`]) are retried until the deadline.
///
/// # Errors
/// [`Waited::Failed`] at once for a permanent error; at the deadline [`Waited::Pending`] with the
/// last observation, or [`Waited::Failed`] with the last transient error (or none answered).
///
/// # Caveats
/// The condition is always probed at least once, even with a zero timeout. A probe still running
/// at the deadline is abandoned after at most `every` more.
pub async fn poll_until<T, S, F, Fut>(
    timeout: Duration,
    every: Duration,
    mut probe: F,
) -> Result<T, Waited<S>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Result<T, S>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last: Option<Waited<S>> = None;
    loop {
        // Every probe may take at least `every`, so even a zero timeout looks once.
        let bound = remaining(deadline).max(every);
        match tokio::time::timeout(bound, probe()).await {
            Ok(Ok(Ok(done))) => return Ok(done),
            Ok(Ok(Err(observed))) => last = Some(Waited::Pending(observed)),
            Ok(Err(e)) if !is_transient(&e) => return Err(Waited::Failed(e)),
            Ok(Err(e)) => {
                tracing::debug!("transient error, retrying until the deadline: {e:#}");
                last = Some(Waited::Failed(e));
            }
            Err(_elapsed) => {}
        }
        if Instant::now() >= deadline {
            return Err(last.unwrap_or_else(|| {
                Waited::Failed(anyhow::anyhow!("no answer within {timeout:?}"))
            }));
        }
        tokio::time::sleep(every.min(remaining(deadline))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn api_error(code: u16) -> anyhow::Error {
        let status = Status::failure("boom", "").with_code(code);
        anyhow::Error::new(kube::Error::Api(Box::new(status))).context("cannot get it")
    }

    #[test]
    fn transient_means_5xx_429_and_transport() {
        assert!(is_transient(&api_error(503)));
        assert!(is_transient(&api_error(500)));
        assert!(is_transient(&api_error(429)));
        assert!(!is_transient(&api_error(403)));
        assert!(!is_transient(&api_error(404)));
        assert!(is_transient(&anyhow::anyhow!("not a kube error")));
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
            Err(Waited::Failed(e)) => assert!(is_transient(&e)),
            other => panic!("expected the last transient error, got {other:?}"),
        }
    }
}
