//! A pure simulator of Prometheus relabeling and of what a scrape does to a series' labels,
//! following Prometheus v2.26 `pkg/relabel/relabel.go` (rules), `scrape/target.go`
//! `populateLabels` (target labels) and `scrape/scrape.go` `mutateSampleLabels` (series labels).
//!
//! It runs on the scrape job [`crate::scrape_config::scrape_job`] generates, so what it says
//! about a ServiceMonitor is what the real Prometheus does with the operator's job.

use crate::scrape_config::{scrape_job, Discovery, ServiceMonitorSpec, Shard};
use md5::{Digest, Md5};
use regex::Regex;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// A label set, sorted by name as Prometheus keeps it. Empty values are absent labels.
pub type Labels = BTreeMap<String, String>;

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
    #[error("regex {regex:?} does not compile: {source}")]
    BadRegex {
        regex: String,
        source: Box<regex::Error>,
    },
    /// A rule Prometheus's `relabel.Config.UnmarshalYAML` refuses (the message says why).
    #[error("{0}")]
    Invalid(String),
    /// A job field of the wrong shape.
    #[error("{field}: expected {expected}")]
    Field {
        field: String,
        expected: &'static str,
    },
}

/// The seven relabel actions (relabel.go `Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
}

/// One relabel rule as Prometheus loads it: defaults filled in, regex anchored.
#[derive(Debug, Clone)]
pub struct Rule {
    pub action: Action,
    pub source_labels: Vec<String>,
    pub separator: String,
    /// `^(?:<regex>)$`, as relabel.go `NewRegexp` compiles it.
    pub regex: Regex,
    pub modulus: u64,
    pub target_label: String,
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

fn scalar(v: &Value) -> Option<String> {
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
        let m = v.as_mapping().ok_or_else(|| field("rule", "a mapping"))?;
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
            if !k.as_str().is_some_and(|k| known.contains(&k)) {
                return Err(RelabelError::Invalid(format!(
                    "relabel rule field {k:?} is not one Prometheus has ({})",
                    known.join(", ")
                )));
            }
        }
        let source_labels = match get("source_labels") {
            None => None,
            Some(Value::Sequence(s)) => Some(
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
                    let mut target = String::new();
                    caps.expand(&self.target_label, &mut target);
                    if !LABEL_NAME.is_match(&target) {
                        labels.remove(&self.target_label);
                    } else {
                        let mut res = String::new();
                        caps.expand(&self.replacement, &mut res);
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
                    if self.regex.is_match(&name) {
                        let res = self
                            .regex
                            .replace_all(&name, self.replacement.as_str())
                            .into_owned();
                        set(&mut labels, res, value);
                    }
                }
            }
            Action::LabelDrop => labels.retain(|name, _| !self.regex.is_match(name)),
            Action::LabelKeep => labels.retain(|name, _| self.regex.is_match(name)),
        }
        Some(labels)
    }
}

/// labels.Builder `Set`: an empty value deletes the label.
fn set(labels: &mut Labels, name: String, value: String) {
    if value.is_empty() {
        labels.remove(&name);
    } else {
        labels.insert(name, value);
    }
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
        Some(Value::Sequence(rules)) => rules
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
    Kept(Labels),
    /// Rule `rule_index` of the list dropped it; `rule` is [`Rule::quoted`].
    Dropped {
        rule_index: usize,
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

/// What discovery plus `relabel_configs` made of one discovered target (populateLabels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOutcome {
    /// The target's labels as Prometheus shows them (no `__`-prefixed labels), and its address.
    Kept { labels: Labels, address: String },
    /// `relabel_configs[rule_index]` dropped it.
    Dropped { rule_index: usize, rule: String },
    /// Prometheus discards the target with this error (no `__address__`, bad scheme).
    Invalid(String),
}

/// The parts of a scrape job that shape labels, compiled once for many series.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    pub job_name: String,
    pub honor_labels: bool,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub relabel_configs: Vec<Rule>,
    pub metric_relabel_configs: Vec<Rule>,
}

