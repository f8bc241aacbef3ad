//! Reading a stack's text: documents split at `---` so each mistake names its document, each one
//! parsed and checked to be a Kubernetes object, list kinds flattened as kubectl does.

use super::{Document, StackError};
use crate::k8s::manifests::ObjectIdent;
use serde_json::Value;
use std::path::Path;

/// The documents of one file: split at `---` lines so each mistake names its document, parsed
/// one by one; a list kind (`List`, as `kubectl get -o yaml` writes, or `RoleList`) gives its items.
pub(super) fn parse(file: &str, text: &str) -> Result<Vec<Document>, StackError> {
    let mut out = Vec::new();
    let mut index = 0;
    for (start_line, chunk) in split_documents(text) {
        let blank = chunk
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        if blank {
            continue;
        }
        let value: Value = match crate::yaml::from_str::<Option<Value>>(&chunk) {
            Ok(Some(v)) if !v.is_null() => v,
            Ok(_) => continue,
            Err(e) => {
                index += 1;
                return Err(StackError::NotYaml {
                    file: file.into(),
                    index,
                    line: start_line,
                    message: e.to_string(),
                });
            }
        };
        index += 1;
        let not_object = |what: String| StackError::NotAnObject {
            file: file.into(),
            index,
            what,
        };
        if value.get("kind").and_then(Value::as_str) == Some("Kustomization") {
            let dir = Path::new(file)
                .parent()
                .map(|p| p.display().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| ".".into());
            return Err(StackError::Kustomization {
                file: file.into(),
                dir,
            });
        }
        // kubectl flattens any list kind (`List`, `RoleList`, …: its `items`), as kube-prometheus's
        // per-namespace Roles need (kubectl `pkg/cmd/apply`, resource.Builder's FlattenListVisitor).
        let is_list = value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && value.get("items").is_some_and(Value::is_array);
        let items: Vec<Value> = if is_list {
            value["items"].as_array().cloned().unwrap_or_default()
        } else {
            vec![value]
        };
        for item in items {
            if !item.is_object() {
                return Err(not_object(format!(
                    "a YAML {}, not a mapping",
                    kind_of(&item)
                )));
            }
            let ident = ObjectIdent::of(&item)
                .map_err(|e| not_object(crate::errors::error_chain(e.as_ref())))?;
            if ident.name.is_empty() {
                return Err(not_object(format!(
                    "{} has an empty metadata.name",
                    ident.kind
                )));
            }
            out.push(Document {
                file: file.into(),
                index,
                value: item,
                ident,
            });
        }
    }
    Ok(out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "sequence",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        _ => "value",
    }
}

/// `(first line, text)` of each document: split at lines that start a document (`---`), the
/// end marker `...` dropped.
pub(super) fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---"
            || line.starts_with("--- ")
            || line.starts_with("---\t")
            || line.starts_with("--- #");
        if is_marker {
            out.push((start, std::mem::take(&mut current)));
            start = i + 2;
            // `--- value` puts content on the marker line.
            if let Some(rest) = line
                .strip_prefix("---")
                .map(str::trim)
                .filter(|r| !r.is_empty() && !r.starts_with('#'))
            {
                current.push_str(rest);
                current.push('\n');
                start = i + 1;
            }
            continue;
        }
        if line == "..." {
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    out.push((start, current));
    out
}
