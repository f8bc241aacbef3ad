//! The scrape job prometheus-operator v0.48.1 generates for a ServiceMonitor endpoint
//! (prometheus-operator/prometheus-operator pkg/prometheus/promcfg.go@v0.48.1
//! `generateServiceMonitorConfig`), and a whole Prometheus configuration around it.
//!
//! One place in code: the component tier's Prometheus, the cluster twin and `replay` use exactly
//! this job, with `kubernetes_sd_configs` swapped for `file_sd_configs`/`http_sd_configs` whose
//! target groups carry the `__meta_kubernetes_*` labels kubernetes_sd gives ([`crate::discovery`]).
//! The unit tests compare the mission's job to the one in `FACTS.md`, field for field and in
//! order: to a recorded copy everywhere, and to the shared file itself when `E2E_FACTS_MD` names
//! it. [`specs_from_servicemonitor`] reads a ServiceMonitor object into [`ServiceMonitorSpec`]s;
//! [`compiled_job`] hands the job to the Prometheus model ([`crate::relabel`]).
//!
//! Floors, bottom up: [`spec`] (the inputs), [`job`] (the generator), [`servicemonitor`] (the
//! parser), [`config`] (a whole prometheus.yml). This file only names them.

pub mod config;
pub mod job;
pub mod servicemonitor;
pub mod spec;

pub use config::file_sd_prometheus_yml;
pub use job::{compiled_job, meta_service_label, scrape_job, scrape_series};
pub use servicemonitor::{specs_from_servicemonitor, ServiceMonitorError};
pub use spec::{
    Discovery, LabelSelector, RelabelConfig, SelectorOperator, SelectorRequirement,
    ServiceMonitorSpec, Shard, TargetPort, TlsConfig, SERVICE_ACCOUNT_TOKEN,
};

#[cfg(test)]
mod tests;
