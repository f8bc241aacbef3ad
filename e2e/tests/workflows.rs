//! The GitHub Actions workflows, the composite action (`action.yml`) and the docs agree with
//! `fixtures/matrix.toml`: both workflows parse, `e2e.yml` builds xtask once and consumes exactly
//! what `cargo xtask matrix --json` emits, every cell runs through the action, actions are pinned,
//! permissions are read-only, expressions reach scripts only through `env:`, every artifact has a
//! retention period, and every cell name mentioned anywhere exists.

use e2e::matrix::{Matrix, GITHUB_MATRIX_KEYS};
use e2e::yaml::Value;
use std::collections::BTreeSet;

fn read(rel: &str) -> String {
    let path = e2e::workspace_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn workflow(name: &str) -> (String, Value) {
    yaml_file(&format!(".github/workflows/{name}"))
}

fn yaml_file(rel: &str) -> (String, Value) {
    let text = read(rel);
    let doc = e2e::yaml::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"));
    (text, doc)
}

/// The composite action at the repository root.
fn action() -> (String, Value) {
    yaml_file("action.yml")
}

/// Every file with steps: the two workflows and the action.
const STEP_FILES: [&str; 3] = [
    ".github/workflows/ci.yml",
    ".github/workflows/e2e.yml",
    "action.yml",
];

/// Every step of a workflow (all jobs) or of a composite action.
fn all_steps(doc: &Value) -> Vec<&Value> {
    match doc["jobs"].as_object() {
        Some(jobs) => jobs.values().flat_map(steps).collect(),
        None => doc["runs"]["steps"]
            .as_array()
            .expect("a composite action has runs.steps")
            .iter()
            .collect(),
    }
}

fn uses(step: &Value, action: &str) -> bool {
    step["uses"]
        .as_str()
        .is_some_and(|u| u.starts_with(&format!("{action}@")))
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
        let (_, doc) = workflow(name);
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
    }
    for rel in STEP_FILES {
        assert_pinned(rel, &read(rel));
    }
}

