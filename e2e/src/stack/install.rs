//! A stack's install phases, each within the deadline its caller gives: apply it (Namespaces and
//! CRDs, wait until Established, the rest) and wait for its operators; wait for its other
//! Deployments and each Prometheus's StatefulSet; wait until each asserted Prometheus replica has
//! loaded the cadvisor job. Also the check, against a cluster, that every custom resource's kind is
//! served.

use super::{Document, Stack};
use crate::assert::{checks, PrometheusRef};
use crate::k8s::apply::Applier;
use crate::k8s::wait::{remaining, wait_deployment_available, wait_statefulset_ready};
use anyhow::{bail, Context, Result};
use kube::Client;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// [`Stack::check`] against a running cluster: a custom resource whose CRD the stack lacks must
/// be served by the cluster (API discovery).
///
/// # Errors
/// As [`Stack::check`]; or discovery fails for another reason than "not served".
pub async fn check_against_cluster(
    stack: &Stack,
    prometheus: Option<&PrometheusRef>,
    client: &Client,
) -> Result<()> {
    let mut served = BTreeSet::new();
    let wanted: BTreeSet<(String, String, String)> = stack
        .custom_without_crd()
        .iter()
        .map(|d| {
            (
                d.ident.group.clone(),
                d.ident.version.clone(),
                d.ident.kind.clone(),
            )
        })
        .collect();
    for (g, v, k) in wanted {
        let gvk = kube::core::GroupVersionKind::gvk(&g, &v, &k);
        match kube::discovery::pinned_kind(client, &gvk).await {
            Ok(_) => {
                served.insert((g, v, k));
            }
            // Not served: the group/version is unknown (404) or lacks the kind.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(kube::Error::Discovery(_)) => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot ask the cluster whether it serves {g}/{v} kind {k}"
                )))
            }
        }
    }
    stack.check(
        prometheus,
        &|g, v, k| served.contains(&(g.to_string(), v.to_string(), k.to_string())),
        "",
    )?;
    Ok(())
}

async fn apply_each(applier: &mut Applier, docs: &[&Document]) -> Result<()> {
    for d in docs {
        applier
            .apply(&d.value)
            .await
            .with_context(|| format!("{} ({})", d.origin(), d.ident))?;
    }
    Ok(())
}

/// Phase 3 with a stack: unless `apply` is false (the cluster runs the stack already), applies the
/// Namespaces and CRDs, waits until every CRD is Established, applies the rest; then waits for
/// each prometheus-operator Deployment to be Available and, for one started with
/// `--kubelet-service=<ns>/<name>`, for that Service's Endpoints to list every node.
///
/// # Errors
/// An apply is refused (naming the document), a CRD is not Established, an operator is not
/// Available, or its kubelet Service is incomplete at the deadline.
pub async fn operator_phase(
    client: &Client,
    stack: &Stack,
    apply: bool,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let d = stack.derived();
    if apply {
        let (first, rest) = stack.ordered();
        let mut applier = Applier::new(client.clone(), timeout);
        apply_each(&mut applier, &first).await?;
        for crd in &d.crds {
            crate::operator::wait_crd_established(client, crd, remaining(deadline)).await?;
        }
        apply_each(&mut applier, &rest).await?;
    }
    for op in &d.operators {
        wait_deployment_available(client, &op.namespace, &op.name, remaining(deadline))
            .await
            .with_context(|| {
                format!(
                    "the stack's prometheus-operator ({}) did not start",
                    op.image
                )
            })?;
        if let Some((ns, name)) = &op.kubelet_service {
            crate::operator::wait_kubelet_service_at(client, ns, name, remaining(deadline)).await?;
        }
    }
    Ok(())
}

/// Phase 4 with a stack: every other Deployment Available, and each Prometheus's StatefulSet
/// (`prometheus-<name>`, any namespace) with all its replicas ready.
///
/// # Errors
/// At the deadline, naming what is not ready and what its pods are doing.
pub async fn prometheus_phase(client: &Client, stack: &Stack, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let d = stack.derived();
    for (ns, name) in &d.deployments {
        wait_deployment_available(client, ns, name, remaining(deadline)).await?;
    }
    for p in &d.prometheuses {
        let prom = &p.prometheus;
        wait_statefulset_ready(
            client,
            &prom.namespace,
            &prom.statefulset(),
            remaining(deadline),
        )
        .await
        .with_context(|| format!("Prometheus {prom} (replicas: {})", p.replicas))?;
    }
    Ok(())
}

/// Phase 5 with a stack: each Prometheus of `prometheuses` selects a cadvisor ServiceMonitor, and
/// each of its replicas has loaded its job.
///
/// # Errors
/// A Prometheus selects none (with the reasons), or a replica has not loaded the job by the
/// deadline.
pub async fn servicemonitor_phase(
    client: &Client,
    prometheuses: &[PrometheusRef],
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    for prom in prometheuses {
        let expected = checks::expected_jobs(client, prom).await;
        if let Err(why) = &expected {
            bail!("{why}");
        }
        let (ready, replicas) = checks::replicas(client, prom, remaining(deadline)).await;
        if !ready.passed() {
            bail!("Prometheus {prom}: {}", ready.detail);
        }
        for replica in replicas {
            let prom_client = replica.client(client.clone(), remaining(deadline));
            let loaded = checks::job_loaded(
                &prom_client,
                &replica.key(),
                &expected,
                None,
                remaining(deadline),
            )
            .await;
            if !loaded.passed() {
                bail!("{}: {}", replica.key(), loaded.detail);
            }
        }
    }
    Ok(())
}
