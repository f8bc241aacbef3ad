//! The ordered phases of `cargo xtask e2e`, with every command, URL, sha256 and manifest digest.
//!
//! Pure: built from a matrix cell and the run's options, rendered by `--dry-run`, and used by
//! [`crate::lifecycle::run`] for the phase names and numbering of its progress lines.

pub use super::applied::{describe_applied, describe_prometheus, describe_servicemonitor, Applied};
use crate::kind;
use crate::matrix::Cell;
use std::fmt::Write as _;
use std::time::Duration;

mod phases;
use phases::{applied, assert, cluster, operator, preflight, stack_phases, teardown, workloads};

/// The phases, in execution order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseId {
    /// Before anything is created: inputs, Docker, kind, host.
    Preflight,
    /// The kind cluster, nodes Ready.
    Cluster,
    /// prometheus-operator from the pinned bundle, and its kubelet Service.
    Operator,
    /// `manifests/prometheus/`, the StatefulSet ready.
    Prometheus,
    /// The ServiceMonitor, its job loaded by Prometheus.
    ServiceMonitor,
    /// `fixtures/workloads/`, their pods Running.
    Workloads,
    /// The checks against each Prometheus replica, in-process.
    Assert,
    /// Artifacts on failure, the cluster deleted unless kept, `summary.md`.
    Teardown,
}

impl PhaseId {
    /// The phases in the order they run.
    pub const ALL: [PhaseId; 8] = [
        PhaseId::Preflight,
        PhaseId::Cluster,
        PhaseId::Operator,
        PhaseId::Prometheus,
        PhaseId::ServiceMonitor,
        PhaseId::Workloads,
        PhaseId::Assert,
        PhaseId::Teardown,
    ];

    /// Lower-case name, e.g. `servicemonitor`.
    pub fn name(self) -> &'static str {
        match self {
            PhaseId::Preflight => "preflight",
            PhaseId::Cluster => "cluster",
            PhaseId::Operator => "operator",
            PhaseId::Prometheus => "prometheus",
            PhaseId::ServiceMonitor => "servicemonitor",
            PhaseId::Workloads => "workloads",
            PhaseId::Assert => "assert",
            PhaseId::Teardown => "teardown",
        }
    }

    /// 1-based position, for "[3/8]".
    pub fn number(self) -> usize {
        PhaseId::ALL
            .iter()
            .position(|p| *p == self)
            .expect("every phase is in ALL")
            + 1
    }

    /// `[3/8] operator`
    pub fn label(self) -> String {
        format!("[{}/{}] {}", self.number(), PhaseId::ALL.len(), self.name())
    }
}

/// Which cluster the run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Create a kind cluster (error if one of that name exists).
    Create,
    /// Use the kind cluster of that name if it exists (never deleting it), else create it.
    Reuse,
    /// `--kubeconfig`: phases 3–8 against an existing cluster; nothing is created or deleted.
    Existing {
        /// The `--kubeconfig` path, as displayed.
        kubeconfig: String,
    },
}

/// When the cluster this run created is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Delete at the end, whatever happened (the default).
    Never,
    /// Keep on failure, delete on success or Ctrl-C (`--keep-on-failure`).
    OnFailure,
    /// Never delete (`--keep`).
    Always,
}

impl Keep {
    /// Whether teardown deletes a cluster this run created, for a run that `failed` or not
    /// (Ctrl-C counts as not failed). The one rule: `--dry-run` prints it, `run` follows it.
    pub fn deletes(self, failed: bool) -> bool {
        match self {
            Keep::Always => false,
            Keep::OnFailure => !failed,
            Keep::Never => true,
        }
    }
}

/// Where the operator bundle comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleChoice {
    /// Downloaded once from the pinned URL, then served from the cache.
    Pinned {
        /// The pinned URL.
        url: String,
        /// Where the verified copy is cached.
        cache_dir: String,
    },
    /// `--operator-bundle PATH`.
    File {
        /// The `--operator-bundle` path.
        path: String,
    },
}

