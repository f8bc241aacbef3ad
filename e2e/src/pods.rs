//! The set of running pods the coverage check must find in Prometheus.
//!
//! Built from typed `Pod` objects (kube) or from `kubectl get pods -A -o json` output, so the
//! check works with or without Kubernetes access.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

/// A pod in phase `Running` and the names of its containers that are running.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunningPod {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// Names of the containers whose state is `running` (init containers excluded).
    pub containers: Vec<String>,
    /// Node the pod is scheduled on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Unix seconds of the pod's `status.startTime`, when known (diagnose uses it to tell
    /// "started after the last scrape" from "missing").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
}

impl RunningPod {
    /// Convenience constructor, mostly for tests and fixtures.
    pub fn new(namespace: &str, name: &str, containers: &[&str]) -> Self {
        RunningPod {
            namespace: namespace.to_string(),
            name: name.to_string(),
            containers: containers.iter().map(|c| c.to_string()).collect(),
            node: None,
            started_at: None,
        }
    }
}

/// Keeps the pods in phase `Running`, with the containers whose state is `running`.
/// Pods without any running container are dropped: there is nothing to cover yet.
pub fn running_pods(pods: &[Pod]) -> Vec<RunningPod> {
    let mut out: Vec<RunningPod> = pods
        .iter()
        .filter_map(|pod| {
            let status = pod.status.as_ref()?;
            if status.phase.as_deref() != Some("Running") {
                return None;
            }
            let mut containers: Vec<String> = status
                .container_statuses
                .iter()
                .flatten()
                .filter(|cs| cs.state.as_ref().is_some_and(|s| s.running.is_some()))
                .map(|cs| cs.name.clone())
                .collect();
            if containers.is_empty() {
                return None;
            }
            containers.sort();
            Some(RunningPod {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                containers,
                node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                started_at: status.start_time.as_ref().map(|t| t.0.as_second()),
            })
        })
        .collect();
    out.sort();
    out
}

/// Parses `kubectl get pods -A -o json` (a `v1/List` or `PodList`) and keeps the running pods.
///
/// # Errors
/// The text is not a pod list as `kubectl get pods -A -o json` prints it.
pub fn from_kubectl_json(text: &str) -> Result<Vec<RunningPod>> {
    #[derive(Deserialize)]
    struct List {
        items: Vec<Pod>,
    }
    let list: List = serde_json::from_str(text).context(
        "expected the output of `kubectl get pods -A -o json` (a JSON object with an `items` array of Pods)",
    )?;
    Ok(running_pods(&list.items))
}

/// The running pods of the whole cluster (what the coverage check must find).
///
/// # Errors
/// The API server refuses or does not answer the list.
pub async fn list_running_pods(client: &Client) -> Result<Vec<RunningPod>> {
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing pods")?;
    Ok(running_pods(&pods.items))
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

    const LIST: &str = r#"{"apiVersion":"v1","kind":"List","items":[
      {"metadata":{"namespace":"apps","name":"web-1"},"spec":{"nodeName":"w1","containers":[{"name":"app"},{"name":"sidecar"}]},
       "status":{"phase":"Running","startTime":"2021-06-01T10:00:00Z","containerStatuses":[
         {"name":"sidecar","ready":true,"restartCount":0,"image":"x","imageID":"y","state":{"running":{"startedAt":"2021-06-01T10:00:01Z"}}},
         {"name":"app","ready":true,"restartCount":0,"image":"x","imageID":"y","state":{"running":{"startedAt":"2021-06-01T10:00:01Z"}}}]}},
      {"metadata":{"namespace":"apps","name":"half"},"spec":{"containers":[{"name":"a"},{"name":"b"}]},
       "status":{"phase":"Running","containerStatuses":[
         {"name":"a","ready":true,"restartCount":0,"image":"x","imageID":"y","state":{"running":{}}},
         {"name":"b","ready":false,"restartCount":3,"image":"x","imageID":"y","state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}},
      {"metadata":{"namespace":"apps","name":"pending"},"spec":{"containers":[{"name":"a"}]},"status":{"phase":"Pending"}},
      {"metadata":{"namespace":"apps","name":"done"},"spec":{"containers":[{"name":"a"}]},"status":{"phase":"Succeeded"}}
    ]}"#;

    #[test]
    fn keeps_running_pods_and_running_containers_only() {
        let pods = from_kubectl_json(LIST).unwrap();
        assert_eq!(pods.len(), 2);
        assert_eq!(pods[0].name, "half");
        assert_eq!(pods[0].containers, vec!["a"]);
        assert_eq!(pods[1].name, "web-1");
        assert_eq!(pods[1].containers, vec!["app", "sidecar"]);
        assert_eq!(pods[1].node.as_deref(), Some("w1"));
        assert_eq!(pods[1].started_at, Some(1_622_541_600));
    }

    #[test]
    fn rejects_non_list_json_with_a_hint() {
        let err = from_kubectl_json(r#"{"kind":"Pod"}"#).unwrap_err();
        assert!(
            format!("{err:#}").contains("kubectl get pods -A -o json"),
            "{err:#}"
        );
    }

    /// Shapes the real pod lists of the kind 1.27 and minikube 1.35 captures hold (hand-written
    /// here, not copied): a mirror pod of a static pod, a Running pod whose only container has
    /// terminated, a finished init container, a Pending pod no node ran, a hostNetwork pod.
    #[test]
    fn real_pod_list_shapes() {
        let list = r#"{"apiVersion":"v1","kind":"List","items":[
          {"metadata":{"namespace":"kube-system","name":"etcd-node-1","annotations":{"kubernetes.io/config.mirror":"abc","kubernetes.io/config.source":"file"}},
           "spec":{"nodeName":"node-1","hostNetwork":true,"containers":[{"name":"etcd"}]},
           "status":{"phase":"Running","containerStatuses":[{"name":"etcd","ready":true,"restartCount":0,"image":"x","imageID":"y","state":{"running":{}}}]}},
          {"metadata":{"namespace":"scraper","name":"container-creating"},"spec":{"nodeName":"node-1","containers":[{"name":"alpine"}]},
           "status":{"phase":"Running","containerStatuses":[{"name":"alpine","ready":false,"restartCount":0,"image":"x","imageID":"y","state":{"terminated":{"exitCode":0}}}]}},
          {"metadata":{"namespace":"newrelic","name":"agent-0"},"spec":{"nodeName":"node-1","initContainers":[{"name":"configurator"}],"containers":[{"name":"prometheus"}]},
           "status":{"phase":"Running",
             "initContainerStatuses":[{"name":"configurator","ready":true,"restartCount":0,"image":"x","imageID":"y","state":{"terminated":{"exitCode":0}}}],
             "containerStatuses":[{"name":"prometheus","ready":true,"restartCount":0,"image":"x","imageID":"y","state":{"running":{}}}]}},
          {"metadata":{"namespace":"scraper","name":"pending"},"spec":{"containers":[{"name":"a"}]},"status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False"}]}}
        ]}"#;
        let pods = from_kubectl_json(list).unwrap();
        let names: Vec<(&str, &[String])> = pods
            .iter()
            .map(|p| (p.name.as_str(), p.containers.as_slice()))
            .collect();
        assert_eq!(
            names,
            // Sorted by namespace: kube-system, newrelic.
            [
                ("etcd-node-1", &["etcd".to_string()][..]),
                ("agent-0", &["prometheus".to_string()][..]),
            ]
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
}
