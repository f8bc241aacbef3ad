//! Installing the bundle by server-side apply: CRDs first and Established, then the rest, then
//! the operator Deployment Available.
//!
//! Server-side apply matters here: the prometheuses CRD is ~222 KB as JSON, close to the 256 KiB
//! limit of client-side apply's last-applied annotation.

use super::bundle::Bundle;
use crate::k8s::apply::Applier;
use crate::k8s::wait::{self, remaining, wait_deployment_available, WaitError, Waited};
use anyhow::{Context, Result};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How often a CRD's conditions are read: establishing takes well under a second on one
/// apiserver (kubernetes/kubernetes
/// staging/src/k8s.io/apiextensions-apiserver/pkg/controller/establish/establishing_controller.go@v1.21.1),
/// so a short poll keeps the install phase quick.
const CRD_POLL: Duration = Duration::from_millis(250);

/// Server-side applies the bundle: CRDs, wait until each is `Established`, then everything else,
/// then wait until the operator Deployment is `Available`.
///
/// # Errors
/// An apply is rejected, a CRD is not Established, or the operator Deployment is not Available
/// by the deadline ([`WaitError`]).
pub async fn install(client: &Client, bundle: &Bundle, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let (crds, rest): (Vec<&Value>, Vec<&Value>) = bundle
        .apply_order()
        .into_iter()
        .partition(|d| d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"));
    let mut applier = Applier::new(client.clone(), timeout);
    applier.apply_all(&crds).await?;

    for name in bundle.crd_names() {
        wait_crd_established(client, &name, remaining(deadline)).await?;
    }

    applier.apply_all(&rest).await?;
    for (ns, name) in bundle.deployments() {
        wait_deployment_available(client, &ns, &name, remaining(deadline))
            .await
            .context("the operator did not start (its image is quay.io/prometheus-operator/prometheus-operator)")?;
    }
    Ok(())
}

/// Waits until CRD `name` is `Established` (its kinds served).
///
/// # Errors
/// At the deadline, naming the CRD; at once for a permanent API error.
pub async fn wait_crd_established(
    client: &Client,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let established = wait::poll_until(timeout, CRD_POLL, || async {
        let crd = crd_api
            .get_opt(name)
            .await
            .with_context(|| format!("cannot get CRD {name}"))?;
        let done = crd.as_ref().is_some_and(crd_established);
        Ok(if done { Ok(()) } else { Err(crd) })
    })
    .await;
    match established {
        Ok(()) => Ok(()),
        Err(Waited::Pending(crd)) => {
            let conditions: Vec<String> = crd
                .as_ref()
                .and_then(|c| c.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{}={} ({}) {}",
                        c.type_,
                        c.status,
                        c.reason.as_deref().unwrap_or_default(),
                        c.message.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            Err(WaitError::Timeout {
                what: format!("CustomResourceDefinition {name} not Established"),
                waited: timeout,
                state: if conditions.is_empty() {
                    "no conditions yet".into()
                } else {
                    format!("conditions: {}", conditions.join("; "))
                },
                fix: format!(
                    "a CRD whose names conflict with another's is never Established: check \
                     `kubectl get crd {name} -o yaml`, or raise --timeout"
                ),
            })
        }
        Err(Waited::Failed(e)) => Err(WaitError::api(
            format!("CRD {name} to be Established"),
            timeout,
            e,
        )),
    }
}

/// A CRD's `Established` condition is `True`: its resources are served and discovery lists them
/// (kubernetes/kubernetes
/// staging/src/k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1/types.go@v1.21.1 `Established`).
pub fn crd_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}
