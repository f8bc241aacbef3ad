//! The GitHub Actions workflows and the docs agree with `fixtures/matrix.toml`: both workflows
//! parse, `e2e.yml` consumes exactly what `cargo xtask matrix --json` emits, actions are pinned,
//! permissions are read-only, and every cell name mentioned anywhere exists.

use e2e::matrix::{Matrix, GITHUB_MATRIX_KEYS};
use e2e::yaml::Value;
use std::collections::BTreeSet;

fn read(rel: &str) -> String {
    let path = e2e::workspace_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn workflow(name: &str) -> (String, Value) {
    let rel = format!(".github/workflows/{name}");
    let text = read(&rel);
    let doc = e2e::yaml::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"));
    (text, doc)
}

fn job<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let job = &doc["jobs"][name];
    assert!(job.is_object(), "workflow has no job `{name}`");
    job
}

fn steps(job: &Value) -> &[Value] {
    job["steps"]
        .as_array()
        .map(Vec::as_slice)
        .expect("job has steps")
}

/// The `run:` scripts of a job, joined.
fn scripts(job: &Value) -> String {
    steps(job)
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `matrix.<key>` read inside a `${{ … }}` expression of `text`.
fn matrix_keys_used(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let expressions = text
        .split("${{")
        .skip(1)
        .filter_map(|rest| rest.split_once("}}").map(|(e, _)| e));
    for expr in expressions {
        let mut rest = expr;
        while let Some(at) = rest.find("matrix.") {
            // `needs.matrix.outputs…` is the matrix job's output, not the strategy matrix.
            let preceded_by_dot = at > 0 && rest.as_bytes()[at - 1] == b'.';
            let after = &rest[at + "matrix.".len()..];
            let key: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !preceded_by_dot && !key.is_empty() {
                keys.insert(key);
            }
            rest = after;
        }
    }
    keys
}

/// Words shaped like a cell name (`kind<digit>…`), and every literal `--cell X`.
fn cell_mentions(text: &str) -> BTreeSet<String> {
    let is_name_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("kind") {
        let boundary = text[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !is_name_char(c) && c != '/');
        let next_is_digit = text[i + 4..].starts_with(|c: char| c.is_ascii_digit());
        if boundary && next_is_digit {
            let word: String = text[i..].chars().take_while(|&c| is_name_char(c)).collect();
            found.insert(word.trim_end_matches(['.', '-']).to_string());
        }
    }
    for (i, _) in text.match_indices("--cell ") {
        let word: String = text[i + 7..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '`')
            .collect();
        let word = word.trim_end_matches(['.', ',', ')']);
        let placeholder = word.starts_with(['$', '<', '"']) || word == "NAME" || word.is_empty();
        if !placeholder {
            found.insert(word.to_string());
        }
    }
    found
}

#[test]
fn both_workflows_parse_and_trigger_as_agreed() {
    let (_, ci) = workflow("ci.yml");
    let on = &ci["on"];
    assert!(
        on.get("push").is_some() && on.get("pull_request").is_some(),
        "ci.yml triggers: {on:?}"
    );

    let (_, e2e) = workflow("e2e.yml");
    let on = &e2e["on"];
    for trigger in ["push", "pull_request", "schedule", "workflow_dispatch"] {
        assert!(on.get(trigger).is_some(), "e2e.yml lacks trigger {trigger}");
    }
    assert!(
        on["workflow_dispatch"]["inputs"]["cell"].is_object(),
        "dispatch needs a `cell` input"
    );
}

#[test]
fn permissions_are_read_only_and_actions_pinned() {
    for name in ["ci.yml", "e2e.yml"] {
        let (text, doc) = workflow(name);
        assert_eq!(
            doc["permissions"]["contents"].as_str(),
            Some("read"),
            "{name}: top-level permissions"
        );
        assert_eq!(
            doc["permissions"].as_object().map(|m| m.len()),
            Some(1),
            "{name}: only contents: read"
        );
        for (job_name, job) in doc["jobs"].as_object().expect("jobs") {
            if let Some(perms) = job.get("permissions").and_then(Value::as_object) {
                for (scope, level) in perms {
                    assert!(
                        matches!(level.as_str(), Some("read" | "none")),
                        "{name}: job {job_name:?} grants {scope:?}: {level:?}"
                    );
                }
            }
            let timeout = job["timeout-minutes"].as_u64();
            assert!(
                timeout.is_some_and(|t| (1..=120).contains(&t)),
                "{name}: job {job_name:?} timeout-minutes"
            );
        }
        // `uses: owner/repo@<40-hex sha> # vN…`: immutable, and the comment says which release.
        for line in text.lines().filter(|l| {
            l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:")
        }) {
            let spec = line.split("uses:").nth(1).unwrap().trim();
            let (action, rest) = spec
                .split_once('@')
                .unwrap_or_else(|| panic!("{name}: unpinned `{line}`"));
            let (sha, comment) = rest.split_once('#').unwrap_or((rest, ""));
            let sha = sha.trim();
            assert!(action.contains('/'), "{name}: `{line}`");
            assert!(
                sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                "{name}: `{action}` must be pinned to a full commit SHA, found `{sha}`"
            );
            assert!(
                comment.trim().starts_with('v'),
                "{name}: `{line}` needs a `# vX.Y.Z` comment"
            );
        }
    }
}

#[test]
fn e2e_workflow_consumes_exactly_the_matrix_json() {
    let (text, doc) = workflow("e2e.yml");
    let matrix_job = job(&doc, "matrix");
    let script = scripts(matrix_job);
    assert!(
        script.contains("cargo xtask matrix --json"),
        "the matrix job must run `cargo xtask matrix --json`:\n{script}"
    );
    // The dispatch input goes to xtask (which validates it), not to a shell filter.
    assert!(script.contains("--only \"$CELL\""), "{script}");
    let env_cell = steps(matrix_job)
        .iter()
        .find_map(|s| s["env"]["CELL"].as_str());
    assert_eq!(env_cell, Some("${{ inputs.cell }}"));
    assert!(
        script.contains("echo \"matrix=$json\" >> \"$GITHUB_OUTPUT\""),
        "{script}"
    );
    let step_id = steps(matrix_job)
        .iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.contains("--json")))
        .and_then(|s| s["id"].as_str())
        .expect("the --json step has an id");
    assert_eq!(
        matrix_job["outputs"]["matrix"].as_str(),
        Some(format!("${{{{ steps.{step_id}.outputs.matrix }}}}").as_str())
    );

    let cells = job(&doc, "e2e");
    assert_eq!(cells["needs"].as_str(), Some("matrix"));
    assert_eq!(
        cells["strategy"]["matrix"].as_str(),
        Some("${{ fromJSON(needs.matrix.outputs.matrix) }}")
    );
    assert_eq!(
        cells["strategy"]["fail-fast"].as_bool(),
        Some(false),
        "one cell's failure must not cancel the others"
    );
    assert_eq!(
        cells["continue-on-error"].as_str(),
        Some("${{ matrix.allowed_to_fail }}")
    );

    // The keys the workflow reads are exactly the keys xtask emits, and those are what the library says.
    let emitted = Matrix::load_default().unwrap().github_matrix(None).unwrap();
    for entry in emitted["include"].as_array().unwrap() {
        let keys: BTreeSet<String> = entry.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            GITHUB_MATRIX_KEYS.iter().map(|k| k.to_string()).collect()
        );
    }
    let used = matrix_keys_used(&text);
    let emitted_keys: BTreeSet<String> = GITHUB_MATRIX_KEYS.iter().map(|k| k.to_string()).collect();
    assert_eq!(
        used, emitted_keys,
        "e2e.yml reads matrix.<key> for exactly the keys `cargo xtask matrix --json` emits"
    );
}

