//! The endpoints controller (kubernetes/kubernetes pkg/controller/endpoint/endpoints_controller.go@v1.21.1): for every
//! Service with a selector, Endpoints of the same name listing the matching pods with an IP —
//! ready ones in `addresses`, others in `notReadyAddresses` — with `targetRef` Pod, `nodeName`
//! and `hostname` when the pod's subdomain is the Service (TWIN-FACTS §7); no pods, no subsets.

use super::objects::is_ready;
use crate::twin::cluster::Cluster;
use crate::twin::selector::map_selector_matches;
use serde_json::{json, Value};
use std::sync::Arc;

/// The container port a Service port's `targetPort` names in `pod` (numbers pass through).
fn resolve_port(pod: &Value, target: &Value) -> Option<i64> {
    if let Some(n) = target.as_i64() {
        return Some(n);
    }
    let name = target.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_i64())
}

pub fn reconcile(c: &Arc<Cluster>) {
    let pods = c.objects("", "Pod");
    let existing = c.objects("", "Endpoints");
    for svc in c.objects("", "Service") {
        let selector = &svc["spec"]["selector"];
        if selector.as_object().is_none_or(|m| m.is_empty()) {
            continue; // selector-less Services (the operator's kubelet) get no controller Endpoints
        }
        let name = svc["metadata"]["name"].as_str().unwrap_or_default();
        let ns = svc["metadata"]["namespace"].as_str().unwrap_or_default();
        // Group addresses by their resolved port set, as the controller's subset repacking does.
        let mut subsets: Vec<(Vec<Value>, Vec<Value>, Vec<Value>)> = Vec::new();
        for pod in pods.iter().filter(|p| {
            p["metadata"]["namespace"] == ns
                && map_selector_matches(selector, &p["metadata"]["labels"])
                && p["status"]["podIP"].is_string()
                && p["status"]["phase"] != "Succeeded"
                && p["status"]["phase"] != "Failed"
        }) {
            let ports: Vec<Value> = svc["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|sp| {
                    let port = resolve_port(pod, &sp["targetPort"])?;
                    let mut p =
                        json!({"port": port, "protocol": sp["protocol"].as_str().unwrap_or("TCP")});
                    if let Some(n) = sp["name"].as_str() {
                        p["name"] = json!(n);
                    }
                    Some(p)
                })
                .collect();
            if ports.is_empty() {
                continue;
            }
            let mut addr = json!({
                "ip": pod["status"]["podIP"],
                "nodeName": pod["spec"]["nodeName"],
                "targetRef": {"kind": "Pod", "namespace": ns, "name": pod["metadata"]["name"],
                              "uid": pod["metadata"]["uid"], "resourceVersion": pod["metadata"]["resourceVersion"]},
            });
            if pod["spec"]["subdomain"] == name {
                if let Some(h) = pod["spec"]["hostname"].as_str() {
                    addr["hostname"] = json!(h);
                }
            }
            let i = match subsets.iter().position(|(p, _, _)| *p == ports) {
                Some(i) => i,
                None => {
                    subsets.push((ports, Vec::new(), Vec::new()));
                    subsets.len() - 1
                }
            };
            if is_ready(pod) {
                subsets[i].1.push(addr);
            } else {
                subsets[i].2.push(addr);
            }
        }
        let subsets: Vec<Value> = subsets
            .into_iter()
            .map(|(ports, ready, not_ready)| {
                let mut s = json!({"ports": ports});
                if !ready.is_empty() {
                    s["addresses"] = json!(ready);
                }
                if !not_ready.is_empty() {
                    s["notReadyAddresses"] = json!(not_ready);
                }
                s
            })
            .collect();
        let mut ep = json!({"metadata": {"name": name, "namespace": ns}});
        if let Some(l) = svc["metadata"].get("labels") {
            ep["metadata"]["labels"] = l.clone();
        }
        if !subsets.is_empty() {
            ep["subsets"] = json!(subsets);
        }
        let old = existing
            .iter()
            .find(|e| e["metadata"]["namespace"] == ns && e["metadata"]["name"] == name);
        // Compare without the pods' resourceVersions (they change with every status write).
        let strip = |v: &Value| {
            let mut v = v.clone();
            for s in v.as_array_mut().into_iter().flatten() {
                for k in ["addresses", "notReadyAddresses"] {
                    for a in s[k].as_array_mut().into_iter().flatten() {
                        a["targetRef"]
                            .as_object_mut()
                            .map(|m| m.remove("resourceVersion"));
                    }
                }
            }
            v
        };
        let same = old.is_some_and(|o| {
            strip(&o["subsets"]) == strip(&ep["subsets"])
                && o["metadata"]["labels"] == ep["metadata"]["labels"]
        });
        if !same {
            c.put("", "Endpoints", ep);
        }
    }
}
