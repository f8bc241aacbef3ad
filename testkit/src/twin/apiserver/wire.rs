//! Request bodies as the API server reads them: the media type picks the decoder (JSON, YAML,
//! or Kubernetes protobuf for built-in kinds), an empty `Content-Type` means JSON, anything else
//! is a 415 naming the accepted types.
//!
//! Protobuf (`application/vnd.kubernetes.protobuf`, what kubectl's typed clients send, e.g.
//! `kubectl create namespace`): the 4-byte magic `k8s\0`, then a `runtime.Unknown` whose `raw`
//! holds the object's message. The twin stores JSON, so it converts the kinds kubectl's
//! `create <kind>` generators send it (Namespace, ConfigMap, Secret, ServiceAccount); another
//! built-in kind in protobuf is answered with a 415 that names this gap (README).

use super::response::status;
use crate::twin::storage::registry::ResourceType;
use axum::response::Response;
use base64::Engine;
use k8s_pb::api::core::v1 as pb;
use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use prost::Message;
use serde_json::{json, Map, Value};

/// The protobuf media type.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The magic prefix of every Kubernetes protobuf body.
/// kubernetes/apimachinery pkg/runtime/serializer/protobuf/protobuf.go@kubernetes-1.27.3
const MAGIC: &[u8] = b"k8s\x00";

/// The media types the API server decodes for `rt`: custom resources have no protobuf.
/// kubernetes/apiextensions-apiserver pkg/apiserver/customresource_handler.go@kubernetes-1.27.3
/// (unstructuredNegotiatedSerializer)
fn accepted(builtin: bool) -> Vec<&'static str> {
    if builtin {
        vec!["application/json", "application/yaml", PROTOBUF]
    } else {
        vec!["application/json", "application/yaml"]
    }
}

/// 415 UnsupportedMediaType with the accepted list.
/// kubernetes/apiserver pkg/endpoints/handlers/negotiation/errors.go@kubernetes-1.27.3
pub fn unsupported(accepted: &[&str]) -> Response {
    status(
        415,
        Some("UnsupportedMediaType"),
        &format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            accepted.join(", ")
        ),
        None,
    )
}

/// The media type without parameters, lowercased.
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Decodes a create/update body of `rt` (`builtin`: a built-in kind).
/// kubernetes/apiserver pkg/endpoints/handlers/negotiation/negotiate.go@kubernetes-1.27.3
/// (NegotiateInputSerializerForMediaType: an empty type is the first, JSON)
#[allow(clippy::result_large_err)]
pub fn decode_object(
    rt: &ResourceType,
    builtin: bool,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Value, Response> {
    let bad =
        |e: String| super::response::bad_request(&format!("error decoding request body: {e}"));
    match media_type(content_type).as_str() {
        "" | "application/json" => serde_json::from_slice(body).map_err(|e| bad(e.to_string())),
        "application/yaml" => std::str::from_utf8(body)
            .map_err(|e| e.to_string())
            .and_then(|t| e2e::yaml::from_str(t).map_err(|e| e.to_string()))
            .map_err(bad),
        PROTOBUF if builtin => from_protobuf(rt, body),
        _ => Err(unsupported(&accepted(builtin))),
    }
}

/// The patch media types of `rt`: strategic merge only for built-ins.
/// kubernetes/apiserver pkg/endpoints/installer.go@kubernetes-1.27.3 (supportedTypes),
/// kubernetes/apiextensions-apiserver pkg/apiserver/customresource_handler.go@kubernetes-1.27.3
pub fn patch_types(builtin: bool) -> Vec<&'static str> {
    let mut t = vec![
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    if builtin {
        t.push("application/strategic-merge-patch+json");
    }
    t.push("application/apply-patch+yaml");
    t
}

#[allow(clippy::result_large_err)]
fn from_protobuf(rt: &ResourceType, body: &[u8]) -> Result<Value, Response> {
    let bad =
        |e: String| super::response::bad_request(&format!("error decoding request body: {e}"));
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]".into()))?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(rest)
        .map_err(|e| bad(e.to_string()))?;
    let raw = unknown.raw.unwrap_or_default();
    let tm = unknown.type_meta.unwrap_or_default();
    let api_version = tm.api_version.unwrap_or_else(|| rt.group_version());
    let kind = tm.kind.unwrap_or_else(|| rt.kind.clone());
    let dec = |e: prost::DecodeError| bad(e.to_string());
    let (meta, mut obj) = match (rt.group.as_str(), kind.as_str()) {
        ("", "Namespace") => {
            let ns = pb::Namespace::decode(raw.as_slice()).map_err(dec)?;
            let mut o = json!({});
            if let Some(f) = ns.spec.map(|s| s.finalizers).filter(|f| !f.is_empty()) {
                o["spec"] = json!({"finalizers": f});
            }
            (ns.metadata, o)
        }
        ("", "ConfigMap") => {
            let cm = pb::ConfigMap::decode(raw.as_slice()).map_err(dec)?;
            let mut o = json!({});
            if !cm.data.is_empty() {
                o["data"] = json!(cm.data);
            }
            if !cm.binary_data.is_empty() {
                o["binaryData"] = bytes_map(&cm.binary_data);
            }
            if let Some(i) = cm.immutable {
                o["immutable"] = json!(i);
            }
            (cm.metadata, o)
        }
        ("", "Secret") => {
            let s = pb::Secret::decode(raw.as_slice()).map_err(dec)?;
            let mut o = json!({});
            if !s.data.is_empty() {
                o["data"] = bytes_map(&s.data);
            }
            if !s.string_data.is_empty() {
                o["stringData"] = json!(s.string_data);
            }
            if let Some(t) = s.r#type {
                o["type"] = json!(t);
            }
            if let Some(i) = s.immutable {
                o["immutable"] = json!(i);
            }
            (s.metadata, o)
        }
        ("", "ServiceAccount") => {
            let sa = pb::ServiceAccount::decode(raw.as_slice()).map_err(dec)?;
            let mut o = json!({});
            if let Some(a) = sa.automount_service_account_token {
                o["automountServiceAccountToken"] = json!(a);
            }
            (sa.metadata, o)
        }
        _ => {
            return Err(status(
                415,
                Some("UnsupportedMediaType"),
                &format!(
                    "the twin decodes protobuf only for Namespace, ConfigMap, Secret and ServiceAccount, not {kind}: send application/json (the API server accepts protobuf for every built-in kind; a gap of the twin, see its README)"
                ),
                None,
            ))
        }
    };
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    obj["metadata"] = meta_json(meta.unwrap_or_default());
    Ok(obj)
}

