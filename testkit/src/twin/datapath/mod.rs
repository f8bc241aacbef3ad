//! The twin's data path: a fixture kubelet per Node on `<InternalIP>:10250` serving
//! `/metrics/cadvisor` for the Running pods on that node (401/403 decided from the twin's
//! ServiceAccounts and RBAC), a plain-HTTP `http_sd` endpoint emitting the target groups
//! kubernetes_sd (role endpoints) would (TWIN-FACTS §8), and a REAL Prometheus per
//! operator-made Prometheus pod, configured by the project's generator from the ServiceMonitors
//! applied to the twin and reloaded `Timing::config_reload` after they change (§9).
//! Debian's Prometheus 2.42 has no `kubernetes_sd_configs` (FACTS.md), so only the discovery
//! mechanism differs from the cluster: the relabel rules are the operator's.
//!
//! It stands above the controllers: it reads what they made (the operator's config, nodes'
//! IPs, service-account tokens) and answers the pods controller through
//! [`crate::twin::controllers::pods::Runtime`]. `auth` decides what its kubelets allow,
//! `sd` serves the discovered targets; this file runs the containers.

mod auth;
mod sd;

use crate::kubelet::{Authorizer, FixtureKubelet, FixturePod, KubeletOptions};
use crate::prometheus::{prometheus_image, PrometheusContainer};
use crate::twin::cluster::{random_loopback, Cluster};
use crate::twin::controllers::nodes::internal_ip;
use crate::twin::controllers::operator::prometheus_config;
use crate::twin::controllers::pods::{PodRuntime, Runtime};
use crate::twin::controllers::serviceaccounts::token_of;
use anyhow::Result;
use e2e::operator::scrape_config::{Discovery, Shard};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use testcontainers::{ContainerAsync, GenericImage};

enum PromState {
    Starting,
    Running(Box<RunningProm>),
    Failed(String),
}

struct RunningProm {
    container: ContainerAsync<GenericImage>,
    dir: tempfile::TempDir,
    url: String,
    applied: String,
    pending: Option<(String, Instant)>,
}

struct PromSlot {
    ip: String,
    uid: String,
    state: PromState,
}

struct Inner {
    run_id: String,
    sd_addr: SocketAddr,
    sd_handle: axum_server::Handle,
    kubelets: Mutex<HashMap<String, FixtureKubelet>>,
    proms: Mutex<HashMap<String, PromSlot>>,
    reloads: Mutex<Vec<(String, Instant)>>,
}

/// Handle to the data path; clones share it.
#[derive(Clone)]
pub struct DataPath(Arc<Inner>);

impl DataPath {
    /// Starts the http_sd server (kubelets and Prometheus come with Nodes and pods).
    ///
    /// # Errors
    /// When the http_sd listener cannot bind.
    pub async fn start(c: Arc<Cluster>) -> Result<DataPath> {
        let (sd_addr, handle) = sd::serve(&c)?;
        Ok(DataPath(Arc::new(Inner {
            run_id: format!(
                "twin-{}-{:x}",
                std::process::id(),
                random_loopback().to_bits()
            ),
            sd_addr,
            sd_handle: handle,
            kubelets: Mutex::new(HashMap::new()),
            proms: Mutex::new(HashMap::new()),
            reloads: Mutex::new(Vec::new()),
        })))
    }

    /// The `RUN_LABEL` value on this twin's containers.
    pub fn run_id(&self) -> &str {
        &self.0.run_id
    }

    /// Base URL of the http_sd endpoint.
    pub fn sd_url(&self) -> String {
        format!("http://{}/sd", self.0.sd_addr)
    }

    /// `(pod, when)` of every `/-/reload` the twin has POSTed.
    pub fn reloads(&self) -> Vec<(String, Instant)> {
        self.0.reloads.lock().unwrap().clone()
    }

    /// Address of the fixture kubelet of `node`.
    pub fn kubelet_addr(&self, node: &str) -> Option<SocketAddr> {
        self.0.kubelets.lock().unwrap().get(node).map(|k| k.addr())
    }

    /// The config a running Prometheus pod last loaded.
    pub fn loaded_config(&self, pod_key: &str) -> Option<String> {
        match &self.0.proms.lock().unwrap().get(pod_key)?.state {
            PromState::Running(r) => Some(r.applied.clone()),
            _ => None,
        }
    }

