//! Nodes: created at start (kind names: `<name>-control-plane`, `<name>-worker`, `<name>-worker2`),
//! each with a distinct loopback InternalIP where its fixture kubelet listens, becoming Ready
//! after `Timing::node_ready` with the kubelet's condition set (TWIN-FACTS §6;
//! kubernetes/kubernetes pkg/kubelet/nodestatus/setters.go@v1.21.1).

use super::state::State;
use crate::twin::cluster::{random_loopback, Cluster};
use crate::twin::storage::store::now_rfc3339;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

pub fn node_names(name: &str, n: usize) -> Vec<String> {
    (0..n.max(1))
        .map(|i| match i {
            0 => format!("{name}-control-plane"),
            1 => format!("{name}-worker"),
            i => format!("{name}-worker{i}"),
        })
        .collect()
}

pub fn create_nodes(c: &Arc<Cluster>) {
    let mut used = HashSet::new();
    for (i, name) in node_names(&c.opts.name, c.opts.nodes)
        .into_iter()
        .enumerate()
    {
        let ip = loop {
            let ip = random_loopback();
            if used.insert(ip) {
                break ip;
            }
        };
        let mut labels = json!({
            "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
        });
        let mut taints = json!([]);
        if i == 0 {
            for l in c.profile.control_plane_labels() {
                labels[*l] = json!("");
            }
            // kubeadm taints the control plane; kind keeps it when there are workers.
            let key = if c
                .profile
                .control_plane_labels()
                .contains(&"node-role.kubernetes.io/master")
            {
                "node-role.kubernetes.io/master"
            } else {
                "node-role.kubernetes.io/control-plane"
            };
            if c.opts.nodes > 1 {
                taints = json!([{"key": key, "effect": "NoSchedule"}]);
            }
        }
        c.put(
            "",
            "Node",
            json!({
                "metadata": {"name": name, "labels": labels},
                "spec": {"podCIDR": format!("10.244.{i}.0/24"), "podCIDRs": [format!("10.244.{i}.0/24")],
                         "providerID": format!("kind://docker/{}/{name}", c.opts.name), "taints": taints},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": ip.to_string()}, {"type": "Hostname", "address": name}],
                    "conditions": conditions(false),
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                    "nodeInfo": {"kubeletVersion": c.profile.git_version(), "kubeProxyVersion": c.profile.git_version(),
                                 "containerRuntimeVersion": "containerd://1.5.2", "operatingSystem": "linux", "architecture": "amd64",
                                 "osImage": "Ubuntu 21.04", "kernelVersion": "6.1.0", "machineID": "", "systemUUID": "", "bootID": ""},
                },
            }),
        );
    }
}

fn conditions(ready: bool) -> Value {
    let t = now_rfc3339();
    let c = |ty: &str, st: &str, reason: &str, msg: &str| json!({"type": ty, "status": st, "lastHeartbeatTime": t, "lastTransitionTime": t, "reason": reason, "message": msg});
    json!([
        c(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        c(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        c(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        if ready {
            c(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
            )
        } else {
            c("Ready", "False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized")
        },
    ])
}

pub fn is_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The first InternalIP (what the operator and the data path use, TWIN-FACTS §7).
pub fn internal_ip(node: &Value) -> Option<String> {
    node["status"]["addresses"]
        .as_array()?
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str().map(String::from))
}

pub fn reconcile(c: &Arc<Cluster>, st: &mut State) {
    for node in c.objects("", "Node") {
        if is_ready(&node) {
            continue;
        }
        let name = node["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if st.since(&format!("node/{name}")).elapsed() >= c.opts.timing.node_ready {
            let mut status = node["status"].clone();
            status["conditions"] = conditions(true);
            c.put_status("", "Node", "", &name, status);
        }
    }
}
