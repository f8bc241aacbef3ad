//! Server-side apply (`PATCH application/apply-patch+yaml`); defaulting is
//! [`crate::twin::storage::defaults`].
//!
//! Simplification (said once here): the twin keeps no per-field ownership. An apply replaces
//! everything outside `metadata` and `status` with the applied configuration (exactly SSA's
//! result when one field manager owns the object, which is how the harness applies) and merges
//! labels/annotations; conflicts between managers are not detected.

use crate::twin::storage::store::now_rfc3339;
use serde_json::{json, Map, Value};

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
