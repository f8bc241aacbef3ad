//! Replay a captured cluster's problem without the cluster: one [`kubelet::ReplayKubelet`] per
//! captured node serving its `/metrics/cadvisor` body (timestamps dropped), a real Prometheus
//! ([`prometheus::ReplayPrometheus`]) running the scrape job prometheus-operator v0.48.1
//! generates from the captured ServiceMonitor, with targets labelled as Kubernetes discovery
//! (role endpoints) labels the captured `kube-system/kubelet` Endpoints; then the coverage check
//! and the Prometheus-side diagnosis, exactly as `check` runs them.
//!
//! What differs from the cluster, on purpose: target addresses are the local replay kubelets
//! (so `instance` labels differ), every body is static (counters do not move), and discovery is
//! `file_sd` (the labels are kubernetes_sd's; the relabel rules are the operator's).

pub mod kubelet;
pub mod prometheus;
mod scrape;

use crate::capture::{CaptureManifest, MANIFEST_FILE};
use crate::coverage::{self, MetricName, MetricsReport, WaitOptions};
use crate::diagnose::{self, Finding};
use crate::operator::kubelet_endpoints;
use crate::operator::scrape_config::{
    specs_from_servicemonitor, ServiceMonitorError, ServiceMonitorSpec,
};
use crate::pods::RunningPod;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use kubelet::ReplayKubelet;
pub use prometheus::{PrometheusRunError, ReplayPrometheus};
pub use scrape::{prometheus_duration, replay_targets};

