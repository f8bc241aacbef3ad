//! A real Prometheus in Docker for `replay`, run with the `docker` CLI: host network, listening
//! on `127.0.0.1:<free port>`, labelled `io.pod-metrics-e2e=replay`, removed when the handle
//! drops: on error, on Ctrl-C (the future holding it is dropped) and at the normal end
//! (`replay --keep` holds it until Ctrl-C).
//!
//! Also the one image rule the component tier uses too (`testkit` calls [`prometheus_image`]).

use crate::operator::scrape_config::{self, ServiceMonitorSpec};
use crate::prometheus::PrometheusClient;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The image operator v0.48.1 deploys; used when `E2E_PROMETHEUS_IMAGE` is unset.
pub const DEFAULT_PROMETHEUS_IMAGE: &str = "quay.io/prometheus/prometheus:v2.26.0";
/// Label on every container this project starts (`.ci/run` removes leftovers by it).
pub const CONTAINER_LABEL: &str = "io.pod-metrics-e2e";
/// Label whose value is unique per container, to find exactly that one.
pub const RUN_LABEL: &str = "io.pod-metrics-e2e.run";
/// Where the config directory is mounted in the container.
const CONF_IN_CONTAINER: &str = "/etc/prometheus/conf";

/// Why the replay Prometheus could not run.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusRunError {
    /// Docker does not answer (the message says which way and the fix).
    #[error("replay and the component tier run a real Prometheus in Docker")]
    DockerUnavailable(#[from] crate::docker::DockerError),
    #[error("Prometheus image {image} is not present locally (this machine may not pull it): run `cargo xtask image prometheus` and export the E2E_PROMETHEUS_IMAGE=… line it prints (or `docker pull {image}` where a registry is reachable)")]
    /// The image is not present locally.
    ImageMissing {
        /// The image.
        image: String,
    },
    #[error("{what}")]
    /// A file for the container could not be written.
    Io {
        /// What was being written.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    #[error("`docker run` of {image} failed: {stderr}")]
    /// `docker run` failed.
    Run {
        /// The image.
        image: String,
        /// What docker said.
        stderr: String,
    },
    /// Prometheus did not become ready.
    #[error(
        "Prometheus ({image}) at {url} was not ready within {waited:?}; its log ends with:\n{log}"
    )]
    NotReady {
        /// The image.
        image: String,
        /// Where it should answer.
        url: String,
        /// How long it was given.
        waited: Duration,
        /// The end of its log.
        log: String,
    },
}

/// `E2E_PROMETHEUS_IMAGE` when set and not blank, else [`DEFAULT_PROMETHEUS_IMAGE`].
pub fn prometheus_image() -> String {
    std::env::var("E2E_PROMETHEUS_IMAGE")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PROMETHEUS_IMAGE.to_string())
}

/// Checks that Docker answers and `image` is present locally (never pulls).
///
/// # Errors
/// [`PrometheusRunError::DockerUnavailable`] or [`PrometheusRunError::ImageMissing`], each
/// saying how to fix it.
pub fn ensure_image_present(image: &str) -> Result<(), PrometheusRunError> {
    // The one engine check (`crate::docker`), with the same deadline as `cargo xtask image`.
    crate::docker::check_engine_blocking(crate::image::DOCKER_DEADLINE)?;
    let present = Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !present {
        return Err(PrometheusRunError::ImageMissing {
            image: image.to_string(),
        });
    }
    Ok(())
}

/// What to run.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// The Prometheus image (the component tier's rule: `E2E_PROMETHEUS_IMAGE` or the pinned one).
    pub image: String,
    /// The ServiceMonitor endpoint the scrape job is generated from.
    pub spec: ServiceMonitorSpec,
    /// The file_sd target groups (`kubernetes_sd` role endpoints labels).
    pub targets: serde_json::Value,
    /// Content of the token file, mounted where the endpoint's `bearerTokenFile` says (nothing
    /// is mounted without one: the kubelet then answers 401, as in the cluster).
    pub token: String,
    /// The global scrape interval (the endpoint's own `interval` wins).
    pub scrape_interval: Duration,
}

/// A running Prometheus container; removed (with its temp config) on drop.
pub struct ReplayPrometheus {
    id: String,
    run_id: String,
    port: u16,
    image: String,
    // Removed after the container (field order); the container bind-mounts it.
    dir: Option<tempfile::TempDir>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PrometheusRunError {
    let what = what.into();
    move |source| PrometheusRunError::Io { what, source }
}

fn write_readable(path: &Path, text: &str) -> Result<(), PrometheusRunError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(io(format!("writing {}", path.display())))?;
    // The upstream image runs as `nobody`: mounted files must be world-readable.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .map_err(io(format!("chmod {}", path.display())))
}