#[test]
fn e2e_cell_job_runs_the_cell_and_reports() {
    let (_, doc) = workflow("e2e.yml");
    let cells = job(&doc, "e2e");
    let script = scripts(cells);
    assert!(
        script
            .lines()
            .any(|l| l.trim() == "cargo xtask e2e --cell ${{ matrix.cell }}"),
        "{script}"
    );
    assert!(
        script.contains("GITHUB_STEP_SUMMARY") && script.contains("summary.md"),
        "{script}"
    );
    let summary = steps(cells).iter().find(|s| {
        s["run"]
            .as_str()
            .is_some_and(|r| r.contains("GITHUB_STEP_SUMMARY"))
    });
    assert_eq!(
        summary.unwrap()["if"].as_str(),
        Some("${{ always() }}"),
        "the summary is written even when the run fails"
    );

    let uploads: Vec<&Value> = steps(cells)
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .collect();
    let paths: Vec<&str> = uploads
        .iter()
        .filter_map(|s| s["with"]["path"].as_str())
        .collect();
    assert!(
        paths.iter().any(|p| p.contains("target/e2e/*/junit.xml")),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p.contains("target/e2e/")), "{paths:?}");
    // The run directory holds the cluster's kubeconfig (client credentials): never upload it whole.
    for p in paths.iter().flat_map(|p| p.lines()) {
        assert!(
            !matches!(
                p.trim(),
                "target/e2e" | "target/e2e/" | "target/e2e/*" | "target/e2e/*/"
            ),
            "uploads {p}"
        );
    }
    for upload in &uploads {
        assert_eq!(upload["if"].as_str(), Some("${{ failure() }}"));
        assert!(
            upload["with"]["name"]
                .as_str()
                .is_some_and(|n| n.contains("${{ matrix.cell }}")),
            "unique per cell"
        );
    }
}

