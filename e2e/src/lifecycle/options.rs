//! The run's options (the flags of `cargo xtask e2e`) and what they resolve to for a cell before
//! anything is touched ([`Resolved`]): the cluster's name, where files go, the kind config, the
//! stack.

use crate::assert::PrometheusRef;
use crate::kind;
use crate::lifecycle::plan::{Keep, Mode};
use crate::matrix::Cell;
use crate::stack::StackSource;
use crate::workdir::{self, RunPaths};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Duration;

/// `--timeout`'s default. It must outlast the slowest upstream step the run waits for:
/// prometheus-operator v0.48.1 rewrites the kubelet Endpoints every 3 minutes (a node its
/// start-up write missed appears then), and a changed config Secret reaches Prometheus within
/// the kubelet's sync (up to 90 s) plus the config reloader's 1 s (TWIN-FACTS §9). A test runs
/// the main job on the twin's preset of those delays (`testkit::twin::Timing::upstream`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The run's options (the flags of `cargo xtask e2e`).
#[derive(Debug, Clone)]
pub struct Options {
    /// `--name`; default `pme2e-<cell>`.
    pub name: Option<String>,
    /// `--keep`: never delete the cluster.
    pub keep: bool,
    /// `--keep-on-failure`: delete it on success only.
    pub keep_on_failure: bool,
    /// `--reuse`: use an existing kind cluster of that name.
    pub reuse: bool,
    /// `--kubeconfig`: an existing cluster; phases 3–8 only.
    pub kubeconfig: Option<PathBuf>,
    /// `--operator-bundle`: a local copy of the pinned bundle.
    pub operator_bundle: Option<PathBuf>,
    /// `--kind-config`: replaces the cell's kind config.
    pub kind_config: Option<PathBuf>,
    /// Deadline of each phase.
    pub timeout: Duration,
    /// `-v`: stream kind's output.
    pub verbose: bool,
    /// `--stack`: someone's stack instead of the bundle, `manifests/prometheus/` and our
    /// ServiceMonitor (the cell's `stack` otherwise).
    pub stack: Option<StackSource>,
    /// `--prometheus NS/NAME`: assert in this Prometheus of the stack only.
    pub prometheus: Option<PrometheusRef>,
    /// `--no-workloads`: apply none of our workloads.
    pub no_workloads: bool,
    /// Where the host checks read `/proc` from (tests point it at a fake tree).
    pub proc_root: PathBuf,
    /// The kind release platform to use (`linux-amd64`, …); this machine's when `None`. Tests
    /// fix it so `--dry-run` prints the same everywhere.
    pub kind_platform: Option<String>,
}

impl Options {
    /// No cluster of its own, defaults everywhere: what tests start from.
    pub fn new(timeout: Duration) -> Self {
        Options {
            name: None,
            keep: false,
            keep_on_failure: false,
            reuse: false,
            kubeconfig: None,
            operator_bundle: None,
            kind_config: None,
            timeout,
            verbose: false,
            stack: None,
            prometheus: None,
            no_workloads: false,
            proc_root: PathBuf::from("/proc"),
            kind_platform: None,
        }
    }
}

impl Options {
    pub(super) fn mode(&self) -> Mode {
        match (&self.kubeconfig, self.reuse) {
            (Some(k), _) => Mode::Existing {
                kubeconfig: workdir::display_path(k),
            },
            (None, true) => Mode::Reuse,
            (None, false) => Mode::Create,
        }
    }

    pub(super) fn keep(&self) -> Keep {
        if self.keep {
            Keep::Always
        } else if self.keep_on_failure {
            Keep::OnFailure
        } else {
            Keep::Never
        }
    }
}

/// Everything resolved from a cell and the options, before anything is touched.
pub(super) struct Resolved<'a> {
    pub(super) cell: &'a Cell,
    pub(super) opts: &'a Options,
    pub(super) name: String,
    pub(super) work_dir: PathBuf,
    pub(super) paths: RunPaths,
    pub(super) kind_config: PathBuf,
    /// `--stack`, else the cell's `stack`.
    pub(super) stack: Option<StackSource>,
    /// The kind release platform ([`Options::kind_platform`], else this machine's).
    pub(super) platform: String,
}

pub(super) fn resolve<'a>(cell: &'a Cell, opts: &'a Options) -> Result<Resolved<'a>> {
    if opts.kubeconfig.is_some() && opts.reuse {
        bail!("--kubeconfig and --reuse exclude each other: --kubeconfig already means \"use this existing cluster\"");
    }
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| cell.default_cluster_name());
    kind::validate_cluster_name(&name)?;
    let stack = opts.stack.clone().or_else(|| {
        cell.stack
            .as_ref()
            .map(|p| StackSource::Path(crate::workspace_root().join(p)))
    });
    if stack.is_some() && opts.operator_bundle.is_some() {
        bail!("--operator-bundle and --stack exclude each other: the stack brings its own operator (or the cluster runs one); drop --operator-bundle");
    }
    if stack.is_none() && opts.prometheus.is_some() {
        bail!(
            "--prometheus needs --stack: without a stack the run asserts in its own Prometheus {}/{}",
            crate::install::PROMETHEUS_NAMESPACE,
            crate::install::PROMETHEUS_NAME
        );
    }
    let work_dir = workdir::work_dir();
    let kind_config = match &opts.kind_config {
        Some(p) => p.clone(),
        None if cell.kind_config.is_absolute() => cell.kind_config.clone(),
        None => crate::workspace_root().join(&cell.kind_config),
    };
    Ok(Resolved {
        paths: RunPaths::new(&work_dir, &name),
        cell,
        opts,
        name,
        work_dir,
        kind_config,
        stack,
        platform: opts.kind_platform.clone().unwrap_or_else(kind::platform),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;

    #[test]
    fn kubeconfig_and_reuse_exclude_each_other() {
        let m = Matrix::load_default().unwrap();
        let opts = Options {
            reuse: true,
            kubeconfig: Some("/k".into()),
            ..Options::new(Duration::from_secs(1))
        };
        let err = resolve(m.default_cell(), &opts)
            .err()
            .expect("rejected")
            .to_string();
        assert!(err.contains("--reuse"), "{err}");
    }
}
