//! Label and field selectors of list and watch requests (k/apimachinery `pkg/labels/selector.go`,
//! `pkg/fields/selector.go`), and `LabelSelector` objects (`matchLabels`, `matchExpressions`).

use serde_json::Value;

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

/// A `metav1.LabelSelector` object against a label map: `None` (nil) is handled by the caller;
/// `{}` matches everything.
pub fn label_selector_matches(sel: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels[k].as_str().map(String::from);
    if let Some(m) = sel["matchLabels"].as_object() {
        if !m.iter().all(|(k, v)| get(k).as_deref() == v.as_str()) {
            return false;
        }
    }
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let vals: Vec<String> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        let have = get(key);
        let ok = match e["operator"].as_str().unwrap_or_default() {
            "In" => have.is_some_and(|h| vals.contains(&h)),
            "NotIn" => have.is_none_or(|h| !vals.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// A Service's plain `selector` map against pod labels (every pair must match; empty selects none,
/// as the endpoints controller skips selector-less Services).
pub fn map_selector_matches(sel: &Value, labels: &Value) -> bool {
    match sel.as_object() {
        Some(m) if !m.is_empty() => m.iter().all(|(k, v)| labels[k].as_str() == v.as_str()),
        _ => false,
    }
}
