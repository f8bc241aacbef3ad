//! A whole `prometheus.yml` around the generated job, for a Prometheus that reads its targets
//! from a file (`replay`, the component tier) instead of asking the API server.

use super::job::{map, scrape_job};
use super::spec::{Discovery, ServiceMonitorSpec, Shard};
use crate::yaml::{Mapping, Value};
use std::time::Duration;

/// A complete prometheus.yml: the operator's global settings for a Prometheus CR
/// `monitoring/k8s` with `scrapeInterval` (promcfg.go@v0.48.1 `generateConfig`), and the job for
/// `spec` with file_sd discovery, shard 0. `replay` and the component tier run it.
pub fn file_sd_prometheus_yml(
    spec: &ServiceMonitorSpec,
    file_sd_path: &str,
    scrape_interval: Duration,
) -> String {
    let interval = format!("{}ms", scrape_interval.as_millis());
    let global = map([
        ("scrape_interval", interval.as_str().into()),
        // Never longer than the interval (Prometheus refuses that).
        ("scrape_timeout", interval.as_str().into()),
        ("evaluation_interval", interval.as_str().into()),
        (
            "external_labels",
            map([
                ("prometheus", "monitoring/k8s".into()),
                ("prometheus_replica", "prometheus-k8s-0".into()),
            ]),
        ),
    ]);
    let job = scrape_job(
        spec,
        &Discovery::File {
            path: file_sd_path.to_string(),
        },
        Shard::Number(0),
    );
    let mut root = Mapping::new();
    root.insert("global".into(), global);
    root.insert("scrape_configs".into(), Value::Array(vec![job]));
    crate::yaml::to_string(&Value::Object(root))
}
