//! A real Prometheus in Docker: see the crate docs.

use crate::file_sd::{kubelet_file_sd, KubeletNode};
use crate::kubelet::{FixtureKubelet, DEFAULT_TOKEN};
use anyhow::{bail, Context, Result};
use e2e::operator::scrape_config::{self, ServiceMonitorSpec};
use e2e::prometheus::PrometheusClient;
use e2e::replay::prometheus::{CONTAINER_LABEL, RUN_LABEL};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testcontainers::core::{Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// `E2E_PROMETHEUS_IMAGE`, or the version operator v0.48.1 deploys: the library's one rule
/// (`e2e::replay::prometheus`), which `cargo xtask replay` uses too.
pub fn prometheus_image() -> String {
    e2e::replay::prometheus::prometheus_image()
}

/// Fails (never skips) when Docker does not answer or the image is not present locally.
pub fn ensure_image_present(image: &str) -> Result<()> {
    Ok(e2e::replay::prometheus::ensure_image_present(image)?)
}

/// Ids of containers (running or not) carrying `RUN_LABEL=<run_id>`.
pub fn containers_with_run_label(run_id: &str) -> Result<Vec<String>> {
    let sh = xshell::Shell::new()?;
    let filter = format!("label={RUN_LABEL}={run_id}");
    let out = xshell::cmd!(sh, "docker ps -aq --filter {filter}")
        .quiet()
        .read()?;
    Ok(out
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect())
}

/// A port nothing listens on right now (bind to :0, then close).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

fn unique_run_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Builder for a Prometheus running the operator's cadvisor job against fixture kubelets.
#[derive(Debug, Clone)]
pub struct PrometheusSetup {
    pub spec: ServiceMonitorSpec,
    pub nodes: Vec<KubeletNode>,
    pub scrape_interval: Duration,
    /// Content of the mounted service-account token file.
    pub token: String,
    pub image: String,
}

impl Default for PrometheusSetup {
    fn default() -> Self {
        Self::new()
    }
}

impl PrometheusSetup {
    /// The mission's ServiceMonitor (honorLabels false, https, `https-metrics`), 1 s scrapes,
    /// the fixture's default token, no targets yet.
    pub fn new() -> Self {
        PrometheusSetup {
            spec: ServiceMonitorSpec::cadvisor(),
            nodes: Vec::new(),
            scrape_interval: Duration::from_secs(1),
            token: DEFAULT_TOKEN.into(),
            image: prometheus_image(),
        }
    }

    pub fn honor_labels(mut self, on: bool) -> Self {
        self.spec.honor_labels = on;
        self
    }

    pub fn scheme(mut self, scheme: &str) -> Self {
        self.spec.scheme = scheme.into();
        self
    }

    /// The ServiceMonitor endpoint's `port` (which Service port name the job keeps).
    pub fn port_name(mut self, port: &str) -> Self {
        self.spec.port = port.into();
        self
    }

    pub fn path(mut self, path: &str) -> Self {
        self.spec.path = path.into();
        self
    }

    pub fn scrape_interval(mut self, interval: Duration) -> Self {
        self.scrape_interval = interval;
        self
    }

    pub fn token(mut self, token: &str) -> Self {
        self.token = token.into();
        self
    }

    /// Adds the kubelet as a node of the `kubelet` Endpoints: `https-metrics` is the fixture;
    /// `http-metrics` (10255) and `cadvisor` (4194) are closed ports, as on a modern kubelet.
    pub fn kubelet(mut self, kubelet: &FixtureKubelet) -> Self {
        self.nodes.push(KubeletNode {
            node: kubelet.node().to_string(),
            ports: vec![
                ("https-metrics".into(), kubelet.addr().to_string()),
                ("http-metrics".into(), format!("127.0.0.1:{}", free_port())),
                ("cadvisor".into(), format!("127.0.0.1:{}", free_port())),
            ],
        });
        self
    }

    /// Adds an arbitrary node (target address list per Service port name).
    pub fn node(mut self, node: KubeletNode) -> Self {
        self.nodes.push(node);
        self
    }

    /// Writes config, targets and token to a temp dir and starts the container.
    pub async fn start(self) -> Result<RunningPrometheus> {
        let dir = tempfile::tempdir().context("creating a temp dir for the Prometheus config")?;
        let conf = dir.path().join("conf");
        std::fs::create_dir(&conf)?;
        // The upstream image runs as `nobody`: the mounted files must be world-readable.
        set_mode(&conf, 0o755)?;
        let sd_path = format!("{CONF_IN_CONTAINER}/kubelet.json");
        let yml = scrape_config::file_sd_prometheus_yml(&self.spec, &sd_path, self.scrape_interval);
        write_file(&conf.join("prometheus.yml"), &yml)?;
        write_targets(&conf, &self.nodes)?;
        let token_file = dir.path().join("token");
        write_file(&token_file, &self.token)?;

        let port = free_port();
        let run_id = unique_run_id();
        let container = PrometheusContainer {
            image: self.image.clone(),
            tier: "component",
            run_id: run_id.clone(),
            listen: format!("127.0.0.1:{port}"),
            config_dir: conf.clone(),
            config_dir_in_container: CONF_IN_CONTAINER,
            config_file: "prometheus.yml",
            token_file,
            extra_args: Vec::new(),
        }
        .start()
        .await?;
        Ok(RunningPrometheus {
            container,
            dir,
            conf,
            port,
            run_id,
            setup: self,
        })
    }
}

/// One Prometheus container as testkit starts it, the only place it does: the component tier's
/// [`PrometheusSetup`] and the twin's data path both go through [`PrometheusContainer::start`].
/// Host network (the fixture kubelets listen on loopback addresses), the labels `.ci/run`
/// cleans up by, the config directory and the service-account token bind-mounted, TSDB on a
/// tmpfs, ready when Prometheus logs that it serves web requests.
#[derive(Debug, Clone)]
pub struct PrometheusContainer {
    pub image: String,
    /// Which tier started it: the value of [`CONTAINER_LABEL`] (`component`, `twin`).
    pub tier: &'static str,
    /// The value of [`RUN_LABEL`], unique per container or per twin.
    pub run_id: String,
    /// `--web.listen-address`, `<ip>:<port>` on the host network.
    pub listen: String,
    /// Directory on the host with the config; must be world-readable (the image runs as
    /// `nobody`).
    pub config_dir: PathBuf,
    /// Where `config_dir` is mounted in the container.
    pub config_dir_in_container: &'static str,
    /// The config's file name inside `config_dir`.
    pub config_file: &'static str,
    /// Mounted at the service-account token path the generated job reads.
    pub token_file: PathBuf,
    /// Arguments after the config, storage and listen flags (`--web.enable-lifecycle`, ...).
    pub extra_args: Vec<String>,
}

impl PrometheusContainer {
    /// Starts the container and waits until Prometheus is ready (90 s at most).
    ///
    /// # Errors
    /// When Docker does not answer, the image is not present locally, or Prometheus does not
    /// become ready.
    pub async fn start(self) -> Result<ContainerAsync<GenericImage>> {
        ensure_image_present(&self.image)?;
        let (repo, tag) = split_image(&self.image);
        let mut args = vec![
            format!(
                "--config.file={}/{}",
                self.config_dir_in_container, self.config_file
            ),
            "--storage.tsdb.path=/prometheus".to_string(),
            format!("--web.listen-address={}", self.listen),
        ];
        args.extend(self.extra_args);
        GenericImage::new(repo, tag)
            .with_wait_for(WaitFor::message_on_stderr(
                "Server is ready to receive web requests.",
            ))
            .with_network("host")
            .with_label(CONTAINER_LABEL, self.tier)
            .with_label(RUN_LABEL, self.run_id)
            .with_mount(Mount::bind_mount(
                self.config_dir.to_string_lossy(),
                self.config_dir_in_container,
            ))
            .with_mount(Mount::bind_mount(
                self.token_file.to_string_lossy(),
                scrape_config::SERVICE_ACCOUNT_TOKEN,
            ))
            .with_mount(Mount::tmpfs_mount("/prometheus"))
            .with_startup_timeout(Duration::from_secs(90))
            .with_cmd(args)
            .start()
            .await
            .with_context(|| format!("starting Prometheus ({}) on {}", self.image, self.listen))
    }
}

const CONF_IN_CONTAINER: &str = "/etc/prometheus/conf";

fn split_image(image: &str) -> (String, String) {
    // A colon after the last slash separates the tag (a registry may have host:port).
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    set_mode(path, 0o644)
}

/// Replaces the file_sd file atomically (Prometheus must never read half a file).
fn write_targets(conf: &Path, nodes: &[KubeletNode]) -> Result<()> {
    let tmp = conf.join(".kubelet.json.tmp");
    write_file(
        &tmp,
        &serde_json::to_string_pretty(&kubelet_file_sd(nodes))?,
    )?;
    std::fs::rename(&tmp, conf.join("kubelet.json")).context("replacing kubelet.json")
}

/// A running Prometheus container; removed on drop.
pub struct RunningPrometheus {
    container: ContainerAsync<GenericImage>,
    // Kept alive for the bind mounts; deleted after the container on drop (field order).
    dir: tempfile::TempDir,
    conf: PathBuf,
    port: u16,
    run_id: String,
    setup: PrometheusSetup,
}

impl RunningPrometheus {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The value of [`RUN_LABEL`] on this container.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn setup(&self) -> &PrometheusSetup {
        &self.setup
    }

    /// A client with a retry deadline of a few seconds (Prometheus is already ready).
    pub fn client(&self) -> PrometheusClient {
        PrometheusClient::new(&self.url(), Duration::from_secs(10)).expect("a valid http URL")
    }

    /// The prometheus.yml the container runs.
    pub fn config_text(&self) -> String {
        std::fs::read_to_string(self.conf.join("prometheus.yml")).unwrap_or_default()
    }

    /// Rewrites the file_sd targets; Prometheus picks them up within about a second.
    pub fn set_nodes(&mut self, nodes: Vec<KubeletNode>) -> Result<()> {
        write_targets(&self.conf, &nodes)?;
        self.setup.nodes = nodes;
        Ok(())
    }

    /// Waits until every active target has been scraped at least once (up or down) and returns
    /// them. Prometheus's discovery manager hands new targets to the scrape loop in 5 s batches,
    /// so a freshly started Prometheus has no targets for a few seconds.
    pub async fn wait_scraped(&self, timeout: Duration) -> Result<e2e::prometheus::Targets> {
        let client = self.client();
        let deadline = Instant::now() + timeout;
        loop {
            let targets = client.targets().await.context("GET /api/v1/targets")?;
            let scraped = |t: &e2e::prometheus::ActiveTarget| {
                t.health != "unknown" && !t.last_scrape.starts_with("0001-")
            };
            if !targets.active.is_empty() && targets.active.iter().all(scraped) {
                return Ok(targets);
            }
            if Instant::now() > deadline {
                bail!(
                    "Prometheus {}: targets not all scraped after {timeout:?}: {:?}",
                    self.url(),
                    targets.active
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The container's log (for failure messages).
    pub async fn logs(&self) -> String {
        let out = self.container.stderr_to_vec().await.unwrap_or_default();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Removes the container now and reports errors (drop does the same, silently).
    pub async fn remove(self) -> Result<()> {
        let RunningPrometheus { container, dir, .. } = self;
        container
            .rm()
            .await
            .context("removing the Prometheus container")?;
        drop(dir);
        Ok(())
    }
}
