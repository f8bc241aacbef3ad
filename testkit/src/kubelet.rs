//! The fixture kubelet: see the crate docs.

use crate::tls::install_crypto_provider;
use anyhow::{bail, Context, Result};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use e2e::pods::RunningPod;
use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The token the fixture kubelet accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "fixture-token-0123456789";

/// How the pod's sandbox (pause) container shows up in `/metrics/cadvisor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseStyle {
    /// containerd (kind): `container=""`, a non-empty `image` and a 64-hex `name`.
    Containerd,
    /// dockershim: `container="POD"`, `name="k8s_POD_…"`.
    Docker,
    /// No pause row.
    None,
}

/// Which spelling of the pod and container labels the kubelet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelStyle {
    /// `pod`, `container` (kubelet 1.16+).
    Modern,
    /// `pod_name`, `container_name` only (kubelet before 1.14).
    Legacy,
    /// Both spellings (kubelet 1.14 and 1.15).
    Both,
}

/// What the server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A kubelet: `/metrics/cadvisor` and `/metrics`, bearer-token auth.
    Kubelet,
    /// A node-exporter: only `/metrics` with `node_*` series, no auth (it ignores the header).
    NodeExporter,
    /// A kubelet whose `/metrics/cadvisor` body is given verbatim ([`FixtureKubelet::start_raw`],
    /// e.g. a real capture); bearer-token auth as in [`Mode::Kubelet`]; the pod list is unused.
    RawCadvisor,
}

/// A pod the fixture kubelet reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixturePod {
    pub namespace: String,
    pub name: String,
    pub containers: Vec<String>,
    /// Running containers served without `container_memory_working_set_bytes` rows (their CPU
    /// rows stay): a metric missing for one container only.
    pub without_memory: Vec<String>,
}

impl FixturePod {
    pub fn new(namespace: &str, name: &str, containers: &[&str]) -> Self {
        FixturePod {
            namespace: namespace.into(),
            name: name.into(),
            containers: containers.iter().map(|c| c.to_string()).collect(),
            without_memory: Vec::new(),
        }
    }

    /// `n` pods `pod-00000…` spread over 10 namespaces `ns-0…`, each with containers `app`, `sidecar`…
    pub fn many(n: usize, containers_per_pod: usize) -> Vec<FixturePod> {
        let names: Vec<String> = ["app", "sidecar", "proxy", "agent"]
            .iter()
            .cycle()
            .take(containers_per_pod)
            .enumerate()
            .map(|(i, c)| {
                if i < 4 {
                    c.to_string()
                } else {
                    format!("{c}-{i}")
                }
            })
            .collect();
        (0..n)
            .map(|i| FixturePod {
                namespace: format!("ns-{}", i % 10),
                name: format!("pod-{i:05}"),
                containers: names.clone(),
                without_memory: Vec::new(),
            })
            .collect()
    }

    /// The same pod with `container`'s memory rows left out.
    pub fn without_memory_for(mut self, container: &str) -> Self {
        self.without_memory.push(container.to_string());
        self
    }

    pub fn running(&self, node: &str) -> RunningPod {
        let mut pod = RunningPod::new(
            &self.namespace,
            &self.name,
            &self
                .containers
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        pod.node = Some(node.to_string());
        pod
    }
}

/// How a [`FixtureKubelet`] behaves.
#[derive(Debug, Clone)]
pub struct KubeletOptions {
    /// Node name (the file_sd target's `__meta_kubernetes_endpoint_address_target_name`).
    pub node: String,
    /// The token answered with 200.
    pub token: String,
    /// A token answered with 403 Forbidden, like a kubelet whose RBAC lacks `nodes/metrics`.
    pub forbidden_token: Option<String>,
    pub pause: PauseStyle,
    pub labels: LabelStyle,
    pub mode: Mode,
    /// Where to listen (default `127.0.0.1:0`); the twin binds each node's `<InternalIP>:10250`.
    pub bind: Option<SocketAddr>,
    /// Decides instead of `token`/`forbidden_token` (the twin's TokenReview + RBAC stand-in).
    pub authorizer: Option<Authorizer>,
}

/// What a kubelet's webhook authentication and authorization decide for a bearer token:
/// unknown token → 401, known but without `get` on `nodes/metrics` → 403
/// (kubernetes/kubernetes pkg/kubelet/server/auth.go@v1.21.1, InstallAuthFilter in
/// kubernetes/kubernetes pkg/kubelet/server/server.go@v1.21.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    Allow,
    Unauthorized,
    /// The kubelet's 403 body names the user, verb, resource and subresource.
    Forbidden(String),
}