fn bytes_map(m: &std::collections::BTreeMap<String, Vec<u8>>) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), json!(b64.encode(v))))
            .collect(),
    )
}

/// The ObjectMeta fields a client sets on create (server-set ones are ignored by the API server
/// anyway: `rest.WipeObjectMetaSystemFields`).
fn meta_json(m: ObjectMeta) -> Value {
    let mut o = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            o.insert(k.into(), json!(v));
        }
    };
    put("name", m.name);
    put("generateName", m.generate_name);
    put("namespace", m.namespace);
    put("resourceVersion", m.resource_version);
    if !m.labels.is_empty() {
        o.insert("labels".into(), json!(m.labels));
    }
    if !m.annotations.is_empty() {
        o.insert("annotations".into(), json!(m.annotations));
    }
    if !m.finalizers.is_empty() {
        o.insert("finalizers".into(), json!(m.finalizers));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns_rt() -> ResourceType {
        crate::twin::storage::registry::builtins()
            .into_iter()
            .find(|t| t.kind == "Namespace")
            .unwrap()
    }

    /// What kubectl's typed client sends for `kubectl create namespace foo`.
    fn protobuf_namespace(name: &str) -> Vec<u8> {
        let ns = pb::Namespace {
            metadata: Some(ObjectMeta {
                name: Some(name.into()),
                labels: [("a".to_string(), "b".to_string())].into(),
                ..Default::default()
            }),
            spec: Some(Default::default()),
            status: Some(Default::default()),
        };
        let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some("v1".into()),
                kind: Some("Namespace".into()),
            }),
            raw: Some(ns.encode_to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC.to_vec(), unknown.encode_to_vec()].concat()
    }

    #[test]
    fn a_protobuf_namespace_decodes_to_its_json() {
        let v = decode_object(&ns_rt(), true, Some(PROTOBUF), &protobuf_namespace("foo")).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "foo", "labels": {"a": "b"}}})
        );
    }

    #[test]
    fn unknown_media_types_are_415_with_the_accepted_list() {
        let resp = decode_object(&ns_rt(), true, Some("text/plain"), b"x").unwrap_err();
        assert_eq!(resp.status().as_u16(), 415);
        let resp = decode_object(&ns_rt(), false, Some(PROTOBUF), b"x").unwrap_err();
        assert_eq!(resp.status().as_u16(), 415);
        assert!(decode_object(&ns_rt(), true, None, br#"{"a":1}"#).is_ok());
        assert!(decode_object(&ns_rt(), true, Some("application/yaml"), b"a: 1\n").is_ok());
    }
}
