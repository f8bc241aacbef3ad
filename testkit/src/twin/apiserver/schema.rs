//! Schema enforcement: which fields of a written object the API server does not know.
//!
//! - Built-in kinds: the object is round-tripped through k8s-openapi's type for its kind; every
//!   key the type drops is unknown. k8s-openapi's types are Kubernetes 1.33's, so a field added
//!   after a profile's version is still accepted there (a simplification); a value of the wrong
//!   type makes the round trip fail and is not checked.
//! - Custom resources: the CRD version's `openAPIV3Schema`, read two ways, as upstream does:
//!   [`smd_unknown`] for server-side apply (structured-merge-diff's typed conversion: an unknown
//!   field is an error unless `x-kubernetes-preserve-unknown-fields` holds there or above) and
//!   [`prune`] for everything stored (structural pruning drops unknown fields unless that very
//!   node preserves them).
//!
//! Paths are kept as segments and rendered in each upstream's form: [`FieldPath::smd`]
//! (`.spec.containers[name="c"].foo`) and [`FieldPath::json`] (`spec.containers[0].foo`).

use serde_json::{Map, Value};

/// One step of a path into an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A map key.
    Field(String),
    /// A list item: its index and, when it has one, its `name` (the usual list-map key).
    Item(usize, Option<String>),
}

