//! Which metrics the check looks for: validated names and the defaults.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The mission's metric: per-container CPU time.
pub const CPU_METRIC: &str = "container_cpu_usage_seconds_total";
/// Per-container memory in use (what the OOM killer and `kubectl top` look at).
pub const MEMORY_METRIC: &str = "container_memory_working_set_bytes";
/// What every command checks unless told otherwise (`--metric`, a matrix cell's `metrics`).
pub const DEFAULT_METRICS: [&str; 2] = [CPU_METRIC, MEMORY_METRIC];

/// Why a metric name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricNameError {
    /// An empty name.
    #[error("metric name is empty; give a Prometheus metric name such as {CPU_METRIC}")]
    Empty,
    #[error(
        "invalid metric name {name:?}: {found:?} at position {position} is not allowed; a Prometheus \
         metric name matches [a-zA-Z_:][a-zA-Z0-9_:]* (e.g. {MEMORY_METRIC}); \
         pass the metric's name without labels or braces"
    )]
    /// A character Prometheus does not allow there.
    Invalid {
        /// The name given.
        name: String,
        /// The first character not allowed.
        found: char,
        /// Its 0-based position.
        position: usize,
    },
}

/// A Prometheus metric name, checked against the data model's
/// `[a-zA-Z_:][a-zA-Z0-9_:]*` (prometheus.io/docs/concepts/data_model, "Metric names and
/// labels"), so it can be put into a PromQL selector as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MetricName(String);

impl MetricName {
    /// Checks `name`.
    ///
    /// # Errors
    /// [`MetricNameError`] when `name` is empty or has a character the data model does not allow.
    pub fn new(name: impl Into<String>) -> Result<Self, MetricNameError> {
        let name = name.into();
        let mut chars = name.chars().enumerate();
        match chars.next() {
            None => return Err(MetricNameError::Empty),
            Some((_, c)) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
            Some((position, found)) => {
                return Err(MetricNameError::Invalid {
                    name,
                    found,
                    position,
                })
            }
        }
        if let Some((position, found)) =
            chars.find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == ':'))
        {
            return Err(MetricNameError::Invalid {
                name,
                found,
                position,
            });
        }
        Ok(MetricName(name))
    }

    /// `container_cpu_usage_seconds_total`.
    pub fn cpu() -> Self {
        MetricName(CPU_METRIC.to_string())
    }

    /// [`DEFAULT_METRICS`], in that order.
    pub fn defaults() -> Vec<Self> {
        DEFAULT_METRICS
            .iter()
            .map(|m| MetricName(m.to_string()))
            .collect()
    }

    /// A comma-separated list (`E2E_METRICS=a,b`); blanks around names are ignored, duplicates
    /// dropped (first one kept).
    ///
    /// # Errors
    /// The first invalid name's [`MetricNameError`]; an empty list is [`MetricNameError::Empty`].
    pub fn parse_list(list: &str) -> Result<Vec<Self>, MetricNameError> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim) {
            let m = MetricName::new(name)?;
            if !out.contains(&m) {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MetricName {
    type Err = MetricNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MetricName::new(s)
    }
}

impl TryFrom<String> for MetricName {
    type Error = MetricNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MetricName::new(s)
    }
}

impl From<MetricName> for String {
    fn from(m: MetricName) -> String {
        m.0
    }
}

impl AsRef<str> for MetricName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
