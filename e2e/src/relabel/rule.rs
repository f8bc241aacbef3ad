//! Relabel rules as Prometheus loads and applies them (prometheus/prometheus
//! pkg/relabel/relabel.go@v2.26.0): defaults, checks, the seven actions, `Process`.

use super::labels::{set, Labels};
use crate::yaml::Value;
use md5::{Digest, Md5};
use regex::Regex;
use std::sync::LazyLock;

/// Why a relabel rule or a scrape job cannot be simulated (Prometheus would refuse it too).
#[derive(Debug, thiserror::Error)]
pub enum RelabelError {
    /// `action` is none of Prometheus's seven.
    #[error(
        "unknown relabel action {0:?}; Prometheus knows replace, keep, drop, hashmod, labelmap, \
         labeldrop and labelkeep"
    )]
    UnknownAction(String),
    /// The regex does not compile.
    #[error("regex {regex:?} does not compile")]
    BadRegex {
        /// The regex as written.
        regex: String,
        /// Why it does not compile.
        source: Box<regex::Error>,
    },
    /// A rule Prometheus's `relabel.Config.UnmarshalYAML` refuses (the message says why).
    #[error("{0}")]
    Invalid(String),
    /// A job field of the wrong shape.
    #[error("{field}: expected {expected}")]
    Field {
        /// The field, e.g. `modulus`.
        field: String,
        /// What it must be.
        expected: &'static str,
    },
}

/// The seven relabel actions (relabel.go `Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Sets `target_label` to the expanded `replacement` when `regex` matches.
    Replace,
    /// Drops the set unless `regex` matches the joined source labels.
    Keep,
    /// Drops the set when `regex` matches the joined source labels.
    Drop,
    /// Sets `target_label` to the md5 of the joined source labels modulo `modulus`.
    HashMod,
    /// Copies labels whose names match `regex` to the expanded `replacement` names.
    LabelMap,
    /// Removes labels whose names match `regex`.
    LabelDrop,
    /// Removes labels whose names do not match `regex`.
    LabelKeep,
}

/// One relabel rule as Prometheus loads it: defaults filled in, regex anchored.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `action`.
    pub action: Action,
    /// `source_labels`.
    pub source_labels: Vec<String>,
    /// `separator` (default `;`).
    pub separator: String,
    /// `^(?:<regex>)$`, as relabel.go `NewRegexp` compiles it.
    pub regex: Regex,
    /// `modulus` (hashmod only).
    pub modulus: u64,
    /// `target_label`.
    pub target_label: String,
    /// `replacement` (default `$1`).
    pub replacement: String,
    quoted: String,
}

/// relabel.go `relabelTarget`: a target label may hold `$1`/`${name}` references.
static RELABEL_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").expect("relabel.go's regex")
});
/// model.LabelName `IsValid`.
static LABEL_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z_][a-zA-Z0-9_]*$").expect("label name regex"));

pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Rule {
    /// A rule from its Prometheus-config form (`source_labels`, `regex`, …), with
    /// relabel.go's defaults (`DefaultRelabelConfig`) and checks (`UnmarshalYAML`).
    ///
    /// # Errors
    ///
    /// [`RelabelError`] when Prometheus would refuse the rule: unknown action, regex that does
    /// not compile, missing `target_label` for replace/hashmod, zero modulus for hashmod, extra
    /// fields on labeldrop/labelkeep, wrong field types.
    pub fn from_yaml(v: &Value) -> Result<Rule, RelabelError> {
        let field = |name: &str, expected| RelabelError::Field {
            field: name.to_string(),
            expected,
        };
        let m = v.as_object().ok_or_else(|| field("rule", "a mapping"))?;
        let get = |k: &str| m.get(k).filter(|v| !v.is_null());
        let string = |k: &str| -> Result<Option<String>, RelabelError> {
            get(k)
                .map(|v| scalar(v).ok_or_else(|| field(k, "a string")))
                .transpose()
        };
        for k in m.keys() {
            let known = [
                "source_labels",
                "separator",
                "regex",
                "modulus",
                "target_label",
                "replacement",
                "action",
            ];
            if !known.contains(&k.as_str()) {
                return Err(RelabelError::Invalid(format!(
                    "relabel rule field {k:?} is not one Prometheus has ({})",
                    known.join(", ")
                )));
            }
        }
        let source_labels = match get("source_labels") {
            None => None,
            Some(Value::Array(s)) => Some(
                s.iter()
                    .map(|l| scalar(l).ok_or_else(|| field("source_labels", "a list of strings")))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(field("source_labels", "a list of strings")),
        };
        let separator = string("separator")?;
        let target_label = string("target_label")?.unwrap_or_default();
        let replacement = string("replacement")?;
        let modulus = match get("modulus") {
            None => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| field("modulus", "a non-negative integer"))?,
        };
        // relabel.go `Action.UnmarshalYAML`: case-insensitive.
        let action = match string("action")?.map(|a| a.to_lowercase()).as_deref() {
            None | Some("replace") => Action::Replace,
            Some("keep") => Action::Keep,
            Some("drop") => Action::Drop,
            Some("hashmod") => Action::HashMod,
            Some("labelmap") => Action::LabelMap,
            Some("labeldrop") => Action::LabelDrop,
            Some("labelkeep") => Action::LabelKeep,
            Some(_) => {
                return Err(RelabelError::UnknownAction(
                    string("action")?.unwrap_or_default(),
                ))
            }
        };
        // relabel.go: default `(.*)`; a null regex is the empty one.
        let regex_src = match m.get("regex") {
            None => "(.*)".to_string(),
            Some(Value::Null) => String::new(),
            Some(v) => scalar(v).ok_or_else(|| field("regex", "a string"))?,
        };
        let regex =
            Regex::new(&format!("^(?:{regex_src})$")).map_err(|e| RelabelError::BadRegex {
                regex: regex_src.clone(),
                source: Box::new(e),
            })?;
        let name = format!("{action:?}").to_lowercase();
        let invalid = |msg: String| Err(RelabelError::Invalid(msg));
        if modulus == 0 && action == Action::HashMod {
            return invalid("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(action, Action::Replace | Action::HashMod) && target_label.is_empty() {
            return invalid(format!(
                "relabel configuration for {name} action requires 'target_label' value"
            ));
        }
        if action == Action::Replace && !RELABEL_TARGET.is_match(&target_label) {
            return invalid(format!(
                "{target_label:?} is invalid 'target_label' for {name} action"
            ));
        }
        let replacement_or_default = replacement.clone().unwrap_or_else(|| "$1".into());
        if action == Action::LabelMap && !RELABEL_TARGET.is_match(&replacement_or_default) {
            return invalid(format!(
                "{replacement_or_default:?} is invalid 'replacement' for {name} action"
            ));
        }
        if action == Action::HashMod && !LABEL_NAME.is_match(&target_label) {
            return invalid(format!(
                "{target_label:?} is invalid 'target_label' for {name} action"
            ));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (source_labels.is_some()
                || !target_label.is_empty()
                || modulus != 0
                || separator.as_deref().is_some_and(|s| s != ";")
                || replacement.as_deref().is_some_and(|r| r != "$1"))
        {
            return invalid(format!(
                "{name} action requires only 'regex', and no other fields"
            ));
        }
        Ok(Rule {
            action,
            source_labels: source_labels.unwrap_or_default(),
            separator: separator.unwrap_or_else(|| ";".into()),
            regex,
            modulus,
            target_label,
            replacement: replacement_or_default,
            quoted: flow(v),
        })
    }

    /// The rule as one line of YAML flow style, as it stands in the job
    /// (`{source_labels: [__name__], regex: "container_.*", action: drop}`).
    pub fn quoted(&self) -> &str {
        &self.quoted
    }

    /// Applies the rule (relabel.go `relabel`); `None` when it drops the label set.
    pub fn apply(&self, mut labels: Labels) -> Option<Labels> {
        let val = self
            .source_labels
            .iter()
            .map(|l| labels.get(l).map(String::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&self.separator);
        match self.action {
            Action::Drop => {
                if self.regex.is_match(&val) {
                    return None;
                }
            }
            Action::Keep => {
                if !self.regex.is_match(&val) {
                    return None;
                }
            }
            Action::Replace => {
                // No match: no replacement takes place.
                if let Some(caps) = self.regex.captures(&val) {
                    let target = expand(&self.target_label, &caps);
                    if !LABEL_NAME.is_match(&target) {
                        labels.remove(&self.target_label);
                    } else {
                        let res = expand(&self.replacement, &caps);
                        if res.is_empty() {
                            labels.remove(&self.target_label);
                        } else {
                            labels.insert(target, res);
                        }
                    }
                }
            }
            Action::HashMod => {
                let m = sum64(&Md5::digest(val.as_bytes())) % self.modulus;
                labels.insert(self.target_label.clone(), m.to_string());
            }
            Action::LabelMap => {
                let names: Vec<(String, String)> =
                    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                for (name, value) in names {
                    // ReplaceAllString with an anchored regex: at most one match, the whole name.
                    if let Some(caps) = self.regex.captures(&name) {
                        set(&mut labels, expand(&self.replacement, &caps), value);
                    }
                }
            }
            Action::LabelDrop => labels.retain(|name, _| !self.regex.is_match(name)),
            Action::LabelKeep => labels.retain(|name, _| self.regex.is_match(name)),
        }
        Some(labels)
    }
}

/// Go's `Regexp.Expand` of a template (`$1`, `${1}`, `$name`, `${name}`, `$$`), which relabel.go
/// applies to `target_label` and `replacement` (golang/go src/regexp/regexp.go@go1.16 `expand`,
/// `extract`; Prometheus v2.26.0 is built with Go 1.16). It differs from the regex crate's
/// `Captures::expand`: a name is Unicode letters, digits and `_` (braced too, else the `$` is
/// literal: `${a-b}` stays as written), an empty `${}` is literal, and a number with a leading
/// zero (`$01`) is a name, so it expands to nothing.
fn expand(template: &str, caps: &regex::Captures<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let (braced, body) = match rest.strip_prefix('{') {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let len: usize = body
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .map(char::len_utf8)
            .sum();
        let closed = !braced || body[len..].starts_with('}');
        if len == 0 || !closed {
            // Malformed: the `$` is literal text.
            out.push('$');
            continue;
        }
        let name = &body[..len];
        rest = &body[len + usize::from(braced)..];
        // All digits and no leading zero: a group number (one too large to parse matches no
        // group either way).
        let number = (name.bytes().all(|b| b.is_ascii_digit())
            && !(name.starts_with('0') && name.len() > 1))
            .then(|| name.parse::<usize>().ok())
            .flatten();
        let group = match number {
            Some(n) => caps.get(n),
            None => caps.name(name),
        };
        if let Some(m) = group {
            out.push_str(m.as_str());
        }
    }
    out.push_str(rest);
    out
}

/// relabel.go `sum64`: the MD5 as a big-endian integer; Go's shifts past 63 bits yield 0, so
/// only the last eight bytes count.
fn sum64(hash: &[u8]) -> u64 {
    let mut last = [0u8; 8];
    last.copy_from_slice(&hash[hash.len() - 8..]);
    u64::from_be_bytes(last)
}

/// Rules from a job's `relabel_configs`/`metric_relabel_configs` list (absent or null: none).
///
/// # Errors
///
/// The first rule Prometheus would refuse, with its index in the message.
pub fn rules_from_yaml(list: Option<&Value>, field: &str) -> Result<Vec<Rule>, RelabelError> {
    match list {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(rules)) => rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Rule::from_yaml(r).map_err(|e| RelabelError::Invalid(format!("{field}[{i}]: {e}")))
            })
            .collect(),
        Some(_) => Err(RelabelError::Field {
            field: field.to_string(),
            expected: "a list of relabel rules",
        }),
    }
}

