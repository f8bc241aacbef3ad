//! pod-metrics-e2e: proves that every running pod's `container_cpu_usage_seconds_total`
//! reaches Prometheus through prometheus-operator's kubelet Service and a cadvisor ServiceMonitor.
//!
//! Data flows one way: plan → cluster → install → assert → report. The modules follow it:
//! [`matrix`] and [`plan`] describe what will run, [`cluster`] and [`operator`] create and install,
//! [`pods`], [`prometheus`] and [`coverage`] assert, [`diagnose`] explains a failure.

pub mod artifacts;
pub mod capture;
pub mod cluster;
pub mod coverage;
pub mod diagnose;
pub mod host;
pub mod image;
pub mod install;
pub mod kubeproxy;
pub mod matrix;
pub mod operator;
pub mod plan;
pub mod pods;
pub mod prometheus;
pub mod redact;
pub mod relabel;
pub mod replay;
pub mod run;
pub mod scrape_config;
pub mod wait;

/// Root of the workspace (where `Cargo.toml`, `fixtures/` and `manifests/` live).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e crate lives one level below the workspace root")
        .to_path_buf()
}
