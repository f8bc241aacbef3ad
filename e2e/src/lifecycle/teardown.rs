//! Phase 8: artifacts on failure, the cluster deleted when this run created it and nothing
//! keeps it ([`Keep::deletes`]), decided from what exists ([`Footprint`]).

use super::options::Resolved;
use super::outcome::Outcome;
use super::plan::Keep;
use crate::errors::error_chain;
use crate::kind::Kind;
use std::path::PathBuf;

/// What exists that teardown must account for, wherever the run stopped (a failure, Ctrl-C).
/// Phases only add to it, and before they make the thing, not after.
#[derive(Default)]
pub(super) struct Footprint {
    /// The kind cluster of our name, once it is reused or this run starts creating it.
    pub(super) kind: Option<KindCluster>,
    /// The kubeconfig the run reaches its cluster with.
    pub(super) kubeconfig: Option<PathBuf>,
    /// A client of that cluster, to collect artifacts with.
    pub(super) client: Option<kube::Client>,
}

/// A kind cluster of our name.
pub(super) struct KindCluster {
    pub(super) kind: Kind,
    /// This run started `kind create` (so the cluster, even half-made, is ours to delete).
    pub(super) created: bool,
    /// `kind export logs` already ran (after a failed create): teardown does not repeat it.
    pub(super) logs_exported: bool,
}

/// What teardown does, decided from how the run ended and what it owns. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeardownActions {
    /// `artifacts::collect` + `kind export logs` into `artifacts/`.
    pub collect: bool,
    /// `kind delete cluster`: only ever for a cluster this run created.
    pub delete: bool,
}

/// Collect on failure; delete only a cluster this run `created`, as [`Keep::deletes`] says.
pub fn teardown_actions(outcome: Outcome, created: bool, keep: Keep) -> TeardownActions {
    let failed = outcome == Outcome::Failed;
    TeardownActions {
        collect: failed,
        delete: created && keep.deletes(failed),
    }
}

pub(super) async fn teardown(r: &Resolved<'_>, footprint: &Footprint, outcome: Outcome) {
    let created = footprint.kind.as_ref().filter(|c| c.created);
    let actions = teardown_actions(outcome, created.is_some(), r.opts.keep());
    if outcome == Outcome::Interrupted {
        eprintln!("interrupted (Ctrl-C)");
    }
    if actions.collect {
        collect_artifacts(r, footprint).await;
    }
    if let Some(cluster) = created.filter(|_| actions.delete) {
        match cluster.kind.delete(&r.name).await {
            Ok(()) => {
                let _ = std::fs::remove_file(&r.paths.kubeconfig);
                eprintln!("deleted kind cluster {}", r.name);
            }
            Err(err) => eprintln!(
                "warning: could not delete kind cluster {0}: {1}\n  delete it with `cargo xtask down --name {0}`",
                r.name,
                error_chain(err.as_ref())
            ),
        }
    } else if let Some(kubeconfig) = footprint.kubeconfig.as_ref().filter(|k| k.exists()) {
        let why = if created.is_some() {
            "kept"
        } else if r.opts.kubeconfig.is_some() {
            "not ours to delete (--kubeconfig)"
        } else {
            "reused, not deleted"
        };
        eprintln!(
            "cluster {} {why}; reconnect with:\n  export KUBECONFIG={}",
            r.name,
            kubeconfig.display()
        );
        if created.is_some() {
            eprintln!("  delete it with `cargo xtask down --name {}`", r.name);
        }
    }
}

/// Best effort: every source is tried, failures are printed, nothing here fails the teardown.
async fn collect_artifacts(r: &Resolved<'_>, footprint: &Footprint) {
    let dir = &r.paths.artifacts;
    if let Err(err) = std::fs::create_dir_all(dir) {
        eprintln!("warning: cannot create {}: {err}", dir.display());
        return;
    }
    if let Some(client) = &footprint.client {
        // Bounded: the cluster may be the very thing that is broken.
        match tokio::time::timeout(r.opts.timeout, crate::artifacts::collect(client, dir)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!(
                "warning: collecting cluster artifacts: {}",
                error_chain(err.as_ref())
            ),
            Err(_) => eprintln!(
                "warning: collecting cluster artifacts timed out after {}s",
                r.opts.timeout.as_secs()
            ),
        }
    }
    if let Some(cluster) = footprint.kind.as_ref().filter(|c| !c.logs_exported) {
        match cluster
            .kind
            .export_logs(&dir.join("kind-logs"), &r.name)
            .await
        {
            Ok(crate::kind::Export::Complete) => {}
            Ok(crate::kind::Export::Partial(failed)) => eprintln!(
                "warning: kind wrote the node logs to {} but some collectors failed: {}",
                dir.join("kind-logs").display(),
                error_chain(&failed)
            ),
            Err(err) => eprintln!("warning: {}", error_chain(err.as_ref())),
        }
    }
    eprintln!("artifacts: {}", dir.display());
}

#[cfg(test)]
mod tests {
    use super::super::options::Options;
    use super::*;
    use std::time::Duration;

    #[test]
    fn teardown_deletes_only_what_this_run_created_unless_kept() {
        use Outcome::*;
        // (keep, keep_on_failure) as the flags give them.
        let t = |outcome, created, keep, keep_on_failure| {
            let opts = Options {
                keep,
                keep_on_failure,
                ..Options::new(Duration::from_secs(1))
            };
            teardown_actions(outcome, created, opts.keep())
        };
        assert_eq!(
            t(Passed, true, false, false),
            TeardownActions {
                collect: false,
                delete: true
            }
        );
        assert_eq!(
            t(Failed, true, false, false),
            TeardownActions {
                collect: true,
                delete: true
            }
        );
        assert_eq!(
            t(Interrupted, true, false, false),
            TeardownActions {
                collect: false,
                delete: true
            }
        );
        // --keep keeps always; --keep-on-failure only on failure.
        for outcome in [Passed, Failed, Interrupted] {
            assert!(!t(outcome, true, true, false).delete);
        }
        assert!(!t(Failed, true, false, true).delete);
        assert!(t(Passed, true, false, true).delete);
        assert!(t(Interrupted, true, false, true).delete);
        // Reused or --kubeconfig clusters are never deleted, whatever happens.
        for outcome in [Passed, Failed, Interrupted] {
            assert!(!t(outcome, false, false, false).delete);
        }
        assert!(t(Failed, false, false, false).collect);
    }
}
