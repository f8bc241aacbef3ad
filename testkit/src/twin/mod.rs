//! The cluster twin: one stateful stand-in Kubernetes API server (HTTPS, bearer token) with
//! version profiles, controllers standing in for what cannot run here, and a real data path
//! (fixture kubelets per Node, a real Prometheus per Prometheus CR). A stand-in for developing
//! the harness, never a proof about a real cluster. Every modelled behaviour cites its source
//! (`TWIN-FACTS.md` §, upstream files).

pub mod api;
pub mod apply;
pub mod controllers;
pub mod datapath;
pub mod discovery;
pub mod node_proxy;
pub mod openapi;
pub mod patch;
pub mod pod_proxy;
pub mod profile;
pub mod proxy;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod status;
pub mod store;
pub mod validation;
pub mod watch;
pub mod wire;

pub use profile::Profile;

use anyhow::{Context, Result};
use axum::http::Method;
use base64::Engine;
use registry::{Registry, ResourceType};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{key, Store, StoreError};

/// Delays and intervals of the twin's stand-in controllers; small by default so a test suite
/// runs in minutes. Each names what it models.
#[derive(Debug, Clone)]
pub struct Timing {
    /// CRD created → NamesAccepted (naming controller, TWIN-FACTS §3); zero (the default, as
    /// upstream's informer-driven controller) writes it as part of the create.
    pub crd_names_accepted: Duration,
    /// NamesAccepted → Established (establishing controller, §3; discovery follows).
    pub crd_established: Duration,
    /// Node created → Ready (kubelet registering, §6).
    pub node_ready: Duration,
    /// Pod scheduled → Running and ready (image pull, container start).
    pub pod_start: Duration,
    /// Job pod Running → Succeeded.
    pub job_run: Duration,
    /// Operator's kubelet Service/Endpoints resync (3 min upstream, FACTS.md).
    pub kubelet_resync: Duration,
    /// Config Secret changed → Prometheus reloaded (kubelet Secret sync + config-reloader, §9).
    pub config_reload: Duration,
    /// Prometheus `scrape_interval` when the CR sets none (operator default 30s).
    pub default_scrape_interval: Duration,
    /// http_sd `refresh_interval` (Kubernetes SD is watch-based, so short).
    pub sd_refresh: Duration,
    /// How often the controllers reconcile.
    pub tick: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            crd_names_accepted: Duration::ZERO,
            crd_established: Duration::from_millis(800),
            node_ready: Duration::from_millis(500),
            pod_start: Duration::from_millis(700),
            job_run: Duration::from_secs(2),
            kubelet_resync: Duration::from_secs(5),
            config_reload: Duration::from_secs(3),
            default_scrape_interval: Duration::from_secs(30),
            sd_refresh: Duration::from_secs(1),
            tick: Duration::from_millis(100),
        }
    }
}

/// Upstream's delays the harness has to outwait, unscaled (see [`Timing::upstream`]).
pub mod upstream {
    use std::time::Duration;

    /// The operator rewrites the kubelet Service and Endpoints at start, then on a 3-minute
    /// ticker (it does not watch nodes).
    /// prometheus-operator/prometheus-operator pkg/prometheus/operator.go@v0.48.1 (reconcileNodeEndpoints)
    pub const KUBELET_RESYNC: Duration = Duration::from_secs(180);
    /// A changed Secret reaches a pod's volume within the kubelet's sync period (1 min) jittered
    /// by a factor 0.5: 60–90 s; the worst case. TWIN-FACTS §9 (kubernetes/kubernetes
    /// pkg/kubelet/pod_workers.go, pkg/kubelet/apis/config/v1beta1/defaults.go)
    pub const SECRET_PROPAGATION: Duration = Duration::from_secs(90);
    /// The config reloader reloads Prometheus `--delay-interval` (1 s) after the file changed.
    /// prometheus-operator/prometheus-operator cmd/prometheus-config-reloader/main.go@v0.48.1
    pub const RELOADER_DELAY: Duration = Duration::from_secs(1);
}