impl ScrapeJob {
    /// The job the operator generates for `spec` (kubernetes_sd, shard 0 as the reloader substitutes).
    ///
    /// # Errors
    ///
    /// A rule of the job Prometheus would refuse (only possible with hand-made relabelings).
    pub fn from_spec(spec: &ServiceMonitorSpec) -> Result<Self, RelabelError> {
        Self::from_job_yaml(&scrape_job(spec, &Discovery::Kubernetes, Shard::Number(0)))
    }

    /// A job from Prometheus configuration YAML (one `scrape_configs` entry, e.g. from
    /// `/api/v1/status/config`), with Prometheus's defaults for what it omits.
    ///
    /// # Errors
    ///
    /// A rule Prometheus would refuse, or a field of the wrong shape.
    pub fn from_job_yaml(job: &Value) -> Result<Self, RelabelError> {
        let str_field = |k: &str, default: &str| -> Result<String, RelabelError> {
            match job.get(k) {
                None | Some(Value::Null) => Ok(default.to_string()),
                Some(v) => scalar(v).ok_or(RelabelError::Field {
                    field: k.to_string(),
                    expected: "a string",
                }),
            }
        };
        let mut params = BTreeMap::new();
        if let Some(m) = job.get("params").and_then(Value::as_mapping) {
            for (k, vs) in m {
                let vs = vs
                    .as_sequence()
                    .map(|s| s.iter().filter_map(scalar).collect())
                    .unwrap_or_default();
                params.insert(scalar(k).unwrap_or_default(), vs);
            }
        }
        Ok(ScrapeJob {
            job_name: str_field("job_name", "")?,
            honor_labels: job
                .get("honor_labels")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            metrics_path: str_field("metrics_path", "/metrics")?,
            scheme: str_field("scheme", "http")?,
            params,
            relabel_configs: rules_from_yaml(job.get("relabel_configs"), "relabel_configs")?,
            metric_relabel_configs: rules_from_yaml(
                job.get("metric_relabel_configs"),
                "metric_relabel_configs",
            )?,
        })
    }

    /// target.go `populateLabels`: the discovered labels (`__address__`, `__meta_*`) through
    /// `relabel_configs`, then Prometheus's own defaults (`instance`, a default port).
    pub fn target(&self, discovered: &Labels) -> TargetOutcome {
        let mut lset = discovered.clone();
        for (name, value) in [
            ("job", &self.job_name),
            ("__metrics_path__", &self.metrics_path),
            ("__scheme__", &self.scheme),
        ] {
            if lset.get(name).is_none_or(String::is_empty) {
                set(&mut lset, name.to_string(), value.clone());
            }
        }
        for (k, vs) in &self.params {
            if let Some(v) = vs.first() {
                set(&mut lset, format!("__param_{k}"), v.clone());
            }
        }
        let mut lset = match process(lset, &self.relabel_configs) {
            Outcome::Kept(l) => l,
            Outcome::Dropped { rule_index, rule } => {
                return TargetOutcome::Dropped { rule_index, rule }
            }
        };
        let Some(mut addr) = lset.get("__address__").filter(|a| !a.is_empty()).cloned() else {
            return TargetOutcome::Invalid("no address".into());
        };
        if needs_port(&addr) {
            match lset.get("__scheme__").map(String::as_str).unwrap_or("") {
                "http" | "" => addr.push_str(":80"),
                "https" => addr.push_str(":443"),
                other => return TargetOutcome::Invalid(format!("invalid scheme: {other:?}")),
            }
            lset.insert("__address__".into(), addr.clone());
        }
        lset.retain(|k, _| !k.starts_with("__meta_"));
        if lset.get("instance").is_none_or(String::is_empty) {
            lset.insert("instance".into(), addr.clone());
        }
        // Target.Labels(): the `__`-prefixed labels stay internal.
        lset.retain(|k, _| !k.starts_with("__"));
        TargetOutcome::Kept {
            labels: lset,
            address: addr,
        }
    }

