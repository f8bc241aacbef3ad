//! The API server's answers: a JSON body ([`json_response`]) and its error answers, with their
//! real bodies and content types (TWIN-FACTS §2).

use crate::twin::storage::registry::ResourceType;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A JSON body with status `code`.
pub fn json_response(code: u16, v: &Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// A `Status` body (`application/json`); `reason`/`details` omitted when empty (§2).
pub fn status(code: u16, reason: Option<&str>, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
    });
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    if let Some(d) = details {
        body["details"] = d;
    }
    body["code"] = json!(code);
    let mut resp = (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if code == 403 {
        resp.headers_mut().insert(
            "X-Content-Type-Options",
            HeaderValue::from_static("nosniff"),
        );
    }
    resp
}

/// Go's `http.NotFound` for an unregistered path (§2a): plain text, not a Status.
pub fn plain_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        "404 page not found\n",
    )
        .into_response()
}

fn details(rt: &ResourceType, name: &str) -> Value {
    let mut d = json!({"name": name});
    if !rt.group.is_empty() {
        d["group"] = json!(rt.group);
    }
    d["kind"] = json!(rt.plural);
    d
}

/// 404 NotFound for a named object (§2b).
pub fn not_found(rt: &ResourceType, name: &str) -> Response {
    status(
        404,
        Some("NotFound"),
        &format!("{} \"{name}\" not found", rt.qualified()),
        Some(details(rt, name)),
    )
}

/// 404 for an unknown resource inside a built-in group/version (go-restful, §2a).
pub fn unknown_resource() -> Response {
    status(
        404,
        Some("NotFound"),
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

/// 409 AlreadyExists (§2c).
pub fn already_exists(rt: &ResourceType, name: &str) -> Response {
    status(
        409,
        Some("AlreadyExists"),
        &format!("{} \"{name}\" already exists", rt.qualified()),
        Some(details(rt, name)),
    )
}

/// 409 Conflict for a stale resourceVersion (§2c).
pub fn conflict(rt: &ResourceType, name: &str) -> Response {
    status(
        409,
        Some("Conflict"),
        &format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            rt.qualified()
        ),
        Some(details(rt, name)),
    )
}

/// 400 BadRequest.
pub fn bad_request(message: &str) -> Response {
    status(400, Some("BadRequest"), message, None)
}

/// 401 for a missing or unknown bearer token (`Unauthorized`, through the authentication filter:
/// kubernetes/apiserver pkg/endpoints/handlers/responsewriters@kubernetes-1.21.1).
pub fn unauthorized() -> Response {
    status(401, Some("Unauthorized"), "Unauthorized", None)
}

/// 405 for a verb the path does not support.
pub fn method_not_allowed() -> Response {
    status(
        405,
        Some("MethodNotAllowed"),
        "the server does not allow this method on the requested resource",
        None,
    )
}