impl Timing {
    /// Upstream's delays, each multiplied by `factor`, the one scale (1.0 is upstream; tests
    /// use a fraction so a run takes seconds, and scale the harness's `--timeout` by the same
    /// factor): the kubelet Endpoints resync ([`upstream::KUBELET_RESYNC`]) and a ServiceMonitor
    /// change reaching Prometheus (the Secret's propagation, worst case, then the reloader's
    /// delay). Steps upstream does at once (CRD conditions, TWIN-FACTS §3) or that are no
    /// upstream constant (pod start, image pulls) keep [`Timing::default`]'s values.
    pub fn upstream(factor: f64) -> Timing {
        Timing {
            kubelet_resync: upstream::KUBELET_RESYNC.mul_f64(factor),
            config_reload: (upstream::SECRET_PROPAGATION + upstream::RELOADER_DELAY)
                .mul_f64(factor),
            ..Timing::default()
        }
    }
}

/// How a twin starts.
#[derive(Debug, Clone)]
pub struct TwinOptions {
    pub profile: Profile,
    /// Cluster name (node names `<name>-control-plane`, `<name>-worker`, `<name>-worker2`, …).
    pub name: String,
    /// Number of nodes (one control plane, the rest workers).
    pub nodes: usize,
    pub timing: Timing,
    /// Run the data path: fixture kubelets per Node and a real Prometheus per Prometheus CR.
    pub datapath: bool,
}

impl TwinOptions {
    pub fn new(profile: Profile) -> Self {
        TwinOptions {
            profile,
            name: "twin".into(),
            nodes: 3,
            timing: Timing::default(),
            datapath: true,
        }
    }
}

/// One injected failure: the next `count` requests whose method and path match answer `code`.
#[derive(Debug, Clone)]
struct Fault {
    method: Option<Method>,
    path_contains: String,
    code: u16,
    count: usize,
}

/// Fault injection: transient API errors for the waits' tolerance tests.
#[derive(Default)]
pub struct Faults(Mutex<Vec<Fault>>);

impl Faults {
    /// The next `count` requests (any method when `method` is None) whose path contains
    /// `path_contains` answer `code` (500 InternalError or 503 ServiceUnavailable).
    pub fn inject(&self, method: Option<Method>, path_contains: &str, code: u16, count: usize) {
        self.0.lock().unwrap().push(Fault {
            method,
            path_contains: path_contains.into(),
            code,
            count,
        });
    }

    /// How many injected failures are still pending.
    pub fn pending(&self) -> usize {
        self.0.lock().unwrap().iter().map(|f| f.count).sum()
    }

    fn take(&self, method: &Method, path: &str) -> Option<u16> {
        let mut faults = self.0.lock().unwrap();
        let f = faults.iter_mut().find(|f| {
            f.count > 0
                && f.method.as_ref().is_none_or(|m| m == method)
                && path.contains(&f.path_contains)
        })?;
        f.count -= 1;
        Some(f.code)
    }
}

/// One request as the API received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path_and_query: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: String,
}

/// Everything the API, the controllers and the data path share.
pub struct Cluster {
    pub profile: Profile,
    pub opts: TwinOptions,
    pub store: Store,
    pub registry: Registry,
    pub admin_token: String,
    pub faults: Faults,
    /// Pods the service proxy cannot reach although their Endpoints list them (a fault).
    pub unreachable: proxy::Unreachable,
    pub http: reqwest::Client,
    /// Every request the API answered (tests assert what the harness sent).
    pub requests: Mutex<Vec<Recorded>>,
    /// Docker container id per pod (`<ns>/<name>`) the data path runs, for `pods/log`.
    pub pod_containers: Mutex<std::collections::HashMap<String, String>>,
    addr: Mutex<Option<SocketAddr>>,
    seed: u64,
    counter: std::sync::atomic::AtomicU64,
}

