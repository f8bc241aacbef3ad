//! The test matrix: named cells, each a pinned kind binary, kind node image, prometheus-operator
//! bundle and ServiceMonitor variant, loaded from `fixtures/matrix.toml`.
//!
//! One definition feeds both CI (`cargo xtask matrix --json` → GitHub `strategy.matrix`) and a
//! laptop (`cargo xtask e2e --cell NAME`), so a local run is the CI run. Pinned artifacts are
//! declared once (`[kind."vX"]`, `[operator."vX"]`) and cells refer to them by version; every
//! mistake in the file is reported as `file:line:column: reason`.

use crate::coverage::MetricName;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use toml::Spanned;

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
    pub operator_bundle_url: String,
    pub operator_bundle_sha256: String,
    pub servicemonitor: ServiceMonitorVariant,
    /// Allowed-to-fail cells run and report but do not fail the workflow.
    pub allowed_to_fail: bool,
    /// Why the cell exists / why it may fail.
    pub note: String,
    /// The metrics the assert phase checks per container (`metrics = [...]`; default
    /// [`crate::coverage::DEFAULT_METRICS`]); `cargo xtask e2e --metric` overrides them.
    pub metrics: Vec<MetricName>,
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
    pub fn parse(text: &str, origin: &str) -> Result<Matrix> {
        parse(text, origin).map_err(anyhow::Error::new)
    }

    /// Reads and parses a matrix file.
    pub fn load(path: &Path) -> Result<Matrix> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the matrix file {}", path.display()))?;
        Matrix::parse(&text, &path.display().to_string())
    }

    /// `<workspace root>/fixtures/matrix.toml`.
    pub fn default_path() -> PathBuf {
        crate::workspace_root().join("fixtures").join("matrix.toml")
    }

    /// Loads [`Matrix::default_path`].
    pub fn load_default() -> Result<Matrix> {
        Matrix::load(&Matrix::default_path())
    }

    /// The cell called `name`; an unknown name is an error listing every known cell.
    pub fn cell(&self, name: &str) -> Result<&Cell> {
        self.cells.iter().find(|c| c.name == name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown matrix cell `{name}`; known cells: {} (see `cargo xtask matrix`)",
                self.names().join(", ")
            )
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
    pub fn github_matrix(&self, only: Option<&str>) -> Result<serde_json::Value> {
        let include: Vec<serde_json::Value> = match only.filter(|o| !o.trim().is_empty()) {
            Some(name) => vec![self.cell(name.trim())?.github_entry()],
            None => self.cells.iter().map(Cell::github_entry).collect(),
        };
        Ok(serde_json::json!({ "include": include }))
    }
}

/// A problem in a matrix file, located by line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixError {
    pub origin: String,
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

impl fmt::Display for MatrixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.origin, self.line, self.column, self.reason
        )
    }
}

impl std::error::Error for MatrixError {}

// ---- the file's shape ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatrix {
    default: Spanned<String>,
    #[serde(default)]
    kind: BTreeMap<String, Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(default)]
    operator: BTreeMap<String, Spanned<RawOperator>>,
    #[serde(default, rename = "cell")]
    cells: Vec<Spanned<RawCell>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    bundle_url: Spanned<String>,
    bundle_sha256: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCell {
    name: Spanned<String>,
    kind_version: Spanned<String>,
    node_image: Spanned<String>,
    kind_config: Spanned<String>,
    operator_version: Spanned<String>,
    servicemonitor: ServiceMonitorVariant,
    allowed_to_fail: bool,
    note: Spanned<String>,
    #[serde(default)]
    metrics: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Turns byte spans into `origin:line:column` errors.
struct Locator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Locator<'_> {
    fn error(&self, span: Range<usize>, reason: impl Into<String>) -> MatrixError {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(start, |nl| start - nl - 1) + 1;
        MatrixError {
            origin: self.origin.to_string(),
            line,
            column,
            reason: reason.into(),
        }
    }

    fn at<T>(&self, spanned: &Spanned<T>, reason: impl Into<String>) -> MatrixError {
        self.error(spanned.span(), reason)
    }
}

