//! Server-side apply (`PATCH application/apply-patch+yaml`) and the defaulting every write gets.
//!
//! Simplification (said once here): the twin keeps no per-field ownership. An apply replaces
//! everything outside `metadata` and `status` with the applied configuration (exactly SSA's
//! result when one field manager owns the object, which is how the harness applies) and merges
//! labels/annotations; conflicts between managers are not detected.

use super::profile::Profile;
use super::store::now_rfc3339;
use serde_json::{json, Map, Value};

/// Defaults the API server fills in on create/update/apply (k/k `pkg/apis/core/v1/defaults.go`,
/// `pkg/apis/apps/v1/defaults.go`, `pkg/apis/batch/v1/defaults.go`; TWIN-FACTS §4).
pub fn default_object(obj: &mut Value, profile: Profile) {
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    match kind.as_str() {
        "Service" => default_service(obj),
        "Pod" => default_pod_spec(&mut obj["spec"]),
        "Deployment" => {
            let spec = &mut obj["spec"];
            or_insert(spec, "replicas", json!(1));
            or_insert(spec, "revisionHistoryLimit", json!(10));
            or_insert(spec, "progressDeadlineSeconds", json!(600));
            or_insert(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
            default_pod_spec(&mut spec["template"]["spec"]);
        }
        "StatefulSet" => {
            let spec = &mut obj["spec"];
            or_insert(spec, "replicas", json!(1));
            or_insert(spec, "podManagementPolicy", json!("OrderedReady"));
            or_insert(spec, "revisionHistoryLimit", json!(10));
            or_insert(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            default_pod_spec(&mut spec["template"]["spec"]);
        }
        "ReplicaSet" | "DaemonSet" => default_pod_spec(&mut obj["spec"]["template"]["spec"]),
        "Job" => {
            let spec = &mut obj["spec"];
            or_insert(spec, "completions", json!(1));
            or_insert(spec, "parallelism", json!(1));
            or_insert(spec, "backoffLimit", json!(6));
            default_pod_spec(&mut spec["template"]["spec"]);
        }
        "Namespace" => {
            or_insert(&mut obj["spec"], "finalizers", json!(["kubernetes"]));
            if profile.namespace_name_label() {
                let name = obj["metadata"]["name"].clone();
                obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            }
        }
        _ => {}
    }
}

fn or_insert(v: &mut Value, key: &str, default: Value) {
    if !v.is_object() {
        *v = json!({});
    }
    let m = v.as_object_mut().unwrap();
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), default);
    }
}

fn default_ports(ports: &mut Value) {
    for p in ports.as_array_mut().into_iter().flatten() {
        or_insert(p, "protocol", json!("TCP"));
    }
}

fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    for key in ["initContainers", "containers"] {
        for c in spec[key].as_array_mut().into_iter().flatten() {
            default_ports(&mut c["ports"]);
            or_insert(c, "terminationMessagePath", json!("/dev/termination-log"));
            or_insert(c, "terminationMessagePolicy", json!("File"));
            or_insert(c, "imagePullPolicy", json!("IfNotPresent"));
        }
    }
    or_insert(spec, "restartPolicy", json!("Always"));
    or_insert(spec, "dnsPolicy", json!("ClusterFirst"));
    or_insert(spec, "schedulerName", json!("default-scheduler"));
    or_insert(spec, "securityContext", json!({}));
    or_insert(spec, "terminationGracePeriodSeconds", json!(30));
}

fn default_service(obj: &mut Value) {
    let spec = &mut obj["spec"];
    or_insert(spec, "type", json!("ClusterIP"));
    or_insert(spec, "sessionAffinity", json!("None"));
    for p in spec["ports"].as_array_mut().into_iter().flatten() {
        or_insert(p, "protocol", json!("TCP"));
        let port = p["port"].clone();
        or_insert(p, "targetPort", port);
    }
}

/// The `fieldsV1` set of an applied configuration: `f:<field>` per map key, `k:{…}` per
/// list-map item (keyed by `name`, or `port`/`containerPort` + `protocol`), `.` for owned items.
pub fn fields_v1(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                if k == "apiVersion" || k == "kind" {
                    continue;
                }
                out.insert(format!("f:{k}"), fields_v1(child));
            }
            Value::Object(out)
        }
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            let mut out = Map::new();
            for item in items {
                let key = list_key(item);
                let mut inner = fields_v1(item);
                if let Some(m) = inner.as_object_mut() {
                    m.insert(".".into(), json!({}));
                }
                match key {
                    Some(k) => {
                        out.insert(format!("k:{k}"), inner);
                    }
                    None => return json!({}),
                }
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

fn list_key(item: &Value) -> Option<String> {
    for keys in [
        &["containerPort", "protocol"][..],
        &["port", "protocol"][..],
        &["name"][..],
        &["type"][..],
    ] {
        if keys.iter().all(|k| item.get(*k).is_some()) {
            let mut m = Map::new();
            for k in keys {
                m.insert((*k).into(), item[*k].clone());
            }
            return Some(Value::Object(m).to_string());
        }
    }
    None
}

/// The managedFields entry of an apply (TWIN-FACTS §4).
pub fn managed_entry(manager: &str, api_version: &str, applied: &Value) -> Value {
    let mut fields = fields_v1(applied);
    if let Some(meta) = fields.get_mut("f:metadata").and_then(Value::as_object_mut) {
        meta.remove("f:name");
        meta.remove("f:namespace");
    }
    json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    })
}

/// The object an apply produces from the stored one (if any) and the applied configuration.
pub fn merge_apply(existing: Option<&Value>, applied: &Value, entry: Value) -> Value {
    let mut out = match existing {
        Some(old) => {
            let mut o = json!({"metadata": old["metadata"].clone()});
            if let Some(s) = old.get("status") {
                o["status"] = s.clone();
            }
            o
        }
        None => json!({"metadata": {}}),
    };
    for (k, v) in applied.as_object().into_iter().flatten() {
        if k == "metadata" || k == "status" {
            continue;
        }
        out[k] = v.clone();
    }
    for f in ["labels", "annotations"] {
        if let Some(m) = applied["metadata"][f].as_object() {
            for (k, v) in m {
                out["metadata"][f][k] = v.clone();
            }
        }
    }
    for f in ["name", "namespace", "ownerReferences", "finalizers"] {
        if let Some(v) = applied["metadata"].get(f) {
            out["metadata"][f] = v.clone();
        }
    }
    if existing.is_none() {
        // A create through apply also takes the status it was sent with (then controllers own it).
        if let Some(s) = applied.get("status") {
            out["status"] = s.clone();
        }
    }
    let manager = entry["manager"].clone();
    let mut managed: Vec<Value> = out["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !(e["manager"] == manager && e["operation"] == "Apply"))
        .collect();
    managed.push(entry);
    out["metadata"]["managedFields"] = Value::Array(managed);
    out
}