    /// scrape.go `mutateSampleLabels`: the target's labels merged into the series' per
    /// `honor_labels`, then `metric_relabel_configs`.
    pub fn series(&self, target: &Labels, series: &Labels) -> SeriesOutcome {
        process(
            self.merge_target(target, series),
            &self.metric_relabel_configs,
        )
    }

    /// The first half of `mutateSampleLabels`: the series' labels with the target's merged in
    /// (a clashing series label kept as `exported_<name>` unless `honor_labels`), before
    /// `metric_relabel_configs`.
    pub fn merge_target(&self, target: &Labels, series: &Labels) -> Labels {
        let mut lb = series.clone();
        for (name, value) in target {
            if self.honor_labels {
                if !series.contains_key(name) {
                    set(&mut lb, name.clone(), value.clone());
                }
            } else {
                if let Some(existing) = series.get(name).filter(|v| !v.is_empty()) {
                    lb.insert(format!("exported_{name}"), existing.clone());
                }
                set(&mut lb, name.clone(), value.clone());
            }
        }
        lb
    }
}

/// Go's `net.SplitHostPort` succeeding, for the shapes addresses take: `host:port`, `[v6]:port`.
fn splits_host_port(addr: &str) -> bool {
    match addr.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':') && !p[1..].contains(':')),
        None => addr.matches(':').count() == 1,
    }
}

/// target.go `addPort`: only an address without a port that becomes valid with one.
fn needs_port(addr: &str) -> bool {
    !splits_host_port(addr) && splits_host_port(&format!("{addr}:1234"))
}

/// One series through the job `spec` generates: `target` are the target's labels (as
/// [`ScrapeJob::target`] returns them, or `/api/v1/targets` shows them), `series` the labels
/// of a sample line as the kubelet exposes it (with `__name__`).
///
/// # Errors
///
/// A relabeling in `spec` Prometheus would refuse to load.
pub fn scrape_series(
    spec: &ServiceMonitorSpec,
    target: &Labels,
    series: &Labels,
) -> Result<SeriesOutcome, RelabelError> {
    Ok(ScrapeJob::from_spec(spec)?.series(target, series))
}

/// The label sets of `metric`'s samples in a Prometheus text exposition body (a kubelet's
/// `/metrics/cadvisor`), `__name__` included. Comments and other metrics are skipped; so are
/// lines that are not well-formed samples.
pub fn exposition_series<'a>(text: &'a str, metric: &'a str) -> impl Iterator<Item = Labels> + 'a {
    text.lines().filter_map(move |line| {
        let line = line.trim_start();
        let rest = line.strip_prefix(metric)?;
        if !(rest.starts_with('{') || rest.starts_with(char::is_whitespace)) {
            return None;
        }
        let mut labels = parse_label_block(rest)?;
        labels.insert("__name__".into(), metric.to_string());
        Some(labels)
    })
}

/// `{a="1",b="x\"y"} 3` → the labels (exposition escapes `\\`, `\"`, `\n`).
fn parse_label_block(rest: &str) -> Option<Labels> {
    let mut labels = Labels::new();
    let Some(body) = rest.strip_prefix('{') else {
        return Some(labels);
    };
    let mut chars = body.char_indices().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|(_, c)| *c == ',' || c.is_whitespace())
        {
            chars.next();
        }
        let (start, c) = chars.next()?;
        if c == '}' {
            return Some(labels);
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' {
                end = i;
                break;
            }
            chars.next();
        }
        let name = body[start..end].trim().to_string();
        chars.next(); // '='
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()?.1 {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        set(&mut labels, name, value);
    }
}

/// YAML flow style on one line; strings quoted unless plainly safe.
fn flow(v: &Value) -> String {
    match v {
        Value::Mapping(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", flow(k), flow(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Sequence(s) => format!("[{}]", s.iter().map(flow).collect::<Vec<_>>().join(", ")),
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
        Value::Tagged(t) => flow(&t.value),
    }
}

#[cfg(test)]
mod tests;