/// A port nothing listens on right now.
pub(crate) fn free_port() -> Result<u16, std::io::Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl ReplayPrometheus {
    /// Writes the configuration to a temp dir, starts the container and waits until Prometheus
    /// answers `/-/ready`.
    ///
    /// # Errors
    /// Docker or the image missing, the container failing to start or to become ready (its log
    /// is quoted). Nothing is left behind on error.
    pub async fn start(cfg: &PrometheusConfig) -> Result<ReplayPrometheus, PrometheusRunError> {
        ensure_image_present(&cfg.image)?;
        let dir = tempfile::Builder::new()
            .prefix("pme2e-replay-")
            .tempdir()
            .map_err(io("creating a temp dir for the Prometheus config"))?;
        let conf = dir.path().join("conf");
        std::fs::create_dir(&conf).map_err(io("creating the config dir"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o755))
                .map_err(io("chmod the config dir"))?;
        }
        let sd_path = format!("{CONF_IN_CONTAINER}/kubelet.json");
        let yml = scrape_config::file_sd_prometheus_yml(&cfg.spec, &sd_path, cfg.scrape_interval);
        write_readable(&conf.join("prometheus.yml"), &yml)?;
        let targets = serde_json::to_string_pretty(&cfg.targets).expect("JSON values serialise");
        write_readable(&conf.join("kubelet.json"), &targets)?;
        let token_file: PathBuf = dir.path().join("token");
        write_readable(&token_file, &cfg.token)?;

        let port = free_port().map_err(io("finding a free port for Prometheus"))?;
        let run_id = format!(
            "replay-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default()
        );
        let out = Command::new("docker")
            .arg("run")
            .arg("-d")
            .args(["--network", "host"])
            .args(["--label", &format!("{CONTAINER_LABEL}=replay")])
            .args(["--label", &format!("{RUN_LABEL}={run_id}")])
            .args(["-v", &format!("{}:{CONF_IN_CONTAINER}:ro", conf.display())])
            .args(cfg.spec.bearer_token_file.iter().flat_map(|path| {
                [
                    "-v".to_string(),
                    format!("{}:{path}:ro", token_file.display()),
                ]
            }))
            .args(["--tmpfs", "/prometheus"])
            .arg(&cfg.image)
            .arg(format!("--config.file={CONF_IN_CONTAINER}/prometheus.yml"))
            .arg("--storage.tsdb.path=/prometheus")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .output()
            .map_err(io("running `docker run`"))?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let prom = ReplayPrometheus {
            id,
            run_id,
            port,
            image: cfg.image.clone(),
            dir: Some(dir),
        };
        if !out.status.success() || prom.id.is_empty() {
            return Err(PrometheusRunError::Run {
                image: cfg.image.clone(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        prom.wait_ready(Duration::from_secs(60)).await?;
        Ok(prom)
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<(), PrometheusRunError> {
        let client = self.client();
        let start = Instant::now();
        loop {
            if client.ready().await.is_ok() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(PrometheusRunError::NotReady {
                    image: self.image.clone(),
                    url: self.url(),
                    waited: timeout,
                    log: self.log_tail(20),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Docker container id.
    pub fn container_id(&self) -> &str {
        &self.id
    }

    /// The value of [`RUN_LABEL`] on this container.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// A client with a short retry deadline (Prometheus is ready).
    pub fn client(&self) -> PrometheusClient {
        PrometheusClient::new(&self.url(), Duration::from_secs(2)).expect("a valid http URL")
    }

    /// The last `lines` lines of the container's log.
    pub fn log_tail(&self, lines: usize) -> String {
        Command::new("docker")
            .args(["logs", "--tail", &lines.to_string(), &self.id])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    }
}

impl Drop for ReplayPrometheus {
    fn drop(&mut self) {
        // A `docker run` that failed after creating the container printed no id: find it by
        // this run's label instead.
        let ids: Vec<String> = if self.id.is_empty() {
            Command::new("docker")
                .args([
                    "ps",
                    "-aq",
                    "--filter",
                    &format!("label={RUN_LABEL}={}", self.run_id),
                ])
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        } else {
            vec![self.id.clone()]
        };
        for id in ids {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v", &id])
                .output();
        }
        drop(self.dir.take());
    }
}
