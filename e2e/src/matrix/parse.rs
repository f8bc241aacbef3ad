//! Reading `fixtures/matrix.toml`: its shape, and every check that turns a mistake into
//! `file:line:column: reason`.

use super::*;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Component;
use toml::Spanned;

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
    #[serde(default)]
    stack: Option<Spanned<String>>,
}

/// Turns byte spans into `origin:line:column` errors.
struct Locator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Locator<'_> {
    fn error(&self, span: Range<usize>, reason: impl Into<String>) -> Located {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(start, |nl| start - nl - 1) + 1;
        Located {
            origin: self.origin.to_string(),
            line,
            column,
            reason: reason.into(),
        }
    }

    fn at<T>(&self, spanned: &Spanned<T>, reason: impl Into<String>) -> Located {
        self.error(spanned.span(), reason)
    }
}

pub(super) fn parse(text: &str, origin: &str) -> Result<Matrix, Located> {
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
) -> Result<(), Located> {
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

fn check_operator(loc: &Locator, version: &str, op: &RawOperator) -> Result<(), Located> {
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

fn check_sha256(loc: &Locator, sha: &Spanned<String>, what: &str) -> Result<(), Located> {
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

fn build_cell(loc: &Locator, raw: &RawMatrix, c: &RawCell) -> Result<Cell, Located> {
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

    let stack = match &c.stack {
        None => None,
        Some(spanned) => {
            let path = Path::new(spanned.get_ref());
            let relative = !spanned.get_ref().is_empty()
                && path
                    .components()
                    .all(|comp| matches!(comp, Component::Normal(_)));
            if !relative {
                return Err(loc.at(
                    spanned,
                    format!(
                        "cell `{name}`: stack `{}` must be a path relative to the workspace root, without `..` (a YAML file or a directory of them)",
                        spanned.get_ref()
                    ),
                ));
            }
            Some(PathBuf::from(spanned.get_ref()))
        }
    };

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
        stack,
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
