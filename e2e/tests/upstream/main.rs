//! Upstream's own test cases as the judge of the project's models.
//!
//! The project's models of prometheus-operator and Prometheus (the operator's job generator,
//! relabeling, Kubernetes discovery, the exposition reader) feed the twin, replay and the
//! diagnosis, so a mistake in one passes every other tier by construction. Their upstreams' test
//! cases, ported as data under `fixtures/upstream/<suite>/` (inputs, expected output, the Go
//! test's name, repo, path and tag), are facts no one here wrote. One test per suite runs every
//! case, fails listing every mismatching case by its upstream name, and pins the counts so a
//! dropped case is noticed. A case out of scope names why, and the runner checks that reason
//! holds (the model refuses the input by name, or the named setting is really set).
//!
//! Pure: no Docker, no environment variables; the data is in the repository.

mod discovery;
mod exposition;
mod relabel;
mod scrape_config;

use e2e::yaml::Value;
use std::path::PathBuf;

/// A suite's data file, parsed.
fn load(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/upstream")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let data: Value =
        e2e::yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for key in ["repo", "path", "tag", "licence"] {
        assert!(
            data["source"][key].as_str().is_some_and(|s| !s.is_empty()),
            "{rel}: `source.{key}` names where the cases come from"
        );
    }
    data
}

/// The cases of a suite's data.
fn cases(data: &Value) -> &[Value] {
    data["cases"].as_array().expect("`cases` is a list")
}

/// A case's upstream name.
fn name(case: &Value) -> &str {
    case["name"].as_str().expect("every case has a `name`")
}

/// The outcome of one suite: each case passed, was out of scope (and its reason held), or
/// failed.
#[derive(Default)]
struct Report {
    passed: Vec<String>,
    out_of_scope: Vec<String>,
    failures: Vec<String>,
}

impl Report {
    fn pass(&mut self, name: &str) {
        self.passed.push(name.to_string());
    }

    fn out(&mut self, name: &str) {
        self.out_of_scope.push(name.to_string());
    }

    fn fail(&mut self, name: &str, why: impl std::fmt::Display) {
        self.failures.push(format!("{name}: {why}"));
    }

    /// Panics listing every failure, then checks the counts: `passing` cases in scope, `out`
    /// out of scope. Every case is one or the other; names are unique.
    fn finish(self, suite: &str, passing: usize, out: usize) {
        let mut names: Vec<&String> = self.passed.iter().chain(&self.out_of_scope).collect();
        let total = names.len() + self.failures.len();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "{suite}: a case name is used twice");
        assert!(
            self.failures.is_empty(),
            "{suite}: {} of {total} upstream cases do not hold:\n\n{}",
            self.failures.len(),
            self.failures.join("\n\n")
        );
        assert_eq!(
            (self.passed.len(), self.out_of_scope.len()),
            (passing, out),
            "{suite}: (passing, out of scope) changed: a case was added or dropped; update the \
             counts here and in docs/upstream.md's table"
        );
    }
}

/// `ours` against `theirs` as YAML text (key order counts), with the differing lines when not.
fn same_yaml(ours: &Value, theirs: &Value) -> Result<(), String> {
    let (a, b) = (e2e::yaml::to_string(theirs), e2e::yaml::to_string(ours));
    if a == b {
        return Ok(());
    }
    Err(format!(
        "differs (- upstream, + ours):\n{}",
        line_diff(&a, &b)
    ))
}

/// A minimal line diff (longest common subsequence), with three lines of context around each
/// change: enough to point at a wrong rule.
fn line_diff(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push(("  ", a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(("+ ", b[j]));
            j += 1;
        } else {
            ops.push(("- ", a[i]));
            i += 1;
        }
    }
    let near_change = |k: usize| {
        ops[k.saturating_sub(3)..(k + 4).min(ops.len())]
            .iter()
            .any(|(sign, _)| *sign != "  ")
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (sign, line)) in ops.iter().enumerate() {
        if near_change(k) {
            out += &format!("{sign}{line}\n");
            skipped = false;
        } else if !skipped {
            out += "  …\n";
            skipped = true;
        }
    }
    out
}