/// What a list of rules did to a label set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The labels after every rule.
    Kept(Labels),
    /// Rule `rule_index` of the list dropped it; `rule` is [`Rule::quoted`].
    Dropped {
        /// Index in the list.
        rule_index: usize,
        /// The rule, one line of YAML.
        rule: String,
    },
}

/// relabel.go `Process`: the rules in order, stopping at the first that drops.
pub fn process(labels: Labels, rules: &[Rule]) -> Outcome {
    let mut labels = labels;
    for (i, r) in rules.iter().enumerate() {
        match r.apply(labels) {
            Some(l) => labels = l,
            None => {
                return Outcome::Dropped {
                    rule_index: i,
                    rule: r.quoted().to_string(),
                }
            }
        }
    }
    Outcome::Kept(labels)
}

/// What a scrape did to one series (mutateSampleLabels).
pub type SeriesOutcome = Outcome;

/// YAML flow style on one line; strings quoted unless plainly safe.
fn flow(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", flow(&Value::from(k.as_str())), flow(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(s) => format!("[{}]", s.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::String(s) => {
            static PLAIN: LazyLock<Regex> =
                LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_./-]*$").expect("plain"));
            let reserved = ["true", "false", "null", "yes", "no", "on", "off", "y", "n"];
            if PLAIN.is_match(s) && !reserved.contains(&s.to_lowercase().as_str()) {
                s.clone()
            } else {
                serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
            }
        }
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
    }
}
