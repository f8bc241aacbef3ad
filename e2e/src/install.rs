//! Talking to the cluster: a client from an explicit kubeconfig, server-side apply of YAML
//! manifests with `DynamicObject` + discovery, and the waits between phases (nodes Ready,
//! Prometheus StatefulSet ready, workloads running).
//!
//! Every apply uses field manager [`FIELD_MANAGER`] with `force`, so re-running against the same
//! cluster (`--reuse`) is idempotent and quick.

use crate::matrix::ServiceMonitorVariant;
use crate::wait::{self, Waited};
use anyhow::{bail, Context, Result};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Api, Client, Config};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "pod-metrics-e2e";
/// Where `manifests/prometheus/` puts Prometheus (checked against the manifests by a test).
pub const PROMETHEUS_NAMESPACE: &str = "monitoring";
/// `metadata.name` of our Prometheus CR; the operator names its StatefulSet `prometheus-<name>`.
pub const PROMETHEUS_NAME: &str = "e2e";
/// The label our Prometheus's `serviceMonitorSelector` matches; set on our ServiceMonitors.
pub const SELECTION_LABEL: (&str, &str) = ("app.kubernetes.io/part-of", "pod-metrics-e2e");
/// Directories whose YAML is applied, relative to the workspace root.
pub const PROMETHEUS_DIR: &str = "manifests/prometheus";
pub const WORKLOADS_DIR: &str = "fixtures/workloads";

const POLL: Duration = Duration::from_secs(2);

/// A client for the cluster in `kubeconfig` (its current context). Never falls back to
/// `$KUBECONFIG` or `~/.kube/config`: a harness that may create and delete things must not
/// pick up a developer's production context by accident.
pub async fn kube_client(kubeconfig: &Path) -> Result<Client> {
    if !kubeconfig.is_file() {
        bail!(
            "kubeconfig {} does not exist or is not a file; pass the path kind wrote \
             (target/e2e/<name>/kubeconfig) or --kubeconfig PATH",
            kubeconfig.display()
        );
    }
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read kubeconfig {}", kubeconfig.display()))?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| {
            format!(
                "kubeconfig {} has no usable current context (check `current-context` and its cluster/user)",
                kubeconfig.display()
            )
        })?;
    // kube 5 retries 429/503/504 by default, up to 15 times with backoff growing towards
    // 1000 s (kube-client `client/retry.rs`, `RetryPolicy::server_retry`): a service proxy
    // answering 503 "no endpoints available" held `doctor` for minutes past every deadline.
    // Our callers retry transient errors themselves, within the deadline they were given
    // (`wait::poll_until`, the Prometheus client's retry deadline).
    config.default_retry = false;
    Client::try_from(config)
        .with_context(|| format!("cannot build a client from {}", kubeconfig.display()))
}

/// Parses a multi-document YAML text into JSON objects, skipping empty documents (a leading
/// `---`, comments only). Every object must have `apiVersion`, `kind` and `metadata.name`.
pub fn parse_documents(text: &str, origin: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value: Value = serde::Deserialize::deserialize(de)
            .with_context(|| format!("{origin}: YAML document {} does not parse", i + 1))?;
        if value.is_null() {
            continue;
        }
        let ident = ObjectIdent::of(&value).with_context(|| {
            format!(
                "{origin}: YAML document {} is not a Kubernetes object",
                i + 1
            )
        })?;
        if ident.name.is_empty() {
            bail!(
                "{origin}: YAML document {} ({}) has an empty metadata.name",
                i + 1,
                ident.kind
            );
        }
        docs.push(value);
    }
    Ok(docs)
}

/// Reads every `*.yaml`/`*.yml` file directly in `dir`, in file-name order.
pub fn read_manifest_dir(dir: &Path) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for path in yaml_files(dir, false)? {
        docs.extend(read_manifest_file(&path)?);
    }
    Ok(docs)
}

pub fn read_manifest_file(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read manifest {}", path.display()))?;
    parse_documents(&text, &path.display().to_string())
}

