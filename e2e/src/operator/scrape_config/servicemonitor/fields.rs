//! Small typed readers for a ServiceMonitor's fields; each error names the field's path.

use super::error::{Result, ServiceMonitorError};
use crate::yaml::{Mapping, Value};

pub(super) fn mapping<'a>(v: &'a Value, at: &str) -> Result<&'a Mapping> {
    v.as_object()
        .ok_or_else(|| invalid(at.into(), "a mapping", v))
}

pub(super) fn sequence<'a>(v: &'a Value, at: &str) -> Result<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| invalid(at.into(), "a list", v))
}

pub(super) fn known_keys(m: &Mapping, at: &str, known: &[&str]) -> Result<()> {
    for k in m.keys() {
        if !known.contains(&k.as_str()) {
            let key = k.clone();
            return Err(ServiceMonitorError::Unknown {
                path: if at.is_empty() {
                    key
                } else {
                    format!("{at}.{key}")
                },
                known: known.join(", "),
            });
        }
    }
    Ok(())
}

pub(super) fn present(m: &Mapping, key: &str) -> bool {
    m.get(key).is_some_and(|v| !v.is_null())
}

pub(super) fn opt_str(m: &Mapping, path: &str) -> Result<Option<String>> {
    let key = path.rsplit('.').next().unwrap_or(path);
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(path.into(), "a string", other)),
    }
}

pub(super) fn required_str(m: &Mapping, path: &str, why: &'static str) -> Result<String> {
    opt_str(m, path)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing(path, why))
}

pub(super) fn opt_bool(m: &Mapping, path: &str) -> Result<Option<bool>> {
    let key = path.rsplit('.').next().unwrap_or(path);
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(path.into(), "true or false", other)),
    }
}

pub(super) fn opt_u64(m: &Mapping, path: &str) -> Result<Option<u64>> {
    let key = path.rsplit('.').next().unwrap_or(path);
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(path.into(), "a non-negative integer", v)),
    }
}

pub(super) fn opt_strs(m: &Mapping, path: &str) -> Result<Option<Vec<String>>> {
    let key = path.rsplit('.').next().unwrap_or(path);
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => strings(v, path).map(Some),
    }
}

pub(super) fn strings(v: &Value, path: &str) -> Result<Vec<String>> {
    sequence(v, path)?
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.as_str()
                .map(String::from)
                .ok_or_else(|| invalid(format!("{path}[{i}]"), "a string", s))
        })
        .collect()
}

pub(super) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

pub(super) fn expect_exact(v: &Value, path: &str, want: &str) -> Result<()> {
    if v.as_str() == Some(want) {
        Ok(())
    } else {
        Err(invalid(path.into(), &format!("{want:?}"), v))
    }
}

pub(super) fn invalid(path: String, expected: &str, found: &Value) -> ServiceMonitorError {
    let found = serde_json::to_string(found).unwrap_or_else(|_| format!("{found:?}"));
    ServiceMonitorError::Invalid {
        path,
        expected: expected.to_string(),
        found,
    }
}

pub(super) fn missing(path: &str, why: &'static str) -> ServiceMonitorError {
    ServiceMonitorError::Missing {
        path: path.to_string(),
        why,
    }
}

pub(super) fn unsupported(path: String, why: &'static str) -> ServiceMonitorError {
    ServiceMonitorError::Unsupported { path, why }
}
