//! Test machinery shared by every test tier and benchmark; dev-only (`publish = false`), never a
//! dependency of the library or of `xtask`'s binary.
//!
//! - [`kubelet`]: [`FixtureKubelet`], an HTTPS server that behaves like a kubelet's port 10250 for
//!   Prometheus: bearer-token auth (401 / 403), `/metrics/cadvisor` with the kubelet 1.21 label set
//!   and explicit timestamps, `/metrics` without any `container_` series, or a node-exporter's
//!   `/metrics` ([`Mode::NodeExporter`]), or a given body such as a real capture
//!   ([`Mode::RawCadvisor`], with [`e2e::relabel::strip_timestamps`] to drop its timestamps and [`exposition`] to remove rows). Pods can change at runtime.
//! - [`prometheus`]: [`PrometheusSetup`] → [`RunningPrometheus`], a real Prometheus in Docker
//!   (testcontainers, host network) running the scrape job prometheus-operator v0.48.1 generates
//!   for the cadvisor ServiceMonitor (`e2e::operator::scrape_config`), with file_sd targets pointing at
//!   fixture kubelets. The container is removed when the handle drops, also when a test panics.
//! - [`served`]: [`served::ServedPod`], a twin pod that really answers behind a Service, for the
//!   service proxy's tests without Docker.
//!
//! Typical use:
//! ```ignore
//! let kubelet = FixtureKubelet::start(KubeletOptions::default(), vec![FixturePod::new("apps", "web", &["app"])]).await?;
//! let prom = PrometheusSetup::new().kubelet(&kubelet).start().await?;
//! let report = e2e::coverage::check(&prom.client(), &kubelet.running_pods(), &opts, &mut |_| {}).await?;
//! ```

pub mod exposition;
pub mod file_sd;
pub mod kubelet;
pub mod prometheus;
pub mod served;
pub mod tls;
pub mod twin;

pub use exposition::without_samples;
pub use kubelet::*;
pub use prometheus::*;
pub use tls::install_crypto_provider;

/// Label on every container these tests start (`.ci/run` removes leftovers by it), the
/// image operator v0.48.1 deploys (used when `E2E_PROMETHEUS_IMAGE` is unset), and the label
/// whose value is unique per container: the library's, shared with `cargo xtask replay`.
pub use e2e::replay::prometheus::{CONTAINER_LABEL, DEFAULT_PROMETHEUS_IMAGE, RUN_LABEL};
/// The path in the environment variable `var`, an optional upstream input (see the table in
/// `xtask/src/test.rs`). Panics, naming the input and how to provide it, when it is unset or
/// missing: a test without its input must fail, never pass having checked nothing.
pub fn required_input(var: &str, what: &str) -> std::path::PathBuf {
    let path = std::env::var_os(var).unwrap_or_else(|| {
        panic!(
            "{var} is not set: this test needs {what}. Set {var} to its path (`.ci/run` does, from \
             ../shared/upstream/), or run `cargo xtask test`, which excludes this test by name and \
             lists it as skipped when the input is missing"
        )
    });
    let path = std::path::PathBuf::from(path);
    assert!(
        path.exists(),
        "{var}={} does not exist: it must name {what}",
        path.display()
    );
    path
}

/// The path in `E2E_OPERATOR_BUNDLE`: prometheus-operator v0.48.1's `bundle.yaml`, which
/// `cargo xtask test` provides (verified by sha256). Panics naming the variable when unset: a
/// test without its input must fail, never pass.
pub fn operator_bundle_path() -> std::path::PathBuf {
    std::env::var_os("E2E_OPERATOR_BUNDLE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "E2E_OPERATOR_BUNDLE is not set: point it at prometheus-operator v0.48.1's bundle.yaml \
                 (sha256 2e0642d4…), or run the tests with `cargo xtask test`, which provides it"
            )
        })
}

/// The bundle at [`operator_bundle_path`], parsed. Panics when it cannot be read or parsed.
pub fn operator_bundle() -> e2e::operator::Bundle {
    let path = operator_bundle_path();
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("E2E_OPERATOR_BUNDLE {}: {e}", path.display()));
    e2e::operator::Bundle::parse(&bytes)
        .unwrap_or_else(|e| panic!("E2E_OPERATOR_BUNDLE {}: {e:#}", path.display()))
}

/// Phases 3 and 4 of the main job, as `cargo xtask e2e` runs them: the operator bundle from
/// [`operator_bundle`] (CRDs first), the operator's kubelet Service, then `manifests/prometheus/`
/// until its StatefulSet is ready. Panics on any failure (test helper).
pub async fn install_operator_and_prometheus(client: &kube::Client, timeout: std::time::Duration) {
    e2e::operator::install(client, &operator_bundle(), timeout)
        .await
        .unwrap_or_else(|e| panic!("operator install: {e:#}"));
    e2e::operator::wait_kubelet_service(client, timeout)
        .await
        .unwrap_or_else(|e| panic!("kubelet Service: {e:#}"));
    e2e::install::apply_prometheus(client, timeout)
        .await
        .unwrap_or_else(|e| panic!("manifests/prometheus/: {e:#}"));
}