    /// Why the Prometheus of a pod (`<ns>/<name>`) did not start, if it did not.
    pub fn prometheus_error(&self, pod_key: &str) -> Option<String> {
        match &self.0.proms.lock().unwrap().get(pod_key)?.state {
            PromState::Failed(e) => Some(e.clone()),
            _ => None,
        }
    }

    fn is_prometheus_pod(pod: &Value) -> bool {
        let l = &pod["metadata"]["labels"];
        l["app.kubernetes.io/managed-by"] == "prometheus-operator" && l["prometheus"].is_string()
    }

    fn owning_prometheus(c: &Cluster, pod: &Value) -> Option<Value> {
        let ns = pod["metadata"]["namespace"].as_str()?;
        let name = pod["metadata"]["labels"]["prometheus"].as_str()?;
        c.get("monitoring.coreos.com", "Prometheus", ns, name)
    }

    fn desired_config(&self, c: &Cluster, prom: &Value, pod_name: &str) -> String {
        let base = self.sd_url();
        let refresh = c.opts.timing.sd_refresh;
        prometheus_config(
            c,
            prom,
            &|s| Discovery::Http {
                url: format!("{base}?namespaces={}", s.namespaces.join(",")),
                refresh_interval: refresh,
            },
            // The config reloader substitutes $(SHARD) and $(POD_NAME) (TWIN-FACTS §9).
            Shard::Number(0),
            pod_name,
        )
    }

    /// IP and readiness of a pod the data path runs (None for other pods): starts a real
    /// Prometheus for an operator-made Prometheus pod on first sight.
    fn start_pod(&self, c: &Arc<Cluster>, pod: &Value) -> Option<PodRuntime> {
        if !Self::is_prometheus_pod(pod) {
            return None;
        }
        let ns = pod["metadata"]["namespace"].as_str()?.to_string();
        let name = pod["metadata"]["name"].as_str()?.to_string();
        let uid = pod["metadata"]["uid"].as_str()?.to_string();
        let key = format!("{ns}/{name}");
        let mut proms = self.0.proms.lock().unwrap();
        if let Some(slot) = proms.get(&key).filter(|s| s.uid == uid) {
            return Some(PodRuntime {
                ip: slot.ip.clone(),
                ready: matches!(slot.state, PromState::Running(_)),
            });
        }
        let prom = Self::owning_prometheus(c, pod)?;
        let ip = random_loopback().to_string();
        proms.insert(
            key.clone(),
            PromSlot {
                ip: ip.clone(),
                uid: uid.clone(),
                state: PromState::Starting,
            },
        );
        drop(proms);
        let config = self.desired_config(c, &prom, &name);
        let sa = pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default");
        let token = c
            .get("", "ServiceAccount", &ns, sa)
            .map(|s| token_of(c, &s))
            .unwrap_or_default();
        let me = self.clone();
        let c2 = c.clone();
        let ip2 = ip.clone();
        tokio::spawn(async move {
            let state = match me.start_prometheus(&ip2, &config, &token).await {
                Ok(r) => {
                    c2.pod_containers
                        .lock()
                        .unwrap()
                        .insert(key.clone(), r.container.id().to_string());
                    PromState::Running(Box::new(r))
                }
                Err(e) => {
                    eprintln!("twin: Prometheus for pod {key} did not start: {e:#}");
                    PromState::Failed(format!("{e:#}"))
                }
            };
            let orphan = {
                let mut proms = me.0.proms.lock().unwrap();
                match proms.get_mut(&key).filter(|s| s.uid == uid) {
                    Some(slot) => {
                        slot.state = state;
                        None
                    }
                    None => Some(state),
                }
            };
            // The pod went away while its Prometheus started: remove it, outside the lock.
            if let Some(PromState::Running(run)) = orphan {
                c2.pod_containers.lock().unwrap().remove(&key);
                remove_prometheus(*run).await;
            }
        });
        Some(PodRuntime { ip, ready: false })
    }