/// Where an unknown field is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    fn with(&self, seg: Seg) -> FieldPath {
        let mut v = self.0.clone();
        v.push(seg);
        FieldPath(v)
    }

    /// structured-merge-diff's `fieldpath.Path.String()`: `.spec.containers[name="c"].foo`; an item
    /// without a `name` is shown by index (the twin does not know each list's type).
    /// kubernetes-sigs/structured-merge-diff fieldpath/element.go@v4.0.3
    pub fn smd(&self) -> String {
        self.0
            .iter()
            .map(|s| match s {
                Seg::Field(f) => format!(".{f}"),
                Seg::Item(_, Some(name)) => format!("[name={name:?}]"),
                Seg::Item(i, None) => format!("[{i}]"),
            })
            .collect()
    }

    /// sigs.k8s.io/json's strict-decoding path: `spec.containers[0].foo`.
    /// kubernetes-sigs/json internal/golang/encoding/json/kubernetes_patch.go@cfa47c3
    pub fn json(&self) -> String {
        let mut out = String::new();
        for s in &self.0 {
            match s {
                Seg::Field(f) if out.is_empty() => out.push_str(f),
                Seg::Field(f) => {
                    out.push('.');
                    out.push_str(f);
                }
                Seg::Item(i, _) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

fn item_seg(i: usize, item: &Value) -> Seg {
    Seg::Item(i, item["name"].as_str().map(String::from))
}

/// Every key of `sent` (with a non-null value) that `kept` lacks, walking both together.
fn dropped(sent: &Value, kept: &Value, at: &FieldPath, out: &mut Vec<FieldPath>) {
    match (sent, kept) {
        (Value::Object(s), Value::Object(k)) => {
            for (key, v) in s {
                if v.is_null() {
                    continue;
                }
                let p = at.with(Seg::Field(key.clone()));
                match k.get(key) {
                    Some(kv) => dropped(v, kv, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(s), Value::Array(k)) => {
            for (i, (sv, kv)) in s.iter().zip(k).enumerate() {
                dropped(sv, kv, &at.with(item_seg(i, sv)), out);
            }
        }
        _ => {}
    }
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(obj: &Value) -> Option<Value> {
    let typed: T = serde_json::from_value(obj.clone()).ok()?;
    serde_json::to_value(typed).ok()
}

/// The unknown fields of a built-in object (`kind` of `group`), or `None` when the twin has no
/// type for the kind or the object does not decode into it (then nothing is checked).
pub fn builtin_unknown(group: &str, kind: &str, obj: &Value) -> Option<Vec<FieldPath>> {
    use k8s_openapi::api::{
        apps::v1 as apps, batch::v1 as batch, core::v1 as core, rbac::v1 as rbac,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    let kept = match (group, kind) {
        ("", "Namespace") => round_trip::<core::Namespace>(obj),
        ("", "Node") => round_trip::<core::Node>(obj),
        ("", "Pod") => round_trip::<core::Pod>(obj),
        ("", "Service") => round_trip::<core::Service>(obj),
        ("", "Endpoints") => round_trip::<core::Endpoints>(obj),
        ("", "ServiceAccount") => round_trip::<core::ServiceAccount>(obj),
        ("", "Secret") => round_trip::<core::Secret>(obj),
        ("", "ConfigMap") => round_trip::<core::ConfigMap>(obj),
        ("", "Event") => round_trip::<core::Event>(obj),
        ("apps", "Deployment") => round_trip::<apps::Deployment>(obj),
        ("apps", "StatefulSet") => round_trip::<apps::StatefulSet>(obj),
        ("apps", "ReplicaSet") => round_trip::<apps::ReplicaSet>(obj),
        ("apps", "DaemonSet") => round_trip::<apps::DaemonSet>(obj),
        ("batch", "Job") => round_trip::<batch::Job>(obj),
        ("rbac.authorization.k8s.io", "ClusterRole") => round_trip::<rbac::ClusterRole>(obj),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            round_trip::<rbac::ClusterRoleBinding>(obj)
        }
        ("rbac.authorization.k8s.io", "Role") => round_trip::<rbac::Role>(obj),
        ("rbac.authorization.k8s.io", "RoleBinding") => round_trip::<rbac::RoleBinding>(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            round_trip::<apiext::CustomResourceDefinition>(obj)
        }
        _ => None,
    }?;
    let mut out = Vec::new();
    dropped(obj, &kept, &FieldPath::default(), &mut out);
    Some(out)
}

/// The unknown fields of `metadata` (ObjectMeta), for custom resources.
fn metadata_unknown(meta: &Value, at: &FieldPath, out: &mut Vec<FieldPath>) {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    if let Some(kept) = round_trip::<ObjectMeta>(meta) {
        dropped(meta, &kept, at, out);
    }
}

fn preserves(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"] == true
}

/// structured-merge-diff's view of a custom resource against its CRD version's schema, for
/// server-side apply: a key the schema does not declare is an error, unless
/// `x-kubernetes-preserve-unknown-fields` is set on that object or on any object above it (the
/// flag is inherited by inlined types); the first unknown key of each object is reported (the
/// walk of that object stops there).
/// kubernetes/kube-openapi pkg/schemaconv/smd.go@6aeccd4b50c6 (VisitKind, makeRef),
/// kubernetes-sigs/structured-merge-diff typed/validate.go@v4.0.3 (visitMapItems)
pub fn smd_unknown(schema: &Value, obj: &Value) -> Vec<FieldPath> {
    let mut out = Vec::new();
    let root = obj.as_object().cloned().unwrap_or_default();
    // The root's apiVersion/kind/metadata are ObjectMeta-typed (apiextensions BuildSwagger).
    let mut rest = Map::new();
    for (k, v) in root {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => metadata_unknown(&v, &FieldPath(vec![Seg::Field(k)]), &mut out),
            _ => {
                rest.insert(k, v);
            }
        }
    }
    smd_walk(
        schema,
        &Value::Object(rest),
        false,
        &FieldPath::default(),
        &mut out,
    );
    out
}

fn smd_walk(schema: &Value, v: &Value, inherited: bool, at: &FieldPath, out: &mut Vec<FieldPath>) {
    let preserve = inherited || preserves(schema);
    match v {
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if props.is_none() && additional.is_none() {
                // No declared fields: an untyped map, anything goes (kube-openapi parseMap).
                return;
            }
            for (k, child) in m {
                let p = at.with(Seg::Field(k.clone()));
                match props.and_then(|ps| ps.get(k)) {
                    Some(s) => smd_walk(s, child, preserve, &p, out),
                    None => match additional {
                        Some(s) => smd_walk(s, child, preserve, &p, out),
                        None if preserve => {}
                        None => {
                            out.push(p);
                            return;
                        }
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    smd_walk(s, item, preserve, &at.with(item_seg(i, item)), out);
                }
            }
        }
        _ => {}
    }
}

/// Structural pruning of a custom resource: drops every field its CRD version's schema does
/// not declare, unless that node has `x-kubernetes-preserve-unknown-fields` (not inherited:
/// declared fields below are pruned again); the root's `apiVersion`, `kind` and `metadata` stay.
/// Returns the pruned paths.
/// kubernetes/apiextensions-apiserver pkg/apiserver/schema/pruning/algorithm.go@kubernetes-1.21.1
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<FieldPath> {
    let mut out = Vec::new();
    prune_walk(Some(schema), obj, true, &FieldPath::default(), &mut out);
    out
}

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn prune_walk(
    schema: Option<&Value>,
    v: &mut Value,
    embedded_root: bool,
    at: &FieldPath,
    out: &mut Vec<FieldPath>,
) {
    let preserve = schema.is_some_and(preserves);
    let embedded =
        embedded_root || schema.is_some_and(|s| s["x-kubernetes-embedded-resource"] == true);
    match v {
        Value::Object(m) => {
            let props = schema.and_then(|s| s["properties"].as_object());
            let additional = schema
                .and_then(|s| s.get("additionalProperties"))
                .filter(|a| a.is_object());
            let mut drop = Vec::new();
            for (k, child) in m.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let p = at.with(Seg::Field(k.clone()));
                match (props.and_then(|ps| ps.get(k)), additional) {
                    (Some(s), _) | (None, Some(s)) => prune_walk(Some(s), child, false, &p, out),
                    (None, None) if preserve => {}
                    (None, None) => {
                        drop.push(k.clone());
                        out.push(p);
                    }
                }
            }
            for k in drop {
                m.remove(&k);
            }
        }
        Value::Array(items) => {
            let item_schema = schema
                .and_then(|s| s.get("items"))
                .filter(|s| s.is_object());
            if preserve && item_schema.is_none() {
                return;
            }
            for (i, item) in items.iter_mut().enumerate() {
                let seg = item_seg(i, item);
                prune_walk(item_schema, item, false, &at.with(seg), out);
            }
        }
        _ => {}
    }
}

/// Removes the fields at `paths` from `obj` (what a decoder that ignores unknown fields keeps).
pub fn remove(obj: &mut Value, paths: &[FieldPath]) {
    for path in paths {
        remove_one(obj, &path.0);
    }
}

fn remove_one(v: &mut Value, segs: &[Seg]) {
    match segs {
        [Seg::Field(f)] => {
            if let Some(m) = v.as_object_mut() {
                m.remove(f);
            }
        }
        [first, rest @ ..] => {
            let next = match first {
                Seg::Field(f) => v.get_mut(f.as_str()),
                Seg::Item(i, _) => v.get_mut(*i),
            };
            if let Some(n) = next {
                remove_one(n, rest);
            }
        }
        [] => {}
    }
}

/// A CRD's `openAPIV3Schema` for `version`, if it has one.
pub fn crd_version_schema(crd: &Value, version: &str) -> Option<Value> {
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == version)?
        .pointer("/schema/openAPIV3Schema")
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smd(paths: &[FieldPath]) -> Vec<String> {
        paths.iter().map(FieldPath::smd).collect()
    }

    #[test]
    fn a_misspelt_builtin_field_is_found_at_its_path_in_both_forms() {
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labelz": {}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
              "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always",
                  "ports": [{"containerPort": 80, "protcol": "TCP"}]}]}}}});
        let unknown = builtin_unknown("apps", "Deployment", &dep).unwrap();
        assert_eq!(
            smd(&unknown),
            [
                ".metadata.labelz",
                ".spec.template.spec.containers[name=\"c\"].ports[0].protcol"
            ]
        );
        assert_eq!(
            unknown[1].json(),
            "spec.template.spec.containers[0].ports[0].protcol"
        );
        let mut pruned = dep.clone();
        remove(&mut pruned, &unknown);
        assert_eq!(builtin_unknown("apps", "Deployment", &pruned), Some(vec![]));
        assert_eq!(pruned["spec"]["replicas"], 1);
    }

    #[test]
    fn the_harness_objects_round_trip_without_loss() {
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "n", "labels": {}, "creationTimestamp": null},
            "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 9090, "targetPort": "web"}]}});
        assert_eq!(builtin_unknown("", "Service", &svc), Some(vec![]));
        assert_eq!(builtin_unknown("example.com", "Widget", &svc), None);
    }

    const SCHEMA: &str = r#"{"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "replicas": {"type": "integer"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                     "properties": {"inner": {"type": "object", "properties": {"x": {"type": "string"}}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}}}}"#;

    #[test]
    fn ssa_refuses_undeclared_fields_unless_preserved_at_or_above() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let cr = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namspace": "x"},
            "spec": {"replicas": 1, "replcas": 2, "labels": {"any": "thing"},
                     "free": {"anything": 1, "inner": {"y": 1}},
                     "items": [{"name": "a", "nmae": "b"}]}});
        // The walk of `spec` stops at its first unknown key, as structured-merge-diff's does.
        assert_eq!(
            smd(&smd_unknown(&schema, &cr)),
            [".metadata.namspace", ".spec.replcas"]
        );
        let mut cr = cr;
        cr["spec"].as_object_mut().unwrap().remove("replcas");
        assert_eq!(
            smd(&smd_unknown(&schema, &cr)),
            [".metadata.namspace", ".spec.items[name=\"a\"].nmae"]
        );
    }

    #[test]
    fn pruning_drops_undeclared_fields_and_keeps_preserved_ones() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let mut cr = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w"}, "top": 1,
            "spec": {"replicas": 1, "replcas": 2,
                     "free": {"anything": 1, "inner": {"x": "k", "y": 1}},
                     "items": [{"name": "a", "nmae": "b"}]}});
        let pruned: Vec<String> = prune(&schema, &mut cr)
            .iter()
            .map(FieldPath::json)
            .collect();
        assert_eq!(
            pruned,
            [
                "top",
                "spec.replcas",
                "spec.free.inner.y",
                "spec.items[0].nmae"
            ]
        );
        assert_eq!(
            cr,
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                   "spec": {"replicas": 1, "free": {"anything": 1, "inner": {"x": "k"}},
                            "items": [{"name": "a"}]}})
        );
    }
}