fn parse(text: &str, origin: &str) -> Result<Matrix, MatrixError> {
    let loc = Locator { text, origin };
    let raw: RawMatrix = toml::from_str(text)
        .map_err(|e| loc.error(e.span().unwrap_or(0..0), e.message().trim_end().to_string()))?;

    for (version, platforms) in &raw.kind {
        check_kind(&loc, version, platforms)?;
    }
    for (version, op) in &raw.operator {
        check_operator(&loc, version, op.get_ref())?;
    }

    let mut cells = Vec::with_capacity(raw.cells.len());
    let mut names = BTreeSet::new();
    let mut clusters = BTreeMap::new();
    for spanned in &raw.cells {
        let cell = build_cell(&loc, &raw, spanned.get_ref())?;
        let name = &spanned.get_ref().name;
        if !names.insert(cell.name.clone()) {
            return Err(loc.at(
                name,
                format!(
                    "duplicate cell name `{}`; cell names must be unique",
                    cell.name
                ),
            ));
        }
        if let Some(other) = clusters.insert(cell.default_cluster_name(), cell.name.clone()) {
            return Err(loc.at(
                name,
                format!(
                    "cell `{}` and cell `{other}` would both create kind cluster `{}`; rename one of them",
                    cell.name,
                    cell.default_cluster_name()
                ),
            ));
        }
        cells.push(cell);
    }
    if cells.is_empty() {
        return Err(loc.error(
            0..0,
            "the matrix has no cells; add at least one [[cell]] table",
        ));
    }
    let default = cells
        .iter()
        .position(|c| c.name == *raw.default.get_ref())
        .ok_or_else(|| {
            loc.at(
                &raw.default,
                format!(
                    "default cell `{}` is not defined; known cells: {}",
                    raw.default.get_ref(),
                    cells
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
    Ok(Matrix { cells, default })
}

fn check_kind(
    loc: &Locator,
    version: &str,
    platforms: &Spanned<BTreeMap<String, Spanned<String>>>,
) -> Result<(), MatrixError> {
    if !is_semver_tag(version) {
        return Err(loc.at(
            platforms,
            format!("kind version `{version}` is not of the form vMAJOR.MINOR.PATCH"),
        ));
    }
    for (platform, sha) in platforms.get_ref() {
        if !KIND_PLATFORMS.contains(&platform.as_str()) {
            return Err(loc.at(
                sha,
                format!(
                    "unknown kind platform `{platform}` for kind {version}; expected one of {}",
                    KIND_PLATFORMS.join(", ")
                ),
            ));
        }
        check_sha256(loc, sha, &format!("kind {version} {platform} sha256"))?;
    }
    if !platforms.get_ref().contains_key(CI_PLATFORM) {
        return Err(loc.at(
            platforms,
            format!(
                "kind {version} has no sha256 for {CI_PLATFORM} (the CI platform); add \
                 `{CI_PLATFORM} = \"<sha256 of kind-{CI_PLATFORM}>\"` from the kind release page"
            ),
        ));
    }
    Ok(())
}

fn check_operator(loc: &Locator, version: &str, op: &RawOperator) -> Result<(), MatrixError> {
    let url = op.bundle_url.get_ref();
    if !url.starts_with("https://") {
        return Err(loc.at(
            &op.bundle_url,
            format!("operator {version} bundle_url `{url}` must be an https:// URL"),
        ));
    }
    // Catches a copy-pasted table whose URL still points at another release.
    if !url.contains(&format!("/{version}/")) {
        return Err(loc.at(
            &op.bundle_url,
            format!("operator {version} bundle_url `{url}` does not contain `/{version}/`; it must point at that release"),
        ));
    }
    check_sha256(
        loc,
        &op.bundle_sha256,
        &format!("operator {version} bundle_sha256"),
    )
}

fn check_sha256(loc: &Locator, sha: &Spanned<String>, what: &str) -> Result<(), MatrixError> {
    let value = sha.get_ref();
    if value.len() != 64 {
        return Err(loc.at(
            sha,
            format!(
                "{what} has {} characters; expected 64 lowercase hex digits",
                value.len()
            ),
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(loc.at(sha, format!("{what} `{value}` is not lowercase hex")));
    }
    Ok(())
}

fn build_cell(loc: &Locator, raw: &RawMatrix, c: &RawCell) -> Result<Cell, MatrixError> {
    let name = c.name.get_ref();
    let name_ok = !name.is_empty()
        && name.len() <= MAX_CELL_NAME
        && name.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        && name
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '.');
    if !name_ok {
        return Err(loc.at(
            &c.name,
            format!(
                "cell name `{name}` must be 1–{MAX_CELL_NAME} characters of [a-z0-9.-] starting with a letter or digit"
            ),
        ));
    }

    let kind_version = c.kind_version.get_ref();
    let kind_sha256 = raw.kind.get(kind_version).ok_or_else(|| {
        loc.at(
            &c.kind_version,
            format!(
                "cell `{name}`: kind_version `{kind_version}` has no [kind.\"{kind_version}\"] table; pinned kind versions: {}",
                raw.kind.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;

    let (_, tag) = parse_node_image(c.node_image.get_ref())
        .map_err(|reason| loc.at(&c.node_image, format!("cell `{name}`: {reason}")))?;
    let (major, minor) = minor_version(tag).unwrap_or((0, 0));
    // cgroup-v2 hosts (current GitHub runners) cannot boot Kubernetes below 1.19 at all.
    if (major, minor) < (1, 19) && !c.allowed_to_fail {
        return Err(loc.at(
            &c.node_image,
            format!(
                "cell `{name}`: Kubernetes {tag} cannot boot on cgroup-v2 hosts; such a cell must set allowed_to_fail = true"
            ),
        ));
    }

    let kind_config = c.kind_config.get_ref();
    let config_path = Path::new(kind_config);
    let relative = config_path
        .components()
        .all(|comp| matches!(comp, Component::Normal(_)));
    if !relative || !(kind_config.ends_with(".yaml") || kind_config.ends_with(".yml")) {
        return Err(loc.at(
            &c.kind_config,
            format!(
                "cell `{name}`: kind_config `{kind_config}` must be a .yaml path relative to the workspace root, without `..`"
            ),
        ));
    }

    let operator_version = c.operator_version.get_ref();
    let op = raw.operator.get(operator_version).ok_or_else(|| {
        loc.at(
            &c.operator_version,
            format!(
                "cell `{name}`: operator_version `{operator_version}` has no [operator.\"{operator_version}\"] table; pinned operator versions: {}",
                raw.operator.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;

    if c.note.get_ref().trim().is_empty() {
        return Err(loc.at(
            &c.note,
            format!("cell `{name}`: note is empty; say why the cell exists (and why it may fail)"),
        ));
    }

    let metrics = match &c.metrics {
        None => MetricName::defaults(),
        Some(list) if list.get_ref().is_empty() => {
            return Err(loc.at(
                list,
                format!(
                    "cell `{name}`: metrics is empty; list at least one metric, or remove the line for the default ({})",
                    crate::coverage::DEFAULT_METRICS.join(", ")
                ),
            ))
        }
        Some(list) => {
            let mut out: Vec<MetricName> = Vec::new();
            for m in list.get_ref() {
                let metric = MetricName::new(m.get_ref().as_str())
                    .map_err(|e| loc.at(m, format!("cell `{name}`: metrics: {e}")))?;
                if out.contains(&metric) {
                    return Err(loc.at(
                        m,
                        format!("cell `{name}`: metric `{metric}` is listed twice"),
                    ));
                }
                out.push(metric);
            }
            out
        }
    };

    Ok(Cell {
        metrics,
        name: name.clone(),
        kind_version: kind_version.clone(),
        kind_sha256: kind_sha256
            .get_ref()
            .iter()
            .map(|(p, s)| (p.clone(), s.get_ref().clone()))
            .collect(),
        node_image: c.node_image.get_ref().clone(),
        kind_config: PathBuf::from(kind_config),
        operator_version: operator_version.clone(),
        operator_bundle_url: op.get_ref().bundle_url.get_ref().clone(),
        operator_bundle_sha256: op.get_ref().bundle_sha256.get_ref().clone(),
        servicemonitor: c.servicemonitor,
        allowed_to_fail: c.allowed_to_fail,
        note: c.note.get_ref().trim().to_string(),
    })
}

/// Splits `repo:tag@sha256:hex` into (repo, tag), or says what is wrong.
fn parse_node_image(image: &str) -> Result<(&str, &str), String> {
    let Some((name, digest)) = image.split_once('@') else {
        return Err(format!(
            "node image `{image}` has no @sha256 digest; pin it as `{image}@sha256:<digest>` (kind's release notes list the digest of every image)"
        ));
    };
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("node image `{image}`: digest must start with `sha256:`"))?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "node image `{image}`: the sha256 digest must be 64 lowercase hex digits"
        ));
    }
    let Some((repo, tag)) = name.rsplit_once(':').filter(|(repo, _)| !repo.is_empty()) else {
        return Err(format!(
            "node image `{image}` has no tag; write it as `kindest/node:vX.Y.Z@sha256:<digest>`"
        ));
    };
    if !is_semver_tag(tag) {
        return Err(format!(
            "node image `{image}`: tag `{tag}` is not a Kubernetes version like v1.21.1"
        ));
    }
    Ok((repo, tag))
}

/// `vMAJOR.MINOR.PATCH` with numeric parts.
fn is_semver_tag(tag: &str) -> bool {
    tag.strip_prefix('v').is_some_and(|rest| {
        let parts: Vec<&str> = rest.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn minor_version(tag: &str) -> Option<(u32, u32)> {
    let mut parts = tag.strip_prefix('v')?.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA_A: &str = "949f81b3c30ca03a3d4effdecda04f100fa3edc07a28b19400f72ede7c5f0491";
    const SHA_B: &str = "2e0642d4c6a51adc0fea0b45bbcd102feee744ce47d34424e1950720545d4d84";
    const DIGEST: &str = "69860bda5563ac81e3c0057d654b5253219618a22ec3a346306239bba8cfa1a6";

    /// A valid one-cell matrix; tests break one thing at a time.
    fn minimal() -> String {
        format!(
            r#"default = "c1"

[kind."v0.11.1"]
linux-amd64 = "{SHA_A}"

[operator."v0.48.1"]
bundle_url = "https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/v0.48.1/bundle.yaml"
bundle_sha256 = "{SHA_B}"

[[cell]]
name = "c1"
kind_version = "v0.11.1"
node_image = "kindest/node:v1.21.1@sha256:{DIGEST}"
kind_config = "fixtures/kind/cluster.yaml"
operator_version = "v0.48.1"
servicemonitor = "mission"
allowed_to_fail = false
note = "the test cell"
"#
        )
    }

    fn err(text: &str) -> MatrixError {
        match Matrix::parse(text, "m.toml") {
            Ok(m) => panic!("expected an error, parsed {:?}", m.names()),
            Err(e) => e.downcast::<MatrixError>().expect("a located MatrixError"),
        }
    }

    /// 1-based line of the first occurrence of `needle` in `text`.
    fn line_of(text: &str, needle: &str) -> usize {
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in text"));
        text[..at].matches('\n').count() + 1
    }

    #[test]
    fn minimal_matrix_parses_and_resolves_pins() {
        let m = Matrix::parse(&minimal(), "m.toml").unwrap();
        let c = m.default_cell();
        assert_eq!(c.name, "c1");
        assert_eq!(
            c.kind_sha256.get("linux-amd64").map(String::as_str),
            Some(SHA_A)
        );
        assert_eq!(c.operator_bundle_sha256, SHA_B);
        assert_eq!(c.kubernetes_version(), "v1.21.1");
        assert_eq!(c.kind_config, PathBuf::from("fixtures/kind/cluster.yaml"));
    }

    #[test]
    fn shipped_matrix_has_the_agreed_cells() {
        let m = Matrix::load_default().unwrap();
        assert_eq!(
            m.names(),
            [
                "kind0.11-k8s1.21",
                "kind0.11-k8s1.21-honorlabels",
                "kind0.11-k8s1.20",
                "kind0.11-k8s1.19",
                "kind0.20-k8s1.21",
                "kind0.20-k8s1.27",
            ]
        );
        let d = m.default_cell();
        assert_eq!(d.name, "kind0.11-k8s1.21");
        assert_eq!(d.kind_version, "v0.11.1");
        assert_eq!(
            d.node_image,
            "kindest/node:v1.21.1@sha256:69860bda5563ac81e3c0057d654b5253219618a22ec3a346306239bba8cfa1a6"
        );
        assert_eq!(
            d.kind_sha256.len(),
            3,
            "kind v0.11.1 pins linux-amd64, darwin-amd64, darwin-arm64"
        );
        assert_eq!(d.servicemonitor, ServiceMonitorVariant::Mission);
        assert_eq!(d.default_cluster_name(), "pme2e-kind0-11-k8s1-21");
        assert_eq!(
            d.kind_url("linux-amd64"),
            "https://github.com/kubernetes-sigs/kind/releases/download/v0.11.1/kind-linux-amd64"
        );
        let honor = m.cell("kind0.11-k8s1.21-honorlabels").unwrap();
        assert_eq!(honor.servicemonitor, ServiceMonitorVariant::HonorLabels);
        assert_eq!(honor.node_image, d.node_image);
        for c in &m.cells {
            // FACTS: kind v0.11.1 on cgroup v2 is not known to work or fail; v0.20.0 must pass.
            assert_eq!(c.allowed_to_fail, c.kind_version == "v0.11.1", "{}", c.name);
            assert_eq!(c.operator_version, "v0.48.1");
            assert_eq!(c.operator_bundle_sha256, SHA_B);
            assert!(c.kind_sha256.contains_key("linux-amd64"));
            let config = crate::workspace_root().join(&c.kind_config);
            assert!(config.is_file(), "{}: {} missing", c.name, config.display());
        }
        // kind v0.20.0 darwin binaries are not pinned upstream-facts-wise: no key, no download.
        assert!(!m
            .cell("kind0.20-k8s1.27")
            .unwrap()
            .kind_sha256
            .contains_key("darwin-arm64"));
        assert_eq!(
            m.cell("kind0.20-k8s1.27").unwrap().kubernetes_version(),
            "v1.27.3"
        );
    }

    #[test]
    fn shipped_kind_configs_are_one_control_plane_two_workers_without_images() {
        let m = Matrix::load_default().unwrap();
        let configs: BTreeSet<&PathBuf> = m.cells.iter().map(|c| &c.kind_config).collect();
        for path in configs {
            let text = std::fs::read_to_string(crate::workspace_root().join(path)).unwrap();
            let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            assert_eq!(
                doc["apiVersion"].as_str(),
                Some("kind.x-k8s.io/v1alpha4"),
                "{}",
                path.display()
            );
            assert_eq!(doc["kind"].as_str(), Some("Cluster"));
            let nodes = doc["nodes"].as_sequence().expect("nodes list");
            let roles: Vec<&str> = nodes
                .iter()
                .map(|n| n["role"].as_str().unwrap_or("?"))
                .collect();
            assert_eq!(
                roles,
                ["control-plane", "worker", "worker"],
                "{}",
                path.display()
            );
            assert!(
                nodes.iter().all(|n| n.get("image").is_none()),
                "the image comes from --image, not the file"
            );
            assert!(
                doc.get("name").is_none(),
                "the cluster name comes from --name, not the file"
            );
        }
    }

    #[test]
    fn shipped_manifest_paths_are_the_agreed_ones() {
        assert_eq!(
            ServiceMonitorVariant::Mission.manifest(),
            "manifests/servicemonitor-cadvisor.yaml"
        );
        assert_eq!(
            ServiceMonitorVariant::HonorLabels.manifest(),
            "manifests/servicemonitor-cadvisor-honorlabels.yaml"
        );
        // Each variant's file exists and sets honorLabels as its name says.
        for (variant, honor) in [
            (ServiceMonitorVariant::Mission, None),
            (ServiceMonitorVariant::HonorLabels, Some(true)),
        ] {
            let path = crate::workspace_root().join(variant.manifest());
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            assert_eq!(
                doc["kind"].as_str(),
                Some("ServiceMonitor"),
                "{}",
                path.display()
            );
            let endpoints = doc["spec"]["endpoints"].as_sequence().expect("endpoints");
            assert!(!endpoints.is_empty());
            for ep in endpoints {
                assert_eq!(
                    ep.get("honorLabels").and_then(serde_yaml::Value::as_bool),
                    honor,
                    "{}",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn unknown_cell_lists_known_ones() {
        let m = Matrix::parse(&minimal(), "m.toml").unwrap();
        let e = m.cell("nope").unwrap_err().to_string();
        assert!(
            e.contains("unknown matrix cell `nope`") && e.contains("known cells: c1"),
            "{e}"
        );
    }

    #[test]
    fn github_matrix_has_exactly_the_agreed_keys_and_filters() {
        let m = Matrix::load_default().unwrap();
        let all = m.github_matrix(None).unwrap();
        let include = all["include"].as_array().unwrap();
        assert_eq!(include.len(), m.cells.len());
        for entry in include {
            let keys: Vec<&str> = entry
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut expected = GITHUB_MATRIX_KEYS.to_vec();
            expected.sort();
            assert_eq!(keys, expected);
        }
        assert_eq!(
            m.github_matrix(Some("")).unwrap(),
            all,
            "an empty dispatch input means every cell"
        );
        let one = m.github_matrix(Some("kind0.20-k8s1.27")).unwrap();
        assert_eq!(
            one,
            serde_json::json!({"include": [{"cell": "kind0.20-k8s1.27", "kind_version": "v0.20.0",
                "kubernetes_version": "v1.27.3", "servicemonitor": "mission", "allowed_to_fail": false}]})
        );
        assert!(m
            .github_matrix(Some("kind9"))
            .unwrap_err()
            .to_string()
            .contains("known cells"));
    }

    #[test]
    fn rejects_unknown_field_with_line() {
        let text = minimal().replace(
            "allowed_to_fail = false",
            "allowed_to_fail = false\nretries = 3",
        );
        let e = err(&text);
        assert_eq!(e.line, line_of(&text, "retries"), "{e}");
        assert!(e.reason.contains("unknown field `retries`"), "{e}");
        assert!(
            e.to_string().starts_with(&format!("m.toml:{}:", e.line)),
            "{e}"
        );
    }

    #[test]
    fn rejects_bad_sha256_length() {
        let short = &SHA_A[..63];
        let text = minimal().replace(SHA_A, short);
        let e = err(&text);
        assert_eq!(e.line, line_of(&text, short), "{e}");
        assert!(
            e.reason
                .contains("kind v0.11.1 linux-amd64 sha256 has 63 characters"),
            "{e}"
        );

        let text = minimal().replace(SHA_B, &SHA_B.to_uppercase());
        let e = err(&text);
        assert!(
            e.reason.contains("bundle_sha256") && e.reason.contains("not lowercase hex"),
            "{e}"
        );
    }

    #[test]
    fn rejects_image_without_digest() {
        let text = minimal().replace(&format!("@sha256:{DIGEST}"), "");
        let e = err(&text);
        assert_eq!(e.line, line_of(&text, "node_image"), "{e}");
        assert!(e.reason.contains("no @sha256 digest"), "{e}");

        let e = err(&minimal().replace("kindest/node:v1.21.1@", "kindest/node@"));
        assert!(e.reason.contains("has no tag"), "{e}");
        let e = err(&minimal().replace(DIGEST, &DIGEST[1..]));
        assert!(e.reason.contains("64 lowercase hex"), "{e}");
    }

    #[test]
    fn rejects_duplicate_name() {
        let base = minimal();
        let cell = &base[base.find("[[cell]]").unwrap()..];
        let text = format!("{base}\n{cell}");
        let e = err(&text);
        let second = text.rfind("name = \"c1\"").unwrap();
        assert_eq!(e.line, text[..second].matches('\n').count() + 1, "{e}");
        assert!(e.reason.contains("duplicate cell name `c1`"), "{e}");
    }

    #[test]
    fn rejects_names_that_collide_as_cluster_names() {
        let base = minimal();
        let cell = base[base.find("[[cell]]").unwrap()..].replace("\"c1\"", "\"c.1\"");
        let text = format!("{}\n{cell}", base.replace("\"c1\"", "\"c-1\""));
        let e = err(&text);
        assert!(
            e.reason
                .contains("would both create kind cluster `pme2e-c-1`"),
            "{e}"
        );
    }

    #[test]
    fn rejects_missing_linux_amd64_kind_sha() {
        let text = minimal().replace("linux-amd64 =", "darwin-arm64 =");
        let e = err(&text);
        assert!(
            e.reason
                .contains("kind v0.11.1 has no sha256 for linux-amd64"),
            "{e}"
        );
        assert!(
            e.line >= line_of(&text, "[kind.") && e.line <= line_of(&text, "darwin-arm64"),
            "{e}"
        );
    }

    #[test]
    fn rejects_unknown_platform() {
        let text = minimal()
            .replace("linux-amd64 =", "linux-amd64 = \"{SHA_A}\"\nlinux-riscv =")
            .replace("{SHA_A}", SHA_A);
        let e = err(&text);
        assert_eq!(e.line, line_of(&text, "linux-riscv"), "{e}");
        assert!(
            e.reason.contains("unknown kind platform `linux-riscv`"),
            "{e}"
        );
    }

    #[test]
    fn rejects_unknown_servicemonitor_variant() {
        let text = minimal().replace("\"mission\"", "\"honorlabels\"");
        let e = err(&text);
        assert_eq!(e.line, line_of(&text, "servicemonitor"), "{e}");
        assert!(
            e.reason.contains("unknown variant `honorlabels`") && e.reason.contains("honor-labels"),
            "{e}"
        );
    }

    #[test]
    fn rejects_dangling_references_and_bad_default() {
        let e = err(&minimal().replace("kind_version = \"v0.11.1\"", "kind_version = \"v0.12.0\""));
        assert!(
            e.reason
                .contains("kind_version `v0.12.0` has no [kind.\"v0.12.0\"] table")
                && e.reason.contains("v0.11.1"),
            "{e}"
        );
        let e = err(&minimal().replace(
            "operator_version = \"v0.48.1\"",
            "operator_version = \"v0.50.0\"",
        ));
        assert!(e.reason.contains("operator_version `v0.50.0`"), "{e}");
        let text = minimal().replace("default = \"c1\"", "default = \"c2\"");
        let e = err(&text);
        assert_eq!(e.line, 1);
        assert!(
            e.reason
                .contains("default cell `c2` is not defined; known cells: c1"),
            "{e}"
        );
    }

    #[test]
    fn rejects_old_kubernetes_that_must_pass() {
        let text = minimal().replace("v1.21.1@", "v1.18.19@");
        let e = err(&text);
        assert!(e.reason.contains("cannot boot on cgroup-v2 hosts"), "{e}");
        let ok = text.replace("allowed_to_fail = false", "allowed_to_fail = true");
        assert_eq!(
            Matrix::parse(&ok, "m.toml")
                .unwrap()
                .default_cell()
                .kubernetes_version(),
            "v1.18.19"
        );
    }

    #[test]
    fn rejects_other_malformed_values() {
        let e = err(&minimal().replace("name = \"c1\"", "name = \"C_1\""));
        assert!(e.reason.contains("cell name `C_1`"), "{e}");
        let e = err(&minimal().replace("fixtures/kind/cluster.yaml", "../cluster.yaml"));
        assert!(e.reason.contains("relative to the workspace root"), "{e}");
        let e = err(&minimal().replace("/v0.48.1/bundle", "/v0.47.0/bundle"));
        assert!(e.reason.contains("does not contain `/v0.48.1/`"), "{e}");
        let e = err(&minimal().replace("note = \"the test cell\"", "note = \" \""));
        assert!(e.reason.contains("note is empty"), "{e}");
        let e = err(&minimal().replace("allowed_to_fail = false\n", ""));
        assert!(e.reason.contains("missing field `allowed_to_fail`"), "{e}");
        let e = err("default = \"x\"\n");
        assert!(e.reason.contains("no cells"), "{e}");
        let e = err("default = \n");
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn metrics_default_per_cell_and_are_validated_with_their_line() {
        let m = Matrix::parse(&minimal(), "m.toml").unwrap();
        assert_eq!(m.default_cell().metrics, MetricName::defaults());
        let with = minimal().replace(
            "note = \"the test cell\"",
            "note = \"the test cell\"\nmetrics = [\"container_memory_working_set_bytes\"]",
        );
        let m = Matrix::parse(&with, "m.toml").unwrap();
        assert_eq!(
            m.default_cell().metrics,
            [MetricName::new("container_memory_working_set_bytes").unwrap()]
        );
        let bad = minimal().replace(
            "note = \"the test cell\"",
            "note = \"the test cell\"\nmetrics = [\"container_cpu_usage_seconds_total\", \"container-memory\"]",
        );
        let e = err(&bad);
        assert_eq!(e.line, line_of(&bad, "metrics = "), "{e}");
        assert_eq!(e.column, 49, "{e}"); // the opening quote of the bad name
        assert!(
            e.reason
                .contains("cell `c1`: metrics: invalid metric name \"container-memory\""),
            "{e}"
        );
        assert!(e.reason.contains("[a-zA-Z_:][a-zA-Z0-9_:]*"), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("m.toml:{}:49: ", e.line)),
            "{e}"
        );
        let empty = minimal().replace(
            "note = \"the test cell\"",
            "note = \"the test cell\"\nmetrics = []",
        );
        let e = err(&empty);
        assert!(e.reason.contains("metrics is empty"), "{e}");
        assert_eq!(e.line, line_of(&empty, "metrics = "));
        let twice = minimal().replace(
            "note = \"the test cell\"",
            "note = \"the test cell\"\nmetrics = [\"a\", \"a\"]",
        );
        assert!(err(&twice).reason.contains("listed twice"));
        let not_strings = minimal().replace(
            "note = \"the test cell\"",
            "note = \"the test cell\"\nmetrics = \"a\"",
        );
        assert_eq!(err(&not_strings).line, line_of(&not_strings, "metrics = "));
    }

    #[test]
    fn load_names_a_missing_file() {
        let e = Matrix::load(Path::new("/nonexistent/matrix.toml")).unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot read the matrix file /nonexistent/matrix.toml"),
            "{e:#}"
        );
    }
}
