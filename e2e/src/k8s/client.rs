//! A client for one cluster, from an explicit kubeconfig only.

use anyhow::{bail, Context, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::Path;

/// A client for the cluster in `kubeconfig` (its current context). Never falls back to
/// `$KUBECONFIG` or `~/.kube/config`: a harness that may create and delete things must not
/// pick up a developer's production context by accident.
///
/// # Errors
/// The file is missing or not a kubeconfig, or has no usable current context.
pub async fn kube_client(kubeconfig: &Path) -> Result<Client> {
    if !kubeconfig.is_file() {
        bail!(
            "kubeconfig {} does not exist or is not a file; pass the path kind wrote \
             (target/e2e/<name>/kubeconfig) or --kubeconfig PATH",
            kubeconfig.display()
        );
    }
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read kubeconfig {}", kubeconfig.display()))?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| {
            format!(
                "kubeconfig {} has no usable current context (check `current-context` and its cluster/user)",
                kubeconfig.display()
            )
        })?;
    // kube 5 retries 429/503/504 by default, up to 15 times with backoff growing towards
    // 1000 s (kube-client `client/retry.rs`, `RetryPolicy::server_retry`): a service proxy
    // answering 503 "no endpoints available" held `doctor` for minutes past every deadline.
    // Our callers retry transient errors themselves, within the deadline they were given
    // (`wait::poll_until`, the Prometheus client's retry deadline).
    config.default_retry = false;
    Client::try_from(config)
        .with_context(|| format!("cannot build a client from {}", kubeconfig.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A 503 (a service proxy with no endpoints) reaches the caller at once: kube's own retry
    /// layer would repeat it for minutes, past the caller's deadline.
    #[tokio::test]
    async fn the_client_does_not_retry_503_behind_the_callers_back() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "no endpoints available for service \"prometheus-operated\"",
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
                 clusters: [{{name: c, cluster: {{server: 'http://{addr}'}}}}]\n\
                 users: [{{name: u, user: {{token: t}}}}]\n\
                 contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n"
            ),
        )
        .unwrap();
        let client = kube_client(&kubeconfig).await.unwrap();
        let request = http::Request::get("/api/v1/namespaces/monitoring/services/x/proxy/")
            .body(kube::client::Body::empty())
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), client.send(request))
            .await
            .expect("one 503 comes back at once")
            .unwrap();
        assert_eq!(answer.status(), 503);
        assert_eq!(hits.load(Ordering::SeqCst), 1, "the 503 was retried");
    }

    #[tokio::test]
    async fn kube_client_refuses_a_missing_kubeconfig_and_never_falls_back() {
        let Err(err) = kube_client(Path::new("/nonexistent/kubeconfig")).await else {
            panic!("a missing kubeconfig must be refused");
        };
        let msg = format!("{err:#}");
        assert!(
            msg.contains("/nonexistent/kubeconfig") && msg.contains("--kubeconfig"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn kube_client_reports_a_malformed_kubeconfig_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, "clusters: [unterminated\n").unwrap();
        let Err(err) = kube_client(&path).await else {
            panic!("a malformed kubeconfig must be refused");
        };
        assert!(
            format!("{err:#}").contains(&path.display().to_string()),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn kube_client_builds_from_an_explicit_file_without_contacting_the_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    token: t\n",
        )
        .unwrap();
        let client = kube_client(&path).await.unwrap();
        assert_eq!(client.default_namespace(), "default");
    }
}
