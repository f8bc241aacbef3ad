//! The Prometheus servers of a cluster: a `monitoring.coreos.com/v1` Prometheus object
//! ([`PrometheusRef`]) and its replicas, the ready pods of its StatefulSet ([`Replica`]), each asked
//! through the API server's pod proxy. The assert phase and the diagnosis both find them here.

use crate::prometheus::PrometheusClient;
use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::Client;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// A Prometheus object: `namespace/name` (what `--prometheus NS/NAME` names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PrometheusRef {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`; the operator names its StatefulSet `prometheus-<name>`.
    pub name: String,
}

impl PrometheusRef {
    /// `namespace/name`.
    pub fn new(namespace: &str, name: &str) -> Self {
        PrometheusRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The StatefulSet prometheus-operator keeps for it (shard 0).
    pub fn statefulset(&self) -> String {
        crate::operator::statefulset::statefulset_name(&self.name)
    }
}

impl fmt::Display for PrometheusRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `--prometheus` is not `NAMESPACE/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Prometheus {0:?}: expected NAMESPACE/NAME of a monitoring.coreos.com/v1 Prometheus object, e.g. monitoring/k8s")]
pub struct PrometheusRefError(pub String);

impl std::str::FromStr for PrometheusRef {
    type Err = PrometheusRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = |p: &str| {
            !p.is_empty()
                && p.len() <= 253
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        };
        match s.split_once('/') {
            Some((ns, name)) if valid(ns) && valid(name) => Ok(PrometheusRef::new(ns, name)),
            _ => Err(PrometheusRefError(s.to_string())),
        }
    }
}

/// One Prometheus server: a ready pod of a Prometheus's StatefulSet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Replica {
    /// The Prometheus object it belongs to.
    pub prometheus: PrometheusRef,
    /// The pod, e.g. `prometheus-k8s-1`.
    pub pod: String,
    /// The container port of its `web` port (9090 unless the pod says otherwise).
    pub port: u16,
}

impl Replica {
    /// `namespace/pod`, the subject of its checks.
    pub fn key(&self) -> String {
        format!("{}/{}", self.prometheus.namespace, self.pod)
    }

    /// A client for this replica only, through the API server's pod proxy.
    pub fn client(&self, kube: Client, retry_deadline: Duration) -> PrometheusClient {
        crate::kubeproxy::pod_prometheus_client(
            kube,
            &self.prometheus.namespace,
            &self.pod,
            self.port,
            retry_deadline,
        )
    }
}

/// The resource of `monitoring.coreos.com/v1` `kind` (e.g. `Prometheus`, `prometheuses`).
pub fn monitoring_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        api_version: "monitoring.coreos.com/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// The Prometheus object as JSON; `None` when it (or its CRD) does not exist.
///
/// # Errors
/// The API server refuses the read for another reason.
pub async fn get_prometheus(kube: &Client, prom: &PrometheusRef) -> anyhow::Result<Option<Value>> {
    let api = Api::<DynamicObject>::namespaced_with(
        kube.clone(),
        &prom.namespace,
        &monitoring_resource("Prometheus", "prometheuses"),
    );
    match api.get_opt(&prom.name).await {
        Ok(obj) => Ok(obj.map(|o| serde_json::to_value(o).unwrap_or_default())),
        // The CRD is not installed: the group answers 404 (see `diagnose::resource_not_served`).
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading Prometheus {prom}")),
    }
}

/// Every Prometheus object of the cluster, as JSON; empty when the CRD is not installed.
///
/// # Errors
/// The API server refuses the list for another reason.
pub async fn list_prometheuses(kube: &Client) -> anyhow::Result<Vec<Value>> {
    let api = Api::<DynamicObject>::all_with(
        kube.clone(),
        &monitoring_resource("Prometheus", "prometheuses"),
    );
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list
            .items
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect()),
        // The CRD is not installed: the group answers 404 (see `diagnose::resource_not_served`).
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e).context("listing prometheuses.monitoring.coreos.com"),
    }
}

/// The ready replicas of `prom` right now (no waiting), as [`ready_replicas`] finds them.
///
/// # Errors
/// The Prometheus object or the pods cannot be read; inside `Ok(Err(..))`, why none of its
/// replicas can be asked (absent, sharded).
pub async fn current_replicas(
    kube: &Client,
    prom: &PrometheusRef,
) -> anyhow::Result<Result<Replicas, String>> {
    let Some(obj) = get_prometheus(kube, prom).await? else {
        return Ok(Err(format!("Prometheus {prom} does not exist")));
    };
    let pods = Api::<Pod>::namespaced(kube.clone(), &prom.namespace)
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing pods in {}", prom.namespace))?;
    Ok(ready_replicas(prom, &obj, &pods.items))
}

/// What [`ready_replicas`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replicas {
    /// `spec.replicas` (default 1).
    pub wanted: usize,
    /// The ready pods, by name.
    pub ready: Vec<Replica>,
    /// One line per pod of the Prometheus that is not ready.
    pub not_ready: Vec<String>,
}

/// The pods of `prom`'s StatefulSet (owned by `prometheus-<name>`) among `pods`, split into ready
/// and not.
///
/// # Errors
/// The Prometheus is sharded (`spec.shards` > 1): each shard scrapes only part of the targets, so
/// no single replica can be asked for every container.
pub fn ready_replicas(prom: &PrometheusRef, obj: &Value, pods: &[Pod]) -> Result<Replicas, String> {
    let shards = obj
        .pointer("/spec/shards")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    if shards > 1 {
        return Err(format!(
            "Prometheus {prom} is sharded (spec.shards: {shards}): each shard scrapes a share of the \
             targets, so no replica has every container's series; assert an unsharded Prometheus \
             (--prometheus NS/NAME)"
        ));
    }
    let wanted = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0) as usize;
    let sts = prom.statefulset();
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    let mut owned: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "StatefulSet" && o.name == sts)
        })
        .collect();
    owned.sort_by_key(|p| p.metadata.name.clone());
    for pod in owned {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
        let is_ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if running && is_ready && pod.metadata.deletion_timestamp.is_none() {
            ready.push(Replica {
                prometheus: prom.clone(),
                pod: name,
                port: web_port(pod),
            });
        } else {
            not_ready.push(crate::pods::pod_summary(pod));
        }
    }
    if wanted == 0 {
        return Err(format!(
            "Prometheus {prom} asks for 0 replicas (spec.replicas: 0): nothing serves its data"
        ));
    }
    if ready.is_empty() && not_ready.is_empty() {
        not_ready.push(format!(
            "no pod of StatefulSet {}/{sts} (prometheus-operator creates it from the Prometheus object; check its log)",
            prom.namespace
        ));
    }
    Ok(Replicas {
        wanted,
        ready,
        not_ready,
    })
}

/// The `web` container port of the `prometheus` container (the operator's
/// [`WEB_PORT`](crate::operator::statefulset::WEB_PORT) unless the pod says otherwise).
fn web_port(pod: &Pod) -> u16 {
    pod.spec
        .as_ref()
        .into_iter()
        .flat_map(|s| &s.containers)
        .filter(|c| c.name == "prometheus")
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some("web"))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(crate::operator::statefulset::WEB_PORT)
}
