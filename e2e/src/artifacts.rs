//! Evidence for a failed run, written to a directory CI uploads: the logs of every
//! prometheus-operator pod and of every pod in a namespace that holds a Prometheus object (or in
//! `monitoring`, ours), what each ready Prometheus replica scrapes (`/api/v1/targets`) and was
//! configured with (`/api/v1/status/config`), every Prometheus object and ServiceMonitor and the
//! operator's kubelet Service/Endpoints as YAML, the pod list, and the cluster's Kubernetes events
//! in every namespace (`events.txt` oldest first, `events.yaml`). It works the same for our
//! manifests and for a user's `--stack` (any namespace, any name, several Prometheus objects).
//!
//! Collection is best effort (a broken cluster is why we are here): each item that cannot be
//! fetched is listed in `errors.txt` and the rest is still written. Everything passes through
//! [`crate::redact::redact`] before it touches the disk.

use crate::install::PROMETHEUS_NAMESPACE;
use crate::operator::kubelet_service_of;
use crate::prometheuses::{
    current_replicas, list_prometheuses, monitoring_resource, PrometheusRef,
};
use crate::redact::redact;
use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Endpoints, Event, Pod, Service};
use kube::api::{ListParams, LogParams};
use kube::core::DynamicObject;
use kube::{Api, Client};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// How long one Prometheus replica's answer is retried (the whole collection is bounded by the
/// caller's timeout too).
const PROMETHEUS_RETRY: Duration = Duration::from_secs(10);

