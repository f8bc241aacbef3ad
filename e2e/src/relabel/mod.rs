//! A pure simulator of Prometheus relabeling and of what a scrape does to a series' labels,
//! following prometheus/prometheus@v2.26.0 `pkg/relabel/relabel.go` (rules, [`rule`]),
//! `scrape/target.go` `populateLabels` (target labels) and `scrape/scrape.go`
//! `mutateSampleLabels` (series labels, [`scrape`]), and the text exposition format
//! ([`exposition`]).
//!
//! It knows nothing of prometheus-operator: the operator's model
//! (`operator::scrape_config::compiled_job`) hands it the job it generates, so what it
//! says about a ServiceMonitor is what the real Prometheus does with the operator's job.
//!
//! Floors, bottom up: [`labels`], [`rule`], then [`scrape`] and [`exposition`]. This file only
//! names them.

pub mod exposition;
pub mod labels;
pub mod rule;
pub mod scrape;

pub use exposition::{
    exposition_series, parse_sample, read_line, strip_timestamps, ExpositionError, Line,
    MetricType, Sample,
};
pub use labels::{sanitize_label_name, Labels};
pub use rule::{process, rules_from_yaml, Action, Outcome, RelabelError, Rule, SeriesOutcome};
pub use scrape::{ScrapeJob, TargetOutcome};

#[cfg(test)]
mod tests;
