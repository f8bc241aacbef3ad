//! The harness's own install phases: which of this repository's manifests are applied (the
//! Prometheus, the ServiceMonitor, the workloads) and what each waits for before the next phase.

use crate::k8s::apply::Applier;
use crate::k8s::manifests::{in_apply_order, read_manifest_dir, read_manifest_file, ObjectIdent};
use crate::k8s::wait::{
    self, remaining, wait_deployment_available, wait_statefulset_ready, WaitError, Waited,
};
use crate::matrix::ServiceMonitorVariant;
use anyhow::{Context, Result};
use kube::Client;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Where `manifests/prometheus/` puts Prometheus (checked against the manifests by a test).
pub const PROMETHEUS_NAMESPACE: &str = "monitoring";
/// `metadata.name` of our Prometheus CR; the operator names its StatefulSet `prometheus-<name>`.
pub const PROMETHEUS_NAME: &str = "e2e";
/// The label our Prometheus's `serviceMonitorSelector` matches; set on our ServiceMonitors.
pub const SELECTION_LABEL: (&str, &str) = ("app.kubernetes.io/part-of", "pod-metrics-e2e");
/// Directories whose YAML is applied, relative to the workspace root.
pub const PROMETHEUS_DIR: &str = "manifests/prometheus";
/// The workloads the cluster tier runs: Deployments `pme2e-apps/web` and
/// `pme2e-batch/cpu-burner`, each pod with two containers (checked by a test below).
pub const WORKLOADS_DIR: &str = "fixtures/workloads";

/// sha256 of every manifest file the run applies (`manifests/**`, [`WORKLOADS_DIR`]), as (path
/// relative to the workspace root, hex digest), sorted by path. Shown by `--dry-run`.
///
/// # Errors
/// A manifest file cannot be listed or read.
pub fn manifest_digests() -> Result<Vec<(String, String)>> {
    crate::k8s::manifests::digests_under(&crate::workspace_root(), &["manifests", WORKLOADS_DIR])
}

const POLL: Duration = Duration::from_secs(2);

/// Applies `manifests/prometheus/` and waits until the operator's StatefulSet
/// `prometheus-<name>` has all replicas ready (the Prometheus CRD has no status in v0.48.1).
///
/// # Errors
/// The manifests cannot be read, an apply is rejected, or the StatefulSet is not ready by the
/// deadline ([`WaitError`]).
pub async fn apply_prometheus(client: &Client, timeout: Duration) -> Result<()> {
    let docs = read_manifest_dir(&crate::workspace_root().join(PROMETHEUS_DIR))?;
    let prom = docs
        .iter()
        .find(|d| d.get("kind").and_then(Value::as_str) == Some("Prometheus"))
        .with_context(|| format!("{PROMETHEUS_DIR} has no Prometheus object"))?;
    let ident = ObjectIdent::of(prom)?;
    let namespace = ident.namespace.clone().unwrap_or_else(|| "default".into());
    let deadline = Instant::now() + timeout;
    Applier::new(client.clone(), timeout)
        .apply_all(&in_apply_order(&docs))
        .await?;
    wait_statefulset_ready(
        client,
        &namespace,
        &format!("prometheus-{}", ident.name),
        remaining(deadline),
    )
    .await?;
    Ok(())
}

/// The `scrapeInterval` of the Prometheus CR in `manifests/prometheus/` (Prometheus's default,
/// 30 s, when unset), so waits follow the manifest.
///
/// # Errors
/// The manifests cannot be read, hold no Prometheus, or the interval is not a duration.
pub fn scrape_interval() -> Result<Duration> {
    let docs = read_manifest_dir(&crate::workspace_root().join(PROMETHEUS_DIR))?;
    let prom = docs
        .iter()
        .find(|d| d.get("kind").and_then(Value::as_str) == Some("Prometheus"))
        .with_context(|| format!("{PROMETHEUS_DIR} has no Prometheus object"))?;
    let text = prom["spec"]["scrapeInterval"].as_str().unwrap_or("30s");
    humantime::parse_duration(text)
        .with_context(|| format!("{PROMETHEUS_DIR}: scrapeInterval {text:?} is not a duration"))
}

/// Applies the ServiceMonitor manifest of `variant`, then waits until Prometheus (reached
/// through the API server's service proxy) has loaded the scrape job the operator generates
/// for it.
///
/// # Errors
/// When the apply is rejected, or the job is not in `/api/v1/status/config` by the deadline.
///
/// # Caveats
/// The operator writes the job into a Secret that the kubelet syncs into the Prometheus pod
/// within its sync period (1 min by default) plus cache TTL, and the config reloader then
/// reloads Prometheus (TWIN-FACTS §9): expect up to about two minutes on a real cluster.
pub async fn apply_servicemonitor(
    client: &Client,
    variant: ServiceMonitorVariant,
    timeout: Duration,
) -> Result<()> {
    let path = crate::workspace_root().join(variant.manifest());
    let docs = read_manifest_file(&path)?;
    let deadline = Instant::now() + timeout;
    Applier::new(client.clone(), timeout)
        .apply_all(&in_apply_order(&docs))
        .await?;
    let jobs = docs
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("ServiceMonitor"))
        .map(|d| {
            let ident = ObjectIdent::of(d)?;
            let ns = ident.namespace.as_deref().unwrap_or("default");
            // Endpoint 0: our manifests have one endpoint each (promcfg.go names jobs by index).
            Ok(format!("serviceMonitor/{ns}/{}/0", ident.name))
        })
        .collect::<Result<Vec<_>>>()?;
    let prom = crate::kubeproxy::prometheus_client(
        client.clone(),
        PROMETHEUS_NAMESPACE,
        remaining(deadline),
    );
    for job in jobs {
        wait_scrape_job_loaded(&prom, &job, remaining(deadline)).await?;
    }
    Ok(())
}