    async fn start_prometheus(&self, ip: &str, config: &str, token: &str) -> Result<RunningProm> {
        let dir = tempfile::tempdir()?;
        let conf = dir.path().join("config_out");
        std::fs::create_dir(&conf)?;
        write_world_readable(&conf, true, None)?;
        write_world_readable(&conf.join("prometheus.env.yaml"), false, Some(config))?;
        let token_file = dir.path().join("token");
        write_world_readable(&token_file, false, Some(token))?;
        // As the operator's StatefulSet runs it: the reloader's output file, reloads by POST.
        let container = PrometheusContainer {
            image: prometheus_image(),
            tier: "twin",
            run_id: self.0.run_id.clone(),
            listen: format!("{ip}:9090"),
            config_dir: conf,
            config_dir_in_container: "/etc/prometheus/config_out",
            config_file: "prometheus.env.yaml",
            token_file,
            extra_args: vec![
                "--web.enable-lifecycle".to_string(),
                "--web.route-prefix=/".to_string(),
            ],
        }
        .start()
        .await?;
        Ok(RunningProm {
            container,
            dir,
            url: format!("http://{ip}:9090"),
            applied: config.to_string(),
            pending: None,
        })
    }

    /// Each tick: kubelets for Nodes (with the node's Running pods), Prometheus containers for
    /// live pods only, config reloads after the modelled delay.
    pub async fn reconcile(&self, c: &Arc<Cluster>) {
        self.reconcile_kubelets(c).await;
        let pods = c.objects("", "Pod");
        let live: HashMap<String, &Value> = pods
            .iter()
            .map(|p| {
                (
                    format!(
                        "{}/{}",
                        p["metadata"]["namespace"].as_str().unwrap_or_default(),
                        p["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                    p,
                )
            })
            .collect();
        let mut reloads = Vec::new();
        let gone: Vec<(String, PromSlot)>;
        {
            let mut proms = self.0.proms.lock().unwrap();
            let dead: Vec<String> = proms
                .iter()
                .filter(|(k, slot)| {
                    !live
                        .get(*k)
                        .is_some_and(|p| p["metadata"]["uid"] == slot.uid.as_str())
                })
                .map(|(k, _)| k.clone())
                .collect();
            gone = dead
                .into_iter()
                .filter_map(|k| proms.remove(&k).map(|slot| (k, slot)))
                .collect();
            for (key, slot) in proms.iter_mut() {
                let PromState::Running(run) = &mut slot.state else {
                    continue;
                };
                let pod = live[key];
                let Some(prom) = Self::owning_prometheus(c, pod) else {
                    continue;
                };
                let want = self.desired_config(
                    c,
                    &prom,
                    pod["metadata"]["name"].as_str().unwrap_or_default(),
                );
                if want == run.applied {
                    run.pending = None;
                    continue;
                }
                match &run.pending {
                    Some((p, since)) if *p == want => {
                        if since.elapsed() >= c.opts.timing.config_reload {
                            let path = run
                                .dir
                                .path()
                                .join("config_out")
                                .join("prometheus.env.yaml");
                            if write_world_readable(&path, false, Some(&want)).is_ok() {
                                run.applied = want;
                                run.pending = None;
                                reloads.push((key.clone(), format!("{}/-/reload", run.url)));
                            }
                        }
                    }
                    _ => run.pending = Some((want, Instant::now())),
                }
            }
        }
        // Containers of deleted pods are removed after the lock is released: dropping a
        // testcontainers handle blocks its worker on Docker (block_in_place + block_on), and
        // doing that while `proms` is held would stall every task waiting for the lock.
        for (key, slot) in gone {
            c.pod_containers.lock().unwrap().remove(&key);
            if let PromState::Running(run) = slot.state {
                remove_prometheus(*run).await;
            }
        }
        for (key, url) in reloads {
            // The config-reloader's POST (TWIN-FACTS §9).
            match c.http.post(&url).send().await {
                Ok(r) if r.status().is_success() => {
                    self.0.reloads.lock().unwrap().push((key, Instant::now()))
                }
                Ok(r) => eprintln!("twin: reload of {key} answered {}", r.status()),
                Err(e) => eprintln!("twin: reload of {key} failed: {e}"),
            }
        }
    }

    async fn reconcile_kubelets(&self, c: &Arc<Cluster>) {
        let nodes = c.objects("", "Node");
        let pods = c.objects("", "Pod");
        for node in &nodes {
            let name = node["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let Some(ip) = internal_ip(node) else {
                continue;
            };
            let served: Vec<FixturePod> = pods
                .iter()
                .filter(|p| {
                    p["spec"]["nodeName"] == name.as_str() && p["status"]["phase"] == "Running"
                })
                .map(|p| {
                    let containers: Vec<&str> = p["status"]["containerStatuses"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|s| s["state"]["running"].is_object())
                        .filter_map(|s| s["name"].as_str())
                        .collect();
                    FixturePod::new(
                        p["metadata"]["namespace"].as_str().unwrap_or_default(),
                        p["metadata"]["name"].as_str().unwrap_or_default(),
                        &containers,
                    )
                })
                .collect();
            let exists = self.0.kubelets.lock().unwrap().contains_key(&name);
            if !exists {
                let weak = Arc::downgrade(c);
                let opts = KubeletOptions {
                    node: name.clone(),
                    bind: Some(SocketAddr::new(ip.parse().unwrap(), 10250)),
                    authorizer: Some(Authorizer(Arc::new(move |token| {
                        auth::authorize(&weak, token)
                    }))),
                    ..Default::default()
                };
                match FixtureKubelet::start(opts, served).await {
                    Ok(k) => {
                        self.0.kubelets.lock().unwrap().insert(name, k);
                    }
                    Err(e) => eprintln!("twin: kubelet for node {name} did not start: {e:#}"),
                }
                continue;
            }
            let kubelets = self.0.kubelets.lock().unwrap();
            let k = &kubelets[&name];
            let key = |ps: &[FixturePod]| {
                let mut v: Vec<(String, String, Vec<String>)> = ps
                    .iter()
                    .map(|p| (p.namespace.clone(), p.name.clone(), p.containers.clone()))
                    .collect();
                v.sort();
                v
            };
            if key(&k.pods()) != key(&served) {
                k.set_pods(served);
            }
        }
    }

    /// Stops serving and removes this twin's containers.
    pub async fn shutdown(self) {
        self.remove_containers_blocking();
    }

    /// Removes every container with this twin's run label (`docker rm -f`), synchronously, so
    /// nothing is left behind even when the runtime is shutting down.
    pub fn remove_containers_blocking(&self) {
        self.0.sd_handle.shutdown();
        self.0.kubelets.lock().unwrap().clear();
        let ids = crate::prometheus::containers_with_run_label(&self.0.run_id).unwrap_or_default();
        if !ids.is_empty() {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        // The containers are gone already; the handles' own async drop would ask Docker again
        // and needs a runtime context (absent when a sync test drops the twin; it hung at
        // process shutdown), so they are forgotten instead.
        let slots: Vec<PromSlot> = self
            .0
            .proms
            .lock()
            .unwrap()
            .drain()
            .map(|(_, v)| v)
            .collect();
        for slot in slots {
            if let PromState::Running(run) = slot.state {
                let RunningProm { container, dir, .. } = *run;
                std::mem::forget(container);
                drop(dir);
            }
        }
    }
}

impl Runtime for DataPath {
    /// IP and readiness of a pod the data path runs (None for other pods): starts a real
    /// Prometheus for an operator-made Prometheus pod on first sight.
    fn pod_runtime(&self, c: &Arc<Cluster>, pod: &Value) -> Option<PodRuntime> {
        self.start_pod(c, pod)
    }
}

/// Removes a deleted pod's Prometheus container and its config directory (a pod's containers
/// stop when it is deleted: the kubelet kills them, HandlePodRemoves in
/// kubernetes/kubernetes pkg/kubelet/kubelet.go@v1.21.1).
async fn remove_prometheus(run: RunningProm) {
    let RunningProm { container, dir, .. } = run;
    if let Err(e) = container.rm().await {
        eprintln!("twin: removing a deleted pod's Prometheus failed: {e}");
    }
    drop(dir);
}

fn write_world_readable(path: &std::path::Path, dir: bool, text: Option<&str>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(t) = text {
        // Replace atomically: Prometheus must never read half a file.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, t)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&tmp, path)?;
    }
    if dir {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}
