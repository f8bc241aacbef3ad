//! Phase 8: artifacts on failure, the cluster deleted when this run created it and nothing
//! keeps it ([`Keep::deletes`]), `summary.md` always.

use super::plan::Keep;
use super::run::{Outcome, Resolved, State};
use crate::errors::error_chain;

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

pub(super) async fn teardown(r: &Resolved<'_>, state: &mut State, outcome: Outcome) {
    let actions = teardown_actions(outcome, state.created, r.opts.keep());
    if outcome == Outcome::Interrupted {
        eprintln!("interrupted (Ctrl-C)");
    }
    if actions.collect {
        collect_artifacts(r, state).await;
    }
    if actions.delete {
        let kind = state.kind.as_ref().expect("created implies kind");
        match kind.delete(&r.name).await {
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
    } else if let Some(kubeconfig) = state.kubeconfig.as_ref().filter(|k| k.exists()) {
        let why = if state.created {
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
        if state.created {
            eprintln!("  delete it with `cargo xtask down --name {}`", r.name);
        }
    }
}

/// Best effort: every source is tried, failures are printed, nothing here fails the teardown.
async fn collect_artifacts(r: &Resolved<'_>, state: &State) {
    let dir = &r.paths.artifacts;
    if let Err(err) = std::fs::create_dir_all(dir) {
        eprintln!("warning: cannot create {}: {err}", dir.display());
        return;
    }
    if let Some(client) = &state.client {
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
    if state.kind_cluster && !state.kind_logs_exported {
        if let Some(kind) = &state.kind {
            match kind.export_logs(&dir.join("kind-logs"), &r.name).await {
                Ok(crate::kind::Export::Complete) => {}
                Ok(crate::kind::Export::Partial(failed)) => eprintln!(
                    "warning: kind wrote the node logs to {} but some collectors failed: {}",
                    dir.join("kind-logs").display(),
                    error_chain(&failed)
                ),
                Err(err) => eprintln!("warning: {}", error_chain(err.as_ref())),
            }
        }
    }
    eprintln!("artifacts: {}", dir.display());
}

// ---------------------------------------------------------------------------------------------
// summary.md

pub(super) fn write_summary(r: &Resolved<'_>, state: &State, outcome: Outcome) {
    let coverage = std::fs::read_to_string(r.paths.artifacts.join("coverage.json")).ok();
    let findings: Vec<_> = state
        .create_finding
        .iter()
        .chain(&state.host_findings)
        .cloned()
        .collect();
    let mut cell = r.cell.clone();
    if let Some(src) = &r.stack {
        // The stack brought its own operator: the cell's pinned one was not used.
        cell.operator_version = format!("from the stack {}", src.display());
    }
    let text = super::summary::render(
        &cell,
        &r.name,
        outcome,
        &state.timings,
        state.failure.as_ref(),
        &findings,
        coverage.as_deref(),
    );
    let write =
        std::fs::create_dir_all(&r.paths.dir).and_then(|()| std::fs::write(&r.paths.summary, text));
    match write {
        Ok(()) => eprintln!("summary: {}", r.paths.summary.display()),
        Err(err) => eprintln!("warning: cannot write {}: {err}", r.paths.summary.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::run::Options;
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
