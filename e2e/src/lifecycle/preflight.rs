//! Phase 1: everything checked before anything is created (kind config, Docker, the kind binary,
//! the bundle, the host), and what a failed `kind create` left to explain.

use super::run::{Resolved, State};
use crate::kind::{self, Kind, KindPin};
use anyhow::{bail, Context, Result};

pub(super) async fn preflight(r: &Resolved<'_>, state: &mut State) -> Result<()> {
    if let Some(src) = &r.stack {
        // Read once (stdin can be read only once) and checked before anything exists.
        let stack = crate::stack::Stack::load(src)?;
        // An existing cluster is asked below; a new kind cluster serves no custom resource; a
        // reused one is asked in phase 3.
        if r.opts.kubeconfig.is_none() {
            stack.check(
                r.opts.prometheus.as_ref(),
                &|_, _, _| r.opts.reuse,
                if r.opts.reuse {
                    ""
                } else {
                    " (a new kind cluster serves no custom resources)"
                },
            )?;
        }
        state.stack = Some(stack);
    }
    if let Some(path) = &r.opts.operator_bundle {
        // A local file costs nothing to verify: a wrong one is refused before any cluster exists.
        let src = crate::operator::BundleSource::for_cell(r.cell, Some(path));
        state.bundle = Some(
            crate::operator::load_bundle(&src, &r.work_dir.join("cache"), r.opts.timeout).await?,
        );
    }
    if let Some(kubeconfig) = &r.opts.kubeconfig {
        std::fs::read(kubeconfig).with_context(|| {
            format!(
                "cannot read --kubeconfig {}: pass the kubeconfig file of an existing cluster",
                kubeconfig.display()
            )
        })?;
        if let Some(stack) = &state.stack {
            // The cluster exists: it may serve kinds the stack brings no CRD for.
            let client = crate::k8s::client::kube_client(kubeconfig).await?;
            crate::stack::install::check_against_cluster(
                stack,
                r.opts.prometheus.as_ref(),
                &client,
            )
            .await?;
        }
        state.kubeconfig = Some(kubeconfig.clone());
        return Ok(());
    }
    // Cheapest and most likely mistakes first.
    let nodes = kind::read_kind_config(&r.kind_config)?;
    crate::docker::check_engine(r.opts.timeout).await?;
    host_checks(r, state, &nodes).await?;
    let bin = match KindPin::new(r.cell, &kind::platform()) {
        Ok(pin) => kind::ensure_kind(&pin, &r.work_dir, r.opts.timeout).await?,
        // No pinned binary for this platform: only a kind of the right version on PATH will do.
        Err(err) => kind::KindBinary {
            path: kind::kind_on_path(&r.cell.kind_version).map_err(|note| err.context(note))?,
            origin: kind::KindOrigin::Path,
        },
    };
    tracing::debug!(path = %bin.path.display(), origin = ?bin.origin, "kind binary");
    let kind = Kind {
        bin: bin.path,
        kubeconfig: r.paths.kubeconfig.clone(),
        verbose: r.opts.verbose,
    };
    let existing = kind.get_clusters().await?;
    if existing.contains(&r.name) {
        if !r.opts.reuse {
            bail!(
                "a kind cluster named {0} already exists: pass --reuse to use it (it will not be deleted), \
                 or delete it with `cargo xtask down --name {0}`",
                r.name
            );
        }
        state.kind_cluster = true;
    }
    state.kind = Some(kind);
    Ok(())
}

/// Host preflight: prints warnings (never blocking); a certain failure stops preflight.
async fn host_checks(
    r: &Resolved<'_>,
    state: &mut State,
    nodes: &kind::KindConfigSummary,
) -> Result<()> {
    use crate::host;
    let matrix = crate::matrix::Matrix::load_default()?;
    let facts = host::gather(&host::proc_root(), r.opts.timeout).await;
    let findings = host::assess(&facts, &matrix, r.cell, host::Needs::from(nodes));
    let text = host::render(&findings, &facts.notes);
    if host::blocks(&findings) {
        bail!(
            "the host checks found a certain failure:\n{}",
            text.trim_end()
        );
    }
    state.docker_snap = facts.docker.as_ref().is_some_and(|d| d.snap());
    state.suggested_cell = host::suggested_cell(&matrix, r.cell).map(|c| c.name.clone());
    state.host_text = text;
    state.host_findings = findings;
    Ok(())
}

/// After a failed `kind create` (nodes retained): export the node logs, classify the failure,
/// write `diagnose.json`. Best effort: problems are printed, the run fails either way.
pub(super) async fn explain_create_failure(
    r: &Resolved<'_>,
    state: &mut State,
    kind: &Kind,
    err: &anyhow::Error,
) {
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
    state.kind_logs_exported = true;
    let kind_stderr = err
        .downcast_ref::<kind::KindFailed>()
        .map(|k| k.stderr.clone())
        .unwrap_or_else(|| crate::errors::error_chain(err.as_ref()));
    let ctx = crate::diagnose::cluster_create::Context {
        kind_stderr,
        logs_dir,
        export_error,
        snap: state.docker_snap,
        suggested_cell: state.suggested_cell.clone(),
    };
    let finding = crate::diagnose::cluster_create::diagnose(&ctx);
    let json = crate::diagnose::to_json(std::slice::from_ref(&finding));
    let path = r.paths.artifacts.join("diagnose.json");
    let text = serde_json::to_string_pretty(&json).expect("findings serialise");
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("warning: cannot write {}: {e}", path.display());
    }
    state.create_finding = Some(finding);
}
