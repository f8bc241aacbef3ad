//! `e2e::discovery` against Prometheus v2.26.0 `discovery/kubernetes/endpoints_test.go`.

use super::{cases, load, name, Report};
use e2e::discovery::endpoints_targets;
use e2e::yaml::{Mapping, Value};

#[test]
fn endpoints_discovery_matches_endpoints_test_go() {
    let data = load("discovery/endpoints_test.yaml");
    let mut report = Report::default();
    for case in cases(&data) {
        let name = name(case);
        match run(case) {
            Ok(true) => report.pass(name),
            Ok(false) => report.out(name),
            Err(why) => report.fail(name, why),
        }
    }
    // Eight tests at v2.26.0; Delete is about the deletion event, the caller's part.
    report.finish("discovery", 7, 1);
}

/// The objects discovery knows at the end of the test: `objects`, then `steps` in order.
fn objects(case: &Value) -> Result<Vec<Value>, String> {
    let mut store: Vec<Value> = case["objects"].as_array().cloned().unwrap_or_default();
    let key = |o: &Value| {
        (
            o["kind"].clone(),
            o["metadata"]["namespace"].clone(),
            o["metadata"]["name"].clone(),
        )
    };
    for step in case["steps"].as_array().into_iter().flatten() {
        let (verb, obj) = step
            .as_object()
            .and_then(|m| m.iter().next())
            .ok_or("a step is {create|update|delete: object}")?;
        let at = store.iter().position(|o| key(o) == key(obj));
        match (verb.as_str(), at) {
            ("create", None) => store.push(obj.clone()),
            ("update", Some(i)) => store[i] = obj.clone(),
            ("delete", Some(i)) => {
                store.remove(i);
            }
            (verb, _) => return Err(format!("cannot {verb} {:?}", key(obj))),
        }
    }
    let namespaces: Vec<&Value> = case["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    store.retain(|o| namespaces.is_empty() || namespaces.contains(&&o["metadata"]["namespace"]));
    Ok(store)
}

/// Ok(true): every group as upstream expects; Ok(false): out of scope, and why holds.
fn run(case: &Value) -> Result<bool, String> {
    let store = objects(case)?;
    let of_kind = |kind: &'static str| store.iter().filter(move |o| o["kind"] == kind);
    let pods: Vec<Value> = of_kind("Pod").cloned().collect();
    let expected = case["expected"]
        .as_object()
        .ok_or("`expected` maps sources to groups")?;
    if let Some(not_modelled) = case.get("not_modelled") {
        // Deletion: upstream's group for a source whose Endpoints object is gone.
        let gone = expected
            .keys()
            .all(|source| !of_kind("Endpoints").any(|ep| source_of(ep) == *source));
        if !gone || not_modelled["why"].as_str().is_none_or(str::is_empty) {
            return Err(format!("`not_modelled` must say why, and only a deleted object's group is out of scope: {not_modelled}"));
        }
        return Ok(false);
    }
    let mut failures = Vec::new();
    let ours: Vec<String> = of_kind("Endpoints").map(source_of).collect();
    for source in &ours {
        if !expected.contains_key(source) {
            failures.push(format!(
                "{source}: upstream expects no group, the model gives one"
            ));
        }
    }
    for (source, group) in expected {
        let Some(ep) = of_kind("Endpoints").find(|ep| source_of(ep) == *source) else {
            failures.push(format!("{source}: no Endpoints object for it"));
            continue;
        };
        let service = of_kind("Service").find(|s| {
            s["metadata"]["namespace"] == ep["metadata"]["namespace"]
                && s["metadata"]["name"] == ep["metadata"]["name"]
        });
        let got = endpoints_targets(ep, service, &pods);
        let group_labels = group["labels"].as_object().cloned().unwrap_or_default();
        let want: Vec<Mapping> = group["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                // Prometheus merges the group's labels into each target; the target's win.
                let mut merged = group_labels.clone();
                merged.extend(t.as_object().cloned().unwrap_or_default());
                merged
            })
            .collect();
        if got.len() != want.len() {
            failures.push(format!(
                "{source}: upstream {} targets, the model {}: {:#?}",
                want.len(),
                got.len(),
                got.iter().map(|t| &t.address).collect::<Vec<_>>()
            ));
            continue;
        }
        for (i, (got, mut want)) in got.into_iter().zip(want).enumerate() {
            let address = want.remove("__address__");
            if address.as_ref().and_then(Value::as_str) != Some(got.address.as_str()) {
                failures.push(format!(
                    "{source} target {i}: upstream __address__ {address:?}, the model {}",
                    got.address
                ));
            }
            let extra: Vec<_> = got
                .labels
                .iter()
                .filter(|(k, v)| want.get(*k) != Some(v))
                .collect();
            let missing: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.labels.get(*k) != Some(v))
                .collect();
            if !extra.is_empty() || !missing.is_empty() {
                failures.push(format!(
                    "{source} target {i} ({}): labels differ; upstream: {missing:?}, the model: {extra:?}",
                    got.address
                ));
            }
        }
    }
    if failures.is_empty() {
        Ok(true)
    } else {
        Err(failures.join("\n"))
    }
}

fn source_of(ep: &Value) -> String {
    format!(
        "endpoints/{}/{}",
        ep["metadata"]["namespace"].as_str().unwrap_or_default(),
        ep["metadata"]["name"].as_str().unwrap_or_default()
    )
}
