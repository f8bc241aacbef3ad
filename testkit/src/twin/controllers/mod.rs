//! Controllers standing in for what cannot run here: node lifecycle, the CRD naming and
//! establishing controllers, Deployment/ReplicaSet/StatefulSet/Job → pods, a scheduler and
//! kubelet stand-in for pod status, the endpoints controller, the service-account token
//! controller, garbage collection by ownerReferences, and prometheus-operator v0.48.1.
//! They reconcile level-triggered every `Timing::tick`; each is minimal.

pub mod crds;
pub mod endpoints;
pub mod gc;
pub mod nodes;
pub mod operator;
pub mod pods;
pub mod serviceaccounts;
pub mod system;
pub mod workloads;

use super::datapath::DataPath;
use super::Cluster;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// What a fresh cluster has before anyone applies anything: the four system namespaces
/// (kubeadm), their `default` service accounts, and the nodes.
pub fn bootstrap(c: &Arc<Cluster>) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        c.put(
            "",
            "Namespace",
            json!({"metadata": {"name": ns}, "status": {"phase": "Active"}}),
        );
    }
    nodes::create_nodes(c);
    system::create(c);
}

/// Per-controller memory between ticks (first-seen instants for the delays).
#[derive(Default)]
pub struct State {
    pub seen: std::collections::HashMap<String, Instant>,
    pub operator: operator::OperatorState,
}

impl State {
    /// When `id` was first seen (now, if never before).
    pub fn since(&mut self, id: &str) -> Instant {
        *self.seen.entry(id.to_string()).or_insert_with(Instant::now)
    }
}

/// Runs every controller each tick until the task is aborted.
pub fn spawn(c: Arc<Cluster>, dp: Option<DataPath>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut st = State::default();
        let (mut seen_rv, mut last_full) = (u64::MAX, std::time::Instant::now());
        loop {
            // Level-triggered, but cheap when idle: a pass on every change, and one a second
            // for the time-based steps (delays, resyncs, reloads).
            let rv = c.store.revision();
            if rv != seen_rv || last_full.elapsed() >= std::time::Duration::from_secs(1) {
                reconcile_once(&c, &mut st, dp.as_ref()).await;
                seen_rv = rv;
                last_full = std::time::Instant::now();
            }
            tokio::time::sleep(c.opts.timing.tick).await;
        }
    })
}

async fn reconcile_once(c: &Arc<Cluster>, st: &mut State, dp: Option<&DataPath>) {
    nodes::reconcile(c, st);
    crds::reconcile(c, st);
    serviceaccounts::reconcile(c);
    workloads::reconcile(c, st);
    pods::reconcile(c, st, dp).await;
    operator::reconcile(c, st, dp).await;
    endpoints::reconcile(c);
    gc::reconcile(c);
    if let Some(dp) = dp {
        dp.reconcile(c).await;
    }
}
