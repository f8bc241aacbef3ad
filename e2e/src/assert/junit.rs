//! The assert phase's JUnit XML (what CI uploads and renders): one test suite per subject (a
//! Prometheus object for its replicas check, a replica for the others), one test case per check.
//! A skipped check is a JUnit `skipped`, never a success.

use super::{CheckResult, Verdict};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

/// The report's name, and each suite's prefix.
pub const REPORT_NAME: &str = "pod-metrics-e2e";

/// Renders `results` as JUnit XML (in the order the checks ran).
///
/// # Errors
/// The XML writer fails (it writes to memory; in practice never).
pub fn render(results: &[CheckResult]) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new(REPORT_NAME);
    let mut suites: Vec<TestSuite> = Vec::new();
    for r in results {
        let name = format!("{REPORT_NAME} {}", r.subject);
        let index = match suites.iter().position(|s| s.name.as_str() == name) {
            Some(i) => i,
            None => {
                suites.push(TestSuite::new(name.clone()));
                suites.len() - 1
            }
        };
        let status = match r.verdict {
            Verdict::Passed => TestCaseStatus::success(),
            Verdict::Failed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(r.detail.lines().next().unwrap_or_default());
                s.set_description(r.detail.as_str());
                s
            }
            Verdict::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(r.detail.as_str());
                s
            }
        };
        let mut case = TestCase::new(r.check.title(), status);
        case.set_classname(r.subject.as_str());
        case.set_time(r.duration);
        if r.verdict == Verdict::Passed {
            case.set_system_out(r.detail.as_str());
        }
        suites[index].add_test_case(case);
    }
    report.add_test_suites(suites);
    report.to_string()
}