/// Waits until Prometheus's loaded configuration (`/api/v1/status/config`) has a scrape job
/// named `job`.
///
/// # Errors
/// When the deadline passes, naming the jobs Prometheus has instead.
pub async fn wait_scrape_job_loaded(
    prom: &crate::prometheus::PrometheusClient,
    job: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    // Typed, so Prometheus's own errors stay permanent and an unreachable one is retried.
    let waited = wait::poll_with(timeout, wait::Backoff::constant(POLL), || async {
        let names = scrape_job_names(&prom.config_yaml().await?);
        if names.iter().any(|n| n == job) {
            Ok(Ok(()))
        } else {
            Ok::<_, crate::prometheus::PromError>(Err(names))
        }
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Pending(names)) => Err(WaitError::Timeout {
            what: format!("Prometheus has not loaded scrape job {job}"),
            waited: timeout,
            state: format!(
                "its jobs: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
            fix: "the operator writes it into Secret prometheus-<name>, the kubelet syncs that into \
                  the pod (up to its sync period, 1 min by default) and the config reloader reloads; \
                  check the operator log and the config-reloader container's log, or raise --timeout"
                .into(),
        }),
        Err(Waited::Failed(e)) => Err(WaitError::api(
            format!("Prometheus to load scrape job {job}"),
            timeout,
            anyhow::Error::new(e).context("reading /api/v1/status/config"),
        )),
    }
}

/// The `job_name`s of a Prometheus configuration (empty when it does not parse).
pub fn scrape_job_names(config_yaml: &str) -> Vec<String> {
    let Ok(config) = crate::yaml::from_str::<crate::yaml::Value>(config_yaml) else {
        return Vec::new();
    };
    config
        .get("scrape_configs")
        .and_then(crate::yaml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|job| job.get("job_name")?.as_str().map(str::to_string))
        .collect()
}

/// Applies `fixtures/workloads/` and waits until every Deployment there is Available, i.e. its
/// pods are Running.
///
/// # Errors
/// The manifests cannot be read, an apply is rejected, or a Deployment is not Available by the
/// deadline ([`WaitError`]).
pub async fn apply_workloads(client: &Client, timeout: Duration) -> Result<()> {
    let docs = read_manifest_dir(&crate::workspace_root().join(WORKLOADS_DIR))?;
    let deadline = Instant::now() + timeout;
    Applier::new(client.clone(), timeout)
        .apply_all(&in_apply_order(&docs))
        .await?;
    for doc in docs
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("Deployment"))
    {
        let ident = ObjectIdent::of(doc)?;
        let ns = ident.namespace.as_deref().unwrap_or("default");
        wait_deployment_available(client, ns, &ident.name, remaining(deadline)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_interval_is_the_prometheus_crs() {
        let text = std::fs::read_to_string(
            crate::workspace_root()
                .join(PROMETHEUS_DIR)
                .join("20-prometheus.yaml"),
        )
        .unwrap();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("scrapeInterval:"))
            .expect("the CR sets scrapeInterval");
        let written = line.split(':').nth(1).unwrap().trim().trim_matches('"');
        assert_eq!(
            scrape_interval().unwrap(),
            humantime::parse_duration(written).unwrap()
        );
    }

    /// What [`WORKLOADS_DIR`]'s doc says it holds.
    #[test]
    fn the_workloads_are_two_deployments_of_two_containers() {
        let docs = read_manifest_dir(&crate::workspace_root().join(WORKLOADS_DIR)).unwrap();
        let mut workloads: Vec<(String, usize)> = docs
            .iter()
            .filter(|d| d["kind"] != "Namespace")
            .map(|d| {
                let ident = ObjectIdent::of(d).unwrap();
                let containers = d["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .map_or(0, Vec::len);
                (ident.to_string(), containers)
            })
            .collect();
        workloads.sort();
        assert_eq!(
            workloads,
            [
                ("Deployment pme2e-apps/web".to_string(), 2),
                ("Deployment pme2e-batch/cpu-burner".to_string(), 2)
            ]
        );
    }

    #[test]
    fn scrape_job_names_of_a_loaded_config() {
        let yaml = "global:\n  scrape_interval: 10s\nscrape_configs:\n- job_name: serviceMonitor/kube-system/cadvisor/0\n  scheme: https\n- job_name: other\n";
        assert_eq!(
            scrape_job_names(yaml),
            ["serviceMonitor/kube-system/cadvisor/0", "other"]
        );
        assert!(scrape_job_names("global: {}\n").is_empty());
        assert!(scrape_job_names(": not yaml [").is_empty());
    }

    #[test]
    fn real_manifest_digests_include_prometheus_servicemonitors_and_workloads() {
        let digests = manifest_digests().unwrap();
        let paths: Vec<&str> = digests.iter().map(|(p, _)| p.as_str()).collect();
        for expected in [
            "manifests/servicemonitor-cadvisor.yaml",
            "manifests/servicemonitor-cadvisor-honorlabels.yaml",
        ] {
            assert!(paths.contains(&expected), "{paths:?}");
        }
        assert!(
            paths.iter().any(|p| p.starts_with("manifests/prometheus/")),
            "{paths:?}"
        );
        assert!(
            paths.iter().any(|p| p.starts_with("fixtures/workloads/")),
            "{paths:?}"
        );
        assert!(digests.iter().all(|(_, d)| d.len() == 64));
    }
}
