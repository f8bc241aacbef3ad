//! Why a ServiceMonitor cannot be turned into scrape jobs. A variant with a `source` does not
//! repeat it in its message: `errors::error_chain` prints it once.

/// Why a ServiceMonitor cannot be turned into scrape jobs.
#[derive(Debug, thiserror::Error)]
pub enum ServiceMonitorError {
    /// A field v0.48.1 has whose effect is not modelled here.
    #[error(
        "{path}: prometheus-operator v0.48.1 has this field, but this generator does not model it \
         ({why}); remove it from the ServiceMonitor to replay it, or the replayed job would differ \
         from what the operator generates"
    )]
    Unsupported {
        /// The field, e.g. `spec.endpoints[0].basicAuth`.
        path: String,
        /// What it does and why it is not modelled.
        why: &'static str,
    },
    /// A field v0.48.1's ServiceMonitor does not have.
    #[error(
        "{path}: prometheus-operator v0.48.1's ServiceMonitor has no such field (known here: \
         {known}); the API server prunes unknown fields of its CRD (or refuses them under strict \
         field validation), so the operator never sees it. Remove it or fix its spelling"
    )]
    Unknown {
        /// The field.
        path: String,
        /// The fields v0.48.1 has at that place.
        known: String,
    },
    /// A value of the wrong type or outside what the field accepts.
    #[error("{path}: expected {expected}, found {found}; fix the value in the ServiceMonitor")]
    Invalid {
        /// The field.
        path: String,
        /// What v0.48.1 accepts there.
        expected: String,
        /// What the ServiceMonitor has.
        found: String,
    },
    /// A required field is absent.
    #[error("{path} is missing: {why}")]
    Missing {
        /// The field.
        path: String,
        /// Why it is needed.
        why: &'static str,
    },
    /// A relabeling Prometheus would refuse when loading the generated configuration.
    #[error(
        "{path}: Prometheus would refuse the generated configuration (and keep running the old \
         one; fix the rule in the ServiceMonitor)"
    )]
    Relabel {
        /// The rule, e.g. `spec.endpoints[0].metricRelabelings[1]`.
        path: String,
        /// What Prometheus would say.
        source: crate::relabel::RelabelError,
    },
}

pub(super) type Result<T> = std::result::Result<T, ServiceMonitorError>;
