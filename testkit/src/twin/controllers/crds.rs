//! The CRD naming and establishing controllers (TWIN-FACTS §3): after
//! `Timing::crd_names_accepted` the API serves the custom resources (NamesAccepted), after
//! `Timing::crd_established` more the CRD is Established and discovery lists it.
//! Sources:
//! kubernetes/apiextensions-apiserver pkg/controller/status/naming_controller.go@kubernetes-1.21.1,
//! kubernetes/apiextensions-apiserver pkg/controller/establish/establishing_controller.go@kubernetes-1.21.1.
//!
//! Upstream's naming controller is informer-driven and acts within milliseconds of the create
//! (TWIN-FACTS §3), so by default (`crd_names_accepted` zero) the twin runs it as part of the
//! create: the create's answer still shows `"conditions": null` (the Go type has no
//! `omitempty`), every later read has the conditions. The few milliseconds upstream leaves in
//! between, in which `kubectl wait --for=condition=Established` fails with ".status.conditions
//! accessor error" (stackrox/stackrox#22739, pingcap/tidb-operator#1511), are not modelled.
//! A CRD whose kind or plural another CRD of its group has already been accepted with gets
//! NamesAccepted False and is never Established (the naming controller's
//! calculateNamesAndConditions, equalToAcceptedOrFresh).

use super::state::State;
use crate::twin::cluster::Cluster;
use crate::twin::storage::store::now_rfc3339;
use serde_json::{json, Value};
use std::sync::Arc;

fn cond(ty: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": ty, "status": status, "lastTransitionTime": now_rfc3339(), "reason": reason, "message": message})
}

fn has(crd: &Value, ty: &str) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == ty && c["status"] == "True")
}

/// The naming controller: NamesAccepted False on a name conflict, else its one status update:
/// acceptedNames + [NamesAccepted True,
/// Established False Installing]; the API serves the custom resources from then on.
pub fn accept_names(c: &Cluster, crd: &Value) {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if let Some((reason, message)) = name_conflict(c, crd) {
        let mut status = crd["status"].clone();
        let stale = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["reason"] == reason);
        if !stale {
            status["conditions"] = json!([
                cond("NamesAccepted", "False", reason, &message),
                cond(
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted"
                ),
            ]);
            c.put_status(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                "",
                name,
                status,
            );
        }
        return;
    }
    let mut status = crd["status"].clone();
    status["acceptedNames"] = crd["spec"]["names"].clone();
    status["conditions"] = json!([
        cond("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
        cond(
            "Established",
            "False",
            "Installing",
            "the initial names have been accepted"
        ),
    ]);
    c.put_status(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "",
        name,
        status,
    );
    c.registry.set_crd_state(name, true, false);
}

pub fn reconcile(c: &Arc<Cluster>, st: &mut State) {
    let t = &c.opts.timing;
    for crd in c.objects("apiextensions.k8s.io", "CustomResourceDefinition") {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let uid = crd["metadata"]["uid"].as_str().unwrap_or_default();
        let since = st.since(&format!("crd/{uid}"));
        let accepted = has(&crd, "NamesAccepted");
        let established = has(&crd, "Established");
        c.registry.set_crd_state(&name, accepted, established);
        if !accepted && since.elapsed() >= t.crd_names_accepted {
            accept_names(c, &crd);
        } else if accepted
            && !established
            && since.elapsed() >= t.crd_names_accepted + t.crd_established
        {
            let mut status = crd["status"].clone();
            // Updated in place: the order stays [NamesAccepted, Established].
            status["conditions"][1] = cond(
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            );
            c.put_status(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                "",
                &name,
                status,
            );
            c.registry.set_crd_state(&name, true, true);
        }
    }
}

/// A name of `crd` another CRD of its group has already been accepted with, as the naming
/// controller words it (`"X" is already in use`), with its reason.
fn name_conflict(c: &Cluster, crd: &Value) -> Option<(&'static str, String)> {
    let group = &crd["spec"]["group"];
    let others: Vec<Value> = c
        .objects("apiextensions.k8s.io", "CustomResourceDefinition")
        .into_iter()
        .filter(|o| {
            &o["spec"]["group"] == group && o["metadata"]["name"] != crd["metadata"]["name"]
        })
        .collect();
    let used = |field: &[&str]| -> Vec<String> {
        others
            .iter()
            .flat_map(|o| {
                field
                    .iter()
                    .map(move |f| o["status"]["acceptedNames"][*f].clone())
            })
            .filter_map(|v| v.as_str().map(String::from))
            .filter(|s| !s.is_empty())
            .collect()
    };
    let resources = used(&["plural", "singular"]);
    let kinds = used(&["kind", "listKind"]);
    let names = &crd["spec"]["names"];
    // Each conflicting name overwrites the reason: the last one checked wins, as upstream.
    let mut last = None;
    for (field, reason, pool) in [
        ("plural", "PluralConflict", &resources),
        ("singular", "SingularConflict", &resources),
        ("kind", "KindConflict", &kinds),
        ("listKind", "ListKindConflict", &kinds),
    ] {
        if let Some(n) = names[field]
            .as_str()
            .filter(|n| pool.iter().any(|u| u == n))
        {
            last = Some((reason, format!("\"{n}\" is already in use")));
        }
    }
    last
}