/// A token → decision hook (see [`KubeletOptions::authorizer`]).
#[derive(Clone)]
pub struct Authorizer(pub Arc<AuthorizeFn>);

/// Bearer token (None when absent) → decision.
pub type AuthorizeFn = dyn Fn(Option<&str>) -> AuthDecision + Send + Sync;

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authorizer(..)")
    }
}

impl Default for KubeletOptions {
    fn default() -> Self {
        KubeletOptions {
            node: "fixture-node".into(),
            token: DEFAULT_TOKEN.into(),
            forbidden_token: None,
            pause: PauseStyle::Containerd,
            labels: LabelStyle::Modern,
            mode: Mode::Kubelet,
            bind: None,
            authorizer: None,
        }
    }
}

/// One pre-rendered `/metrics/cadvisor` row: everything up to the value is fixed per series.
struct Series {
    /// Which metric family the row belongs to (rendered family by family).
    family: Family,
    prefix: String,
    base: f64,
    rate: f64,
    jitter_ms: u64,
}

/// The metric families the fixture kubelet serves per cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// `container_cpu_usage_seconds_total`, a counter with a `cpu="total"` label.
    Cpu,
    /// `container_memory_working_set_bytes`, a gauge: the CPU row's labels without `cpu`
    /// (the real captures in ../shared/upstream/captures, every memory row).
    Memory,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Cpu => "container_cpu_usage_seconds_total",
            Family::Memory => "container_memory_working_set_bytes",
        }
    }
}

struct Shared {
    opts: KubeletOptions,
    started: Instant,
    pods: RwLock<(Vec<FixturePod>, Arc<Vec<Series>>)>,
    cadvisor_scrapes: AtomicU64,
    /// When the last authorised `/metrics/cadvisor` request arrived.
    last_scrape: Mutex<Option<Instant>>,
    rejected: AtomicU64,
    /// The body [`Mode::RawCadvisor`] serves.
    raw: RwLock<Arc<String>>,
}

/// A kubelet-like HTTPS endpoint on `127.0.0.1:<random port>`; stops when dropped.
pub struct FixtureKubelet {
    addr: SocketAddr,
    shared: Arc<Shared>,
    handle: axum_server::Handle,
}

impl FixtureKubelet {
    /// Generates a self-signed certificate and starts serving `pods`.
    pub async fn start(opts: KubeletOptions, pods: Vec<FixturePod>) -> Result<Self> {
        Self::start_with(opts, pods, String::new()).await
    }

    /// Serves `body` as `/metrics/cadvisor`, byte for byte ([`Mode::RawCadvisor`]; `opts.mode` is
    /// overridden). For a real capture, drop its sample timestamps first
    /// ([`e2e::relabel::strip_timestamps`]): Prometheus refuses samples that old.
    pub async fn start_raw(mut opts: KubeletOptions, body: String) -> Result<Self> {
        opts.mode = Mode::RawCadvisor;
        Self::start_with(opts, Vec::new(), body).await
    }

    /// Replaces the body a [`Mode::RawCadvisor`] kubelet serves from its next scrape on.
    pub fn set_raw_body(&self, body: String) {
        *self.shared.raw.write().unwrap() = Arc::new(body);
    }

