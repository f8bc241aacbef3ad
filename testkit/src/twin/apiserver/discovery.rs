//! Discovery documents (TWIN-FACTS §1): `/api`, `/api/v1`, `/apis`, `/apis/<g>`, `/apis/<g>/<v>`.
//! A CRD's group/version is listed by `/apis` as soon as the CRD exists, but `/apis/<g>/<v>`
//! answers the plain-text 404 until the CRD is Established.

use super::response::json_response;
use super::response::plain_not_found;
use crate::twin::cluster::Cluster;
use crate::twin::storage::registry::ResourceType;
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn api_versions(c: &Cluster) -> Response {
    // No apiVersion: the legacy handler's stripped serializer (§1).
    json_response(
        200,
        &json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": c.server_address()}]}),
    )
}

fn group_json(name: &str, versions: &[String]) -> Value {
    // Preferred = highest kube-aware version (v1 over v1alpha1, §1).
    let mut sorted = versions.to_vec();
    sorted.sort_by_key(|v| version_priority(v));
    let vs: Vec<Value> = sorted
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs[0]})
}

/// Sort key: GA before beta before alpha, higher numbers first (CompareKubeAwareVersionStrings in
/// kubernetes/apimachinery pkg/version/helpers.go@kubernetes-1.21.1).
fn version_priority(v: &str) -> (u8, i64, i64) {
    let rest = v.trim_start_matches('v');
    let (major, tail) = rest.split_at(
        rest.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len()),
    );
    let major: i64 = major.parse().unwrap_or(0);
    let (class, minor) = if let Some(n) = tail.strip_prefix("beta") {
        (1, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (2, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (class, -major, -minor)
}

pub fn group_list(c: &Cluster) -> Response {
    let groups: Vec<Value> = c
        .registry
        .groups()
        .iter()
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json_response(
        200,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

pub fn group(c: &Cluster, name: &str) -> Response {
    match c.registry.groups().into_iter().find(|(g, _)| g == name) {
        Some((g, vs)) => {
            let mut body = group_json(&g, &vs);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            json_response(200, &body)
        }
        None => plain_not_found(),
    }
}

/// base64(first 8 bytes of sha256("<group>/<version>/<Kind>")) (§1).
fn storage_version_hash(rt: &ResourceType) -> String {
    let digest = Sha256::digest(format!("{}/{}/{}", rt.group, rt.version, rt.kind));
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

fn entries(rt: &ResourceType, crd: bool) -> Vec<Value> {
    let verbs = if crd {
        json!([
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch"
        ])
    } else {
        json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ])
    };
    let mut main = json!({
        "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
        "kind": rt.kind, "verbs": verbs, "storageVersionHash": storage_version_hash(rt),
    });
    if !rt.short_names.is_empty() {
        main["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        main["categories"] = json!(rt.categories);
    }
    let mut out = vec![main];
    if rt.status {
        out.push(json!({"name": format!("{}/status", rt.plural), "singularName": "",
                        "namespaced": rt.namespaced, "kind": rt.kind, "verbs": ["get", "patch", "update"]}));
    }
    out
}

pub fn resource_list(c: &Cluster, group: &str, version: &str) -> Response {
    let builtin = c.registry.builtin_types(group, version);
    let crds = c.registry.established_types(group, version);
    if builtin.is_empty() && crds.is_empty() {
        return plain_not_found();
    }
    let mut resources: Vec<Value> = builtin.iter().flat_map(|t| entries(t, false)).collect();
    resources.extend(crds.iter().flat_map(|t| entries(t, true)));
    let mut body = json!({"kind": "APIResourceList", "groupVersion": if group.is_empty() { version.to_string() } else { format!("{group}/{version}") }, "resources": resources});
    if !group.is_empty() {
        // Core's list has no apiVersion (stripped serializer, §1).
        body["apiVersion"] = json!("v1");
    }
    json_response(200, &body)
}
