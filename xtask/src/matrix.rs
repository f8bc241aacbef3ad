//! `cargo xtask matrix`: the cells of `fixtures/matrix.toml` as a table, one cell in detail
//! (`--cell`), or as the JSON GitHub Actions' `strategy.matrix` takes via `fromJSON` (`--json`).

use anyhow::{bail, Result};
use e2e::matrix::{Cell, Matrix, KIND_PLATFORMS};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON: `{"include":[…]}` on one line (for `$GITHUB_OUTPUT`), or with `--cell` every
    /// field of that cell.
    #[arg(long)]
    json: bool,
    /// Keep only this cell in the `--json` matrix; empty means every cell, so a workflow can pass
    /// its optional dispatch input unchanged.
    #[arg(long, value_name = "CELL", requires = "json", conflicts_with = "cell")]
    only: Option<String>,
    /// Show one cell in detail: pinned URLs and digests, cluster name, how to run it.
    #[arg(long, value_name = "CELL")]
    cell: Option<String>,
    /// Print only the default cell's name (what `cargo xtask e2e` runs without `--cell`).
    #[arg(long, conflicts_with_all = ["json", "cell"])]
    default: bool,
    /// Matrix file to read instead of `fixtures/matrix.toml`.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let matrix = match &args.file {
        Some(path) => Matrix::load(path)?,
        None => Matrix::load_default()?,
    };
    if args.default {
        println!("{}", matrix.default_cell().name);
        return Ok(ExitCode::SUCCESS);
    }
    let out = match (&args.cell, args.json) {
        (Some(name), true) => serde_json::to_string_pretty(matrix.cell(name)?)?,
        (Some(name), false) => detail(&matrix, matrix.cell(name)?),
        (None, true) => github_json(&matrix, args.only.as_deref())?,
        (None, false) => table(&matrix),
    };
    println!("{}", out.trim_end());
    Ok(ExitCode::SUCCESS)
}

/// One line of JSON: GitHub's `key=value` step outputs cannot span lines.
fn github_json(matrix: &Matrix, only: Option<&str>) -> Result<String> {
    let json = serde_json::to_string(&matrix.github_matrix(only)?)?;
    if json.contains('\n') {
        bail!("matrix JSON unexpectedly spans lines; $GITHUB_OUTPUT needs one line");
    }
    Ok(json)
}

fn ci_status(cell: &Cell) -> &'static str {
    if cell.allowed_to_fail {
        "allowed to fail"
    } else {
        "required"
    }
}

