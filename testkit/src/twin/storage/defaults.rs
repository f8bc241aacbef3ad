//! The defaulting every write gets: the fields the API server fills in on create, update and
//! apply, per kind. Part of storage because every writer (the API and the controllers) goes
//! through [`crate::twin::cluster::Cluster::create`], which applies it.

use crate::twin::profile::Profile;
use serde_json::{json, Value};

/// Defaults the API server fills in on create/update/apply (TWIN-FACTS §4;
/// kubernetes/kubernetes pkg/apis/core/v1/defaults.go@v1.21.1,
/// kubernetes/kubernetes pkg/apis/apps/v1/defaults.go@v1.21.1,
/// kubernetes/kubernetes pkg/apis/batch/v1/defaults.go@v1.21.1).
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
