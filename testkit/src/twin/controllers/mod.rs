//! Controllers standing in for what cannot run here: node lifecycle, the CRD naming and
//! establishing controllers, Deployment/ReplicaSet/StatefulSet/Job → pods, a scheduler and
//! kubelet stand-in for pod status, the endpoints controller, the service-account token
//! controller, garbage collection by ownerReferences, and prometheus-operator v0.48.1.
//! They reconcile level-triggered every `Timing::tick`; each is minimal.
//!
//! They stand on the shared state ([`crate::twin::cluster`]) and storage only. Helpers two
//! controllers need live in [`objects`] (pure) and their memory in [`state`], so no controller
//! imports another's file for them. The data path stands above: it reads what the controllers
//! made, and the pods controller asks it about the pods it runs through [`pods::Runtime`].
//! The loop that runs [`reconcile_once`] each tick is the wiring's (`twin/mod.rs`).

pub mod crds;
pub mod endpoints;
pub mod gc;
pub mod nodes;
pub mod objects;
pub mod operator;
pub mod pods;
pub mod serviceaccounts;
pub mod state;
pub mod system;
pub mod workloads;

use crate::twin::cluster::Cluster;
use serde_json::json;
pub use state::State;

use std::sync::Arc;

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

/// One pass of every controller, in the order a change flows: nodes, CRDs, service accounts,
/// workloads → pods (with `runtime` for the pods the data path runs), the operator, endpoints,
/// garbage collection. The wiring (`twin/mod.rs`) runs it each tick.
pub async fn reconcile_once(c: &Arc<Cluster>, st: &mut State, runtime: Option<&dyn pods::Runtime>) {
    nodes::reconcile(c, st);
    crds::reconcile(c, st);
    serviceaccounts::reconcile(c);
    workloads::reconcile(c, st);
    pods::reconcile(c, st, runtime);
    operator::reconcile(c, st).await;
    endpoints::reconcile(c);
    gc::reconcile(c);
}