/// Everything a plan depends on (paths already in display form).
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The matrix cell.
    pub cell: &'a Cell,
    /// `--name`, or `pme2e-<cell>`.
    pub cluster_name: String,
    /// Create, reuse or an existing cluster.
    pub mode: Mode,
    /// What teardown keeps.
    pub keep: Keep,
    /// The kind binary pinned for this platform.
    pub kind: kind::KindPin,
    /// Where a downloaded kind is kept.
    pub tools_path: String,
    /// The kind config, as displayed.
    pub kind_config: String,
    /// The run's files, as displayed.
    pub paths: DisplayPaths,
    /// Where the operator bundle comes from.
    pub bundle: BundleChoice,
    /// `(path, sha256)` of every manifest the run applies, from `crate::k8s::manifests::manifest_digests`.
    pub manifests: Vec<(String, String)>,
    /// What the Prometheus CR and the ServiceMonitor the run applies say ([`describe_applied`]).
    pub applied: Applied,
    /// `--timeout`.
    pub timeout: Duration,
    /// `--stack` (or the cell's): what replaces the bundle, our Prometheus and ServiceMonitor.
    pub stack: Option<StackPlan>,
    /// Our workloads are applied (not `--no-workloads`).
    pub workloads: bool,
}

/// A stack's part of the plan, read from its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackPlan {
    /// Where it comes from, as displayed.
    pub source: String,
    /// sha256 of each file read.
    pub digests: Vec<(String, String)>,
    /// What a run does with it.
    pub derived: crate::stack::Derived,
    /// Applied (a new or reused cluster), or already running (`--kubeconfig`).
    pub applies: bool,
    /// The Prometheus objects the assert phase asks.
    pub asserted: Vec<crate::assert::PrometheusRef>,
    /// What each Prometheus and each cadvisor ServiceMonitor says, one block each.
    pub described: Vec<Vec<String>>,
}

impl StackPlan {
    /// The plan's view of `stack`.
    pub fn of(
        stack: &crate::stack::Stack,
        applies: bool,
        asserted: &[crate::assert::PrometheusRef],
    ) -> Self {
        let derived = stack.derived();
        let cadvisor: Vec<&String> = derived
            .cadvisor_servicemonitors
            .iter()
            .map(|(k, _)| k)
            .collect();
        let described = stack
            .documents
            .iter()
            .filter(|d| d.ident.group == crate::stack::MONITORING_GROUP)
            .filter_map(|d| match d.ident.kind.as_str() {
                "Prometheus" => Some(describe_prometheus(&d.value)),
                "ServiceMonitor" => {
                    let mut v = d.value.clone();
                    let ns = d
                        .ident
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into());
                    v["metadata"]["namespace"] = serde_json::Value::String(ns);
                    let key = crate::diagnose::kube_checks::object_key(&v);
                    cadvisor
                        .contains(&&key)
                        .then(|| describe_servicemonitor(&v))
                }
                _ => None,
            })
            .collect();
        StackPlan {
            source: stack.source.clone(),
            digests: stack.digests.clone(),
            derived,
            applies,
            asserted: asserted.to_vec(),
            described,
        }
    }
}

/// The run's paths, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayPaths {
    /// The kubeconfig kind writes.
    pub kubeconfig: String,
    /// The artifacts directory.
    pub artifacts: String,
    /// `summary.md`.
    pub summary: String,
    /// The assert phase's `junit.xml`.
    pub junit: String,
}

/// One phase and what it does, one line per step (`$ …` lines are commands run verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// Which phase.
    pub id: PhaseId,
    /// What it is about (a version, a directory), shown after its label.
    pub title: String,
    /// One line per step: commands with `$`, URLs, digests, waits.
    pub steps: Vec<String>,
}

/// Everything `cargo xtask e2e` would do, for `--dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Key/value lines above the phases.
    pub header: Vec<(String, String)>,
    /// The eight phases, in order.
    pub phases: Vec<Phase>,
}

