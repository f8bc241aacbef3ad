//! `e2e::relabel` against Prometheus v2.26.0 `pkg/relabel/relabel_test.go` (and the cases
//! v2.42.0's `model/relabel/relabel_test.go` adds).

use super::{cases, load, name, Report};
use e2e::relabel::{process, Labels, Outcome, RelabelError, Rule};
use e2e::yaml::Value;

#[test]
fn relabeling_matches_relabel_test_go() {
    let data = load("relabel/relabel_test.yaml");
    let mut report = Report::default();
    for case in cases(&data) {
        let name = name(case);
        let outcome = if name.starts_with("TestRelabel[") {
            relabel(case)
        } else if name.starts_with("TestTargetLabelValidity[") {
            target_label_validity(case).map(|()| true)
        } else {
            Err("no runner for this test".into())
        };
        match outcome {
            Ok(true) => report.pass(name),
            Ok(false) => report.out(name),
            Err(why) => report.fail(name, why),
        }
    }
    // TestRelabel: 20 cases at v2.26.0 (19 pass, 1 refused by the loader) and 5 added in v2.42.0
    // (refused: 2.26 has no such actions); TestTargetLabelValidity: 15.
    report.finish("relabel", 19 + 15, 1 + 5);
}

fn labels(v: &Value) -> Result<Labels, String> {
    let m = v.as_object().ok_or("labels must be a mapping")?;
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!("label {k}: {other} is not a string")),
        })
        .collect()
}

/// Ok(true): in scope and as upstream says; Ok(false): refused as the data says.
fn relabel(case: &Value) -> Result<bool, String> {
    let input = labels(&case["input"])?;
    let written = case["relabel"].as_array().ok_or("`relabel` is a list")?;
    let mut rules = Vec::new();
    let mut refusal = None;
    for (i, r) in written.iter().enumerate() {
        match Rule::from_yaml(r) {
            Ok(rule) => rules.push(rule),
            Err(e) => {
                refusal = Some((i, e));
                break;
            }
        }
    }
    match (case.get("refused"), refusal) {
        (None, None) => {}
        (None, Some((i, e))) => return Err(format!("the model refuses rule {i}: {e}")),
        (Some(want), None) => return Err(format!("the model accepts every rule; expected {want}")),
        (Some(want), Some((i, e))) => {
            let message = want["message"].as_str().unwrap_or_default();
            if Some(i as u64) != want["rule"].as_u64()
                || variant(&e) != want["error"]
                || !e.to_string().contains(message)
            {
                return Err(format!(
                    "refused rule {i} as {} ({e}); expected rule {} as {} saying {message:?}",
                    variant(&e),
                    want["rule"],
                    want["error"]
                ));
            }
            return Ok(false);
        }
    }
    let got = process(input, &rules);
    let want = match &case["output"] {
        Value::String(s) if s == "drop" => None,
        v => Some(labels(v)?),
    };
    match (got, want) {
        (Outcome::Kept(got), Some(want)) if got == want => Ok(true),
        (Outcome::Dropped { .. }, None) => Ok(true),
        (got, want) => Err(format!(
            "upstream: {}; ours: {got:?}",
            want.map_or("dropped".to_string(), |w| format!("{w:?}"))
        )),
    }
}

/// relabel.go `relabelTarget`, as the loader applies it: a replace rule's `target_label`.
fn target_label_validity(case: &Value) -> Result<(), String> {
    let target = case["target_label"]
        .as_str()
        .ok_or("`target_label` is a string")?;
    let valid = case["valid"].as_bool().ok_or("`valid` is a bool")?;
    let rule: Value = serde_json::json!({"source_labels": ["a"], "target_label": target});
    match (Rule::from_yaml(&rule), valid) {
        (Ok(_), true) => Ok(()),
        (Err(e), false)
            if e.to_string()
                == format!("{target:?} is invalid 'target_label' for replace action") =>
        {
            Ok(())
        }
        (Ok(_), false) => Err("upstream: invalid; the model accepts it".into()),
        (Err(e), _) => Err(format!(
            "upstream: {}; the model: {e}",
            if valid { "valid" } else { "invalid" }
        )),
    }
}

fn variant(e: &RelabelError) -> &'static str {
    match e {
        RelabelError::UnknownAction(_) => "UnknownAction",
        RelabelError::BadRegex { .. } => "BadRegex",
        RelabelError::Invalid(_) => "Invalid",
        RelabelError::Field { .. } => "Field",
    }
}
