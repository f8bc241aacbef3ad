//! What the check found: per metric, totals and every pod not fully covered; for several
//! metrics, one report each under one deadline.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which label held the pods' namespaces in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceLabel {
    /// `namespace`: the ServiceMonitor has `honorLabels: true`.
    Namespace,
    /// `exported_namespace`: `honorLabels: false` (the kubelet target's own `namespace`,
    /// `kube-system`, won the clash; the pod's namespace was renamed).
    ExportedNamespace,
    /// Both: several scrape jobs with different `honorLabels`.
    Mixed,
    /// No container series at all.
    Unknown,
}

impl NamespaceLabel {
    /// Which label held the namespace, from whether some series had it in `namespace` and
    /// whether some had it in `exported_namespace`.
    pub fn from_seen(in_namespace: bool, in_exported_namespace: bool) -> Self {
        match (in_namespace, in_exported_namespace) {
            (true, true) => NamespaceLabel::Mixed,
            (true, false) => NamespaceLabel::Namespace,
            (false, true) => NamespaceLabel::ExportedNamespace,
            (false, false) => NamespaceLabel::Unknown,
        }
    }

    /// Which label held the namespace, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            NamespaceLabel::Namespace => "pod namespaces in `namespace` (honorLabels: true)",
            NamespaceLabel::ExportedNamespace => {
                "pod namespaces in `exported_namespace` (honorLabels: false; `namespace` is the kubelet Service's, kube-system)"
            }
            NamespaceLabel::Mixed => "pod namespaces in both `namespace` and `exported_namespace` (scrape jobs disagree on honorLabels)",
            NamespaceLabel::Unknown => "no container series found",
        }
    }
}

/// A pod that is not (fully) covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingPod {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// Its node, when the pod list says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Running containers without a series.
    pub missing_containers: Vec<String>,
    /// True when none of the pod's containers has a series.
    pub no_series_at_all: bool,
}

/// Coverage of one metric: totals, and every pod not fully covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageReport {
    /// The metric checked.
    pub metric: String,
    /// Running pods checked.
    pub pods_total: usize,
    /// Pods with a series for every running container.
    pub pods_covered: usize,
    /// Running containers checked.
    pub containers_total: usize,
    /// Containers with a series.
    pub containers_covered: usize,
    /// Which label held the pods' namespaces.
    pub namespace_label: NamespaceLabel,
    /// Sorted by namespace, then name.
    pub missing: Vec<MissingPod>,
    /// Time from the first query to this report.
    pub waited_ms: u64,
    /// The deadline the check was given.
    pub deadline_ms: u64,
    /// Query rounds made.
    pub polls: u32,
    /// HTTP requests sent to Prometheus by this check (retries included).
    pub requests: u64,
    /// Warnings Prometheus attached to the last answer, verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl CoverageReport {
    /// Every running container has a series.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// The report as JSON (what `coverage.json` holds per metric).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a report always serialises")
    }
}

impl fmt::Display for CoverageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_complete() {
            "covered"
        } else {
            "NOT covered"
        };
        writeln!(
            f,
            "{verdict}: {}/{} pods, {}/{} containers have {} ({:.1}s, {} poll{}, {} request{}; deadline {:.1}s)",
            self.pods_covered,
            self.pods_total,
            self.containers_covered,
            self.containers_total,
            self.metric,
            self.waited_ms as f64 / 1000.0,
            self.polls,
            if self.polls == 1 { "" } else { "s" },
            self.requests,
            if self.requests == 1 { "" } else { "s" },
            self.deadline_ms as f64 / 1000.0,
        )?;
        writeln!(f, "  {}", self.namespace_label.describe())?;
        for w in &self.warnings {
            writeln!(f, "  Prometheus warning: {w}")?;
        }
        if !self.missing.is_empty() {
            writeln!(f, "  missing ({} pods):", self.missing.len())?;
        }
        for m in &self.missing {
            let node = m
                .node
                .as_deref()
                .map(|n| format!(" on node {n}"))
                .unwrap_or_default();
            if m.no_series_at_all {
                writeln!(
                    f,
                    "    {}/{}{node}: no series for any container ({})",
                    m.namespace,
                    m.name,
                    m.missing_containers.join(", ")
                )?;
            } else {
                writeln!(
                    f,
                    "    {}/{}{node}: no series for container(s) {}",
                    m.namespace,
                    m.name,
                    m.missing_containers.join(", ")
                )?;
            }
        }
        Ok(())
    }
}

/// The coverage of several metrics, from one check: one [`CoverageReport`] per metric, in the
/// order they were asked for. `coverage.json` and `check --json` are this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    /// Per metric; each says which metric in [`CoverageReport::metric`].
    pub metrics: Vec<CoverageReport>,
    /// Time from the first query to this report.
    pub waited_ms: u64,
    /// The deadline the check was given.
    pub deadline_ms: u64,
    /// Query rounds made.
    pub polls: u32,
    /// HTTP requests sent to Prometheus by the whole check (all metrics, retries included).
    pub requests: u64,
}

impl MetricsReport {
    /// Every pod covered for every metric (and at least one metric checked).
    pub fn is_complete(&self) -> bool {
        !self.metrics.is_empty() && self.metrics.iter().all(CoverageReport::is_complete)
    }

    /// The report for `metric`, if it was checked.
    pub fn get(&self, metric: &str) -> Option<&CoverageReport> {
        self.metrics.iter().find(|r| r.metric == metric)
    }

    /// The metrics some running container has no series of.
    pub fn incomplete(&self) -> impl Iterator<Item = &CoverageReport> {
        self.metrics.iter().filter(|r| !r.is_complete())
    }

    /// The checked metrics' names, in order.
    pub fn metric_names(&self) -> Vec<&str> {
        self.metrics.iter().map(|r| r.metric.as_str()).collect()
    }

    /// The report as JSON (`coverage.json`, `check --json`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a report always serialises")
    }
}

impl From<CoverageReport> for MetricsReport {
    fn from(r: CoverageReport) -> Self {
        MetricsReport {
            waited_ms: r.waited_ms,
            deadline_ms: r.deadline_ms,
            polls: r.polls,
            requests: r.requests,
            metrics: vec![r],
        }
    }
}

/// Per metric: a summary line, then each metric's own report.
impl fmt::Display for MetricsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let complete = self.metrics.iter().filter(|r| r.is_complete()).count();
        writeln!(
            f,
            "{}: {complete}/{} metrics have a series for every running container ({:.1}s, {} poll{}, {} request{})",
            if self.is_complete() { "covered" } else { "NOT covered" },
            self.metrics.len(),
            self.waited_ms as f64 / 1000.0,
            self.polls,
            if self.polls == 1 { "" } else { "s" },
            self.requests,
            if self.requests == 1 { "" } else { "s" },
        )?;
        for r in &self.metrics {
            write!(f, "{r}")?;
        }
        Ok(())
    }
}
