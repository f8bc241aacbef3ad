//! Pure readers and builders of object fields that several controllers share: a pod's phase,
//! readiness and tolerations; owner references; the template hash. Controllers import them from
//! here, downward, instead of from each other.

use serde_json::{json, Value};
use std::hash::{Hash, Hasher};

pub fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or("Pending")
}

pub fn is_ready(p: &Value) -> bool {
    phase(p) == "Running"
        && p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

pub fn tolerates(pod: &Value, taint: &Value) -> bool {
    pod["spec"]["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| {
            (t["operator"] == "Exists" && (t["key"].is_null() || t["key"] == taint["key"]))
                || (t["key"] == taint["key"] && t["value"] == taint["value"])
        })
}

/// A short stable hash of a pod template (`pod-template-hash`, `controller-revision-hash`).
pub fn template_hash(template: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    template.to_string().hash(&mut h);
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = h.finish();
    (0..10)
        .map(|_| {
            let c = ALPHA[(x % ALPHA.len() as u64) as usize] as char;
            x /= ALPHA.len() as u64;
            c
        })
        .collect()
}

pub fn owner_ref(obj: &Value, controller: bool) -> Value {
    let mut r = json!({
        "apiVersion": obj["apiVersion"], "kind": obj["kind"],
        "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
    });
    if controller {
        r["controller"] = json!(true);
        r["blockOwnerDeletion"] = json!(true);
    }
    r
}

pub fn owned_by<'a>(objs: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    let uid = &owner["metadata"]["uid"];
    objs.iter()
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| &r["uid"] == uid)
        })
        .collect()
}