impl Cluster {
    fn new(opts: TwinOptions) -> Self {
        let seed = random_u64();
        Cluster {
            profile: opts.profile,
            store: Store::new(seed),
            registry: Registry::default(),
            admin_token: format!("twin-admin-{seed:016x}"),
            faults: Faults::default(),
            unreachable: proxy::Unreachable::default(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("building the proxy's HTTP client"),
            pod_containers: Mutex::new(Default::default()),
            requests: Mutex::new(Vec::new()),
            addr: Mutex::new(None),
            seed,
            counter: Default::default(),
            opts,
        }
    }

    pub fn server_address(&self) -> String {
        self.addr
            .lock()
            .unwrap()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    /// Five lowercase alphanumerics, like `generateName` and ReplicaSet pod suffixes.
    pub fn random_suffix(&self) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut x = self.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ALPHA[((x >> 33) % ALPHA.len() as u64) as usize] as char
            })
            .collect()
    }

    /// A built-in or CRD type by group and kind (panics on a kind the twin does not know:
    /// a bug in the twin).
    pub fn rt(&self, group: &str, kind: &str) -> ResourceType {
        self.registry
            .by_kind(group, kind)
            .unwrap_or_else(|| panic!("the twin does not know kind {group}/{kind}"))
    }

    /// Every object of a kind (all namespaces).
    pub fn objects(&self, group: &str, kind: &str) -> Vec<Value> {
        match self.registry.by_kind(group, kind) {
            Some(rt) => self.store.list(&key(&rt), None).0,
            None => Vec::new(),
        }
    }

    pub fn get(&self, group: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let rt = self.registry.by_kind(group, kind)?;
        self.store.get(&key(&rt), ns, name)
    }

    /// Creates with defaulting and the CRD hook.
    pub fn create(&self, rt: &ResourceType, ns: &str, mut obj: Value) -> Result<Value, StoreError> {
        obj["apiVersion"] = json!(rt.group_version());
        obj["kind"] = json!(rt.kind);
        apply::default_object(&mut obj, self.profile);
        if rt.kind == "CustomResourceDefinition" {
            // Fresh CRD status (§3): storedVersions, no conditions yet, empty accepted names.
            let storage = obj["spec"]["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["storage"] == true)
                .and_then(|v| v["name"].as_str())
                .unwrap_or("v1")
                .to_string();
            obj["status"] = json!({"storedVersions": [storage], "conditions": null,
                                   "acceptedNames": {"plural": "", "kind": ""}});
        }
        let ns = if rt.namespaced { ns } else { "" };
        let out = self.store.create(&key(rt), ns, obj)?;
        if rt.kind == "CustomResourceDefinition" {
            api::on_crd_written(self, &out);
            if self.opts.timing.crd_names_accepted.is_zero() {
                controllers::crds::accept_names(self, &out);
            }
        }
        Ok(out)
    }

    /// Replaces with defaulting (see [`Store::update`] for `check_rv`/`status_only`).
    pub fn update(
        &self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        check_rv: bool,
        status_only: bool,
    ) -> Result<Value, StoreError> {
        obj["apiVersion"] = json!(rt.group_version());
        obj["kind"] = json!(rt.kind);
        if !status_only {
            apply::default_object(&mut obj, self.profile);
        }
        let ns = if rt.namespaced { ns } else { "" };
        let out = self
            .store
            .update(&key(rt), ns, obj, check_rv, status_only)?;
        if rt.kind == "CustomResourceDefinition" && !status_only {
            api::on_crd_written(self, &out);
        }
        Ok(out)
    }

    /// Create or replace (controllers' writes; `status` is written too).
    pub fn put(&self, group: &str, kind: &str, obj: Value) -> Value {
        let rt = self.rt(group, kind);
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let status = obj.get("status").cloned();
        let out = match self.store.get(&key(&rt), &ns, &name) {
            None => self.create(&rt, &ns, obj),
            Some(_) => self.update(&rt, &ns, obj, false, false),
        }
        .expect("controller write");
        match status {
            Some(s) if out.get("status") != Some(&s) => self.put_status(group, kind, &ns, &name, s),
            _ => out,
        }
    }

    /// Writes an object's status (the `/status` subresource); a no-op when it is gone.
    pub fn put_status(
        &self,
        group: &str,
        kind: &str,
        ns: &str,
        name: &str,
        status: Value,
    ) -> Value {
        let rt = self.rt(group, kind);
        let Some(mut obj) = self.store.get(&key(&rt), ns, name) else {
            return Value::Null;
        };
        obj["status"] = status;
        self.update(&rt, ns, obj, false, true)
            .unwrap_or(Value::Null)
    }

    /// Deletes an object; a Namespace takes its objects with it and a CRD its custom
    /// resources (no Terminating phase modelled).
    pub fn delete(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, StoreError> {
        let ns = if rt.namespaced { ns } else { "" };
        let out = self.store.delete(&key(rt), ns, name)?;
        match rt.kind.as_str() {
            "Namespace" => {
                for t in registry::builtins().into_iter().filter(|t| t.namespaced) {
                    for o in self.store.list(&key(&t), Some(name)).0 {
                        let n = o["metadata"]["name"].as_str().unwrap_or_default();
                        let _ = self.store.delete(&key(&t), name, n);
                    }
                }
            }
            "CustomResourceDefinition" => {
                for t in registry::crd_types(&out) {
                    for o in self.store.list(&key(&t), None).0 {
                        let n = o["metadata"]["name"].as_str().unwrap_or_default();
                        let ons = o["metadata"]["namespace"].as_str().unwrap_or_default();
                        let _ = self.store.delete(&key(&t), ons, n);
                    }
                }
                self.registry.remove_crd(name);
            }
            _ => {}
        }
        Ok(out)
    }

    pub fn delete_kind(&self, group: &str, kind: &str, ns: &str, name: &str) -> bool {
        let rt = self.rt(group, kind);
        self.delete(&rt, ns, name).is_ok()
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A random loopback address `127.x.y.z` (x ≥ 1), so parallel twins do not collide.
pub fn random_loopback() -> Ipv4Addr {
    let r = random_u64();
    Ipv4Addr::new(
        127,
        1 + (r % 250) as u8,
        (r >> 8) as u8,
        2 + ((r >> 16) % 250) as u8,
    )
}

/// A running twin; stops (and removes its containers) when dropped.
pub struct Twin {
    cluster: Arc<Cluster>,
    addr: SocketAddr,
    ca_pem: String,
    handle: axum_server::Handle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    dir: tempfile::TempDir,
    datapath: Option<datapath::DataPath>,
}

impl Twin {
    /// Starts the API server, the controllers and (if enabled) the data path, with the
    /// namespaces a fresh cluster has and its nodes.
    ///
    /// # Errors
    /// When the certificates cannot be generated or the listener cannot bind.
    pub async fn start(opts: TwinOptions) -> Result<Twin> {
        crate::install_crypto_provider();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "twin-ca");
        let ca_key = rcgen::KeyPair::generate()?;
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)
            .context("generating the twin's CA")?;
        let leaf_params = rcgen::CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "kubernetes".to_string(),
        ])?;
        let leaf_key = rcgen::KeyPair::generate()?;
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .context("signing the twin's serving certificate")?;
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            leaf.pem().into_bytes(),
            leaf_key.serialize_pem().into_bytes(),
        )
        .await
        .context("loading the twin's certificate into rustls")?;
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding the twin API to 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let cluster = Arc::new(Cluster::new(opts.clone()));
        *cluster.addr.lock().unwrap() = Some(addr);
        controllers::bootstrap(&cluster);
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls).handle(handle.clone());
        let app = api::router(cluster.clone());
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = server.serve(app.into_make_service()).await {
                eprintln!("twin API server stopped: {e}");
            }
        })];
        let datapath = if opts.datapath {
            Some(datapath::DataPath::start(cluster.clone()).await?)
        } else {
            None
        };
        tasks.push(controllers::spawn(cluster.clone(), datapath.clone()));
        let dir = tempfile::tempdir().context("creating the twin's temp dir")?;
        let twin = Twin {
            cluster,
            addr,
            ca_pem: ca.pem(),
            handle,
            tasks,
            dir,
            datapath,
        };
        twin.write_kubeconfig(&twin.kubeconfig_path())?;
        Ok(twin)
    }

    /// Shared state, for tests that break the cluster on purpose or inject faults.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A kubeconfig in the twin's temp dir (removed with the twin).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The kubeconfig text: CA data, server URL, bearer token.
    pub fn kubeconfig(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let name = &self.cluster.opts.name;
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n\
             users:\n- name: {name}-admin\n  user:\n    token: {}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}-admin\n\
             current-context: {name}\npreferences: {{}}\n",
            self.url(),
            self.cluster.admin_token
        )
    }

    /// Writes the kubeconfig to `path` (mode 0600).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, self.kubeconfig())
            .with_context(|| format!("writing the twin's kubeconfig to {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(())
    }

    pub fn datapath(&self) -> Option<&datapath::DataPath> {
        self.datapath.as_ref()
    }

    /// Stops serving and removes the containers now (drop does the same).
    pub async fn shutdown(mut self) {
        if let Some(dp) = self.datapath.take() {
            dp.shutdown().await;
        }
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        self.handle.shutdown();
        for t in &self.tasks {
            t.abort();
        }
        if let Some(dp) = self.datapath.take() {
            dp.remove_containers_blocking();
        }
    }
}
