//! The run's `summary.md` (for `$GITHUB_STEP_SUMMARY`): outcome, phase timings, findings and
//! coverage per metric. [`render`] is pure; the run keeps a `Journal` as it goes and writes
//! the summary from it at the end, whatever the outcome.

use super::options::Resolved;
use super::outcome::Outcome;
use super::plan::PhaseId;
use crate::diagnose::Finding;
use crate::matrix::Cell;
use std::fmt::Write as _;
use std::time::Duration;

/// What summary.md reports, written as the run goes.
#[derive(Default)]
pub(super) struct Journal {
    /// Each phase that ended: how long it took, whether it passed.
    pub(super) timings: Vec<(PhaseId, Duration, bool)>,
    /// The phase that failed and its error, as printed.
    pub(super) failure: Option<(PhaseId, String)>,
    /// Why `kind create` failed (`cluster-create-failed`).
    pub(super) create_finding: Option<Finding>,
    /// The host checks' warnings.
    pub(super) host_findings: Vec<Finding>,
}

/// Writes `summary.md` from the journal (and `coverage.json` when the assert phase wrote one).
/// Best effort: a file that cannot be written is a warning.
pub(super) fn write(r: &Resolved<'_>, journal: &Journal, outcome: Outcome) {
    let coverage = std::fs::read_to_string(r.paths.artifacts.join("coverage.json")).ok();
    let findings: Vec<_> = journal
        .create_finding
        .iter()
        .chain(&journal.host_findings)
        .cloned()
        .collect();
    let mut cell = r.cell.clone();
    if let Some(src) = &r.stack {
        // The stack brought its own operator: the cell's pinned one was not used.
        cell.operator_version = format!("from the stack {}", src.display());
    }
    let text = render(
        &cell,
        &r.name,
        outcome,
        &journal.timings,
        journal.failure.as_ref(),
        &findings,
        coverage.as_deref(),
    );
    let write =
        std::fs::create_dir_all(&r.paths.dir).and_then(|()| std::fs::write(&r.paths.summary, text));
    match write {
        Ok(()) => eprintln!("summary: {}", r.paths.summary.display()),
        Err(err) => eprintln!("warning: cannot write {}: {err}", r.paths.summary.display()),
    }
}

/// The Markdown summary (for `$GITHUB_STEP_SUMMARY`): outcome, phase timings, findings (a failed
/// `kind create`, host warnings), coverage.
pub fn render(
    cell: &Cell,
    name: &str,
    outcome: Outcome,
    timings: &[(PhaseId, Duration, bool)],
    failure: Option<&(PhaseId, String)>,
    findings: &[crate::diagnose::Finding],
    coverage_json: Option<&str>,
) -> String {
    let verdict = match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "FAILED",
        Outcome::Interrupted => "interrupted",
    };
    let mut out = format!("## pod-metrics-e2e `{}`: {verdict}\n\n", cell.name);
    let _ = writeln!(
        out,
        "kind {}, Kubernetes {}, prometheus-operator {}, cluster `{name}`\n",
        cell.kind_version,
        cell.kubernetes_version(),
        cell.operator_version
    );
    out.push_str("| phase | result | duration |\n| --- | --- | --- |\n");
    for (id, took, ok) in timings {
        let result = if *ok { "ok" } else { "failed" };
        let _ = writeln!(
            out,
            "| {} | {result} | {:.1}s |",
            id.label(),
            took.as_secs_f64()
        );
    }
    if let Some((phase, msg)) = failure {
        let _ = writeln!(
            out,
            "\n**{} failed:**\n\n```\n{}\n```",
            phase.label(),
            msg.trim()
        );
    }
    if !findings.is_empty() {
        let _ = writeln!(
            out,
            "\n### Findings\n\n```\n{}```",
            crate::diagnose::render_text(findings)
        );
    }
    match coverage_json.map(serde_json::from_str::<crate::coverage::MetricsReport>) {
        Some(Ok(report)) => {
            // Per metric: a table row each, then the report with every missing pod by name.
            out.push_str(
                "\n### Coverage\n\n| metric | pods | containers | covered |\n| --- | --- | --- | --- |\n",
            );
            for m in &report.metrics {
                let _ = writeln!(
                    out,
                    "| `{}` | {}/{} | {}/{} | {} |",
                    m.metric,
                    m.pods_covered,
                    m.pods_total,
                    m.containers_covered,
                    m.containers_total,
                    if m.is_complete() { "yes" } else { "**no**" }
                );
            }
            let _ = writeln!(out, "\n```\n{}\n```", report.to_string().trim());
        }
        Some(Err(err)) => {
            let _ = writeln!(out, "\ncoverage.json could not be read: {err}");
        }
        None => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;

    #[test]
    fn summary_has_timings_failure_and_coverage() {
        let m = Matrix::load_default().unwrap();
        let cell = m.default_cell();
        let timings = [
            (PhaseId::Preflight, Duration::from_millis(1500), true),
            (PhaseId::Cluster, Duration::ZERO, false),
        ];
        let failure = (PhaseId::Cluster, "nodes not Ready".to_string());
        let text = render(
            cell,
            "pme2e-x",
            Outcome::Failed,
            &timings,
            Some(&failure),
            &[],
            None,
        );
        assert!(text.contains(": FAILED"), "{text}");
        assert!(text.contains("| [1/8] preflight | ok | 1.5s |"), "{text}");
        assert!(text.contains("| [2/8] cluster | failed |"), "{text}");
        assert!(text.contains("nodes not Ready"), "{text}");
        assert!(!text.contains("Coverage"), "{text}");

        // CPU covered, memory missing for apps/web: reported per metric.
        let pods = [crate::pods::RunningPod::new("apps", "web", &["app"])];
        let row: std::collections::BTreeMap<String, String> =
            [("namespace", "apps"), ("pod", "web"), ("container", "app")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let no_series: Vec<std::collections::BTreeMap<String, String>> = Vec::new();
        let memory = crate::coverage::MetricName::new(crate::coverage::MEMORY_METRIC).unwrap();
        let report = crate::coverage::MetricsReport {
            metrics: vec![
                crate::coverage::evaluate(&pods, [&row]),
                crate::coverage::evaluate_for(&memory, &pods, &no_series),
            ],
            waited_ms: 1000,
            deadline_ms: 45000,
            polls: 2,
            requests: 8,
        };
        let json = serde_json::to_string(&report).unwrap();
        let text = render(
            cell,
            "pme2e-x",
            Outcome::Failed,
            &timings,
            None,
            &[],
            Some(&json),
        );
        assert!(text.contains("### Coverage"), "{text}");
        assert!(
            text.contains("| `container_cpu_usage_seconds_total` | 1/1 | 1/1 | yes |"),
            "{text}"
        );
        assert!(
            text.contains("| `container_memory_working_set_bytes` | 0/1 | 0/1 | **no** |"),
            "{text}"
        );
        assert!(text.contains("NOT covered: 1/2 metrics"), "{text}");
        assert!(
            text.contains("apps/web: no series for any container (app)"),
            "{text}"
        );
        let text = render(
            cell,
            "pme2e-x",
            Outcome::Failed,
            &timings,
            None,
            &[],
            Some("{"),
        );
        assert!(text.contains("coverage.json could not be read"), "{text}");
    }
}