/// YAML files under `dir` (recursively if asked), sorted by path.
pub fn yaml_files(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list manifest directory {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            if recursive {
                out.extend(yaml_files(&path, true)?);
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// sha256 of every manifest file we apply (`manifests/**`, `fixtures/workloads/**`), as
/// (path relative to the workspace root, hex digest), sorted by path. Shown by `--dry-run`.
pub fn manifest_digests() -> Result<Vec<(String, String)>> {
    digests_under(&crate::workspace_root(), &["manifests", WORKLOADS_DIR])
}

/// [`manifest_digests`] for any root and set of directories.
pub fn digests_under(root: &Path, dirs: &[&str]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for dir in dirs {
        for path in yaml_files(&root.join(dir), true)? {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, hex::encode(Sha256::digest(&bytes))));
        }
    }
    out.sort();
    Ok(out)
}

/// apiVersion/kind/namespace/name of an object, for messages and API routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIdent {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectIdent {
    pub fn of(obj: &Value) -> Result<Self> {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .context("missing apiVersion")?;
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .context("missing kind")?;
        let meta = obj.get("metadata").context("missing metadata")?;
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .context("missing metadata.name")?;
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        Ok(ObjectIdent {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            namespace: meta
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            name: name.to_string(),
        })
    }

    pub fn gvk(&self) -> GroupVersionKind {
        GroupVersionKind::gvk(&self.group, &self.version, &self.kind)
    }
}

impl std::fmt::Display for ObjectIdent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Where an object goes in an apply sequence: CRDs, then Namespaces, then identities and RBAC
/// (so pods find their ServiceAccount), then everything else. Stable within a rank.
pub fn apply_rank(obj: &Value) -> u8 {
    match obj.get("kind").and_then(Value::as_str).unwrap_or_default() {
        "CustomResourceDefinition" => 0,
        "Namespace" => 1,
        "ServiceAccount" | "ClusterRole" | "Role" | "ClusterRoleBinding" | "RoleBinding"
        | "ConfigMap" | "Secret" => 2,
        _ => 3,
    }
}

/// `objs` in apply order (see [`apply_rank`]).
pub fn in_apply_order<'a>(objs: impl IntoIterator<Item = &'a Value>) -> Vec<&'a Value> {
    let mut out: Vec<&Value> = objs.into_iter().collect();
    out.sort_by_key(|o| apply_rank(o));
    out
}

/// Sets `protocol: TCP` on every container port and Service port that omits it; returns how many.
///
/// Kubernetes 1.19 refuses a server-side apply whose list-map item omits a key field
/// (`containers[].ports` keys `containerPort,protocol`; Service `ports` keys `port,protocol`) with
/// HTTP 500 "associative list with keys has an element that omits key field \"protocol\"": the
/// v0.48.1 bundle's operator Deployment and Service do. Later versions default the field to TCP
/// (kubernetes#98576 in 1.21, backported to 1.20.6; TWIN-FACTS §4), so setting it is what every
/// version stores anyway.
pub fn default_port_protocols(obj: &mut Value) -> usize {
    fn fill(ports: Option<&mut Value>) -> usize {
        let Some(Value::Array(ports)) = ports else {
            return 0;
        };
        let mut n = 0;
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            if !port.contains_key("protocol") {
                port.insert("protocol".into(), Value::String("TCP".into()));
                n += 1;
            }
        }
        n
    }
    fn pod_spec(spec: Option<&mut Value>) -> usize {
        let Some(spec) = spec else { return 0 };
        let mut n = 0;
        for key in ["initContainers", "containers", "ephemeralContainers"] {
            if let Some(Value::Array(cs)) = spec.get_mut(key) {
                n += cs
                    .iter_mut()
                    .map(|c| fill(c.get_mut("ports")))
                    .sum::<usize>();
            }
        }
        n
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some("Service") => fill(obj.pointer_mut("/spec/ports")),
        Some("Pod") => pod_spec(obj.get_mut("spec")),
        Some("Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job") => {
            pod_spec(obj.pointer_mut("/spec/template/spec"))
        }
        Some("CronJob") => pod_spec(obj.pointer_mut("/spec/jobTemplate/spec/template/spec")),
        _ => 0,
    }
}

/// Server-side applies objects, resolving each kind through API discovery once.
pub struct Applier {
    client: Client,
    resolved: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>,
    discovery_grace: Duration,
}

