//! The test matrix: named cells, each a pinned kind binary, kind node image, prometheus-operator
//! bundle and ServiceMonitor variant, loaded from `fixtures/matrix.toml`.
//!
//! One definition feeds both CI (`cargo xtask matrix --json` → GitHub `strategy.matrix`) and a
//! laptop (`cargo xtask e2e --cell NAME`), so a local run is the CI run. Pinned artifacts are
//! declared once (`[kind."vX"]`, `[operator."vX"]`) and cells refer to them by version; every
//! mistake in the file is reported as `file:line:column: reason`.

use crate::coverage::MetricName;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

mod parse;
use parse::parse;

/// Platforms kind publishes binaries for (`kind-<platform>` on the release page).
pub const KIND_PLATFORMS: &[&str] = &[
    "linux-amd64",
    "linux-arm64",
    "darwin-amd64",
    "darwin-arm64",
    "windows-amd64",
];

/// The platform every cell must pin: the one CI runs on.
pub const CI_PLATFORM: &str = "linux-amd64";

/// `kind create cluster` names containers `<cluster>-control-plane`/`-worker2`; keeping cell names
/// short keeps those (and the node hostnames) well inside the 63-character DNS label limit.
const MAX_CELL_NAME: usize = 40;

/// Keys of each object in `github_matrix()["include"]`; `.github/workflows/e2e.yml` reads exactly
/// these as `matrix.<key>` (checked by `e2e/tests/workflows.rs`).
pub const GITHUB_MATRIX_KEYS: &[&str] = &[
    "cell",
    "kind_version",
    "kubernetes_version",
    "servicemonitor",
    "allowed_to_fail",
];

/// Every cell of `fixtures/matrix.toml`, in file order.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// The cells, in file order.
    pub cells: Vec<Cell>,
    /// Index into `cells` of the cell named by the file's `default`.
    #[serde(skip)]
    default: usize,
}

/// One way to run the whole end-to-end proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// e.g. `kind0.11-k8s1.21` (the default cell).
    pub name: String,
    /// e.g. `v0.11.1`.
    pub kind_version: String,
    /// `linux-amd64` | `darwin-amd64` | `darwin-arm64` … → sha256 of `kind-<platform>`. A platform
    /// without an entry has no pin: the harness must refuse to download kind there.
    pub kind_sha256: BTreeMap<String, String>,
    /// `kindest/node:<tag>@sha256:<digest>`, passed to `kind create cluster --image`.
    pub node_image: String,
    /// Relative to the workspace root, e.g. `fixtures/kind/cluster.yaml`.
    pub kind_config: PathBuf,
    /// e.g. `v0.48.1`.
    pub operator_version: String,
    /// The pinned bundle URL.
    pub operator_bundle_url: String,
    /// Its sha256.
    pub operator_bundle_sha256: String,
    /// Which ServiceMonitor manifest the cell applies.
    pub servicemonitor: ServiceMonitorVariant,
    /// Allowed-to-fail cells run and report but do not fail the workflow.
    pub allowed_to_fail: bool,
    /// Why the cell exists / why it may fail.
    pub note: String,
    /// The metrics the assert phase checks per container (`metrics = [...]`; default
    /// [`crate::coverage::DEFAULT_METRICS`]); `cargo xtask e2e --metric` overrides them.
    pub metrics: Vec<MetricName>,
    /// A stack to run instead of the pinned bundle, `manifests/prometheus/` and the ServiceMonitor
    /// (`stack = "path"`, relative to the workspace root); `cargo xtask e2e --stack` overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<PathBuf>,
}

/// Which cadvisor ServiceMonitor the cell applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceMonitorVariant {
    /// The mission's manifest: `honorLabels` unset, so the pod's namespace lands in `exported_namespace`.
    Mission,
    /// `honorLabels: true` (kube-prometheus' choice): the pod's namespace stays in `namespace`.
    HonorLabels,
}

impl ServiceMonitorVariant {
    /// The manifest, relative to the workspace root.
    pub fn manifest(&self) -> &'static str {
        match self {
            ServiceMonitorVariant::Mission => "manifests/servicemonitor-cadvisor.yaml",
            ServiceMonitorVariant::HonorLabels => {
                "manifests/servicemonitor-cadvisor-honorlabels.yaml"
            }
        }
    }

    /// The spelling used in `matrix.toml` and JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            ServiceMonitorVariant::Mission => "mission",
            ServiceMonitorVariant::HonorLabels => "honor-labels",
        }
    }
}