#[test]
fn ci_workflow_lints_and_runs_the_ci_profile() {
    let (text, doc) = workflow("ci.yml");
    let all: String = doc["jobs"]
        .as_object()
        .unwrap()
        .values()
        .map(scripts)
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "cargo fmt --all --check",
        "cargo clippy",
        "-D warnings",
        "cargo xtask test --profile ci",
    ] {
        assert!(all.contains(needle), "ci.yml does not run `{needle}`");
    }
    assert!(
        text.contains("target/nextest/ci/junit.xml"),
        "ci.yml uploads the JUnit report"
    );
    assert!(text.contains("Swatinem/rust-cache@"), "ci.yml caches cargo");
    // The JUnit path is the ci profile's.
    let nextest = read(".config/nextest.toml");
    assert!(nextest.contains("[profile.ci.junit]") && nextest.contains("dir = \"target/nextest\""));
}

#[test]
fn every_cell_mentioned_in_docs_and_workflows_exists() {
    let matrix = Matrix::load_default().unwrap();
    let known: BTreeSet<&str> = matrix.names().into_iter().collect();
    let mut checked = 0;
    for rel in [
        "README.md",
        ".github/workflows/ci.yml",
        ".github/workflows/e2e.yml",
    ] {
        for name in cell_mentions(&read(rel)) {
            assert!(known.contains(name.as_str()), "{rel} mentions cell `{name}`, which fixtures/matrix.toml does not define; known: {known:?}");
            checked += 1;
        }
    }
    // README's matrix section names every cell, so the check above has something to check.
    let readme = read("README.md");
    for name in &known {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README.md does not mention cell `{name}`"
        );
    }
    assert!(checked >= known.len());
}

#[test]
fn mention_scanner_finds_names_and_skips_placeholders() {
    let text = "run `cargo xtask e2e --cell kind0.20-k8s1.27`, or kind0.11-k8s1.21-honorlabels. \
                Not: --cell NAME, --cell <name>, --cell ${{ matrix.cell }}, kind v0.11.1, kindest/node, \
                kubernetes-sigs/kind0.x. Typo: --cell kind0.2-k8s1.27";
    let found = cell_mentions(text);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        [
            "kind0.11-k8s1.21-honorlabels",
            "kind0.2-k8s1.27",
            "kind0.20-k8s1.27"
        ]
    );
    assert_eq!(
        matrix_keys_used(
            "${{ matrix.cell }} ${{ needs.matrix.outputs.matrix }} fixtures/matrix.toml \
             ${{ x && matrix.allowed_to_fail }}"
        ),
        ["allowed_to_fail", "cell"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}
