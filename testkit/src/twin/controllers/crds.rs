//! The CRD naming and establishing controllers (TWIN-FACTS §3): after
//! `Timing::crd_names_accepted` the API serves the custom resources (NamesAccepted), after
//! `Timing::crd_established` more the CRD is Established and discovery lists it.
//! Sources: k/apiextensions-apiserver `pkg/controller/status/naming_controller.go`,
//! `pkg/controller/establish/establishing_controller.go`.
//!
//! Upstream's naming controller is informer-driven and acts within milliseconds of the create
//! (TWIN-FACTS §3), so by default (`crd_names_accepted` zero) the twin runs it as part of the
//! create: the create's answer still shows `"conditions": null` (the Go type has no
//! `omitempty`), every later read has the conditions. The few milliseconds upstream leaves in
//! between, in which `kubectl wait --for=condition=Established` fails with ".status.conditions
//! accessor error" (stackrox/stackrox#22739, pingcap/tidb-operator#1511), are not modelled.

use super::super::store::now_rfc3339;
use super::super::Cluster;
use super::State;
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

/// The naming controller's one status update: acceptedNames + [NamesAccepted True,
/// Established False Installing]; the API serves the custom resources from then on.
pub fn accept_names(c: &Cluster, crd: &Value) {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
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