/// `uses: owner/repo@<40-hex sha> # vN…`: immutable, and the comment says which release. The
/// repository's own action (`uses: ./`) is the one exception: it is this checkout.
fn assert_pinned(name: &str, text: &str) {
    for line in text
        .lines()
        .filter(|l| l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:"))
    {
        let spec = line.split("uses:").nth(1).unwrap().trim();
        if spec == "./" {
            continue;
        }
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

#[test]
fn expressions_reach_scripts_only_through_env() {
    for rel in STEP_FILES {
        let (_, doc) = yaml_file(rel);
        for step in all_steps(&doc) {
            if let Some(script) = step["run"].as_str() {
                assert!(
                    !script.contains("${{"),
                    "{rel}: an expression inside `run:` (pass it through `env:`):\n{script}"
                );
            }
        }
    }
}

#[test]
fn every_uploaded_artifact_has_a_retention_period() {
    let mut uploads = 0;
    for rel in STEP_FILES {
        let (_, doc) = yaml_file(rel);
        for step in all_steps(&doc) {
            if uses(step, "actions/upload-artifact") {
                uploads += 1;
                let days = &step["with"]["retention-days"];
                assert!(
                    days.as_u64().is_some() || days.as_str().is_some_and(|d| !d.trim().is_empty()),
                    "{rel}: upload {:?} without retention-days",
                    step["with"]["name"]
                );
            }
        }
    }
    assert!(uploads >= 4, "{uploads} uploads");
}

#[test]
fn e2e_workflow_consumes_exactly_the_matrix_json() {
    let (text, doc) = workflow("e2e.yml");
    let build = job(&doc, "build");
    let script = scripts(build);
    assert!(
        script.contains("xtask matrix --json"),
        "the build job must run `xtask matrix --json`:\n{script}"
    );
    // The dispatch input goes to xtask (which validates it), not to a shell filter.
    assert!(script.contains("--only \"$CELL\""), "{script}");
    let env_cell = steps(build).iter().find_map(|s| s["env"]["CELL"].as_str());
    assert_eq!(env_cell, Some("${{ inputs.cell }}"));
    assert!(
        script.contains("echo \"matrix=$json\" >> \"$GITHUB_OUTPUT\""),
        "{script}"
    );
    let step_id = steps(build)
        .iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.contains("--json")))
        .and_then(|s| s["id"].as_str())
        .expect("the --json step has an id");
    assert_eq!(
        build["outputs"]["matrix"].as_str(),
        Some(format!("${{{{ steps.{step_id}.outputs.matrix }}}}").as_str())
    );

    let cells = job(&doc, "e2e");
    assert_eq!(cells["needs"].as_str(), Some("build"));
    assert_eq!(
        cells["strategy"]["matrix"].as_str(),
        Some("${{ fromJSON(needs.build.outputs.matrix) }}")
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
fn e2e_workflow_builds_once_and_every_cell_runs_that_build_through_the_action() {
    let (_, doc) = workflow("e2e.yml");
    let build = job(&doc, "build");
    assert!(
        scripts(build).contains("cargo build -p xtask --locked"),
        "{}",
        scripts(build)
    );
    let upload = steps(build)
        .iter()
        .find(|s| uses(s, "actions/upload-artifact"))
        .expect("the build job uploads the binary");
    assert_eq!(upload["with"]["path"].as_str(), Some("target/debug/xtask"));
    let artifact = upload["with"]["name"].as_str().unwrap();

    let cells = job(&doc, "e2e");
    let cell_steps = steps(cells);
    // No toolchain, no compile, no nextest in a cell: the build job's binary does everything.
    let script = scripts(cells);
    assert!(!script.contains("cargo "), "a cell compiles:\n{script}");
    assert!(
        !cell_steps
            .iter()
            .any(|s| uses(s, "Swatinem/rust-cache") || uses(s, "taiki-e/install-action")),
        "a cell sets up Rust"
    );
    let download = cell_steps
        .iter()
        .position(|s| uses(s, "actions/download-artifact"))
        .expect("each cell downloads the binary");
    assert_eq!(
        cell_steps[download]["with"]["name"].as_str(),
        Some(artifact)
    );
    let run = cell_steps
        .iter()
        .position(|s| s["uses"].as_str() == Some("./"))
        .expect("each cell runs the repository's own action (`uses: ./`)");
    assert!(download < run);
    let with = &cell_steps[run]["with"];
    assert_eq!(with["cell"].as_str(), Some("${{ matrix.cell }}"));
    assert_eq!(with["xtask"].as_str(), Some("target/debug/xtask"));
    assert!(
        with["artifact-name"]
            .as_str()
            .is_some_and(|n| n.contains("${{ matrix.cell }}")),
        "artifact names unique per cell"
    );
}

#[test]
fn one_required_job_with_a_fixed_name_summarises_the_matrix() {
    let (_, doc) = workflow("e2e.yml");
    let result = job(&doc, "result");
    let name = result["name"].as_str().expect("a fixed name");
    assert!(!name.contains("${{"), "branch protection names it: {name}");
    let needs: BTreeSet<&str> = result["needs"]
        .as_array()
        .expect("needs: [build, e2e]")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(needs, BTreeSet::from(["build", "e2e"]));
    assert_eq!(
        result["if"].as_str(),
        Some("${{ always() }}"),
        "it reports a failed or cancelled matrix too"
    );
    let script = scripts(result);
    assert!(
        script.contains("GITHUB_STEP_SUMMARY") && script.contains("allowed_to_fail"),
        "{script}"
    );
    let env: Vec<&str> = steps(result)
        .iter()
        .filter_map(|s| s["env"].as_object())
        .flat_map(|e| e.values().filter_map(Value::as_str))
        .collect();
    for needed in [
        "${{ needs.build.result }}",
        "${{ needs.build.outputs.matrix }}",
    ] {
        assert!(env.contains(&needed), "{env:?}");
    }
}

#[test]
fn the_action_documents_its_inputs_and_outputs() {
    let (_, doc) = action();
    assert_eq!(doc["runs"]["using"].as_str(), Some("composite"));
    assert!(doc["description"].as_str().is_some_and(|d| !d.is_empty()));
    let inputs = doc["inputs"].as_object().expect("inputs");
    for name in ["stack", "cell", "metrics", "timeout", "keep-on-failure"] {
        assert!(inputs.contains_key(name), "input {name}");
    }
    for (name, input) in inputs {
        assert!(
            input["description"].as_str().is_some_and(|d| d.len() > 10),
            "input {name} needs a description"
        );
        assert_eq!(
            input["required"].as_bool(),
            Some(false),
            "input {name}: every input has a default"
        );
        assert!(input["default"].as_str().is_some(), "input {name}: default");
    }
    let outputs = doc["outputs"].as_object().expect("outputs");
    for name in ["result", "summary", "coverage", "diagnose"] {
        assert!(outputs.contains_key(name), "output {name}");
    }
    for (name, output) in outputs {
        assert!(
            output["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "output {name}"
        );
        assert!(
            output["value"]
                .as_str()
                .is_some_and(|v| v.starts_with("${{ steps.")),
            "output {name}"
        );
    }
    // Every `inputs.X` the steps read exists.
    let text = read("action.yml");
    for (i, _) in text.match_indices("inputs.") {
        let name: String = text[i + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if text[..i].ends_with("steps.") || text[..i].ends_with("outputs.") {
            continue;
        }
        assert!(
            inputs.contains_key(&name),
            "action.yml reads unknown input {name:?}"
        );
    }
}

#[test]
fn the_action_reports_summarises_uploads_and_caches_its_pinned_inputs() {
    let (_, doc) = action();
    let steps = all_steps(&doc);
    let summary = steps
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("GITHUB_STEP_SUMMARY"))
        })
        .expect("a job summary step");
    assert!(
        summary["if"]
            .as_str()
            .is_some_and(|c| c.contains("always()")),
        "the summary is written even when the run fails"
    );
    let uploads: Vec<&&Value> = steps
        .iter()
        .filter(|s| uses(s, "actions/upload-artifact"))
        .collect();
    assert_eq!(uploads.len(), 1);
    let paths = uploads[0]["with"]["path"].as_str().unwrap();
    for wanted in ["/summary.md", "/junit.xml", "/artifacts/"] {
        assert!(paths.contains(wanted), "{paths}");
    }
    // The run directory holds the cluster's kubeconfig (client credentials): never upload it whole.
    for p in paths.lines() {
        assert!(
            !p.trim().ends_with("outputs.dir }}") && !p.trim().ends_with("outputs.dir }}/"),
            "uploads the whole run directory: {p}"
        );
    }
    // kind and the bundle are cached under keys made of their pinned sha256.
    let caches: Vec<&&Value> = steps.iter().filter(|s| uses(s, "actions/cache")).collect();
    let cached: Vec<&str> = caches
        .iter()
        .filter_map(|s| s["with"]["path"].as_str())
        .collect();
    assert!(cached.iter().any(|p| p.ends_with("/tools/")), "{cached:?}");
    assert!(cached.iter().any(|p| p.ends_with("/cache/")), "{cached:?}");
    let script: String = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(script.contains(".kind_sha256[$p]") && script.contains(".operator_bundle_sha256"));
    let matrix = Matrix::load_default().unwrap();
    let pins = serde_json::to_value(matrix.default_cell()).unwrap();
    assert!(pins["kind_sha256"]["linux-amd64"].is_string(), "{pins}");
    assert!(pins["operator_bundle_sha256"].is_string(), "{pins}");
    // The harness runs with the inputs as arguments, from the action's own checkout.
    for flag in [
        "--stack",
        "--metric",
        "--timeout",
        "--keep-on-failure",
        "--cell",
    ] {
        assert!(script.contains(flag), "{flag}");
    }
    assert!(script.contains("cd \"$GITHUB_ACTION_PATH\""));
}

#[test]
fn nextest_is_installed_by_a_checksum_verifying_installer() {
    let (text, doc) = workflow("ci.yml");
    assert!(!text.contains("get.nexte.st"), "curl | tar checks nothing");
    let install = all_steps(&doc)
        .into_iter()
        .find(|s| uses(s, "taiki-e/install-action"))
        .expect("ci.yml installs cargo-nextest with taiki-e/install-action");
    let with = &install["with"];
    assert!(with["tool"]
        .as_str()
        .is_some_and(|t| t.starts_with("cargo-nextest@0.9.")));
    assert_eq!(with["checksum"].as_bool(), Some(true));
    assert_eq!(with["fallback"].as_str(), Some("none"));
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
    let mut docs: Vec<String> = std::fs::read_dir(e2e::workspace_root().join("docs"))
        .unwrap()
        .map(|e| format!("docs/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|rel| rel.ends_with(".md"))
        .collect();
    docs.sort();
    let fixed = [
        "README.md",
        ".github/workflows/ci.yml",
        ".github/workflows/e2e.yml",
        "action.yml",
    ];
    for rel in fixed.iter().copied().chain(docs.iter().map(String::as_str)) {
        for name in cell_mentions(&read(rel)) {
            assert!(known.contains(name.as_str()), "{rel} mentions cell `{name}`, which fixtures/matrix.toml does not define; known: {known:?}");
            checked += 1;
        }
    }
    // The matrix page names every cell, so the check above has something to check.
    let matrix_doc = read("docs/ci.md");
    for name in &known {
        assert!(
            matrix_doc.contains(&format!("`{name}`")),
            "docs/ci.md does not mention cell `{name}`"
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