impl fmt::Display for ServiceMonitorVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Cell {
    /// Download URL of the kind binary for `platform` (e.g. `linux-amd64`).
    pub fn kind_url(&self, platform: &str) -> String {
        format!(
            "https://github.com/kubernetes-sigs/kind/releases/download/{}/kind-{platform}",
            self.kind_version
        )
    }

    /// The Kubernetes version: the node image's tag, e.g. `v1.21.1`.
    pub fn kubernetes_version(&self) -> &str {
        // Validated at parse time: `<repo>:<tag>@sha256:<hex>`.
        let without_digest = self.node_image.split('@').next().unwrap_or_default();
        without_digest.rsplit(':').next().unwrap_or_default()
    }

    /// `pme2e-` + the cell name with every character outside `[a-z0-9-]` replaced by `-`; the
    /// prefix is how `cargo xtask ls`/`down` recognise clusters this harness created.
    pub fn default_cluster_name(&self) -> String {
        let sanitized: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("pme2e-{sanitized}")
    }

    /// The cell's row in the GitHub Actions matrix (keys: [`GITHUB_MATRIX_KEYS`]).
    pub fn github_entry(&self) -> serde_json::Value {
        serde_json::json!({
            "cell": self.name,
            "kind_version": self.kind_version,
            "kubernetes_version": self.kubernetes_version(),
            "servicemonitor": self.servicemonitor.as_str(),
            "allowed_to_fail": self.allowed_to_fail,
        })
    }
}

impl Matrix {
    /// Parses and validates a matrix file's text; `origin` (usually the path) prefixes errors.
    ///
    /// # Errors
    /// [`MatrixError::At`] the first mistake, with its line and column.
    pub fn parse(text: &str, origin: &str) -> Result<Matrix, MatrixError> {
        Ok(parse(text, origin)?)
    }

    /// Reads and parses a matrix file.
    ///
    /// # Errors
    /// [`MatrixError::Read`], or as [`Matrix::parse`].
    pub fn load(path: &Path) -> Result<Matrix, MatrixError> {
        let text = std::fs::read_to_string(path).map_err(|source| MatrixError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Matrix::parse(&text, &path.display().to_string())
    }

    /// `<workspace root>/fixtures/matrix.toml`.
    pub fn default_path() -> PathBuf {
        crate::workspace_root().join("fixtures").join("matrix.toml")
    }

    /// Loads [`Matrix::default_path`].
    ///
    /// # Errors
    /// As [`Matrix::load`].
    pub fn load_default() -> Result<Matrix, MatrixError> {
        Matrix::load(&Matrix::default_path())
    }

    /// The cell called `name`; an unknown name is an error listing every known cell.
    ///
    /// # Errors
    /// [`MatrixError::UnknownCell`], listing every cell.
    pub fn cell(&self, name: &str) -> Result<&Cell, MatrixError> {
        self.cells
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| MatrixError::UnknownCell {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// The cell named by the file's `default` key (what `cargo xtask e2e` runs without `--cell`).
    pub fn default_cell(&self) -> &Cell {
        &self.cells[self.default]
    }

    /// Cell names in file order.
    pub fn names(&self) -> Vec<&str> {
        self.cells.iter().map(|c| c.name.as_str()).collect()
    }

    /// What GitHub's `strategy.matrix` takes via `fromJSON`: `{"include": [<one object per cell>]}`.
    /// `only` restricts it to one cell (the workflow's dispatch input); `None` or `""` means all.
    ///
    /// # Errors
    /// [`MatrixError::UnknownCell`] for an `only` that names no cell.
    pub fn github_matrix(&self, only: Option<&str>) -> Result<serde_json::Value, MatrixError> {
        let include: Vec<serde_json::Value> = match only.filter(|o| !o.trim().is_empty()) {
            Some(name) => vec![self.cell(name.trim())?.github_entry()],
            None => self.cells.iter().map(Cell::github_entry).collect(),
        };
        Ok(serde_json::json!({ "include": include }))
    }
}

/// Why a matrix could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// A mistake in the file, at a line and column.
    #[error(transparent)]
    At(#[from] Located),
    /// The file could not be read.
    #[error("cannot read the matrix file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No cell has that name.
    #[error("unknown matrix cell `{name}`; known cells: {known} (see `cargo xtask matrix`)")]
    UnknownCell {
        /// The name asked for.
        name: String,
        /// Every cell's name, comma-separated.
        known: String,
    },
}

/// A problem in a matrix file, located by line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {reason}")]
pub struct Located {
    /// The file, as the user named it.
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and how to fix it.
    pub reason: String,
}

#[cfg(test)]
mod tests;