    async fn start_with(opts: KubeletOptions, pods: Vec<FixturePod>, raw: String) -> Result<Self> {
        install_crypto_provider();
        let bind = opts
            .bind
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if !bind.ip().is_unspecified() && bind.ip().to_string() != "127.0.0.1" {
            sans.push(bind.ip().to_string());
        }
        let cert = rcgen::generate_simple_self_signed(sans)
            .context("generating the fixture kubelet's self-signed certificate")?;
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            cert.cert.pem().into_bytes(),
            cert.signing_key.serialize_pem().into_bytes(),
        )
        .await
        .context("loading the fixture kubelet's certificate into rustls")?;
        let listener = TcpListener::bind(bind)
            .with_context(|| format!("binding the fixture kubelet to {bind}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let series = Arc::new(build_series(&opts, &pods));
        let shared = Arc::new(Shared {
            opts,
            started: Instant::now(),
            pods: RwLock::new((pods, series)),
            cadvisor_scrapes: AtomicU64::new(0),
            last_scrape: Mutex::new(None),
            rejected: AtomicU64::new(0),
            raw: RwLock::new(Arc::new(raw)),
        });
        let app = Router::new()
            .route("/metrics/cadvisor", get(cadvisor))
            .route("/metrics", get(metrics))
            .with_state(shared.clone());
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls).handle(handle.clone());
        tokio::spawn(async move {
            if let Err(err) = server.serve(app.into_make_service()).await {
                eprintln!("fixture kubelet stopped: {err}");
            }
        });
        Ok(FixtureKubelet {
            addr,
            shared,
            handle,
        })
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn node(&self) -> &str {
        &self.shared.opts.node
    }

    pub fn options(&self) -> &KubeletOptions {
        &self.shared.opts
    }

    /// Replaces every pod.
    pub fn set_pods(&self, pods: Vec<FixturePod>) {
        let series = Arc::new(build_series(&self.shared.opts, &pods));
        *self.shared.pods.write().unwrap() = (pods, series);
    }

    pub fn pods(&self) -> Vec<FixturePod> {
        self.shared.pods.read().unwrap().0.clone()
    }

    pub fn add_pod(&self, pod: FixturePod) {
        let mut pods = self.pods();
        pods.push(pod);
        self.set_pods(pods);
    }

    /// Stops serving a pod; false if it was not served.
    pub fn remove_pod(&self, namespace: &str, name: &str) -> bool {
        let mut pods = self.pods();
        let before = pods.len();
        pods.retain(|p| !(p.namespace == namespace && p.name == name));
        let removed = pods.len() != before;
        self.set_pods(pods);
        removed
    }

    /// Stops serving one container of a pod (the pod's other rows stay); false if not served.
    pub fn remove_container(&self, namespace: &str, pod: &str, container: &str) -> bool {
        let mut pods = self.pods();
        let mut removed = false;
        for p in pods
            .iter_mut()
            .filter(|p| p.namespace == namespace && p.name == pod)
        {
            let before = p.containers.len();
            p.containers.retain(|c| c != container);
            removed |= p.containers.len() != before;
        }
        self.set_pods(pods);
        removed
    }

    /// Stops serving one container's `container_memory_working_set_bytes` rows (its CPU rows
    /// stay); false if the container is not served.
    pub fn remove_memory_rows(&self, namespace: &str, pod: &str, container: &str) -> bool {
        let mut pods = self.pods();
        let mut found = false;
        for p in pods
            .iter_mut()
            .filter(|p| p.namespace == namespace && p.name == pod)
        {
            if p.containers.iter().any(|c| c == container) {
                found = true;
                p.without_memory.push(container.to_string());
            }
        }
        self.set_pods(pods);
        found
    }

    /// The served pods as the coverage check's input (every served container running).
    pub fn running_pods(&self) -> Vec<RunningPod> {
        self.pods().iter().map(|p| p.running(self.node())).collect()
    }

    /// `/metrics/cadvisor` responses served with 200 so far.
    pub fn cadvisor_scrapes(&self) -> u64 {
        self.shared.cadvisor_scrapes.load(Ordering::Relaxed)
    }

    /// When the last authorised `/metrics/cadvisor` request arrived: Prometheus scrapes each
    /// target on a fixed period, so the benchmark can tell when the next one is due.
    pub fn last_cadvisor_scrape(&self) -> Option<Instant> {
        *self.shared.last_scrape.lock().unwrap()
    }

    /// Requests answered 401 or 403 so far.
    pub fn rejected_requests(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// The `/metrics/cadvisor` body as it would be served now.
    pub fn render_cadvisor(&self) -> String {
        if self.shared.opts.mode == Mode::RawCadvisor {
            return self.shared.raw.read().unwrap().as_str().to_string();
        }
        let series = self.shared.pods.read().unwrap().1.clone();
        render(&series, self.shared.started.elapsed())
    }

    /// Waits until Prometheus has scraped `/metrics/cadvisor` `n` more times.
    pub async fn wait_scrapes(&self, n: u64, timeout: Duration) -> Result<()> {
        let target = self.cadvisor_scrapes() + n;
        let deadline = Instant::now() + timeout;
        while self.cadvisor_scrapes() < target {
            if Instant::now() > deadline {
                bail!(
                    "fixture kubelet {}: {} scrapes in {timeout:?}, expected {n}",
                    self.addr,
                    self.cadvisor_scrapes()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for FixtureKubelet {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// 401 without or with a wrong token, 403 for the forbidden token, None when authorised.
fn authorise(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let reject = |status: StatusCode, body: &'static str| {
        shared.rejected.fetch_add(1, Ordering::Relaxed);
        Some((status, body).into_response())
    };
    if let Some(auth) = &shared.opts.authorizer {
        return match (auth.0)(given) {
            AuthDecision::Allow => None,
            AuthDecision::Unauthorized => reject(StatusCode::UNAUTHORIZED, "Unauthorized"),
            AuthDecision::Forbidden(body) => {
                shared.rejected.fetch_add(1, Ordering::Relaxed);
                Some((StatusCode::FORBIDDEN, body).into_response())
            }
        };
    }
    match given {
        Some(t) if t == shared.opts.token => None,
        Some(t) if shared.opts.forbidden_token.as_deref() == Some(t) => reject(
            StatusCode::FORBIDDEN,
            "Forbidden (user=system:serviceaccount:monitoring:prometheus-k8s, verb=get, resource=nodes, subresource=metrics)",
        ),
        _ => reject(StatusCode::UNAUTHORIZED, "Unauthorized"),
    }
}

fn text(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn cadvisor(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if shared.opts.mode == Mode::NodeExporter {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    }
    if let Some(rejection) = authorise(&shared, &headers) {
        return rejection;
    }
    *shared.last_scrape.lock().unwrap() = Some(Instant::now());
    let body = if shared.opts.mode == Mode::RawCadvisor {
        shared.raw.read().unwrap().as_str().to_string()
    } else {
        let series = shared.pods.read().unwrap().1.clone();
        render(&series, shared.started.elapsed())
    };
    shared.cadvisor_scrapes.fetch_add(1, Ordering::Relaxed);
    text(body)
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let secs = shared.started.elapsed().as_secs_f64();
    if shared.opts.mode == Mode::NodeExporter {
        let mut out = String::from("# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n# TYPE node_cpu_seconds_total counter\n");
        for cpu in 0..2 {
            for (mode, rate) in [("idle", 0.8), ("system", 0.05), ("user", 0.15)] {
                let _ = writeln!(
                    out,
                    "node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{mode}\"}} {}",
                    1000.0 + secs * rate
                );
            }
        }
        out.push_str(
            "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.42\n",
        );
        out.push_str("# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.\n# TYPE node_memory_MemAvailable_bytes gauge\nnode_memory_MemAvailable_bytes 4.2e+09\n");
        return text(out);
    }
    if let Some(rejection) = authorise(&shared, &headers) {
        return rejection;
    }
    let pods = shared.pods.read().unwrap().0.len();
    let containers: usize = shared
        .pods
        .read()
        .unwrap()
        .0
        .iter()
        .map(|p| p.containers.len())
        .sum();
    let out = format!(
        "# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox\n\
         # TYPE kubelet_running_pods gauge\nkubelet_running_pods {pods}\n\
         # HELP kubelet_running_containers [ALPHA] Number of containers currently running\n\
         # TYPE kubelet_running_containers gauge\nkubelet_running_containers{{container_state=\"running\"}} {containers}\n\
         # HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
         # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}\n\
         # HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value labeled by major, minor, git version.\n\
         # TYPE kubernetes_build_info gauge\nkubernetes_build_info{{git_version=\"v1.21.1\",major=\"1\",minor=\"21\"}} 1\n",
        10.0 + secs * 0.02
    );
    text(out)
}

fn hash_of(parts: &[&str], salt: u64) -> u64 {
    let mut h = DefaultHasher::new();
    salt.hash(&mut h);
    parts.hash(&mut h);
    h.finish()
}

/// 64 hex characters, stable per input (container and sandbox ids).
fn hex64(parts: &[&str]) -> String {
    (0..4)
        .map(|i| format!("{:016x}", hash_of(parts, i)))
        .collect()
}

fn uid(parts: &[&str]) -> String {
    let h = format!("{:016x}{:016x}", hash_of(parts, 7), hash_of(parts, 8));
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Pre-renders one row of `family` with `labels` (already sorted).
fn push_row(out: &mut Vec<Series>, family: Family, labels: &[(&str, &str)], base: f64, rate: f64) {
    let mut prefix = String::from(family.name());
    prefix.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            prefix.push(',');
        }
        let _ = write!(
            prefix,
            "{k}=\"{}\"",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        );
    }
    prefix.push_str("} ");
    let jitter_ms = out.len() as u64 * 37 % 2000;
    out.push(Series {
        family,
        prefix,
        base,
        rate,
        jitter_ms,
    });
}

fn build_series(opts: &KubeletOptions, pods: &[FixturePod]) -> Vec<Series> {
    let mut out = Vec::with_capacity(pods.len() * 8 + 4);
    // One row per family for the same cgroup; `memory` is the working set in bytes, a gauge
    // (flat here), or None when the pod leaves that container's memory rows out.
    let mut push = |labels: &[(&str, &str)], base: f64, rate: f64, memory: Option<f64>| {
        push_row(&mut out, Family::Cpu, labels, base, rate);
        if let Some(bytes) = memory {
            let without_cpu: Vec<_> = labels
                .iter()
                .copied()
                .filter(|(k, _)| *k != "cpu")
                .collect();
            push_row(&mut out, Family::Memory, &without_cpu, bytes, 0.0);
        }
    };
    // Machine-level cgroups: no pod, no container (Prometheus drops the empty labels).
    for (id, bytes) in [("/", 1.4e9), ("/kubepods", 7.2e8)] {
        push(
            &row(opts.labels, "", "", id, "", "", ""),
            50_000.0,
            1.5,
            Some(bytes),
        );
    }
    for pod in pods {
        let uid = uid(&[&pod.namespace, &pod.name]);
        let pod_cgroup = format!("/kubepods/besteffort/pod{uid}");
        // Pod-level cgroup row: container="", image="", name="".
        push(
            &row(
                opts.labels,
                &pod.namespace,
                &pod.name,
                &pod_cgroup,
                "",
                "",
                "",
            ),
            12.5,
            0.05,
            Some(1.2e7),
        );
        let sandbox = hex64(&[&pod.namespace, &pod.name, "sandbox"]);
        let pause_image = "k8s.gcr.io/pause:3.5";
        match opts.pause {
            PauseStyle::Containerd => {
                let id = format!("{pod_cgroup}/{sandbox}");
                push(
                    &row(
                        opts.labels,
                        &pod.namespace,
                        &pod.name,
                        &id,
                        "",
                        pause_image,
                        &sandbox,
                    ),
                    0.03,
                    0.0001,
                    Some(172_032.0),
                );
            }
            PauseStyle::Docker => {
                let id = format!("{pod_cgroup}/{sandbox}");
                let name = format!("k8s_POD_{}_{}_{uid}_0", pod.name, pod.namespace);
                push(
                    &row(
                        opts.labels,
                        &pod.namespace,
                        &pod.name,
                        &id,
                        "POD",
                        pause_image,
                        &name,
                    ),
                    0.03,
                    0.0001,
                    Some(172_032.0),
                );
            }
            PauseStyle::None => {}
        }
        for (i, container) in pod.containers.iter().enumerate() {
            let cid = hex64(&[&pod.namespace, &pod.name, container]);
            let id = format!("{pod_cgroup}/{cid}");
            let image = format!("docker.io/library/{container}:1.0");
            let name = match opts.pause {
                PauseStyle::Docker => {
                    format!("k8s_{container}_{}_{}_{uid}_0", pod.name, pod.namespace)
                }
                _ => cid.clone(),
            };
            push(
                &row(
                    opts.labels,
                    &pod.namespace,
                    &pod.name,
                    &id,
                    container,
                    &image,
                    &name,
                ),
                5.0 + i as f64,
                0.01 + i as f64 * 0.01,
                (!pod.without_memory.contains(container)).then_some(1.0e7 + i as f64 * 1.0e6),
            );
        }
    }
    out
}

/// The label pairs of one row, sorted by name as the kubelet writes them.
fn row<'a>(
    style: LabelStyle,
    namespace: &'a str,
    pod: &'a str,
    id: &'a str,
    container: &'a str,
    image: &'a str,
    name: &'a str,
) -> Vec<(&'static str, &'a str)> {
    let mut labels = vec![
        ("cpu", "total"),
        ("id", id),
        ("image", image),
        ("name", name),
        ("namespace", namespace),
    ];
    if matches!(style, LabelStyle::Modern | LabelStyle::Both) {
        labels.push(("container", container));
        labels.push(("pod", pod));
    }
    if matches!(style, LabelStyle::Legacy | LabelStyle::Both) {
        labels.push(("container_name", container));
        labels.push(("pod_name", pod));
    }
    labels.sort_by_key(|(k, _)| *k);
    labels
}

fn render(series: &[Series], elapsed: Duration) -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let secs = elapsed.as_secs_f64();
    let mut out =
        String::with_capacity(series.iter().map(|s| s.prefix.len() + 40).sum::<usize>() + 512);
    out.push_str("# HELP cadvisor_version_info A metric with a constant '1' value labeled by kernel version, OS version, docker version, cadvisor version & cadvisor revision.\n");
    out.push_str("# TYPE cadvisor_version_info gauge\n");
    out.push_str("cadvisor_version_info{cadvisorRevision=\"\",cadvisorVersion=\"\",dockerVersion=\"\",kernelVersion=\"5.10.0\",osVersion=\"Ubuntu 21.04\"} 1\n");
    out.push_str(
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n",
    );
    out.push_str("# TYPE container_cpu_usage_seconds_total counter\n");
    // Families in name order, as cAdvisor's collector writes them (the real captures).
    for family in [Family::Cpu, Family::Memory] {
        if family == Family::Memory {
            out.push_str(
                "# HELP container_memory_working_set_bytes Current working set in bytes.\n",
            );
            out.push_str("# TYPE container_memory_working_set_bytes gauge\n");
        }
        for s in series.iter().filter(|s| s.family == family) {
            out.push_str(&s.prefix);
            // Explicit millisecond timestamps, slightly behind "now" like cAdvisor's housekeeping.
            let _ = writeln!(out, "{} {}", s.base + s.rate * secs, now_ms - s.jitter_ms);
        }
    }
    out
}