/// Writes every artifact it can into `dir` (created if needed). Fails only when `dir` cannot be
/// written.
///
/// # Errors
/// `dir` cannot be created; anything else that cannot be collected is noted in the artifacts.
pub async fn collect(client: &Client, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create artifacts directory {}", dir.display()))?;
    let mut out = Writer {
        dir,
        errors: Vec::new(),
    };

    // The Prometheus objects decide which namespaces matter.
    let prometheuses = match list_prometheuses(client).await {
        Ok(list) => list,
        Err(e) => {
            out.fail("prometheuses", crate::errors::error_chain(e.as_ref()));
            Vec::new()
        }
    };
    let refs: Vec<PrometheusRef> = prometheuses
        .iter()
        .filter_map(|p| {
            Some(PrometheusRef::new(
                p.pointer("/metadata/namespace")?.as_str()?,
                p.pointer("/metadata/name")?.as_str()?,
            ))
        })
        .collect();
    for (prom, obj) in refs.iter().zip(&prometheuses) {
        out.write_yaml(
            &format!("prometheuses/{}_{}.yaml", prom.namespace, prom.name),
            obj,
        );
    }
    let mut namespaces: BTreeSet<&str> = refs.iter().map(|p| p.namespace.as_str()).collect();
    namespaces.insert(PROMETHEUS_NAMESPACE);

    let mut operator_args = None;
    let pods: Api<Pod> = Api::all(client.clone());
    match pods.list(&ListParams::default()).await {
        Ok(list) => {
            let table: Vec<String> = list.items.iter().map(pod_line).collect();
            out.write("pods.txt", &table.join("\n"));
            out.write_json(
                "pods.json",
                &serde_json::to_value(&list.items).unwrap_or_default(),
            );
            for pod in &list.items {
                if let Some(args) = operator_container_args(pod) {
                    operator_args.get_or_insert(args);
                }
                if is_collected_pod(pod, &namespaces) {
                    collect_logs(client, pod, &mut out).await;
                }
            }
        }
        Err(e) => out.fail("pods", crate::errors::error_chain(&e)),
    }

    // Each replica answers for itself (pod proxy): the shared Service would pick one at random.
    for prom in &refs {
        let replicas = match current_replicas(client, prom).await {
            Ok(Ok(r)) => r.ready,
            Ok(Err(why)) => {
                out.fail(&format!("Prometheus {prom}"), why);
                continue;
            }
            Err(e) => {
                out.fail(
                    &format!("Prometheus {prom}"),
                    crate::errors::error_chain(e.as_ref()),
                );
                continue;
            }
        };
        if replicas.is_empty() {
            out.fail(&format!("Prometheus {prom}"), "no ready replica to ask");
        }
        for replica in replicas {
            let prom_client = replica.client(client.clone(), PROMETHEUS_RETRY);
            let at = format!("{}_{}", prom.namespace, replica.pod);
            for (file, path) in [
                ("targets.json", "/api/v1/targets"),
                ("config.yaml", "/api/v1/status/config"),
            ] {
                let file = format!("prometheus/{at}/{file}");
                match prom_client.get_raw(path).await {
                    Ok(resp) => out.write(&file, &readable_body(&resp.body)),
                    Err(e) => out.fail(&file, crate::errors::error_chain(&e)),
                }
            }
        }
    }

    let sms = Api::<DynamicObject>::all_with(
        client.clone(),
        &monitoring_resource("ServiceMonitor", "servicemonitors"),
    );
    match sms.list(&ListParams::default()).await {
        Ok(list) => {
            for sm in &list.items {
                let ns = sm.metadata.namespace.as_deref().unwrap_or_default();
                let name = sm.metadata.name.as_deref().unwrap_or_default();
                out.write_yaml(&format!("servicemonitors/{ns}_{name}.yaml"), sm);
            }
        }
        Err(e) => out.fail("servicemonitors", crate::errors::error_chain(&e)),
    }

    // The Service this cluster's operator keeps (its --kubelet-service), else the bundle's.
    let (svc_ns, svc_name) = kubelet_service_of(operator_args.as_deref());
    let services: Api<Service> = Api::namespaced(client.clone(), &svc_ns);
    match services.get(&svc_name).await {
        Ok(svc) => out.write_yaml("kubelet-service.yaml", &svc),
        Err(e) => out.fail("kubelet-service.yaml", crate::errors::error_chain(&e)),
    }
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), &svc_ns);
    match endpoints.get(&svc_name).await {
        Ok(eps) => out.write_yaml("kubelet-endpoints.yaml", &eps),
        Err(e) => out.fail("kubelet-endpoints.yaml", crate::errors::error_chain(&e)),
    }
    // What the cluster itself said (scheduling, image pulls, probes, back-offs): `kubectl get
    // events -A` for a cluster that is gone once CI deletes it.
    let events: Api<Event> = Api::all(client.clone());
    match events.list(&ListParams::default()).await {
        Ok(list) => {
            let mut items = list.items;
            items.sort_by_key(event_time);
            let table: Vec<String> = items.iter().map(event_line).collect();
            out.write("events.txt", &table.join("\n"));
            let values: Vec<serde_json::Value> = items
                .iter()
                .map(|e| {
                    let mut v = serde_json::to_value(e).unwrap_or_default();
                    if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                        meta.remove("managedFields");
                    }
                    v
                })
                .collect();
            out.write(
                "events.yaml",
                &crate::yaml::to_string(&serde_json::Value::Array(values)),
            );
        }
        Err(e) => out.fail("events", crate::errors::error_chain(&e)),
    }

    if !out.errors.is_empty() {
        let text = out.errors.join("\n");
        out.write("errors.txt", &text);
    }
    Ok(())
}

/// The args of a prometheus-operator container of `pod` (any namespace), if it runs one.
fn operator_container_args(pod: &Pod) -> Option<Vec<String>> {
    pod.spec.as_ref()?.containers.iter().find_map(|c| {
        c.image
            .as_deref()
            .filter(|i| i.contains("prometheus-operator/prometheus-operator"))?;
        Some(c.args.clone().unwrap_or_default())
    })
}

/// prometheus-operator pods (wherever they run) and every pod of `namespaces` (those holding a
/// Prometheus object, and ours).
fn is_collected_pod(pod: &Pod, namespaces: &BTreeSet<&str>) -> bool {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    namespaces.contains(ns) || operator_container_args(pod).is_some()
}

async fn collect_logs(client: &Client, pod: &Pod, out: &mut Writer<'_>) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let containers = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.clone()));
    for container in containers {
        let params = LogParams {
            container: Some(container.clone()),
            tail_lines: Some(5000),
            timestamps: true,
            ..LogParams::default()
        };
        let file = format!("logs/{ns}_{name}_{container}.log");
        match api.logs(name, &params).await {
            Ok(text) => out.write(&file, &text),
            Err(e) => out.fail(&file, crate::errors::error_chain(&e)),
        }
    }
}