impl Applier {
    /// `discovery_grace`: how long a kind the API server does not serve yet is retried before it
    /// is reported (discovery lists a CRD's group only once it is Established, TWIN-FACTS §1).
    /// Callers pass what is left of their `--timeout`.
    pub fn new(client: Client, discovery_grace: Duration) -> Self {
        Applier {
            client,
            resolved: HashMap::new(),
            discovery_grace,
        }
    }

    pub async fn apply_all(&mut self, objs: &[&Value]) -> Result<()> {
        for obj in objs {
            self.apply(obj).await?;
        }
        Ok(())
    }

    /// Server-side applies one object (field manager [`FIELD_MANAGER`], forced), with every port
    /// given an explicit `protocol` first ([`default_port_protocols`]).
    ///
    /// # Errors
    /// When the kind cannot be resolved within the discovery grace, or the API server rejects the
    /// apply (its message is kept).
    pub async fn apply(&mut self, obj: &Value) -> Result<()> {
        let ident = ObjectIdent::of(obj)?;
        let mut obj = obj.clone();
        default_port_protocols(&mut obj);
        let obj = &obj;
        let (ar, caps) = self.resolve(&ident).await?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(self.client.clone(), &ar),
            Scope::Namespaced => Api::namespaced_with(
                self.client.clone(),
                ident.namespace.as_deref().unwrap_or("default"),
                &ar,
            ),
        };
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&ident.name, &params, &Patch::Apply(obj))
            .await
            .with_context(|| format!("server-side apply of {ident} was rejected"))?;
        tracing::debug!("applied {ident}");
        Ok(())
    }

    /// Discovery lags a freshly Established CRD by a few seconds, so an unknown kind is retried
    /// for a while before it is reported.
    async fn resolve(&mut self, ident: &ObjectIdent) -> Result<(ApiResource, ApiCapabilities)> {
        let gvk = ident.gvk();
        if let Some(found) = self.resolved.get(&gvk) {
            return Ok(found.clone());
        }
        let deadline = Instant::now() + self.discovery_grace;
        let found = loop {
            match kube::discovery::pinned_kind(&self.client, &gvk).await {
                Ok(found) => break found,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(
                        "discovery of {}/{} {} not ready yet: {e}",
                        gvk.group,
                        gvk.version,
                        gvk.kind
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot resolve {}/{} kind {} (needed for {ident}): either the API \
                             server does not answer, or it does not serve that kind (is its CRD \
                             installed and Established?)",
                            gvk.group, gvk.version, gvk.kind
                        )
                    })
                }
            }
        };
        self.resolved.insert(gvk, found.clone());
        Ok(found)
    }
}

pub use crate::wait::remaining;

/// Waits until there is at least one Node and every Node is `Ready` (kind's `--wait` covers
/// only the control plane).
///
/// # Errors
/// When the deadline passes, naming the nodes that are not Ready and why; at once for a
/// permanent API error (see [`wait::poll_until`]).
///
/// # Caveats
/// kind's `--wait` can time out and still exit 0, so the API server may not answer at first:
/// that is a transient error, retried until the deadline like every other wait's.
pub async fn wait_nodes_ready(client: &Client, timeout: Duration) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let waited = wait::poll_until(timeout, POLL, || async {
        let list = nodes
            .list(&ListParams::default())
            .await
            .context("cannot list nodes")?;
        let not_ready = not_ready_nodes(&list.items);
        if !list.items.is_empty() && not_ready.is_empty() {
            return Ok(Ok(()));
        }
        Ok(Err((list.items.len(), not_ready)))
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Pending((0, _))) => {
            bail!("no Node registered after {timeout:?}; check the kubelet logs (kind export logs)")
        }
        Err(Waited::Pending((total, not_ready))) => bail!(
            "{} of {total} nodes not Ready after {timeout:?}: {}; check the kubelet and CNI logs \
             (kind export logs) or raise --timeout",
            not_ready.len(),
            not_ready.join("; ")
        ),
        Err(Waited::Failed(e)) => Err(e.context(format!(
            "waiting {timeout:?} for every node to be Ready: is the API server up?"
        ))),
    }
}