/// The cells as an aligned table, the default one starred.
fn table(matrix: &Matrix) -> String {
    let header = [
        "",
        "CELL",
        "KIND",
        "KUBERNETES",
        "OPERATOR",
        "SERVICEMONITOR",
        "CI",
    ];
    let default = &matrix.default_cell().name;
    let mut rows: Vec<[String; 7]> = vec![header.map(String::from)];
    for c in &matrix.cells {
        rows.push([
            if &c.name == default { "*" } else { "" }.to_string(),
            c.name.clone(),
            c.kind_version.clone(),
            c.kubernetes_version().to_string(),
            c.operator_version.clone(),
            c.servicemonitor.to_string(),
            ci_status(c).to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end()).unwrap();
    }
    writeln!(out).unwrap();
    writeln!(
        out,
        "* default cell (what `cargo xtask e2e` runs without --cell)"
    )
    .unwrap();
    writeln!(
        out,
        "run one:  cargo xtask e2e --cell NAME      details:  cargo xtask matrix --cell NAME"
    )
    .unwrap();
    out
}

/// Everything about one cell, including what is pinned and how to reproduce it.
fn detail(matrix: &Matrix, c: &Cell) -> String {
    let mut out = String::new();
    let default = if c.name == matrix.default_cell().name {
        " (default)"
    } else {
        ""
    };
    let mut field = |k: &str, v: &str| writeln!(out, "{k:<16}{v}").unwrap();
    field("cell", &format!("{}{default}", c.name));
    field("ci", ci_status(c));
    field("note", &c.note);
    field("kind", &c.kind_version);
    for platform in KIND_PLATFORMS {
        let pin = match c.kind_sha256.get(*platform) {
            Some(sha) => format!("{}  sha256 {sha}", c.kind_url(platform)),
            None => "not pinned: the harness will not download kind here".to_string(),
        };
        field(&format!("  {platform}"), &pin);
    }
    field("node image", &c.node_image);
    field("kubernetes", c.kubernetes_version());
    field("kind config", &c.kind_config.display().to_string());
    field("operator", &c.operator_version);
    field(
        "  bundle",
        &format!(
            "{}  sha256 {}",
            c.operator_bundle_url, c.operator_bundle_sha256
        ),
    );
    field(
        "servicemonitor",
        &format!("{} ({})", c.servicemonitor, c.servicemonitor.manifest()),
    );
    let metrics: Vec<&str> = c.metrics.iter().map(|m| m.as_str()).collect();
    field("metrics", &metrics.join(", "));
    field("cluster name", &c.default_cluster_name());
    field(
        "reproduce",
        &format!("cargo xtask e2e --cell {} --keep", c.name),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_every_cell_with_its_versions_and_stars_the_default() {
        let m = Matrix::load_default().unwrap();
        let t = table(&m);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("   CELL"), "{t}");
        for c in &m.cells {
            let line = lines
                .iter()
                .find(|l| l.split_whitespace().any(|w| w == c.name))
                .expect(&c.name);
            assert!(
                line.contains(&c.kind_version) && line.contains(c.kubernetes_version()),
                "{line}"
            );
            assert!(line.ends_with(ci_status(c)), "{line}");
            assert_eq!(
                line.starts_with('*'),
                c.name == m.default_cell().name,
                "{line}"
            );
        }
        // Columns line up: every row puts KUBERNETES at the same offset.
        let col = lines[0].find("KUBERNETES").unwrap();
        let d = lines.iter().find(|l| l.starts_with('*')).unwrap();
        assert_eq!(&d[col..col + 7], "v1.21.1");
    }

    #[test]
    fn detail_shows_pins_missing_pins_and_the_reproduce_command() {
        let m = Matrix::load_default().unwrap();
        let c = m.cell("kind0.20-k8s1.27").unwrap();
        let d = detail(&m, c);
        assert!(d.contains(
            "https://github.com/kubernetes-sigs/kind/releases/download/v0.20.0/kind-linux-amd64  sha256 513a7213"
        ));
        assert!(
            d.lines()
                .any(|l| l.trim_start().starts_with("darwin-arm64") && l.contains("not pinned")),
            "{d}"
        );
        assert!(
            d.contains("cargo xtask e2e --cell kind0.20-k8s1.27 --keep"),
            "{d}"
        );
        assert!(d.contains("pme2e-kind0-20-k8s1-27"), "{d}");
        assert!(
            d.contains(
                "metrics         container_cpu_usage_seconds_total, container_memory_working_set_bytes\n"
            ),
            "{d}"
        );
        assert!(detail(&m, m.default_cell())
            .starts_with("cell            kind0.11-k8s1.21 (default)\n"));
    }

    #[test]
    fn github_json_is_one_line_and_round_trips() {
        let m = Matrix::load_default().unwrap();
        let json = github_json(&m, None).unwrap();
        assert!(!json.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v, m.github_matrix(None).unwrap());
        let one: serde_json::Value =
            serde_json::from_str(&github_json(&m, Some("kind0.11-k8s1.19")).unwrap()).unwrap();
        assert_eq!(one["include"].as_array().unwrap().len(), 1);
        assert_eq!(one["include"][0]["cell"], "kind0.11-k8s1.19");
        let err = github_json(&m, Some("kind0.11-k8s1.18"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown matrix cell `kind0.11-k8s1.18`")
                && err.contains("kind0.11-k8s1.19")
        );
    }
}
