//! Field validation of the API's writes, per profile: what the API server does with a field
//! its schema does not declare ([`super::schema`] finds them).
//!
//! - create, update, patch: before 1.25 unknown fields are dropped silently; from 1.25 (the
//!   1.27 profile) `fieldValidation=Ignore|Warn|Strict` decides (unset: `Warn`): dropped, dropped
//!   with a `Warning` header each, or refused with 400 BadRequest `strict decoding error`.
//! - server-side apply, every profile: a built-in's unknown field, or a custom resource's not
//!   preserved by its schema, fails structured-merge-diff's typed conversion: HTTP 500
//!   `failed to create typed patch object: .spec.foo: field not declared in schema`.
//!
//! Custom resources are pruned by their CRD's structural schema in every case.

use super::response::{bad_request, status};
use super::schema::{self, FieldPath};
use crate::twin::cluster::Cluster;
use crate::twin::storage::registry::ResourceType;
use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::Value;
use std::collections::HashMap;

/// How a write was sent, for the errors' wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// POST of a whole object.
    Create,
    /// PUT of a whole object.
    Update,
    /// A JSON, merge or strategic-merge patch.
    Patch,
}

impl Write {
    /// The options kind its query parameters decode into.
    fn options(self) -> &'static str {
        match self {
            Write::Create => "CreateOptions",
            Write::Update => "UpdateOptions",
            Write::Patch => "PatchOptions",
        }
    }
}

/// The CRD version schema of a custom resource type; `None` for built-ins.
fn cr_schema(c: &Cluster, rt: &ResourceType) -> Option<Value> {
    let crd = c.get(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "",
        &format!("{}.{}", rt.plural, rt.group),
    )?;
    schema::crd_version_schema(&crd, &rt.version)
}

/// The `fieldValidation` directive in force: always `Ignore` before server-side field
/// validation; `Warn` when unset; a value the API server does not know is a 422.
/// kubernetes/apimachinery pkg/apis/meta/v1/validation/validation.go@kubernetes-1.27.3 (ValidateFieldValidation)
#[allow(clippy::result_large_err)]
fn directive(c: &Cluster, q: &HashMap<String, String>, options: &str) -> Result<String, Response> {
    if !c.profile.server_side_field_validation() {
        return Ok("Ignore".into());
    }
    match q.get("fieldValidation").map(String::as_str) {
        None | Some("") => Ok("Warn".into()),
        Some(d @ ("Ignore" | "Warn" | "Strict")) => Ok(d.into()),
        Some(other) => Err(status(
            422,
            Some("Invalid"),
            &format!(
                "{options}.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ),
            None,
        )),
    }
}

/// Checks a create/update/patch body and drops its unknown fields (pruning custom resources),
/// returning the `Warning` header values to send, or the API server's refusal.
/// kubernetes/apiserver pkg/endpoints/handlers/create.go@kubernetes-1.27.3 (strict decoder,
/// transformDecodeError),
/// kubernetes/apiserver pkg/endpoints/handlers/patch.go@kubernetes-1.27.3;
/// kubernetes/apiextensions-apiserver pkg/apiserver/customresource_handler.go@kubernetes-1.27.3
#[allow(clippy::result_large_err)]
pub fn check_write(
    c: &Cluster,
    rt: &ResourceType,
    obj: &mut Value,
    q: &HashMap<String, String>,
    write: Write,
) -> Result<Vec<String>, Response> {
    let directive = directive(c, q, write.options())?;
    let cr = cr_schema(c, rt);
    let unknown: Vec<FieldPath> = match &cr {
        Some(s) => schema::prune(s, &mut obj.clone()),
        None => schema::builtin_unknown(&rt.group, &rt.kind, obj).unwrap_or_default(),
    };
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let errors: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field {:?}", p.json()))
        .collect();
    if directive == "Strict" {
        let strict = format!("strict decoding error: {}", errors.join(", "));
        return Err(bad_request(&match write {
            Write::Create | Write::Update => format!(
                "{kind} in version {:?} cannot be handled as a {kind}: {strict}",
                rt.version,
                kind = rt.kind
            ),
            Write::Patch => strict,
        }));
    }
    match &cr {
        Some(s) => {
            schema::prune(s, obj);
        }
        None => schema::remove(obj, &unknown),
    }
    Ok(if directive == "Warn" {
        errors
    } else {
        Vec::new()
    })
}

/// Server-side apply's typed conversion of the applied configuration: the first unknown field
/// of each object is an HTTP 500 without a reason (a plain Go error, §4).
#[allow(clippy::result_large_err)]
pub fn check_apply(c: &Cluster, rt: &ResourceType, applied: &Value) -> Result<(), Response> {
    let unknown = match cr_schema(c, rt) {
        Some(s) => schema::smd_unknown(&s, applied),
        None => schema::builtin_unknown(&rt.group, &rt.kind, applied).unwrap_or_default(),
    };
    let errors: Vec<String> = unknown
        .iter()
        .map(|p| format!("{}: field not declared in schema", p.smd()))
        .collect();
    // kubernetes-sigs/structured-merge-diff typed/helpers.go@v4.0.3 (ValidationErrors.Error)
    let text = match errors.as_slice() {
        [] => return Ok(()),
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    Err(status(
        500,
        None,
        &c.profile.typed_patch_error(applied, &text),
        None,
    ))
}

/// What an apply stores of a custom resource: pruned by its schema (unknown fields the
/// schema preserves stay).
pub fn prune_stored(c: &Cluster, rt: &ResourceType, obj: &mut Value) {
    if let Some(s) = cr_schema(c, rt) {
        schema::prune(&s, obj);
    }
}

/// Adds one `Warning: 299 - "<text>"` header per warning.
/// kubernetes/apiserver pkg/endpoints/filters/warning.go@kubernetes-1.27.3 (agent `-`),
/// kubernetes/apimachinery pkg/util/net/http.go@kubernetes-1.27.3 (NewWarningHeader)
pub fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - {w:?}")) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}