/// Nodes whose `Ready` condition is not `True`, each with the condition's reason/message.
pub fn not_ready_nodes(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|node| {
            let name = node.metadata.name.clone().unwrap_or_default();
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
            match ready {
                Some(c) if c.status == "True" => None,
                Some(c) => Some(format!(
                    "{name} (Ready={}: {} {})",
                    c.status,
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or("")
                )),
                None => Some(format!("{name} (no Ready condition yet)")),
            }
        })
        .collect()
}

/// Applies `manifests/prometheus/` and waits until the operator's StatefulSet
/// `prometheus-<name>` has all replicas ready (the Prometheus CRD has no status in v0.48.1).
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
    .await
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
    let prom = crate::kubeproxy::prometheus_client(client.clone())
        .with_retry_deadline(remaining(deadline));
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
) -> Result<()> {
    let waited = wait::poll_until(timeout, POLL, || async {
        let yaml = prom
            .config_yaml()
            .await
            .context("reading /api/v1/status/config")?;
        let names = scrape_job_names(&yaml);
        if names.iter().any(|n| n == job) {
            Ok(Ok(()))
        } else {
            Ok(Err(names))
        }
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Pending(names)) => bail!(
            "Prometheus has not loaded scrape job {job} after {timeout:?} (its jobs: {}): the \
             operator writes it into Secret prometheus-<name>, the kubelet syncs that into the pod \
             (up to its sync period, 1 min by default) and the config reloader reloads; check the \
             operator log and the config-reloader container's log, or raise --timeout",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
        Err(Waited::Failed(e)) => Err(e.context(format!(
            "waiting {timeout:?} for Prometheus to load scrape job {job}"
        ))),
    }
}

/// The `job_name`s of a Prometheus configuration (empty when it does not parse).
pub fn scrape_job_names(config_yaml: &str) -> Vec<String> {
    let Ok(config) = serde_yaml::from_str::<serde_yaml::Value>(config_yaml) else {
        return Vec::new();
    };
    config
        .get("scrape_configs")
        .and_then(serde_yaml::Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|job| job.get("job_name")?.as_str().map(str::to_string))
        .collect()
}

/// Applies `fixtures/workloads/` and waits until every Deployment there is Available, i.e. its
/// pods are Running.
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

/// Waits for a Deployment's `Available` condition; on timeout says what its pods are doing.
///
/// # Errors
/// When the deadline passes (with the pods' state), or at once for a permanent API error.
pub async fn wait_deployment_available(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let waited = wait::poll_until(timeout, POLL, || async {
        let deployment = api
            .get_opt(name)
            .await
            .with_context(|| format!("cannot get Deployment {ns}/{name}"))?;
        match deployment {
            Some(d) if deployment_available(&d) => Ok(Ok(())),
            other => Ok(Err(other)),
        }
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Pending(deployment)) => {
            let selector = deployment
                .as_ref()
                .and_then(|d| d.spec.as_ref())
                .and_then(|s| s.selector.match_labels.as_ref())
                .map(label_selector);
            let pods = describe_pods(client, ns, selector.as_deref()).await;
            bail!("Deployment {ns}/{name} not Available after {timeout:?}; pods: {pods}");
        }
        Err(Waited::Failed(e)) => Err(e.context(format!(
            "waiting {timeout:?} for Deployment {ns}/{name} to be Available"
        ))),
    }
}

/// `Available=True` and the latest spec rolled out: on a re-run (`--reuse`) a changed
/// Deployment is "Available" while old pods still serve, and those must not be counted.
pub fn deployment_available(d: &Deployment) -> bool {
    let Some(status) = d.status.as_ref() else {
        return false;
    };
    let available = status.conditions.as_ref().is_some_and(|cs| {
        cs.iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    });
    let observed = match (d.metadata.generation, status.observed_generation) {
        (Some(generation), Some(observed)) => observed >= generation,
        (Some(_), None) => false,
        (None, _) => true,
    };
    let rolled_out = match d.spec.as_ref() {
        Some(spec) => {
            let wanted = spec.replicas.unwrap_or(1);
            status.updated_replicas.unwrap_or(0) >= wanted
                && status.available_replicas.unwrap_or(0) >= wanted
                && status.replicas.unwrap_or(0) == wanted
        }
        None => true,
    };
    available && observed && rolled_out
}

/// Waits until StatefulSet `ns/name` exists and all its replicas are ready.
///
/// # Errors
/// When the deadline passes (saying whether the StatefulSet was ever created, and what its pods
/// are doing), or at once for a permanent API error.
pub async fn wait_statefulset_ready(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<()> {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let waited = wait::poll_until(timeout, POLL, || async {
        let sts = api
            .get_opt(name)
            .await
            .with_context(|| format!("cannot get StatefulSet {ns}/{name}"))?;
        match sts {
            Some(s) if statefulset_ready(&s) => Ok(Ok(())),
            other => Ok(Err(other)),
        }
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Pending(None)) => bail!(
            "StatefulSet {ns}/{name} was never created within {timeout:?}: prometheus-operator \
             creates it from the Prometheus CR; check the operator log (default/prometheus-operator) \
             for errors about the CR or RBAC"
        ),
        Err(Waited::Pending(Some(sts))) => {
            let selector = sts
                .spec
                .as_ref()
                .and_then(|s| s.selector.match_labels.as_ref())
                .map(label_selector);
            let pods = describe_pods(client, ns, selector.as_deref()).await;
            bail!("StatefulSet {ns}/{name} not ready after {timeout:?}; pods: {pods}");
        }
        Err(Waited::Failed(e)) => Err(e.context(format!(
            "waiting {timeout:?} for StatefulSet {ns}/{name} to be ready"
        ))),
    }
}

/// At least one replica wanted, all of them ready, and the latest revision rolled out (on a
/// re-run the operator may have just changed the pod template).
pub fn statefulset_ready(sts: &StatefulSet) -> bool {
    let wanted = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = sts.status.as_ref() else {
        return false;
    };
    let ready = status.ready_replicas.unwrap_or(0);
    let observed = match sts.metadata.generation {
        Some(generation) => status.observed_generation.is_some_and(|o| o >= generation),
        None => true,
    };
    let rolled_out = match (&status.current_revision, &status.update_revision) {
        (Some(current), Some(update)) => current == update,
        _ => true,
    };
    wanted >= 1 && ready >= wanted && observed && rolled_out
}

fn label_selector(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One line per pod: phase and why containers are not running (ImagePullBackOff, …).
/// Best effort: a failure to list is reported in the text.
pub async fn describe_pods(client: &Client, ns: &str, selector: Option<&str>) -> String {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let params = match selector {
        Some(s) => ListParams::default().labels(s),
        None => ListParams::default(),
    };
    match api.list(&params).await {
        Ok(list) if list.items.is_empty() => format!("none in namespace {ns}"),
        Ok(list) => list
            .items
            .iter()
            .map(pod_summary)
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("(cannot list pods in {ns}: {e})"),
    }
}

/// `name: Phase [container: waiting Reason (message)]…`
pub fn pod_summary(pod: &Pod) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    let mut out = format!("{name}: {phase}");
    for cs in status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
    {
        let state = cs.state.as_ref();
        if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            out.push_str(&format!(
                ", {}: waiting {} {}",
                cs.name,
                w.reason.as_deref().unwrap_or(""),
                w.message.as_deref().unwrap_or("")
            ));
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            out.push_str(&format!(
                ", {}: terminated {} (exit {})",
                cs.name,
                t.reason.as_deref().unwrap_or(""),
                t.exit_code
            ));
        } else if !cs.ready {
            out.push_str(&format!(", {}: not ready", cs.name));
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A 503 (a service proxy with no endpoints) reaches the caller at once: kube's own retry
    /// layer would repeat it for minutes, past the caller's deadline.
    #[tokio::test]
    async fn the_client_does_not_retry_503_behind_the_callers_back() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "no endpoints available for service \"prometheus-operated\"",
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
                 clusters: [{{name: c, cluster: {{server: 'http://{addr}'}}}}]\n\
                 users: [{{name: u, user: {{token: t}}}}]\n\
                 contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n"
            ),
        )
        .unwrap();
        let client = kube_client(&kubeconfig).await.unwrap();
        let request = http::Request::get("/api/v1/namespaces/monitoring/services/x/proxy/")
            .body(kube::client::Body::empty())
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), client.send(request))
            .await
            .expect("one 503 comes back at once")
            .unwrap();
        assert_eq!(answer.status(), 503);
        assert_eq!(hits.load(Ordering::SeqCst), 1, "the 503 was retried");
    }

    #[test]
    fn ports_without_protocol_get_tcp_and_others_are_kept() {
        // The shape of the v0.48.1 bundle's operator Deployment and Service (TWIN-FACTS §4).
        let mut deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "prometheus-operator", "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "prometheus-operator", "ports": [{"containerPort": 8080, "name": "http"}]},
                {"name": "other", "ports": [{"containerPort": 53, "protocol": "UDP"}]},
                {"name": "none"}]}}}});
        assert_eq!(default_port_protocols(&mut deployment), 1);
        let ports = &deployment["spec"]["template"]["spec"]["containers"];
        assert_eq!(ports[0]["ports"][0]["protocol"], "TCP");
        assert_eq!(ports[1]["ports"][0]["protocol"], "UDP");
        assert!(ports[2].get("ports").is_none());

        let mut service = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "prometheus-operator", "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}});
        assert_eq!(default_port_protocols(&mut service), 1);
        assert_eq!(service["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(default_port_protocols(&mut service), 0, "idempotent");

        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"ports": "x"}});
        let before = cm.clone();
        assert_eq!(default_port_protocols(&mut cm), 0);
        assert_eq!(cm, before);
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
    fn documents_parse_and_empty_ones_are_skipped() {
        let text = "---\n# comment only\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: a\n";
        let docs = parse_documents(text, "t.yaml").unwrap();
        assert_eq!(docs.len(), 2);
        let d = ObjectIdent::of(&docs[1]).unwrap();
        assert_eq!(
            (d.group.as_str(), d.version.as_str(), d.kind.as_str()),
            ("apps", "v1", "Deployment")
        );
        assert_eq!(d.to_string(), "Deployment a/d");
        let ns = ObjectIdent::of(&docs[0]).unwrap();
        assert_eq!((ns.group.as_str(), ns.version.as_str()), ("", "v1"));
        assert_eq!(ns.to_string(), "Namespace a");
    }

    #[test]
    fn non_objects_and_nameless_objects_are_rejected_with_origin() {
        let err =
            parse_documents("apiVersion: v1\nkind: Pod\nmetadata: {}\n", "x.yaml").unwrap_err();
        assert!(
            format!("{err:#}").contains("x.yaml: YAML document 1 is not a Kubernetes object"),
            "{err:#}"
        );
        assert!(format!("{err:#}").contains("metadata.name"), "{err:#}");
        let err = parse_documents("a: [1,\n", "y.yaml").unwrap_err();
        assert!(
            format!("{err:#}").contains("y.yaml: YAML document 1 does not parse"),
            "{err:#}"
        );
    }

    #[test]
    fn apply_order_puts_crds_then_namespaces_then_rbac_first_and_is_stable() {
        let objs = [
            json!({"kind": "Deployment", "metadata": {"name": "d"}}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "b"}}),
            json!({"kind": "CustomResourceDefinition", "metadata": {"name": "c1"}}),
            json!({"kind": "Service", "metadata": {"name": "s"}}),
            json!({"kind": "Namespace", "metadata": {"name": "n"}}),
            json!({"kind": "ServiceAccount", "metadata": {"name": "sa"}}),
            json!({"kind": "CustomResourceDefinition", "metadata": {"name": "c2"}}),
        ];
        let names: Vec<&str> = in_apply_order(&objs)
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["c1", "c2", "n", "b", "sa", "d", "s"]);
    }

    #[test]
    fn digests_cover_every_yaml_file_recursively_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("m/sub")).unwrap();
        std::fs::write(root.join("m/b.yaml"), "b").unwrap();
        std::fs::write(root.join("m/sub/a.yml"), "").unwrap();
        std::fs::write(root.join("m/notes.txt"), "ignored").unwrap();
        let digests = digests_under(root, &["m"]).unwrap();
        assert_eq!(
            digests,
            vec![
                (
                    "m/b.yaml".to_string(),
                    "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d".to_string()
                ),
                (
                    "m/sub/a.yml".to_string(),
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_string()
                ),
            ]
        );
        let err = digests_under(root, &["missing"]).unwrap_err();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
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

    fn node(name: &str, ready: Option<&str>) -> Node {
        let conditions = ready.map(|s| {
            json!([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": s, "reason": "KubeletNotReady", "message": "cni not initialized"}])
        });
        serde_json::from_value(
            json!({"metadata": {"name": name}, "status": {"conditions": conditions}}),
        )
        .unwrap()
    }

    #[test]
    fn not_ready_nodes_names_each_with_its_reason() {
        let nodes = [
            node("cp", Some("True")),
            node("w1", Some("False")),
            node("w2", None),
        ];
        let not_ready = not_ready_nodes(&nodes);
        assert_eq!(not_ready.len(), 2);
        assert!(
            not_ready[0].starts_with("w1 (Ready=False: KubeletNotReady cni not initialized"),
            "{not_ready:?}"
        );
        assert_eq!(not_ready[1], "w2 (no Ready condition yet)");
    }

    #[test]
    fn statefulset_and_deployment_readiness() {
        let sts = |replicas: Option<i32>, ready: Option<i32>| -> StatefulSet {
            serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"replicas": replicas, "selector": {}, "serviceName": "x", "template": {}}, "status": {"replicas": 1, "readyReplicas": ready}})).unwrap()
        };
        assert!(statefulset_ready(&sts(Some(1), Some(1))));
        assert!(statefulset_ready(&sts(None, Some(1))));
        assert!(!statefulset_ready(&sts(Some(2), Some(1))));
        assert!(!statefulset_ready(&sts(Some(1), None)));
        assert!(!statefulset_ready(&sts(Some(0), Some(0))));
        let rolling: StatefulSet =
            serde_json::from_value(json!({"metadata": {"name": "p", "generation": 3},
            "spec": {"replicas": 1, "selector": {}, "serviceName": "x", "template": {}},
            "status": {"replicas": 1, "readyReplicas": 1, "observedGeneration": 3,
                       "currentRevision": "p-1", "updateRevision": "p-2"}}))
            .unwrap();
        assert!(!statefulset_ready(&rolling), "old revision still running");

        let dep = |status: &str| -> Deployment {
            serde_json::from_value(json!({"metadata": {"name": "d"}, "status": {"conditions": [
                {"type": "Progressing", "status": "True"}, {"type": "Available", "status": status}]}}))
            .unwrap()
        };
        assert!(deployment_available(&dep("True")));
        assert!(!deployment_available(&dep("False")));

        // Mid-rollout: Available (old pods serve) but the new spec is not out yet.
        let rollout = |generation: i64, observed: i64, updated: i32, total: i32| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "d", "generation": generation},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
                "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                           "availableReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]}}))
            .unwrap()
        };
        assert!(deployment_available(&rollout(2, 2, 2, 2)));
        assert!(
            !deployment_available(&rollout(2, 1, 2, 2)),
            "spec change not yet observed"
        );
        assert!(
            !deployment_available(&rollout(2, 2, 1, 3)),
            "an old pod is still there"
        );
    }

    #[test]
    fn pod_summary_says_why_containers_wait() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "prometheus-e2e-0"}, "status": {"phase": "Pending", "containerStatuses": [
            {"name": "prometheus", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
             "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}},
            {"name": "config-reloader", "ready": true, "restartCount": 0, "image": "y", "imageID": "", "state": {"running": {}}}]}}))
        .unwrap();
        assert_eq!(
            pod_summary(&pod),
            "prometheus-e2e-0: Pending, prometheus: waiting ImagePullBackOff Back-off pulling image"
        );
    }

    #[tokio::test]
    async fn kube_client_refuses_a_missing_kubeconfig_and_never_falls_back() {
        let Err(err) = kube_client(Path::new("/nonexistent/kubeconfig")).await else {
            panic!("a missing kubeconfig must be refused");
        };
        let msg = format!("{err:#}");
        assert!(
            msg.contains("/nonexistent/kubeconfig") && msg.contains("--kubeconfig"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn kube_client_reports_a_malformed_kubeconfig_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, "clusters: [unterminated\n").unwrap();
        let Err(err) = kube_client(&path).await else {
            panic!("a malformed kubeconfig must be refused");
        };
        assert!(
            format!("{err:#}").contains(&path.display().to_string()),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn kube_client_builds_from_an_explicit_file_without_contacting_the_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    token: t\n",
        )
        .unwrap();
        let client = kube_client(&path).await.unwrap();
        assert_eq!(client.default_namespace(), "default");
    }
}
