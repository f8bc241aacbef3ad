//! Phase 2: the cluster. kind creates it (or a reused one's kubeconfig is refreshed, or
//! `--kubeconfig` names one), the client is built, the nodes are Ready. When `kind create`
//! fails, what it left is explained ([`ClusterError::finding`]).

use super::options::Resolved;
use super::preflight::{HostReport, Target};
use super::teardown::{Footprint, KindCluster};
use crate::diagnose::Finding;
use crate::kind::{self, Kind};
use anyhow::Context;

/// The cluster phase failed: why, and for a failed `kind create` the diagnosis of its cause.
pub(super) struct ClusterError {
    pub(super) error: anyhow::Error,
    /// `cluster-create-failed`: why `kind create` failed.
    pub(super) finding: Option<Finding>,
}

impl From<anyhow::Error> for ClusterError {
    fn from(error: anyhow::Error) -> Self {
        ClusterError {
            error,
            finding: None,
        }
    }
}

/// Reaches the cluster and returns its client. What it makes is written into `footprint` before
/// it is made, so teardown knows of it whenever the run stops.
///
/// # Errors
/// kind fails (with its diagnosis), the kubeconfig cannot be written or read, or the nodes are
/// not Ready by the deadline.
pub(super) async fn cluster_phase(
    r: &Resolved<'_>,
    target: Target,
    host: &HostReport,
    footprint: &mut Footprint,
) -> Result<kube::Client, ClusterError> {
    let kubeconfig = match target {
        Target::Existing { kubeconfig } => kubeconfig,
        Target::Kind { kind, exists } => {
            std::fs::create_dir_all(&r.paths.dir)
                .with_context(|| format!("creating {}", r.paths.dir.display()))?;
            // Known before kind runs, so an interrupted `--keep` run can still say how to reconnect.
            footprint.kubeconfig = Some(r.paths.kubeconfig.clone());
            // Marked before starting: with --retain a failed or interrupted create leaves nodes behind.
            let cluster = footprint.kind.insert(KindCluster {
                kind,
                created: !exists,
                logs_exported: false,
            });
            if exists {
                // --reuse of an existing cluster: refresh its kubeconfig into our file.
                let text = cluster.kind.get_kubeconfig(&r.name).await?;
                std::fs::write(&r.paths.kubeconfig, text)
                    .with_context(|| format!("writing {}", r.paths.kubeconfig.display()))?;
            } else if let Err(error) = cluster
                .kind
                .create(&r.name, &r.kind_config, &r.cell.node_image)
                .await
            {
                let finding = explain_create_failure(r, host, &cluster.kind, &error).await;
                cluster.logs_exported = true;
                return Err(ClusterError {
                    error,
                    finding: Some(finding),
                });
            }
            r.paths.kubeconfig.clone()
        }
    };
    footprint.kubeconfig = Some(kubeconfig.clone());
    let client = crate::k8s::client::kube_client(&kubeconfig).await?;
    footprint.client = Some(client.clone());
    if r.opts.kubeconfig.is_none() {
        // After `kind create`, which waits for the control plane itself (its `--wait`). Not for
        // someone else's cluster: phases 3–8 only (a real cluster may well have a NotReady node).
        crate::k8s::wait::wait_nodes_ready(&client, r.opts.timeout)
            .await
            .map_err(anyhow::Error::from)?;
    }
    Ok(client)
}

/// After a failed `kind create` (nodes retained): export the node logs, classify the failure,
/// write `diagnose.json`. Best effort: problems are printed, the run fails either way.
async fn explain_create_failure(
    r: &Resolved<'_>,
    host: &HostReport,
    kind: &Kind,
    err: &anyhow::Error,
) -> Finding {
    let logs_dir = r.paths.artifacts.join("kind-logs");
    let export_error = match std::fs::create_dir_all(&r.paths.artifacts) {
        Err(e) => Some(format!("creating {}: {e}", r.paths.artifacts.display())),
        Ok(()) => {
            match tokio::time::timeout(r.opts.timeout, kind.export_logs(&logs_dir, &r.name)).await {
                Ok(Ok(kind::Export::Complete)) => None,
                // What was written is read all the same (cluster_create::diagnose).
                Ok(Ok(kind::Export::Partial(failed))) => Some(crate::errors::error_chain(&failed)),
                Ok(Err(e)) => Some(crate::errors::error_chain(e.as_ref())),
                Err(_) => Some(format!(
                    "`kind export logs` timed out after {}s",
                    r.opts.timeout.as_secs()
                )),
            }
        }
    };
    let kind_stderr = err
        .downcast_ref::<kind::KindFailed>()
        .map(|k| k.stderr.clone())
        .unwrap_or_else(|| crate::errors::error_chain(err.as_ref()));
    let ctx = crate::diagnose::cluster_create::Context {
        kind_stderr,
        logs_dir,
        export_error,
        snap: host.docker_snap,
        suggested_cell: host.suggested_cell.clone(),
    };
    let finding = crate::diagnose::cluster_create::diagnose(&ctx);
    let json = crate::diagnose::to_json(std::slice::from_ref(&finding));
    let path = r.paths.artifacts.join("diagnose.json");
    let text = serde_json::to_string_pretty(&json).expect("findings serialise");
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("warning: cannot write {}: {e}", path.display());
    }
    finding
}