/// Metric names joined by commas (what `MetricName::parse_list` reads back).
pub fn metrics_env(metrics: &[crate::coverage::MetricName]) -> String {
    metrics
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Builds the plan: one function per phase, each a pure function of the input.
pub fn build(input: &PlanInput) -> Plan {
    let mut phases = vec![preflight(input), cluster(input)];
    match &input.stack {
        Some(stack) => phases.extend(stack_phases(input, stack)),
        None => {
            phases.push(operator(input));
            phases.extend(applied(input));
        }
    }
    phases.push(workloads(input));
    phases.push(assert(input));
    phases.push(teardown(input));
    Plan {
        header: header(input),
        phases,
    }
}

/// The kubeconfig the phases after `cluster` use.
fn kubeconfig(input: &PlanInput) -> String {
    match &input.mode {
        Mode::Existing { kubeconfig } => kubeconfig.clone(),
        _ => input.paths.kubeconfig.clone(),
    }
}

/// A kind command line as the plan prints it.
fn kind_line(args: Vec<String>) -> String {
    format!("$ kind {}", args.join(" "))
}

/// The lines above the phases: cell, versions, cluster fate, paths, timeout.
fn header(input: &PlanInput) -> Vec<(String, String)> {
    let cell = input.cell;
    let name = &input.cluster_name;
    let secs = input.timeout.as_secs();
    let kubeconfig = kubeconfig(input);
    let allowed = if cell.allowed_to_fail {
        " (cell allowed to fail)"
    } else {
        ""
    };
    let versions = match &input.stack {
        None => format!(
            "kind {}, Kubernetes {}, prometheus-operator {}, ServiceMonitor variant `{}`{allowed}",
            cell.kind_version,
            cell.kubernetes_version(),
            cell.operator_version,
            cell.servicemonitor.as_str(),
        ),
        Some(stack) => {
            let operators: Vec<String> = stack
                .derived
                .operators
                .iter()
                .map(|o| o.image.clone())
                .collect();
            format!(
                "kind {}, Kubernetes {}, the stack {} (its operator: {}){allowed}",
                cell.kind_version,
                cell.kubernetes_version(),
                stack.source,
                if operators.is_empty() {
                    "none in the stack; the cluster must run one".to_string()
                } else {
                    operators.join(", ")
                }
            )
        }
    };
    let mut header = vec![
        (
            "cell".to_string(),
            format!("{} — {}", cell.name, cell.note.trim()),
        ),
        ("versions".to_string(), versions),
    ];
    let cluster_line = match (&input.mode, input.keep) {
        (Mode::Existing { kubeconfig }, _) => {
            format!("existing cluster from --kubeconfig {kubeconfig}; never created or deleted by this run")
        }
        (mode, keep) => {
            let fate = match keep {
                Keep::Never => "deleted at the end (success or failure)",
                Keep::OnFailure => "deleted on success, kept on failure (--keep-on-failure)",
                Keep::Always => "kept (--keep)",
            };
            match mode {
                Mode::Reuse => format!(
                    "kind cluster {name}, reused if it exists (then never deleted), else created and {fate}"
                ),
                _ => format!("kind cluster {name}, created by this run and {fate}"),
            }
        }
    };
    header.push(("cluster".to_string(), cluster_line));
    header.push((
        "kubeconfig".to_string(),
        format!("{kubeconfig} (never ~/.kube/config)"),
    ));
    header.push((
        "artifacts".to_string(),
        format!("{}/ (collected on failure)", input.paths.artifacts),
    ));
    header.push(("summary".to_string(), input.paths.summary.clone()));
    header.push((
        "timeout".to_string(),
        format!("{secs}s for each phase, shared by every wait in it (--timeout)"),
    ));

    header
}

impl Plan {
    /// The text `--dry-run` prints.
    pub fn render(&self) -> String {
        let mut out = String::from("pod-metrics-e2e cluster tier: plan (dry run: nothing is created, downloaded or changed)\n\
             Commands run from the workspace root; relative paths are relative to it.\n\n");
        let width = self.header.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in &self.header {
            let _ = writeln!(out, "{k:width$}  {v}");
        }
        for phase in &self.phases {
            out.push('\n');
            if phase.title.is_empty() {
                let _ = writeln!(out, "{}", phase.id.label());
            } else {
                let _ = writeln!(out, "{}: {}", phase.id.label(), phase.title);
            }
            for step in &phase.steps {
                let _ = writeln!(out, "  {step}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
