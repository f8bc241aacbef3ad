//! Scheduler and kubelet stand-ins for pod status: a pod without `nodeName` goes to a Ready node
//! whose taints it tolerates; after `Timing::pod_start` it is Running with the status a kubelet
//! posts (TWIN-FACTS §6, captured kind 1.27 pods); Job pods (restartPolicy Never/OnFailure
//! owned by a Job) then become Succeeded after `Timing::job_run`. Pods of a Prometheus
//! StatefulSet get their IP and readiness from the data path (a real Prometheus).

use super::nodes;
use super::objects::{is_ready, phase, tolerates};
use super::state::State;
use crate::twin::cluster::Cluster;
use crate::twin::storage::store::now_rfc3339;
use serde_json::{json, Value};
use std::sync::Arc;

/// What the kubelet stand-in reports for a pod a [`Runtime`] runs.
#[derive(Debug, Clone)]
pub struct PodRuntime {
    pub ip: String,
    pub ready: bool,
}

/// What really runs some pods (the data path): the kubelet stand-in asks it for their IP and
/// readiness. A trait, so that the controllers need not know the data path, which stands
/// above them (it reads what the operator controller makes).
pub trait Runtime: Send + Sync {
    /// IP and readiness of `pod` when this runtime runs it (None for other pods); may start it.
    fn pod_runtime(&self, c: &Arc<Cluster>, pod: &Value) -> Option<PodRuntime>;
}

fn container_id(c: &Cluster, pod: &str, container: &str) -> String {
    let mut s = String::new();
    for part in [pod, container, pod, container] {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (part, s.len(), c.admin_token.as_str()).hash(&mut h);
        s.push_str(&format!("{:016x}", h.finish()));
    }
    format!("containerd://{s}")
}

fn conditions(ready: bool, reason_unready: &str, names: &[String], t: &str) -> Value {
    let c = |ty: &str, st: bool, reason: Option<&str>, msg: Option<String>| {
        let mut v = json!({"lastProbeTime": null, "lastTransitionTime": t, "status": if st { "True" } else { "False" }, "type": ty});
        if let Some(r) = reason {
            v["reason"] = json!(r);
        }
        if let Some(m) = msg {
            v["message"] = json!(m);
        }
        v
    };
    let msg = (!ready && reason_unready == "ContainersNotReady")
        .then(|| format!("containers with unready status: [{}]", names.join(" ")));
    let r = (!ready).then_some(reason_unready);
    let init_reason = (reason_unready == "PodCompleted" && !ready).then_some("PodCompleted");
    json!([
        c("Initialized", true, init_reason, None),
        c("Ready", ready, r, msg.clone()),
        c("ContainersReady", ready, r, msg),
        c("PodScheduled", true, None, None)
    ])
}

pub fn reconcile(c: &Arc<Cluster>, st: &mut State, runtime: Option<&dyn Runtime>) {
    let node_objs = c.objects("", "Node");
    let ready_nodes: Vec<&Value> = node_objs.iter().filter(|n| nodes::is_ready(n)).collect();
    let t = &c.opts.timing;
    for (i, pod) in c.objects("", "Pod").into_iter().enumerate() {
        let pn = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let pns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(node_name) = pod["spec"]["nodeName"].as_str().map(String::from) else {
            // Scheduler: least-loaded Ready node whose NoSchedule taints the pod tolerates.
            let fits: Vec<&&Value> = ready_nodes
                .iter()
                .filter(|n| {
                    n["spec"]["taints"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .all(|tn| tn["effect"] != "NoSchedule" || tolerates(&pod, tn))
                })
                .collect();
            if let Some(n) = fits.get((i + pn.len()) % fits.len().max(1)) {
                let mut p = pod.clone();
                p["spec"]["nodeName"] = n["metadata"]["name"].clone();
                c.put("", "Pod", p);
            }
            continue;
        };
        let Some(node) = node_objs
            .iter()
            .find(|n| n["metadata"]["name"] == node_name.as_str())
        else {
            continue;
        };
        let since = st.since(&format!("pod/{uid}"));
        if since.elapsed() < t.pod_start || matches!(phase(&pod), "Succeeded" | "Failed") {
            continue;
        }
        let host_ip = nodes::internal_ip(node).unwrap_or_default();
        let names: Vec<String> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect();
        // The data path runs a real Prometheus for operator-made Prometheus pods.
        let runtime = runtime.and_then(|r| r.pod_runtime(c, &pod));
        let (pod_ip, ready) = match &runtime {
            Some(r) => (r.ip.clone(), r.ready),
            // Host-network pods share the node's IP.
            None if pod["spec"]["hostNetwork"] == true => (host_ip.clone(), true),
            None => {
                let prev = pod["status"]["podIP"].as_str().map(String::from);
                let cidr_net = node["spec"]["podCIDR"]
                    .as_str()
                    .unwrap_or("10.244.0.0/24")
                    .trim_end_matches(".0/24")
                    .to_string();
                let ip = prev.unwrap_or_else(|| {
                    format!(
                        "{cidr_net}.{}",
                        2 + (uid.len() * 7 + pn.len() * 13 + i) % 250
                    )
                });
                (ip, true)
            }
        };
        let is_job = pod["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["kind"] == "Job");
        let started = pod["status"]["startTime"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(now_rfc3339);
        let done = is_job && phase(&pod) == "Running" && since.elapsed() >= t.pod_start + t.job_run;
        let image_of = |name: &str| -> String {
            pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["name"] == name)
                .and_then(|c| c["image"].as_str())
                .unwrap_or_default()
                .to_string()
        };
        let statuses: Vec<Value> = names
            .iter()
            .map(|n| {
                let img = image_of(n);
                let full = if img.contains('/') { img.clone() } else { format!("docker.io/library/{img}") };
                let state = if done {
                    json!({"terminated": {"containerID": container_id(c, &pn, n), "exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now_rfc3339()}})
                } else {
                    json!({"running": {"startedAt": started}})
                };
                json!({"containerID": container_id(c, &pn, n), "image": full, "imageID": format!("{full}@sha256:{}", &container_id(c, &pn, n)[13..77]),
                       "lastState": {}, "name": n, "ready": ready && !done, "restartCount": 0, "started": !done, "state": state})
            })
            .collect();
        let prev_t = pod["status"]["conditions"][1]["lastTransitionTime"]
            .as_str()
            .map(String::from);
        let cond_t = match (
            &prev_t,
            pod["status"]["conditions"][1]["status"]
                == if ready && !done { "True" } else { "False" },
        ) {
            (Some(t), true) => t.clone(),
            _ => now_rfc3339(),
        };
        let status = json!({
            "phase": if done { "Succeeded" } else { "Running" },
            "conditions": if done { conditions(false, "PodCompleted", &names, &cond_t) } else { conditions(ready, "ContainersNotReady", &names, &cond_t) },
            "hostIP": host_ip, "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
            "startTime": started, "qosClass": pod["status"]["qosClass"].as_str().unwrap_or("BestEffort"),
            "containerStatuses": statuses,
        });
        // Rewrite only on a change of phase, readiness or IP (the kubelet's status manager
        // skips identical statuses).
        let changed = pod["status"]["phase"] != status["phase"]
            || is_ready(&pod) != (ready && !done)
            || pod["status"]["podIP"] != status["podIP"];
        if changed {
            c.put_status("", "Pod", &pns, &pn, status);
        }
    }
}
