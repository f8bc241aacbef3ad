//! The HTTPS router: bearer-token authentication, fault injection, then discovery, the REST
//! verbs, watch and the service proxy, answering the way the API server does (TWIN-FACTS §1–§5).

use super::apply::{managed_entry, merge_apply};
use super::response::{self as st, json_response, status};
use super::validation::{self, with_warnings, Write};
use super::{discovery, node_proxy, openapi, patch, pod_proxy, proxy, watch, wire};
use crate::twin::cluster::{Cluster, Recorded};
use crate::twin::controllers::crds;
use crate::twin::selector;
use crate::twin::storage::defaults::default_object;
use crate::twin::storage::registry::{as_version, ResourceType};
use crate::twin::storage::store::{key, StoreError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub fn router(cluster: Arc<Cluster>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(cluster)
}

/// Query parameters, percent-decoded.
pub fn query(uri: &Uri) -> HashMap<String, String> {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

async fn handle(
    State(c): State<Arc<Cluster>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let hv = |h: header::HeaderName| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    c.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path_and_query: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        content_type: hv(header::CONTENT_TYPE),
        authorization: hv(header::AUTHORIZATION),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(c.admin_token.as_str()) {
        return st::unauthorized();
    }
    let path = uri.path().to_string();
    if let Some(code) = c.faults.take(&method, &path) {
        // An injected transient failure (the API server restarting, etcd leader election):
        // 503 is what the apiserver answers while not ready, 500 an internal error (§2a).
        return match code {
            503 => status(
                503,
                Some("ServiceUnavailable"),
                "the request has been made before all known HTTP paths have been installed, please try again",
                Some(json!({"retryAfterSeconds": 5})),
            ),
            code => status(code, Some("InternalError"), "Internal error occurred: injected by the twin", None),
        };
    }
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let q = query(&uri);
    match segs.as_slice() {
        ["api"] => discovery::api_versions(&c),
        ["api", "v1"] => discovery::resource_list(&c, "", "v1"),
        ["apis"] => discovery::group_list(&c),
        ["apis", g] => discovery::group(&c, g),
        ["apis", g, v] => discovery::resource_list(&c, g, v),
        ["version"] => json_response(
            200,
            &json!({"major": "1", "minor": c.profile.to_string().trim_start_matches("1.").to_string(),
                    "gitVersion": c.profile.git_version(), "platform": "linux/amd64"}),
        ),
        ["healthz"] | ["readyz"] | ["livez"] => (StatusCode::OK, "ok").into_response(),
        ["openapi", "v2"] => openapi::v2(&c, &headers),
        ["openapi", "v3", rest @ ..] => openapi::v3(&c, rest),
        ["api", "v1", rest @ ..] if !rest.is_empty() => {
            resource(&c, &method, "", "v1", rest, &q, &headers, body).await
        }
        ["apis", g, v, rest @ ..] if !rest.is_empty() => {
            resource(&c, &method, g, v, rest, &q, &headers, body).await
        }
        _ => st::plain_not_found(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn resource(
    c: &Arc<Cluster>,
    method: &Method,
    group: &str,
    version: &str,
    rest: &[&str],
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let builtin_gv = !c.registry.builtin_types(group, version).is_empty();
    let (ns, plural, name, sub): (Option<&str>, &str, Option<&str>, &[&str]) =
        if rest[0] == "namespaces" && rest.len() >= 3 {
            (
                Some(rest[1]),
                rest[2],
                rest.get(3).copied(),
                rest.get(4..).unwrap_or(&[]),
            )
        } else {
            (
                None,
                rest[0],
                rest.get(1).copied(),
                rest.get(2..).unwrap_or(&[]),
            )
        };
    let Some(rt) = c.registry.lookup(group, version, plural) else {
        // go-restful answers JSON inside a built-in group; a CRD group falls through to the
        // plain-text NotFound handler (TWIN-FACTS §2a).
        return if builtin_gv {
            st::unknown_resource()
        } else {
            st::plain_not_found()
        };
    };
    if rt.namespaced != ns.is_some() && (name.is_some() || (!rt.namespaced && ns.is_some())) {
        return st::unknown_resource();
    }
    let ns = ns.unwrap_or_default();
    if rt.plural == "services" && sub.first() == Some(&"proxy") {
        if let Some(name) = name {
            return proxy::handle(c, method, ns, name, &sub[1..], q, headers, body).await;
        }
    }
    if rt.plural == "pods" && sub.first() == Some(&"proxy") {
        if let Some(name) = name {
            return pod_proxy::handle(c, method, ns, name, &sub[1..], q, headers, body).await;
        }
    }
    if rt.plural == "nodes" && sub.first() == Some(&"proxy") {
        if let Some(name) = name {
            return node_proxy::handle(c, method, name, &sub[1..], q).await;
        }
    }
    if rt.plural == "pods" && sub == ["log"] && *method == Method::GET {
        if let Some(name) = name {
            return pod_log(c, &rt, ns, name, q).await;
        }
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let builtin = c
        .registry
        .builtin_types(&rt.group, &rt.version)
        .iter()
        .any(|t| t.plural == rt.plural);
    let status_sub = match sub {
        [] => false,
        ["status"] if rt.status => true,
        _ => return st::unknown_resource(),
    };
    match (method.clone(), name) {
        (Method::GET, None) => {
            if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) {
                watch::serve(c.clone(), rt, ns, q)
            } else {
                list(c, &rt, ns, q)
            }
        }
        (Method::GET, Some(name)) => match c.store.get(&key(&rt), ns, name) {
            Some(obj) => json_response(200, &as_version(obj, &rt)),
            None => st::not_found(&rt, name),
        },
        (Method::POST, None) => create(c, &rt, ns, q, ct, builtin, &body),
        (Method::PUT, Some(name)) => update(c, &rt, ns, name, q, ct, builtin, &body, status_sub),
        (Method::PATCH, Some(name)) => {
            let media = wire::media_type(ct);
            if !wire::patch_types(builtin).contains(&media.as_str()) {
                // kubernetes/apiserver pkg/endpoints/handlers/patch.go@kubernetes-1.27.3
                return wire::unsupported(&wire::patch_types(builtin));
            }
            if media == "application/apply-patch+yaml" {
                apply(c, &rt, ns, name, q, &body)
            } else {
                let json_patch = media == "application/json-patch+json";
                merge_patch(c, &rt, ns, name, q, &body, status_sub, json_patch)
            }
        }
        (Method::DELETE, Some(name)) => match c.delete(&rt, ns, name) {
            Ok(obj) => json_response(200, &as_version(obj, &rt)),
            Err(_) => st::not_found(&rt, name),
        },
        _ => st::method_not_allowed(),
    }
}

/// `pods/<name>/log`: the real container's log for pods the data path runs (Prometheus); other
/// pods run nothing, so their log is empty. A missing pod is the usual NotFound.
async fn pod_log(
    c: &Cluster,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
) -> Response {
    if c.store.get(&key(rt), ns, name).is_none() {
        return st::not_found(rt, name);
    }
    let id = c
        .pod_containers
        .lock()
        .unwrap()
        .get(&format!("{ns}/{name}"))
        .cloned();
    let container = q
        .get("container")
        .map(String::as_str)
        .unwrap_or("prometheus");
    let text = match id {
        Some(id) if container == "prometheus" => tokio::process::Command::new("docker")
            .args(["logs", &id])
            .output()
            .await
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default(),
        _ => String::new(),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

fn list(c: &Cluster, rt: &ResourceType, ns: &str, q: &HashMap<String, String>) -> Response {
    let (labels, fields) = selector::from_query(q);
    let (items, rv) = c.store.list(&key(rt), (!ns.is_empty()).then_some(ns));
    let items: Vec<Value> = items
        .into_iter()
        .filter(|o| labels.matches_labels(o) && fields.matches_fields(o))
        .map(|o| as_version(o, rt))
        .collect();
    json_response(
        200,
        &json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.group_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        }),
    )
}

// The error is the API server's answer, returned as is.
#[allow(clippy::result_large_err)]
fn decode(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .map_err(|e| st::bad_request(&format!("error decoding request body: {e}")))
}

/// Namespaced writes need the namespace to exist (NamespaceLifecycle admission).
#[allow(clippy::result_large_err)]
fn check_namespace(c: &Cluster, rt: &ResourceType, ns: &str) -> Result<(), Response> {
    if rt.namespaced {
        let nsrt = c.registry.lookup("", "v1", "namespaces").unwrap();
        if c.store.get(&key(&nsrt), "", ns).is_none() {
            return Err(st::not_found(&nsrt, ns));
        }
    }
    Ok(())
}

fn store_error(e: StoreError, rt: &ResourceType, name: &str) -> Response {
    match e {
        StoreError::NotFound => st::not_found(rt, name),
        StoreError::AlreadyExists => st::already_exists(rt, name),
        StoreError::Conflict => st::conflict(rt, name),
    }
}

fn create(
    c: &Cluster,
    rt: &ResourceType,
    ns: &str,
    q: &HashMap<String, String>,
    ct: Option<&str>,
    builtin: bool,
    body: &[u8],
) -> Response {
    let mut obj = match wire::decode_object(rt, builtin, ct, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let warnings = match validation::check_write(c, rt, &mut obj, q, Write::Create) {
        Ok(w) => w,
        Err(r) => return r,
    };
    if let Err(r) = check_namespace(c, rt, ns) {
        return r;
    }
    if obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        match obj["metadata"]["generateName"].as_str() {
            Some(prefix) => obj["metadata"]["name"] = json!(format!("{prefix}{}", c.random_suffix())),
            None => return st::status(422, Some("Invalid"), &format!("{} \"\" is invalid: metadata.name: Required value: name or generateName is required", rt.kind), None),
        }
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match create_object(c, rt, ns, obj) {
        Ok(o) => with_warnings(json_response(201, &as_version(o, rt)), &warnings),
        Err(e) => store_error(e, rt, &name),
    }
}

#[allow(clippy::too_many_arguments)]
fn update(
    c: &Cluster,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
    ct: Option<&str>,
    builtin: bool,
    body: &[u8],
    status_sub: bool,
) -> Response {
    let mut obj = match wire::decode_object(rt, builtin, ct, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let warnings = match validation::check_write(c, rt, &mut obj, q, Write::Update) {
        Ok(w) => w,
        Err(r) => return r,
    };
    if obj["metadata"]["name"].as_str() != Some(name) {
        return st::bad_request(&format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            obj["metadata"]["name"].as_str().unwrap_or_default()
        ));
    }
    match c.update(rt, ns, obj, true, status_sub) {
        Ok(o) => with_warnings(json_response(200, &as_version(o, rt)), &warnings),
        Err(e) => store_error(e, rt, name),
    }
}

#[allow(clippy::too_many_arguments)]
fn merge_patch(
    c: &Cluster,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
    body: &[u8],
    status_sub: bool,
    json_patch: bool,
) -> Response {
    let patch = match decode(body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(mut obj) = c.store.get(&key(rt), ns, name) else {
        return st::not_found(rt, name);
    };
    if json_patch {
        // 422 Invalid: kubernetes/apiserver pkg/endpoints/handlers/patch.go@kubernetes-1.27.3 (applyJSPatch)
        if let Err(e) = patch::json_patch(&mut obj, &patch) {
            return st::status(422, Some("Invalid"), &e, None);
        }
    } else {
        patch::merge(&mut obj, &patch);
    }
    let warnings = match validation::check_write(c, rt, &mut obj, q, Write::Patch) {
        Ok(w) => w,
        Err(r) => return r,
    };
    match c.update(rt, ns, obj, false, status_sub) {
        Ok(o) => with_warnings(json_response(200, &as_version(o, rt)), &warnings),
        Err(e) => store_error(e, rt, name),
    }
}

/// Server-side apply (TWIN-FACTS §4).
fn apply(
    c: &Cluster,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
    body: &[u8],
) -> Response {
    let applied: Value = match std::str::from_utf8(body)
        .map_err(|e| e.to_string())
        .and_then(|text| e2e::yaml::from_str(text).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => return st::bad_request(&format!("error decoding YAML: {e}")),
    };
    let Some(manager) = q.get("fieldManager").filter(|m| !m.is_empty()) else {
        return status(
            422,
            Some("Invalid"),
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            None,
        );
    };
    let gv = rt.group_version();
    if applied["apiVersion"].as_str() != Some(gv.as_str()) {
        return st::bad_request(&format!(
            "Incorrect version specified in apply patch. Specified patch version: {}, expected: {gv}",
            applied["apiVersion"].as_str().unwrap_or_default()
        ));
    }
    if applied["metadata"].get("managedFields").is_some() {
        return st::bad_request("metadata.managedFields must be nil");
    }
    if applied["metadata"]["name"].as_str() != Some(name) {
        return st::bad_request(&format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            applied["metadata"]["name"].as_str().unwrap_or_default()
        ));
    }
    // Profile rule: list-map items without their key field (§4, 1.19 only).
    if let Some(msg) = c.profile.apply_missing_key_error(&applied) {
        return status(500, None, &msg, None);
    }
    // Fields the kind's schema does not declare fail the typed conversion (every profile).
    if let Err(r) = validation::check_apply(c, rt, &applied) {
        return r;
    }
    if let Err(r) = check_namespace(c, rt, ns) {
        return r;
    }
    let existing = c.store.get(&key(rt), ns, name);
    let entry = managed_entry(manager, &gv, &applied);
    let merged = merge_apply(existing.as_ref(), &applied, entry);
    let mut merged = as_version(merged, rt);
    validation::prune_stored(c, rt, &mut merged);
    if existing.is_some() {
        match c.update(rt, ns, merged, false, false) {
            Ok(o) => json_response(200, &as_version(o, rt)),
            Err(e) => store_error(e, rt, name),
        }
    } else {
        default_object(&mut merged, c.profile);
        match create_object(c, rt, ns, merged) {
            Ok(o) => json_response(201, &as_version(o, rt)),
            Err(e) => store_error(e, rt, name),
        }
    }
}

/// An API create: the store's create, then, for a CRD and by default, the naming controller at
/// once. Upstream's controller is informer-driven and acts within milliseconds (TWIN-FACTS §3),
/// so the create's answer still shows `"conditions": null`; every later read has them.
fn create_object(
    c: &Cluster,
    rt: &ResourceType,
    ns: &str,
    obj: Value,
) -> Result<Value, StoreError> {
    let out = c.create(rt, ns, obj)?;
    if rt.kind == "CustomResourceDefinition" && c.opts.timing.crd_names_accepted.is_zero() {
        crds::accept_names(c, &out);
    }
    Ok(out)
}
