//! A stack's install phases against the cluster twin (no data path: nothing here needs a
//! Prometheus): a CRD that is never Established fails the operator phase at its deadline naming
//! the CRD and why, and an object the API server refuses is named by its file and document.

use e2e::stack::{install, Stack};
use std::time::{Duration, Instant};
use testkit::twin::{Profile, Twin, TwinOptions};

async fn twin() -> Twin {
    let mut opts = TwinOptions::new(Profile::V1_21);
    opts.datapath = false;
    Twin::start(opts).await.unwrap()
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: PLURAL.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: PLURAL, singular: SINGULAR}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

#[tokio::test(flavor = "multi_thread")]
async fn a_crd_that_is_never_established_fails_at_the_phase_deadline_naming_it() {
    let t = twin().await;
    let client = e2e::k8s::client::kube_client(&t.kubeconfig_path())
        .await
        .unwrap();
    // Two CRDs claiming kind Widget in one group: whichever the naming controller takes second
    // has its names refused, so it is never Established (apiextensions-apiserver
    // naming_controller.go).
    let text = format!(
        "{}---\n{}",
        CRD.replace("PLURAL", "widgets")
            .replace("SINGULAR", "widget"),
        CRD.replace("PLURAL", "gadgets")
            .replace("SINGULAR", "gadget")
    );
    let stack = Stack::from_text("crds.yaml", &text).unwrap();
    let started = Instant::now();
    let err = install::operator_phase(&client, &stack, true, Duration::from_secs(6))
        .await
        .unwrap_err();
    let msg = e2e::errors::error_chain(err.as_ref());
    let named = ["gadgets", "widgets"].iter().any(|p| {
        msg.contains(&format!(
            "CustomResourceDefinition {p}.example.com not Established"
        ))
    });
    assert!(
        named
            && msg.contains("NamesAccepted=False (KindConflict)")
            && msg.contains("\"Widget\" is already in use"),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_the_api_server_refuses_is_named_by_its_document() {
    let t = twin().await;
    let client = e2e::k8s::client::kube_client(&t.kubeconfig_path())
        .await
        .unwrap();
    // A namespaced object in a namespace nobody creates: refused at once (NotFound), named.
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: here}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: nowhere}\n";
    let stack = Stack::from_text("objs.yaml", text).unwrap();
    let err = install::operator_phase(&client, &stack, true, Duration::from_secs(10))
        .await
        .unwrap_err();
    let msg = e2e::errors::error_chain(err.as_ref());
    assert!(
        msg.starts_with("objs.yaml, document 2 (ConfigMap nowhere/c)"),
        "{msg}"
    );
    assert!(msg.contains("nowhere"), "{msg}");
}
