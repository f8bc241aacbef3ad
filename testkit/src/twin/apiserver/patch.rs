//! The non-apply patch types: JSON merge patch (RFC 7386; strategic merge patch is read the
//! same way: the twin's callers only patch maps and whole lists) and JSON patch (RFC 6902).
//! kubernetes/apiserver pkg/endpoints/handlers/patch.go@kubernetes-1.27.3 (jsonPatcher)

use serde_json::Value;

/// RFC 7386: `null` removes a key, objects merge, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// RFC 6901: `/a/b~1c/0` → `["a", "b/c", "0"]`.
fn pointer(p: &str) -> Result<Vec<String>, String> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let rest = p
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {p:?}"))?;
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn parent<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: /{}", path.join("/")))?;
    }
    Ok(cur)
}

fn remove_at(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let (last, up) = path.split_last().ok_or("cannot remove the root")?;
    match parent(doc, up)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("unable to remove nonexistent key: {last}")),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(format!("unable to remove index {last}")),
        },
        _ => Err("remove on a scalar".into()),
    }
}

fn add_at(doc: &mut Value, path: &[String], v: Value) -> Result<(), String> {
    let Some((last, up)) = path.split_last() else {
        *doc = v;
        return Ok(());
    };
    match parent(doc, up)? {
        Value::Object(m) => {
            m.insert(last.clone(), v);
            Ok(())
        }
        Value::Array(a) if last == "-" => {
            a.push(v);
            Ok(())
        }
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i <= a.len() => {
                a.insert(i, v);
                Ok(())
            }
            _ => Err(format!("add index {last} out of bounds")),
        },
        _ => Err("add on a scalar".into()),
    }
}

/// Applies an RFC 6902 patch (`add`, `remove`, `replace`, `move`, `copy`, `test`).
///
/// # Errors
/// The first operation that does not apply, in words like evanphx/json-patch's.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch is a list of operations")?;
    for op in ops {
        let path = pointer(op["path"].as_str().unwrap_or_default())?;
        match op["op"].as_str().unwrap_or_default() {
            "add" => add_at(doc, &path, op["value"].clone())?,
            "remove" => {
                remove_at(doc, &path)?;
            }
            "replace" => {
                remove_at(doc, &path)?;
                add_at(doc, &path, op["value"].clone())?;
            }
            "move" => {
                let from = pointer(op["from"].as_str().unwrap_or_default())?;
                let v = remove_at(doc, &from)?;
                add_at(doc, &path, v)?;
            }
            "copy" => {
                let from = pointer(op["from"].as_str().unwrap_or_default())?;
                let v = parent(doc, &from)?.clone();
                add_at(doc, &path, v)?;
            }
            "test" => {
                if *parent(doc, &path)? != op["value"] {
                    return Err(format!(
                        "testing value {} failed",
                        op["path"].as_str().unwrap_or_default()
                    ));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_operations_apply_in_order() {
        let mut doc = json!({"metadata": {"labels": {"a/b": "1"}}, "spec": {"l": [1, 2]}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "add", "path": "/spec/l/-", "value": 3},
                {"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"},
                {"op": "copy", "from": "/spec/l/0", "path": "/spec/first"},
                {"op": "remove", "path": "/spec/l/1"},
                {"op": "test", "path": "/spec/first", "value": 1}
            ]),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"metadata": {"labels": {"a/b": "2"}}, "spec": {"l": [1, 3], "first": 1}})
        );
        assert!(json_patch(&mut doc, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }
}
