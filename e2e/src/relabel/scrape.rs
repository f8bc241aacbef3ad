//! What a scrape job does with a discovered target (`relabel_configs`, scrape/target.go
//! populateLabels) and with each scraped series (the label merge, then
//! `metric_relabel_configs`, scrape/scrape.go mutateSampleLabels).

use super::labels::{set, Labels};
use super::rule::{process, rules_from_yaml, scalar, Outcome, RelabelError, Rule, SeriesOutcome};
use crate::yaml::Value;
use std::collections::BTreeMap;

/// What discovery plus `relabel_configs` made of one discovered target (populateLabels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOutcome {
    /// The target's labels as Prometheus shows them (no `__`-prefixed labels), and its address.
    Kept {
        /// Labels after relabeling.
        labels: Labels,
        /// `__address__`, the host:port scraped.
        address: String,
    },
    /// `relabel_configs[rule_index]` dropped it.
    Dropped {
        /// Index in `relabel_configs`.
        rule_index: usize,
        /// The rule, one line of YAML.
        rule: String,
    },
    /// Prometheus discards the target with this error (no `__address__`, bad scheme).
    Invalid(String),
}

/// The parts of a scrape job that shape labels, compiled once for many series.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    /// `job_name`.
    pub job_name: String,
    /// `honor_labels`: on a clash the series' label wins (else it becomes `exported_<name>`).
    pub honor_labels: bool,
    /// `metrics_path`.
    pub metrics_path: String,
    /// `scheme`.
    pub scheme: String,
    /// `params`.
    pub params: BTreeMap<String, Vec<String>>,
    /// Rules applied to each discovered target.
    pub relabel_configs: Vec<Rule>,
    /// Rules applied to each scraped series.
    pub metric_relabel_configs: Vec<Rule>,
}

impl ScrapeJob {
    /// A job from Prometheus configuration YAML (one `scrape_configs` entry, e.g. from
    /// `/api/v1/status/config`), with Prometheus's defaults for what it omits.
    ///
    /// # Errors
    ///
    /// A rule Prometheus would refuse, or a field of the wrong shape.
    pub fn from_job_yaml(job: &Value) -> Result<Self, RelabelError> {
        let str_field = |k: &str, default: &str| -> Result<String, RelabelError> {
            match job.get(k) {
                None | Some(Value::Null) => Ok(default.to_string()),
                Some(v) => scalar(v).ok_or(RelabelError::Field {
                    field: k.to_string(),
                    expected: "a string",
                }),
            }
        };
        let mut params = BTreeMap::new();
        if let Some(m) = job.get("params").and_then(Value::as_object) {
            for (k, vs) in m {
                let vs = vs
                    .as_array()
                    .map(|s| s.iter().filter_map(scalar).collect())
                    .unwrap_or_default();
                params.insert(k.clone(), vs);
            }
        }
        Ok(ScrapeJob {
            job_name: str_field("job_name", "")?,
            honor_labels: job
                .get("honor_labels")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            metrics_path: str_field("metrics_path", "/metrics")?,
            scheme: str_field("scheme", "http")?,
            params,
            relabel_configs: rules_from_yaml(job.get("relabel_configs"), "relabel_configs")?,
            metric_relabel_configs: rules_from_yaml(
                job.get("metric_relabel_configs"),
                "metric_relabel_configs",
            )?,
        })
    }

    /// target.go `populateLabels`: the discovered labels (`__address__`, `__meta_*`) through
    /// `relabel_configs`, then Prometheus's own defaults (`instance`, a default port).
    pub fn target(&self, discovered: &Labels) -> TargetOutcome {
        let mut lset = discovered.clone();
        for (name, value) in [
            ("job", &self.job_name),
            ("__metrics_path__", &self.metrics_path),
            ("__scheme__", &self.scheme),
        ] {
            if lset.get(name).is_none_or(String::is_empty) {
                set(&mut lset, name.to_string(), value.clone());
            }
        }
        for (k, vs) in &self.params {
            if let Some(v) = vs.first() {
                set(&mut lset, format!("__param_{k}"), v.clone());
            }
        }
        let mut lset = match process(lset, &self.relabel_configs) {
            Outcome::Kept(l) => l,
            Outcome::Dropped { rule_index, rule } => {
                return TargetOutcome::Dropped { rule_index, rule }
            }
        };
        let Some(mut addr) = lset.get("__address__").filter(|a| !a.is_empty()).cloned() else {
            return TargetOutcome::Invalid("no address".into());
        };
        if needs_port(&addr) {
            match lset.get("__scheme__").map(String::as_str).unwrap_or("") {
                "http" | "" => addr.push_str(":80"),
                "https" => addr.push_str(":443"),
                other => return TargetOutcome::Invalid(format!("invalid scheme: {other:?}")),
            }
            lset.insert("__address__".into(), addr.clone());
        }
        lset.retain(|k, _| !k.starts_with("__meta_"));
        if lset.get("instance").is_none_or(String::is_empty) {
            lset.insert("instance".into(), addr.clone());
        }
        // Target.Labels(): the `__`-prefixed labels stay internal.
        lset.retain(|k, _| !k.starts_with("__"));
        TargetOutcome::Kept {
            labels: lset,
            address: addr,
        }
    }

    /// scrape.go `mutateSampleLabels`: the target's labels merged into the series' per
    /// `honor_labels`, then `metric_relabel_configs`.
    pub fn series(&self, target: &Labels, series: &Labels) -> SeriesOutcome {
        process(
            self.merge_target(target, series),
            &self.metric_relabel_configs,
        )
    }

    /// The first half of `mutateSampleLabels`: the series' labels with the target's merged in
    /// (a clashing series label kept as `exported_<name>` unless `honor_labels`), before
    /// `metric_relabel_configs`.
    pub fn merge_target(&self, target: &Labels, series: &Labels) -> Labels {
        let mut lb = series.clone();
        for (name, value) in target {
            if self.honor_labels {
                if !series.contains_key(name) {
                    set(&mut lb, name.clone(), value.clone());
                }
            } else {
                if let Some(existing) = series.get(name).filter(|v| !v.is_empty()) {
                    lb.insert(format!("exported_{name}"), existing.clone());
                }
                set(&mut lb, name.clone(), value.clone());
            }
        }
        lb
    }
}

/// Go's `net.SplitHostPort` succeeding, for the shapes addresses take: `host:port`, `[v6]:port`.
fn splits_host_port(addr: &str) -> bool {
    match addr.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':') && !p[1..].contains(':')),
        None => addr.matches(':').count() == 1,
    }
}

/// target.go `addPort`: only an address without a port that becomes valid with one.
fn needs_port(addr: &str) -> bool {
    !splits_host_port(addr) && splits_host_port(&format!("{addr}:1234"))
}