/// Why a replay could not run (its inputs, Docker, Prometheus). A replay that runs and finds
/// pods missing is not an error: that is its answer.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// An input file is missing or not what it should be.
    #[error("{path}: {problem}")]
    Input {
        /// The file (or the flag, when it is missing).
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A captured file changed since the capture.
    #[error("{path}: sha256 {actual} differs from {expected} recorded in capture.json (edited after the capture?); to replay an edited file, pass it explicitly (--cadvisor NODE=FILE, --pods FILE, --servicemonitor FILE)")]
    Digest {
        /// The file.
        path: PathBuf,
        /// The sha256 in `capture.json`.
        expected: String,
        /// The file's sha256 now.
        actual: String,
    },
    /// The ServiceMonitor cannot be turned into the operator's job: a field v0.48.1 has that is
    /// not modelled, a field it does not have, a bad value (named by path).
    #[error("ServiceMonitor {}", path.display())]
    ServiceMonitor {
        /// The file.
        path: PathBuf,
        /// The parser's refusal.
        #[source]
        source: ServiceMonitorError,
    },
    /// A field the generator models but a local replay cannot reproduce.
    #[error("ServiceMonitor {}: {field}: {why}; replay refuses it rather than run a different job (remove it from a copy of the file and pass that with --servicemonitor)", path.display())]
    NotReplayable {
        /// The file.
        path: PathBuf,
        /// The field, by path.
        field: String,
        /// Why replay cannot reproduce it.
        why: &'static str,
    },
    /// The ServiceMonitor has no cadvisor endpoint.
    #[error("ServiceMonitor {path}: no endpoint with path /metrics/cadvisor (the endpoint paths are {paths:?}); replay reproduces the cadvisor scrape only")]
    NoCadvisorEndpoint {
        /// The file.
        path: PathBuf,
        /// The endpoints' paths.
        paths: Vec<String>,
    },
    #[error("nothing to replay: no node's /metrics/cadvisor body (give a capture directory or --cadvisor NODE=FILE)")]
    /// No cadvisor body to serve.
    NoNodes,
    #[error(transparent)]
    /// A replay kubelet could not start.
    Kubelet(#[from] kubelet::KubeletError),
    #[error(transparent)]
    /// The replay Prometheus could not run.
    Prometheus(#[from] PrometheusRunError),
    #[error("the coverage check against the replay Prometheus failed")]
    /// The coverage check could not ask Prometheus.
    Check(#[from] crate::prometheus::PromError),
    #[error("the Prometheus-side diagnosis failed: {0}")]
    /// The diagnosis could not read Prometheus.
    Diagnose(String),
}

fn input(path: &Path, problem: impl Into<String>) -> ReplayError {
    ReplayError::Input {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// The cadvisor endpoints of a ServiceMonitor as [`ServiceMonitorSpec`]s, parsed by the
/// project's one parser ([`specs_from_servicemonitor`]), which refuses by path every field it
/// does not model.
///
/// # Errors
/// [`ReplayError::ServiceMonitor`] (with the parser's reason and the file),
/// [`ReplayError::NoCadvisorEndpoint`].
pub fn cadvisor_specs(
    doc: &crate::yaml::Value,
    path: &Path,
) -> Result<Vec<ServiceMonitorSpec>, ReplayError> {
    let specs = specs_from_servicemonitor(doc).map_err(|source| ReplayError::ServiceMonitor {
        path: path.to_path_buf(),
        source,
    })?;
    let paths: Vec<String> = specs.iter().map(|s| s.path.clone()).collect();
    let cadvisor: Vec<ServiceMonitorSpec> = specs
        .into_iter()
        .filter(|s| s.path == "/metrics/cadvisor")
        .collect();
    for spec in &cadvisor {
        let Some(tls) = &spec.tls_config else {
            continue;
        };
        for (field, value) in [
            ("caFile", &tls.ca_file),
            ("certFile", &tls.cert_file),
            ("keyFile", &tls.key_file),
        ] {
            if !value.is_empty() {
                return Err(ReplayError::NotReplayable {
                    path: path.to_path_buf(),
                    field: format!("spec.endpoints[{}].tlsConfig.{field}", spec.endpoint_index),
                    why: "a file inside the Prometheus pod, which the capture does not hold (and the replay kubelets' certificates are self-signed)",
                });
            }
        }
    }
    if cadvisor.is_empty() {
        return Err(ReplayError::NoCadvisorEndpoint {
            path: path.to_path_buf(),
            paths,
        });
    }
    Ok(cadvisor)
}

/// The files a replay reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayInputs {
    /// (node name, its `/metrics/cadvisor` body), in node order.
    pub cadvisor: Vec<(String, PathBuf)>,
    /// `kubectl get pods -A -o json` (or a captured `pods.json`).
    pub pods: Option<PathBuf>,
    /// The ServiceMonitor (YAML or JSON) whose cadvisor endpoint the scrape job is generated from.
    pub servicemonitor: Option<PathBuf>,
    /// The operator's kubelet Endpoints and Service as captured; when absent, the ones the
    /// operator would write for the given nodes ([`crate::operator::kubelet_endpoints`]).
    pub kubelet_endpoints: Option<PathBuf>,
    /// See `kubelet_endpoints`.
    pub kubelet_service: Option<PathBuf>,
    /// sha256 (hex) per file, from `capture.json`, checked before use.
    pub digests: BTreeMap<PathBuf, String>,
}

impl ReplayInputs {
    /// The inputs a `cargo xtask capture` directory holds, from its `capture.json`.
    ///
    /// # Errors
    /// `capture.json` missing or not a capture manifest; a capture with several cadvisor
    /// ServiceMonitors (which one is then for `--servicemonitor` to say).
    pub fn from_capture_dir(dir: &Path) -> Result<Self, ReplayError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            input(
                &manifest_path,
                format!("{e}; a capture directory is what `cargo xtask capture --out DIR` writes (or pass --cadvisor NODE=FILE --pods FILE --servicemonitor FILE)"),
            )
        })?;
        let m: CaptureManifest = serde_json::from_str(&text)
            .map_err(|e| input(&manifest_path, format!("not a capture manifest: {e}")))?;
        let file = |rel: &str| dir.join(rel);
        let mut inputs = ReplayInputs {
            cadvisor: m
                .nodes
                .iter()
                .filter_map(|n| n.cadvisor.as_ref().map(|f| (n.name.clone(), file(f))))
                .collect(),
            pods: Some(file(&m.pods)),
            servicemonitor: None,
            kubelet_endpoints: m.kubelet_endpoints.as_deref().map(file),
            kubelet_service: m.kubelet_service.as_deref().map(file),
            digests: m
                .files
                .iter()
                .map(|(rel, sha)| (file(rel), sha.clone()))
                .collect(),
        };
        match m.servicemonitors.as_slice() {
            [] => {}
            [one] => inputs.servicemonitor = Some(file(one)),
            several => {
                return Err(input(
                    &manifest_path,
                    format!("the capture holds several ServiceMonitors scraping /metrics/cadvisor ({}); pick one with --servicemonitor FILE", several.join(", ")),
                ))
            }
        }
        Ok(inputs)
    }

    fn read(&self, path: &Path) -> Result<String, ReplayError> {
        let bytes = std::fs::read(path).map_err(|e| input(path, e.to_string()))?;
        if let Some(expected) = self.digests.get(path) {
            let actual = crate::pins::sha256_hex(&bytes);
            if &actual != expected {
                return Err(ReplayError::Digest {
                    path: path.to_path_buf(),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        String::from_utf8(bytes).map_err(|e| input(path, format!("not UTF-8 text: {e}")))
    }
}

/// How the replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The Prometheus image ([`prometheus::prometheus_image`] by default).
    pub image: String,
    /// The global scrape interval of the replay Prometheus.
    pub scrape_interval: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            image: prometheus::prometheus_image(),
            scrape_interval: Duration::from_secs(1),
        }
    }
}

/// A running replay: kubelets and Prometheus stop when it drops.
pub struct Replay {
    // Prometheus first: it is removed before the kubelets stop (field order).
    prometheus: ReplayPrometheus,
    kubelets: Vec<ReplayKubelet>,
    pods: Vec<RunningPod>,
    spec: ServiceMonitorSpec,
    /// The file_sd target groups (discovered labels, before the job's rules).
    targets: Value,
}

fn random_token() -> String {
    let seed = format!(
        "{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)
    );
    format!("replay-{}", &crate::pins::sha256_hex(seed.as_bytes())[..32])
}

impl Replay {
    /// Reads the inputs, starts one kubelet per node and Prometheus, and waits until every
    /// kubelet has been scraped once (or until discovery plus three scrapes have passed: a
    /// target the job's rules drop is never scraped, and that is the answer).
    ///
    /// # Errors
    /// Unreadable or refused inputs (named), Docker/image problems, Prometheus not starting.
    /// Nothing is left running on error.
    pub async fn start(inputs: &ReplayInputs, opts: &ReplayOptions) -> Result<Replay, ReplayError> {
        if inputs.cadvisor.is_empty() {
            return Err(ReplayError::NoNodes);
        }
        let pods_path = inputs.pods.as_deref().ok_or_else(|| {
            input(
                Path::new("--pods"),
                "missing: give `kubectl get pods -A -o json` output with --pods FILE",
            )
        })?;
        let pods = crate::pods::from_kubectl_json(&inputs.read(pods_path)?)
            .map_err(|e| input(pods_path, crate::errors::error_chain(e.as_ref())))?;
        let sm_path = inputs.servicemonitor.as_deref().ok_or_else(|| {
            input(
                Path::new("--servicemonitor"),
                "missing: the capture has no ServiceMonitor scraping /metrics/cadvisor; give one with --servicemonitor FILE",
            )
        })?;
        let sm: crate::yaml::Value = crate::yaml::from_str(&inputs.read(sm_path)?)
            .map_err(|e| input(sm_path, format!("not YAML/JSON: {e}")))?;
        let spec = cadvisor_specs(&sm, sm_path)?.remove(0);
        let (endpoints, service) = match (&inputs.kubelet_endpoints, &inputs.kubelet_service) {
            (Some(ep), svc) => {
                let ep_v: Value = serde_json::from_str(&inputs.read(ep)?)
                    .map_err(|e| input(ep, format!("not an Endpoints JSON: {e}")))?;
                let svc_v = match svc {
                    Some(p) => Some(
                        serde_json::from_str::<Value>(&inputs.read(p)?)
                            .map_err(|e| input(p, format!("not a Service JSON: {e}")))?,
                    ),
                    None => None,
                };
                (ep_v, svc_v)
            }
            (None, _) => {
                let nodes: Vec<String> = inputs.cadvisor.iter().map(|(n, _)| n.clone()).collect();
                let (ep, svc) = kubelet_endpoints(&nodes);
                (ep, Some(svc))
            }
        };
        let token = random_token();
        let mut kubelets = Vec::new();
        for (node, path) in &inputs.cadvisor {
            let body = crate::relabel::strip_timestamps(&inputs.read(path)?);
            kubelets.push(ReplayKubelet::start(node, body, &token).await?);
        }
        let addrs: BTreeMap<String, SocketAddr> = kubelets
            .iter()
            .map(|k| (k.node().to_string(), k.addr()))
            .collect();
        let mut port_error = None;
        let mut closed = || match prometheus::free_port() {
            Ok(p) => format!("127.0.0.1:{p}"),
            Err(e) => {
                port_error = Some(e);
                "127.0.0.1:1".to_string()
            }
        };
        let targets = replay_targets(
            &endpoints,
            service.as_ref(),
            &spec.namespaces,
            &addrs,
            &mut closed,
        );
        if let Some(e) = port_error {
            return Err(input(
                Path::new("127.0.0.1"),
                format!("finding a free port: {e}"),
            ));
        }
        let cfg = prometheus::PrometheusConfig {
            image: opts.image.clone(),
            spec: spec.clone(),
            targets: targets.clone(),
            token,
            scrape_interval: opts.scrape_interval,
        };
        let prometheus = ReplayPrometheus::start(&cfg).await?;
        let replay = Replay {
            prometheus,
            kubelets,
            pods,
            spec,
            targets,
        };
        // Prometheus hands new file_sd targets to the scrape loop in 5 s batches, and the first
        // scrape of a target comes at an offset within its interval (scrape.go `offset`).
        let settle = Duration::from_secs(6) + replay.scrape_interval(opts) * 3;
        let start = Instant::now();
        while start.elapsed() < settle && replay.kubelets.iter().any(|k| k.scrapes() == 0) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(replay)
    }

    /// The coverage check of `metrics` and the Prometheus-side diagnosis, as `cargo xtask check`
    /// runs them, plus `metric-relabel-drops` for each incomplete metric whose missing
    /// containers' captured series the job's `metricRelabelings` remove.
    ///
    /// # Errors
    /// Prometheus not answering the check's queries, or the diagnosis's reads failing.
    pub async fn check(
        &self,
        metrics: &[MetricName],
        wait: &WaitOptions,
        progress: &mut (dyn FnMut(&MetricsReport) + Send),
    ) -> Result<(MetricsReport, Vec<Finding>), ReplayError> {
        let client = self.prometheus.client();
        let report = coverage::check_metrics(&client, &self.pods, metrics, wait, progress).await?;
        let mut findings = diagnose::prometheus_side_for(&client, &self.pods, metrics)
            .await
            .map_err(|e| ReplayError::Diagnose(crate::errors::error_chain(e.as_ref())))?;
        for m in report.incomplete() {
            findings.extend(self.metric_relabel_drops(&m.missing, &m.metric)?);
        }
        Ok((report, findings))
    }

    /// `metric-relabel-drops`: the captured series of the missing containers, through the job's
    /// `metric_relabel_configs` with each node's target labels (`e2e::relabel` simulates what
    /// Prometheus does, relabel.go): a rule that removes them all is named as the cause. One
    /// finding for the first node that explains any (rules are per job, not per node).
    fn metric_relabel_drops(
        &self,
        missing: &[coverage::MissingPod],
        metric: &str,
    ) -> Result<Option<Finding>, ReplayError> {
        let job = crate::operator::scrape_config::compiled_job(&self.spec)
            .map_err(|e| ReplayError::Diagnose(crate::errors::error_chain(&e)))?;
        for k in &self.kubelets {
            let address = k.addr().to_string();
            let Some(group) = self
                .targets
                .as_array()
                .into_iter()
                .flatten()
                .find(|g| g["targets"][0] == address.as_str())
            else {
                continue;
            };
            let mut discovered: crate::relabel::Labels = group["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            discovered.insert("__address__".into(), address);
            let crate::relabel::TargetOutcome::Kept { labels, .. } = job.target(&discovered) else {
                continue;
            };
            let series = crate::relabel::exposition_series(k.body(), metric);
            let found =
                diagnose::relabel_drop::metric_relabel_drops(&self.spec, &labels, missing, series)
                    .map_err(|e| ReplayError::Diagnose(crate::errors::error_chain(&e)))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The job's scrape interval: the endpoint's `interval` (promcfg.go writes it into the job),
    /// else the replay's global interval.
    pub fn scrape_interval(&self, opts: &ReplayOptions) -> Duration {
        self.spec
            .interval
            .as_deref()
            .and_then(prometheus_duration)
            .unwrap_or(opts.scrape_interval)
    }

    /// The replay Prometheus.
    pub fn prometheus(&self) -> &ReplayPrometheus {
        &self.prometheus
    }

    /// The replay kubelets, one per node.
    pub fn kubelets(&self) -> &[ReplayKubelet] {
        &self.kubelets
    }

    /// The running pods of the pod list (what the check expects).
    pub fn pods(&self) -> &[RunningPod] {
        &self.pods
    }

    /// The ServiceMonitor endpoint the job was generated from.
    pub fn spec(&self) -> &ServiceMonitorSpec {
        &self.spec
    }

    /// How many targets discovery hands to the job (before its relabel rules).
    pub fn target_count(&self) -> usize {
        self.targets.as_array().map(Vec::len).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
