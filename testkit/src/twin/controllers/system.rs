//! What a fresh kind cluster runs before anyone applies anything, so the harness meets the same
//! pods (kind v0.11.1/v0.20.0 node images): static control-plane pods mirrored on the
//! control-plane node (TWIN-FACTS §6 "Mirror (static) pod"), the kindnet and kube-proxy
//! DaemonSets, CoreDNS (2 replicas) in kube-system, and local-path-provisioner in
//! `local-path-storage`. Images are the names kind ships; nothing runs them.

use super::nodes::node_names;
use crate::twin::cluster::Cluster;
use serde_json::{json, Value};
use std::sync::Arc;

fn tolerate_all() -> Value {
    json!([{"operator": "Exists"}])
}

fn control_plane_tolerations() -> Value {
    json!([{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"},
           {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
           {"key": "CriticalAddonsOnly", "operator": "Exists"}])
}

pub fn create(c: &Arc<Cluster>) {
    let version = c.profile.git_version();
    c.put(
        "",
        "Namespace",
        json!({"metadata": {"name": "local-path-storage"}, "status": {"phase": "Active"}}),
    );
    let cp = node_names(&c.opts.name, c.opts.nodes)[0].clone();
    let node = c
        .get("", "Node", "", &cp)
        .expect("the control-plane node exists");
    for (component, image) in [
        ("etcd", "k8s.gcr.io/etcd:3.4.13-0".to_string()),
        (
            "kube-apiserver",
            format!("k8s.gcr.io/kube-apiserver:{version}"),
        ),
        (
            "kube-controller-manager",
            format!("k8s.gcr.io/kube-controller-manager:{version}"),
        ),
        (
            "kube-scheduler",
            format!("k8s.gcr.io/kube-scheduler:{version}"),
        ),
    ] {
        let hash =
            super::objects::template_hash(&json!([component, &cp])).repeat(4)[..32].to_string();
        c.put("", "Pod", json!({
            "metadata": {"name": format!("{component}-{cp}"), "namespace": "kube-system",
                         "labels": {"component": component, "tier": "control-plane"},
                         "annotations": {"kubernetes.io/config.hash": hash, "kubernetes.io/config.mirror": hash,
                                         "kubernetes.io/config.seen": crate::twin::storage::store::now_rfc3339(), "kubernetes.io/config.source": "file"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": cp, "uid": node["metadata"]["uid"], "controller": true}]},
            "spec": {"nodeName": cp, "hostNetwork": true, "priorityClassName": "system-node-critical", "priority": 2000001000,
                     "containers": [{"name": component, "image": image}], "tolerations": tolerate_all()},
            "status": {"phase": "Pending", "qosClass": "Burstable"},
        }));
    }
    for (name, image, host_network) in [
        (
            "kindnet",
            "docker.io/kindest/kindnetd:v20210326-1e038dc5",
            true,
        ),
        (
            "kube-proxy",
            &*format!("k8s.gcr.io/kube-proxy:{version}"),
            true,
        ),
    ] {
        let label = if name == "kindnet" {
            json!({"app": "kindnet", "k8s-app": "kindnet", "tier": "node"})
        } else {
            json!({"k8s-app": "kube-proxy"})
        };
        let container = if name == "kindnet" {
            "kindnet-cni"
        } else {
            "kube-proxy"
        };
        c.put("apps", "DaemonSet", json!({
            "metadata": {"name": name, "namespace": "kube-system", "labels": label},
            "spec": {"selector": {"matchLabels": label},
                     "template": {"metadata": {"labels": label},
                                  "spec": {"hostNetwork": host_network, "tolerations": tolerate_all(),
                                           "containers": [{"name": container, "image": image}]}}},
        }));
    }
    let dns = json!({"k8s-app": "kube-dns"});
    c.put("apps", "Deployment", json!({
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": dns},
        "spec": {"replicas": 2, "selector": {"matchLabels": dns},
                 "template": {"metadata": {"labels": dns},
                              "spec": {"tolerations": control_plane_tolerations(), "priorityClassName": "system-cluster-critical",
                                       "containers": [{"name": "coredns", "image": "k8s.gcr.io/coredns/coredns:v1.8.0",
                                                       "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                                                 {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                                                 {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}]}]}}},
    }));
    c.put("", "Service", json!({
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
        "spec": {"selector": dns, "clusterIP": "10.96.0.10",
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                           {"name": "metrics", "port": 9153, "protocol": "TCP"}]},
    }));
    let lp = json!({"app": "local-path-provisioner"});
    c.put("apps", "Deployment", json!({
        "metadata": {"name": "local-path-provisioner", "namespace": "local-path-storage"},
        "spec": {"replicas": 1, "selector": {"matchLabels": lp},
                 "template": {"metadata": {"labels": lp},
                              "spec": {"tolerations": control_plane_tolerations(),
                                       "containers": [{"name": "local-path-provisioner", "image": "docker.io/rancher/local-path-provisioner:v0.0.14"}]}}},
    }));
}
