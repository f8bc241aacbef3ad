//! Phase 1: everything checked before anything is created (the stack or the bundle, the
//! kubeconfig, the kind config, Docker, the host, the kind binary). It returns what it found
//! ([`Prepared`]); nothing exists yet that teardown would have to remove.

use super::options::Resolved;
use crate::diagnose::Finding;
use crate::kind::{self, Kind, KindPin};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// What preflight found: what the install phases apply, the cluster to reach, what the host
/// checks said.
pub(super) struct Prepared {
    pub(super) install: Install,
    pub(super) target: Target,
    pub(super) host: HostReport,
}

/// What the install phases apply.
pub(super) enum Install {
    /// Someone's stack, read (stdin can be read only once) and checked.
    Stack(crate::stack::Stack),
    /// The pinned bundle, `manifests/prometheus/` and our ServiceMonitor. `bundle` is
    /// `--operator-bundle`'s, verified; `None`: the operator phase fetches the pinned one.
    Ours {
        bundle: Option<crate::operator::Bundle>,
    },
}

/// The cluster the run reaches.
pub(super) enum Target {
    /// `--kubeconfig`: an existing cluster, not ours.
    Existing { kubeconfig: PathBuf },
    /// A kind cluster of our name: `exists` when `--reuse` found it, else the run creates it.
    Kind { kind: Kind, exists: bool },
}

/// The host checks' result: the warnings and notes as printed, the findings for summary.md, and
/// what a failed `kind create` is classified against.
#[derive(Default)]
pub(super) struct HostReport {
    pub(super) text: String,
    pub(super) findings: Vec<Finding>,
    /// Docker is a snap.
    pub(super) docker_snap: bool,
    /// The cell a cgroup-v2 failure's fix names.
    pub(super) suggested_cell: Option<String>,
}

/// Preflight refused the input: why, and the host warnings found by then (printed all the same).
pub(super) struct Refused {
    pub(super) host_text: String,
    pub(super) error: anyhow::Error,
}

/// Checks everything, cheapest and most likely mistakes first.
///
/// # Errors
/// [`Refused`]: the input cannot work; nothing was created.
pub(super) async fn preflight(r: &Resolved<'_>) -> Result<Prepared, Refused> {
    let mut host = HostReport::default();
    match checks(r, &mut host).await {
        Ok((install, target)) => Ok(Prepared {
            install,
            target,
            host,
        }),
        Err(error) => Err(Refused {
            host_text: host.text,
            error,
        }),
    }
}

async fn checks(r: &Resolved<'_>, host: &mut HostReport) -> Result<(Install, Target)> {
    let install = match &r.stack {
        Some(src) => {
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
            Install::Stack(stack)
        }
        None => Install::Ours {
            bundle: match &r.opts.operator_bundle {
                // A local file costs nothing to verify: a wrong one is refused before any
                // cluster exists.
                Some(path) => {
                    let src = crate::operator::BundleSource::for_cell(r.cell, Some(path));
                    Some(
                        crate::operator::load_bundle(
                            &src,
                            &r.work_dir.join("cache"),
                            r.opts.timeout,
                        )
                        .await?,
                    )
                }
                None => None,
            },
        },
    };
    if let Some(kubeconfig) = &r.opts.kubeconfig {
        std::fs::read(kubeconfig).with_context(|| {
            format!(
                "cannot read --kubeconfig {}: pass the kubeconfig file of an existing cluster",
                kubeconfig.display()
            )
        })?;
        if let Install::Stack(stack) = &install {
            // The cluster exists: it may serve kinds the stack brings no CRD for.
            let client = crate::k8s::client::kube_client(kubeconfig).await?;
            crate::stack::install::check_against_cluster(
                stack,
                r.opts.prometheus.as_ref(),
                &client,
            )
            .await?;
        }
        let target = Target::Existing {
            kubeconfig: kubeconfig.clone(),
        };
        return Ok((install, target));
    }
    let nodes = kind::read_kind_config(&r.kind_config)?;
    crate::docker::check_engine(r.opts.timeout).await?;
    *host = host_checks(r, &nodes).await?;
    let bin = match KindPin::new(r.cell, &r.platform) {
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
    let exists = kind.get_clusters().await?.contains(&r.name);
    if exists && !r.opts.reuse {
        bail!(
            "a kind cluster named {0} already exists: pass --reuse to use it (it will not be deleted), \
             or delete it with `cargo xtask down --name {0}`",
            r.name
        );
    }
    Ok((install, Target::Kind { kind, exists }))
}

/// Host preflight: warnings never block; a certain failure stops preflight.
async fn host_checks(r: &Resolved<'_>, nodes: &kind::KindConfigSummary) -> Result<HostReport> {
    use crate::host;
    let matrix = crate::matrix::Matrix::load_default()?;
    let facts = host::gather(&r.opts.proc_root, r.opts.timeout).await;
    let findings = host::assess(&facts, &matrix, r.cell, host::Needs::from(nodes));
    let text = host::render(&findings, &facts.notes);
    if host::blocks(&findings) {
        bail!(
            "the host checks found a certain failure:\n{}",
            text.trim_end()
        );
    }
    Ok(HostReport {
        docker_snap: facts.docker.as_ref().is_some_and(|d| d.snap()),
        suggested_cell: host::suggested_cell(&matrix, r.cell).map(|c| c.name.clone()),
        text,
        findings,
    })
}
