//! Label and field selectors of list and watch requests
//! (kubernetes/apimachinery pkg/labels/selector.go@kubernetes-1.21.1,
//! kubernetes/apimachinery pkg/fields/selector.go@kubernetes-1.21.1), parsed here because kube 5's
//! `Selector` has no parser for the query's text. `LabelSelector` objects (`matchLabels`,
//! `matchExpressions`) are matched by the library's one model, `e2e::operator::selection`.

use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector` or `fieldSelector` query parameter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector(Vec<Req>);

/// Splits at commas outside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn set(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|v| v.trim().to_string())
        .collect()
}

impl Selector {
    pub fn parse(s: &str) -> Selector {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let p = part.trim();
            if let Some((k, v)) = p.split_once("!=") {
                reqs.push(Req::NotEq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once("==") {
                reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once('=') {
                reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once(" notin ") {
                reqs.push(Req::NotIn(k.trim().into(), set(v)));
            } else if let Some((k, v)) = p.split_once(" in ") {
                reqs.push(Req::In(k.trim().into(), set(v)));
            } else if let Some(k) = p.strip_prefix('!') {
                reqs.push(Req::NotExists(k.trim().into()));
            } else if !p.is_empty() {
                reqs.push(Req::Exists(p.into()));
            }
        }
        Selector(reqs)
    }

    /// `get(key)` looks a label (or field) up.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k).as_deref() == Some(v),
            Req::NotEq(k, v) => get(k).as_deref() != Some(v),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.contains(&x)),
            Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(&x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }

    pub fn matches_labels(&self, obj: &Value) -> bool {
        self.matches(|k| obj["metadata"]["labels"][k].as_str().map(String::from))
    }

    /// Field selectors: `metadata.name`, `metadata.namespace`, and dotted paths into the object
    /// (`spec.nodeName`, `status.phase`); a missing field compares as `""`.
    pub fn matches_fields(&self, obj: &Value) -> bool {
        self.matches(|k| {
            let mut v = obj;
            for part in k.split('.') {
                v = &v[part];
            }
            Some(match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
        })
    }
}

/// The `labelSelector` and `fieldSelector` of a list or watch request's query.
pub fn from_query(q: &HashMap<String, String>) -> (Selector, Selector) {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    (
        Selector::parse(get("labelSelector")),
        Selector::parse(get("fieldSelector")),
    )
}

/// A Service's plain `selector` map against pod labels (every pair must match; empty selects none,
/// as the endpoints controller skips selector-less Services).
pub fn map_selector_matches(sel: &Value, labels: &Value) -> bool {
    match sel.as_object() {
        Some(m) if !m.is_empty() => m.iter().all(|(k, v)| labels[k].as_str() == v.as_str()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_query_selectors_parse_labels_and_fields() {
        let q = HashMap::from([
            (
                "labelSelector".to_string(),
                "app=web,tier in (a,b),!legacy".to_string(),
            ),
            ("fieldSelector".to_string(), "spec.nodeName=n1".to_string()),
        ]);
        let (labels, fields) = from_query(&q);
        let pod = json!({"metadata": {"labels": {"app": "web", "tier": "b"}},
                         "spec": {"nodeName": "n1"}});
        assert!(labels.matches_labels(&pod));
        assert!(fields.matches_fields(&pod));
        let other = json!({"metadata": {"labels": {"app": "web", "tier": "b", "legacy": "y"}},
                           "spec": {"nodeName": "n2"}});
        assert!(!labels.matches_labels(&other));
        assert!(!fields.matches_fields(&other));
        let (all, none) = from_query(&HashMap::new());
        assert!(all.matches_labels(&other) && none.matches_fields(&other));
    }
}
