//! What the API, the controllers and the data path share: [`Cluster`] (the store, the
//! registry, faults, recorded requests) and the options a twin starts with ([`TwinOptions`],
//! [`Timing`]). It sits below all three, so none of them imports the wiring in `mod.rs`.

use crate::twin::profile::Profile;
use crate::twin::storage::defaults::default_object;
use crate::twin::storage::registry::{self, crd_types, Registry, ResourceType};
use crate::twin::storage::store::{key, Store, StoreError};
use axum::http::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

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
    /// by a factor 0.5: 60–90 s; the worst case. TWIN-FACTS §9
    /// (kubernetes/kubernetes pkg/kubelet/pod_workers.go@v1.21.1,
    /// kubernetes/kubernetes pkg/kubelet/apis/config/v1beta1/defaults.go@v1.21.1)
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

    pub(crate) fn take(&self, method: &Method, path: &str) -> Option<u16> {
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

/// Pods (`<namespace>/<name>`) the API server cannot reach although their Endpoints still list
/// them as ready: the container stopped listening before its readiness probe failed, or the
/// network drops the API server's connections. The proxy answers as for a refused connection
/// (per profile, TWIN-FACTS §2e), without dialling.
#[derive(Default)]
pub struct Unreachable(Mutex<HashSet<String>>);

impl Unreachable {
    /// From now on the proxy cannot reach pod `namespace/name`.
    pub fn cut(&self, namespace: &str, name: &str) {
        self.0.lock().unwrap().insert(format!("{namespace}/{name}"));
    }

    /// The proxy reaches pod `namespace/name` again.
    pub fn restore(&self, namespace: &str, name: &str) {
        self.0
            .lock()
            .unwrap()
            .remove(&format!("{namespace}/{name}"));
    }

    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .contains(&format!("{namespace}/{name}"))
    }
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
    pub unreachable: Unreachable,
    pub http: reqwest::Client,
    /// Every request the API answered (tests assert what the harness sent).
    pub requests: Mutex<Vec<Recorded>>,
    /// Docker container id per pod (`<ns>/<name>`) the data path runs, for `pods/log`.
    pub pod_containers: Mutex<std::collections::HashMap<String, String>>,
    pub(crate) addr: Mutex<Option<SocketAddr>>,
    seed: u64,
    counter: std::sync::atomic::AtomicU64,
}

impl Cluster {
    pub(crate) fn new(opts: TwinOptions) -> Self {
        let seed = random_u64();
        Cluster {
            profile: opts.profile,
            store: Store::new(seed),
            registry: Registry::default(),
            admin_token: format!("twin-admin-{seed:016x}"),
            faults: Faults::default(),
            unreachable: Unreachable::default(),
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

    /// The API server's kubelet-client credential. A real API server presents the client certificate
    /// `--kubelet-client-certificate` (kubeadm: CN `kube-apiserver-kubelet-client`, O `system:masters`),
    /// which the kubelet's webhook authorizer allows everything; the twin's kubelets take a bearer
    /// token, so this token stands in for that certificate.
    pub fn apiserver_kubelet_credential(&self) -> String {
        format!("{}-kubelet-client", self.admin_token)
    }

    /// Whether `token` is [`Cluster::apiserver_kubelet_credential`] (the kubelet allows it: `system:masters`).
    pub fn is_apiserver_credential(&self, token: &str) -> bool {
        token == self.apiserver_kubelet_credential()
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

    /// What a CRD write also does: (re)register its types, not yet serving (§3).
    fn on_crd_written(&self, crd: &Value) {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        self.registry.put_crd(name, crd_types(crd));
    }

    /// Creates with defaulting and the CRD hook (the naming controller's inline run on an
    /// API create is the API's, `apiserver::rest`).
    pub fn create(&self, rt: &ResourceType, ns: &str, mut obj: Value) -> Result<Value, StoreError> {
        obj["apiVersion"] = json!(rt.group_version());
        obj["kind"] = json!(rt.kind);
        default_object(&mut obj, self.profile);
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
            self.on_crd_written(&out);
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
            default_object(&mut obj, self.profile);
        }
        let ns = if rt.namespaced { ns } else { "" };
        let out = self
            .store
            .update(&key(rt), ns, obj, check_rv, status_only)?;
        if rt.kind == "CustomResourceDefinition" && !status_only {
            self.on_crd_written(&out);
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
