//! Garbage collection by ownerReferences (kubernetes/kubernetes pkg/controller/garbagecollector@v1.21.1): an object
//! whose every owner is gone is deleted (background propagation, without the delay).

use crate::twin::cluster::Cluster;
use crate::twin::storage::registry::builtins;
use crate::twin::storage::store::key;
use std::collections::HashSet;
use std::sync::Arc;

pub fn reconcile(c: &Arc<Cluster>) {
    let types = builtins();
    let mut all = Vec::new();
    for t in &types {
        for o in c.store.list(&key(t), None).0 {
            all.push((t.clone(), o));
        }
    }
    for crd in c.objects("apiextensions.k8s.io", "CustomResourceDefinition") {
        for t in crate::twin::storage::registry::crd_types(&crd)
            .into_iter()
            .take(1)
        {
            for o in c.store.list(&key(&t), None).0 {
                all.push((t.clone(), o));
            }
        }
    }
    let uids: HashSet<String> = all
        .iter()
        .filter_map(|(_, o)| o["metadata"]["uid"].as_str().map(String::from))
        .collect();
    for (t, o) in &all {
        let Some(refs) = o["metadata"]["ownerReferences"].as_array() else {
            continue;
        };
        if !refs.is_empty()
            && refs
                .iter()
                .all(|r| !uids.contains(r["uid"].as_str().unwrap_or_default()))
        {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
            let _ = c.delete(t, ns, o["metadata"]["name"].as_str().unwrap_or_default());
        }
    }
}
