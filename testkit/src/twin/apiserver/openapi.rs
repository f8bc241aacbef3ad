//! The OpenAPI documents kubectl reads before it writes, on profiles with server-side field
//! validation (1.25+, so 1.27): `/openapi/v3` (the group/version index), `/openapi/v3/<gv>`
//! and `/openapi/v2` (kubectl 1.27 downloads it eagerly, as protobuf). Each lists, per kind
//! the twin serves, the PATCH operation with its `x-kubernetes-group-version-kind` and its
//! query parameters, `fieldValidation` among them: that is how kubectl decides to leave
//! validation to the server (`fieldValidation=Strict`), which [`super::validation`] does.
//!
//! Not served: the component schemas (`definitions`). kubectl only reads them for client-side
//! validation, which it does when the server lacks `fieldValidation` (the 1.19 and 1.21
//! profiles, where these documents 404 as a whole and `--validate=false` is needed), and for
//! `kubectl explain` and client-side `apply` (use `--server-side`). README, "What it does not
//! model".

use super::response::plain_not_found;
use crate::twin::cluster::Cluster;
use crate::twin::storage::registry::ResourceType;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// kubectl's Accept for `/openapi/v2` (the deprecated spelling), and the type the API server
/// answers with for it.
/// kubernetes/kube-openapi pkg/handler/handler.go@8b0f38b5fd1f (subTypeProtobuf*)
const V2_PROTOBUF_ACCEPTED: [&str; 2] = [
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
];
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The PATCH query parameters of every resource (the API server's PatchOptions).
/// kubernetes/apiserver pkg/endpoints/installer.go@kubernetes-1.27.3 (addObjectParams)
const PATCH_PARAMS: [(&str, &str); 4] = [
    ("dryRun", "When present, indicates that modifications should not be persisted."),
    ("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
    ("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict"),
    ("force", "Force is going to \"force\" Apply requests."),
];

/// Every kind the API serves now, by group/version: built-ins, then Established CRDs.
fn kinds(c: &Cluster) -> Vec<((String, String), Vec<ResourceType>)> {
    let mut out: Vec<((String, String), Vec<ResourceType>)> = Vec::new();
    let mut gvs: Vec<(String, String)> = Vec::new();
    for (g, vs) in
        std::iter::once((String::new(), vec!["v1".to_string()])).chain(c.registry.groups())
    {
        for v in vs {
            gvs.push((g.clone(), v));
        }
    }
    for (g, v) in gvs {
        let mut types = c.registry.builtin_types(&g, &v);
        types.extend(c.registry.established_types(&g, &v));
        if !types.is_empty() {
            out.push(((g, v), types));
        }
    }
    out
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn item_path(rt: &ResourceType) -> String {
    let base = format!("/{}", gv_path(&rt.group, &rt.version));
    if rt.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
    } else {
        format!("{base}/{}/{{name}}", rt.plural)
    }
}

fn operation_id(rt: &ResourceType) -> String {
    let group = rt
        .group
        .split('.')
        .next()
        .filter(|g| !g.is_empty())
        .unwrap_or("core");
    let cap = |s: &str| {
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    format!(
        "patch{}{}{}{}",
        cap(group),
        cap(&rt.version),
        if rt.namespaced { "Namespaced" } else { "" },
        rt.kind
    )
}

/// One group/version's OpenAPI v3 document (paths only).
fn v3_document(c: &Cluster, types: &[ResourceType]) -> Value {
    let mut paths = Map::new();
    for rt in types {
        let params: Vec<Value> = PATCH_PARAMS
            .iter()
            .map(|(name, description)| {
                json!({"name": name, "in": "query", "description": description,
                       "schema": {"type": if *name == "force" { "boolean" } else { "string" }, "uniqueItems": true}})
            })
            .collect();
        paths.insert(
            item_path(rt),
            json!({"patch": {
                "description": format!("partially update the specified {}", rt.kind),
                "operationId": operation_id(rt),
                "parameters": params,
                "responses": {"200": {"description": "OK"}, "201": {"description": "Created"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": rt.group, "kind": rt.kind, "version": rt.version},
            }}),
        );
    }
    json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": c.profile.git_version()},
           "paths": paths, "components": {}})
}

/// `GET /openapi/v3[/<gv>]`; `None` when the profile has no such endpoint (plain 404).
/// kubernetes/kube-openapi pkg/handler3/handler.go@8b0f38b5fd1f (the index and `?hash=`)
pub fn v3(c: &Cluster, rest: &[&str]) -> Response {
    if !c.profile.server_side_field_validation() {
        return plain_not_found();
    }
    let all = kinds(c);
    if rest.is_empty() {
        let mut paths = Map::new();
        for ((g, v), types) in &all {
            let doc = v3_document(c, types);
            let hash = hex_upper(&Sha256::digest(doc.to_string().as_bytes()));
            let p = gv_path(g, v);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
        }
        return json_response(200, &json!({"paths": paths}));
    }
    let want = rest.join("/");
    match all.iter().find(|((g, v), _)| gv_path(g, v) == want) {
        Some((_, types)) => json_response(200, &v3_document(c, types)),
        None => plain_not_found(),
    }
}

/// A JSON answer (built here: the router imports this module, not the other way round).
fn json_response(code: u16, v: &Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

// The subset of gnostic's OpenAPI v2 messages the twin writes, with their field numbers.
// google/gnostic openapiv2/OpenAPIv2.proto@v0.7.0
#[derive(Clone, PartialEq, prost::Message)]
struct Document {
    #[prost(string, tag = "1")]
    swagger: String,
    #[prost(message, optional, tag = "2")]
    info: Option<Info>,
    #[prost(message, optional, tag = "8")]
    paths: Option<Paths>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct Info {
    #[prost(string, tag = "1")]
    title: String,
    #[prost(string, tag = "2")]
    version: String,
}
#[derive(Clone, PartialEq, prost::Message)]
struct Paths {
    #[prost(message, repeated, tag = "2")]
    path: Vec<NamedPathItem>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct NamedPathItem {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    value: Option<PathItem>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct PathItem {
    #[prost(message, optional, tag = "8")]
    patch: Option<Operation>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct Operation {
    #[prost(string, tag = "3")]
    description: String,
    #[prost(string, tag = "5")]
    operation_id: String,
    #[prost(message, repeated, tag = "8")]
    parameters: Vec<ParametersItem>,
    #[prost(message, repeated, tag = "13")]
    vendor_extension: Vec<NamedAny>,
}
/// `oneof { Parameter parameter = 1; … }`
#[derive(Clone, PartialEq, prost::Message)]
struct ParametersItem {
    #[prost(message, optional, tag = "1")]
    parameter: Option<Parameter>,
}
/// `oneof { BodyParameter = 1; NonBodyParameter non_body_parameter = 2; }`
#[derive(Clone, PartialEq, prost::Message)]
struct Parameter {
    #[prost(message, optional, tag = "2")]
    non_body_parameter: Option<NonBodyParameter>,
}
/// `oneof { …; QueryParameterSubSchema query_parameter_sub_schema = 3; … }`
#[derive(Clone, PartialEq, prost::Message)]
struct NonBodyParameter {
    #[prost(message, optional, tag = "3")]
    query_parameter_sub_schema: Option<QueryParameterSubSchema>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct QueryParameterSubSchema {
    #[prost(string, tag = "2")]
    r#in: String,
    #[prost(string, tag = "3")]
    description: String,
    #[prost(string, tag = "4")]
    name: String,
    #[prost(string, tag = "6")]
    r#type: String,
    #[prost(bool, tag = "20")]
    unique_items: bool,
}
#[derive(Clone, PartialEq, prost::Message)]
struct NamedAny {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    value: Option<AnyYaml>,
}
/// `Any { google.protobuf.Any value = 1; string yaml = 2; }`
#[derive(Clone, PartialEq, prost::Message)]
struct AnyYaml {
    #[prost(string, tag = "2")]
    yaml: String,
}

fn v2_document(c: &Cluster) -> Document {
    let mut path = Vec::new();
    for (_, types) in kinds(c) {
        for rt in types {
            let parameters = PATCH_PARAMS
                .iter()
                .map(|(name, description)| ParametersItem {
                    parameter: Some(Parameter {
                        non_body_parameter: Some(NonBodyParameter {
                            query_parameter_sub_schema: Some(QueryParameterSubSchema {
                                r#in: "query".into(),
                                description: (*description).into(),
                                name: (*name).into(),
                                r#type: if *name == "force" {
                                    "boolean"
                                } else {
                                    "string"
                                }
                                .into(),
                                unique_items: true,
                            }),
                        }),
                    }),
                })
                .collect();
            let gvk = format!(
                "group: {:?}\nkind: {}\nversion: {}\n",
                rt.group, rt.kind, rt.version
            );
            path.push(NamedPathItem {
                name: item_path(&rt),
                value: Some(PathItem {
                    patch: Some(Operation {
                        description: format!("partially update the specified {}", rt.kind),
                        operation_id: operation_id(&rt),
                        parameters,
                        vendor_extension: vec![
                            NamedAny {
                                name: "x-kubernetes-action".into(),
                                value: Some(AnyYaml {
                                    yaml: "patch\n".into(),
                                }),
                            },
                            NamedAny {
                                name: "x-kubernetes-group-version-kind".into(),
                                value: Some(AnyYaml { yaml: gvk }),
                            },
                        ],
                    }),
                }),
            });
        }
    }
    Document {
        swagger: "2.0".into(),
        info: Some(Info {
            title: "Kubernetes".into(),
            version: c.profile.git_version().into(),
        }),
        paths: Some(Paths { path }),
    }
}

/// `GET /openapi/v2`: protobuf when asked for (kubectl), JSON otherwise.
/// kubernetes/kube-openapi pkg/handler/handler.go@8b0f38b5fd1f
pub fn v2(c: &Cluster, headers: &HeaderMap) -> Response {
    if !c.profile.server_side_field_validation() {
        return plain_not_found();
    }
    let doc = v2_document(c);
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if V2_PROTOBUF_ACCEPTED.iter().any(|t| accept.contains(t)) {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, V2_PROTOBUF)],
            doc.encode_to_vec(),
        )
            .into_response();
    }
    let paths: Map<String, Value> = doc
        .paths
        .unwrap_or_default()
        .path
        .into_iter()
        .map(|p| {
            let op = p.value.and_then(|v| v.patch).unwrap_or_default();
            let params: Vec<Value> = op
                .parameters
                .iter()
                .filter_map(|i| {
                    let q = i.parameter.as_ref()?.non_body_parameter.as_ref()?.query_parameter_sub_schema.as_ref()?;
                    Some(json!({"name": q.name, "in": q.r#in, "description": q.description, "type": q.r#type, "uniqueItems": true}))
                })
                .collect();
            let gvk = op
                .vendor_extension
                .iter()
                .find(|e| e.name == "x-kubernetes-group-version-kind")
                .and_then(|e| e.value.as_ref())
                .map(|v| v.yaml.clone())
                .unwrap_or_default();
            let gvk: Value = e2e::yaml::from_str(&gvk).unwrap_or_default();
            (
                p.name,
                json!({"patch": {"description": op.description, "operationId": op.operation_id,
                                 "parameters": params, "x-kubernetes-action": "patch",
                                 "x-kubernetes-group-version-kind": gvk}}),
            )
        })
        .collect();
    json_response(
        200,
        &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": c.profile.git_version()},
                "paths": paths}),
    )
}
