#![warn(missing_docs)]
#![warn(clippy::missing_errors_doc)]
//! pod-metrics-e2e: proves that every running pod's containers have their metrics
//! (`container_cpu_usage_seconds_total`, …) in Prometheus through prometheus-operator's kubelet
//! Service and a cadvisor ServiceMonitor, and says why when they do not.
//!
//! Data flows one way, and each step has its module:
//!
//! ```text
//! plan ─────────► cluster ─────────► install ──────────► assert ─────────► report
//! matrix          host (preflight)   k8s::{client,       pods              artifacts
//! plan            docker             manifests, apply,   prometheus        diagnose
//! pins            kind               wait}               kubeproxy         redact
//! workdir                            operator, install   coverage, assert
//!                                    scrape_config,      relabel
//! run: drives the steps in order      (the operator's job)
//! ```
//!
//! - **What will run:** [`matrix`] (the cells), [`lifecycle::plan`] (every command, URL and digest, for
//!   `--dry-run`), [`pins`] (download → sha256 → store), [`workdir`] (where files go).
//! - **The cluster:** [`host`] (what kind needs from this machine), [`docker`], [`kind`].
//! - **Install:** [`k8s`] (client, manifests, server-side apply, waits), [`operator`] (the
//!   pinned bundle and the kubelet Service it writes), [`install`] (this repository's manifests),
//!   [`stack`] (someone's own stack instead: read, checked, applied, waited for).
//! - **Assert:** [`assert`](mod@assert) (the checks against each Prometheus replica, in-process, and their
//!   JUnit report), [`prometheuses`] (a cluster's Prometheus objects and their replicas), [`pods`] (what must be covered), [`prometheus`] and [`kubeproxy`] (the HTTP API,
//!   directly or through the API server), [`coverage`] (the check), [`operator::scrape_config`] and
//!   [`relabel`] (the job the operator generates and what Prometheus does with it), [`discovery`]
//!   (the labels Kubernetes discovery gives each target).
//! - **Report:** [`artifacts`], [`diagnose`] (why pods are missing), [`redact`], [`errors`] (an
//!   error and its causes, each said once).
//! - **Reproduce without the cluster:** [`capture`] (what a cluster serves, read-only) and
//!   [`replay`] (a real Prometheus scraping it with the operator's job).
//! - [`lifecycle`] drives the phases of `cargo xtask e2e`; [`image`] builds the local Prometheus image.

pub mod artifacts;
pub mod assert;
pub mod capture;
pub mod coverage;
pub mod diagnose;
pub mod discovery;
pub mod docker;
pub mod errors;
pub mod host;
pub mod image;
pub mod install;
pub mod k8s;
pub mod kind;
pub mod kubeproxy;
pub mod lifecycle;
pub mod matrix;
pub mod operator;
pub mod pins;
pub mod pods;
pub mod prometheus;
pub mod prometheuses;
pub mod redact;
pub mod relabel;
pub mod replay;
pub mod stack;
pub mod workdir;
pub mod yaml;

/// Root of the workspace (where `Cargo.toml`, `fixtures/` and `manifests/` live).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e crate lives one level below the workspace root")
        .to_path_buf()
}