/// Prometheus's loaded config arrives as YAML inside JSON (`data.yaml`): unwrap it so the
/// artifact reads like the file. Other bodies are pretty-printed JSON, or kept as they are.
fn readable_body(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => match v.pointer("/data/yaml").and_then(|y| y.as_str()) {
            Some(yaml) => yaml.to_string(),
            None => serde_json::to_string_pretty(&v).unwrap_or_default(),
        },
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

/// `namespace/name phase node containers…`
fn pod_line(pod: &Pod) -> String {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("-");
    format!(
        "{ns}/{name}\tnode={node}\t{}",
        crate::pods::pod_summary(pod)
            .split_once(": ")
            .map_or("", |(_, rest)| rest)
    )
}

/// When an event last happened: `lastTimestamp` (core/v1), else `eventTime` (events.k8s.io
/// writers), else its creation.
fn event_time(e: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// `time  type  namespace  kind/name  reason  (×count)  message`, as `kubectl get events -A` shows them.
fn event_line(e: &Event) -> String {
    let o = &e.involved_object;
    format!(
        "{}\t{}\t{}\t{}/{}\t{}\t×{}\t{}",
        event_time(e).map_or_else(|| "-".to_string(), |t| t.to_string()),
        e.type_.as_deref().unwrap_or("-"),
        e.metadata.namespace.as_deref().unwrap_or("-"),
        o.kind.as_deref().unwrap_or("-"),
        o.name.as_deref().unwrap_or("-"),
        e.reason.as_deref().unwrap_or("-"),
        e.count.unwrap_or(1),
        e.message.as_deref().unwrap_or("").replace('\n', " ")
    )
}

struct Writer<'a> {
    dir: &'a Path,
    errors: Vec<String>,
}

impl Writer<'_> {
    fn write(&mut self, file: &str, text: &str) {
        let path = self.dir.join(file);
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&path, redact(text)));
        if let Err(e) = result {
            self.errors
                .push(format!("{file}: cannot write {}: {e}", path.display()));
        }
    }

    fn write_json(&mut self, file: &str, value: &serde_json::Value) {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        self.write(file, &text);
    }

    /// YAML without `managedFields` (noise, and server-side apply makes them long).
    fn write_yaml<T: serde::Serialize>(&mut self, file: &str, obj: &T) {
        let mut value = serde_json::to_value(obj).unwrap_or_default();
        if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("managedFields");
        }
        self.write(file, &crate::yaml::to_string(&value))
    }

    fn fail(&mut self, what: &str, e: impl std::fmt::Display) {
        self.errors.push(redact(&format!("{what}: {e}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_redacts_everything_and_records_failures() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Writer {
            dir: dir.path(),
            errors: Vec::new(),
        };
        out.write(
            "logs/a.log",
            "Authorization: Bearer abcdefghijkl\nok line\n",
        );
        out.write_yaml(
            "secret.yaml",
            &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "managedFields": [{"manager": "x"}]}, "data": {"token": "c2VjcmV0"}}),
        );
        out.fail(
            "prometheus/monitoring_prometheus-e2e-0/targets.json",
            "proxy said 503 with token: abc123",
        );
        let log = std::fs::read_to_string(dir.path().join("logs/a.log")).unwrap();
        assert!(
            !log.contains("abcdefghijkl") && log.contains("ok line"),
            "{log}"
        );
        let secret = std::fs::read_to_string(dir.path().join("secret.yaml")).unwrap();
        assert!(
            !secret.contains("c2VjcmV0") && !secret.contains("managedFields"),
            "{secret}"
        );
        assert_eq!(
            out.errors,
            ["prometheus/monitoring_prometheus-e2e-0/targets.json: proxy said 503 with token: <redacted>"]
        );
    }

    #[test]
    fn config_yaml_is_unwrapped_and_other_bodies_kept() {
        let body = br#"{"status":"success","data":{"yaml":"global:\n  scrape_interval: 10s\n"}}"#;
        assert_eq!(readable_body(body), "global:\n  scrape_interval: 10s\n");
        assert_eq!(
            readable_body(b"no endpoints available"),
            "no endpoints available"
        );
        assert!(
            readable_body(br#"{"status":"success","data":{"activeTargets":[]}}"#)
                .contains("\n  \"data\"")
        );
    }

    #[test]
    fn events_read_like_kubectl_get_events_oldest_first() {
        let event = |v: serde_json::Value| -> Event { serde_json::from_value(v).unwrap() };
        let late = event(serde_json::json!({
            "metadata": {"namespace": "monitoring", "name": "p.1"},
            "involvedObject": {"kind": "Pod", "name": "prometheus-e2e-0"},
            "type": "Warning", "reason": "BackOff", "count": 4,
            "lastTimestamp": "2026-11-26T10:00:05Z",
            "message": "Back-off restarting failed container\nprometheus"
        }));
        let early = event(serde_json::json!({
            "metadata": {"namespace": "default", "name": "o.1", "creationTimestamp": "2026-11-26T09:59:00Z"},
            "involvedObject": {"kind": "Deployment", "name": "prometheus-operator"},
            "type": "Normal", "reason": "ScalingReplicaSet"
        }));
        let micro = event(serde_json::json!({
            "metadata": {"namespace": "kube-system", "name": "k.1"},
            "involvedObject": {"kind": "Node", "name": "worker"},
            "eventTime": "2026-11-26T10:00:00.123456Z", "reason": "Starting"
        }));
        let mut all = [late, early, micro];
        all.sort_by_key(event_time);
        let lines: Vec<String> = all.iter().map(event_line).collect();
        assert_eq!(
            lines,
            [
                "2026-11-26T09:59:00Z\tNormal\tdefault\tDeployment/prometheus-operator\tScalingReplicaSet\t×1\t",
                "2026-11-26T10:00:00.123456Z\t-\tkube-system\tNode/worker\tStarting\t×1\t",
                "2026-11-26T10:00:05Z\tWarning\tmonitoring\tPod/prometheus-e2e-0\tBackOff\t×4\tBack-off restarting failed container prometheus",
            ]
        );
    }

    #[test]
    fn collects_operator_pods_anywhere_and_every_pod_of_a_prometheus_namespace() {
        let pod = |ns: &str, name: &str, image: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"namespace": ns, "name": name},
                "spec": {"containers": [{"name": "c", "image": image, "args": ["--kubelet-service=kube-system/kubelet"]}]}
            }))
            .unwrap()
        };
        let operator = "quay.io/prometheus-operator/prometheus-operator:v0.48.1";
        let namespaces: BTreeSet<&str> = ["monitoring", "observability"].into();
        // The bundle's operator in default, kube-prometheus's in monitoring, any other namespace.
        for ns in ["default", "monitoring", "ops"] {
            let p = pod(ns, "prometheus-operator-7d9f-abcde", operator);
            assert!(is_collected_pod(&p, &namespaces), "{ns}");
            assert_eq!(
                operator_container_args(&p).unwrap(),
                ["--kubelet-service=kube-system/kubelet"]
            );
        }
        assert!(is_collected_pod(
            &pod(
                "observability",
                "prometheus-k8s-1",
                "quay.io/prometheus/prometheus:v2.26.0"
            ),
            &namespaces
        ));
        assert!(!is_collected_pod(
            &pod("default", "other", "busybox"),
            &namespaces
        ));
        // A name alone does not make an operator.
        assert!(!is_collected_pod(
            &pod("kube-system", "prometheus-operator-x", "busybox"),
            &namespaces
        ));
    }

    #[tokio::test]
    async fn an_unreachable_cluster_still_yields_a_directory_with_errors_listed() {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:9\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user:\n    token: sekrit-token\n",
        )
        .unwrap();
        let client = crate::k8s::client::kube_client(&kubeconfig).await.unwrap();
        let artifacts = dir.path().join("artifacts");
        collect(&client, &artifacts).await.unwrap();
        let errors = std::fs::read_to_string(artifacts.join("errors.txt")).unwrap();
        for item in [
            "prometheuses",
            "pods",
            "servicemonitors",
            "kubelet-service.yaml",
            "events",
        ] {
            assert!(errors.contains(item), "{item} missing from {errors}");
        }
        assert!(!errors.contains("sekrit-token"));
    }
}
