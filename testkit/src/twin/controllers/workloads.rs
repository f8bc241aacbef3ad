//! Deployments (through ReplicaSets), StatefulSets and Jobs → pods, with the status a
//! controller writes (TWIN-FACTS §6;
//! kubernetes/kubernetes pkg/controller/deployment/{sync,progress}.go@v1.21.1,
//! kubernetes/kubernetes pkg/controller/statefulset/stateful_set_utils.go@v1.21.1,
//! kubernetes/kubernetes pkg/controller/job/job_controller.go@v1.21.1).

use super::objects::{is_ready, owned_by, owner_ref, phase, template_hash, tolerates};
use super::state::State;
use crate::twin::cluster::Cluster;
use crate::twin::storage::store::now_rfc3339;
use serde_json::{json, Value};
use std::sync::Arc;

fn name(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn ns(o: &Value) -> String {
    o["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Drops keys whose value is 0 (the counts are omitempty, §6).
fn omit_zero(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| x.as_i64() != Some(0));
    }
    v
}

fn pod_from_template(
    template: &Value,
    namespace: &str,
    name: &str,
    extra_labels: &Value,
    owner: Value,
) -> Value {
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    for (k, v) in extra_labels.as_object().into_iter().flatten() {
        labels[k] = v.clone();
    }
    let mut meta =
        json!({"name": name, "namespace": namespace, "labels": labels, "ownerReferences": [owner]});
    if let Some(a) = template["metadata"].get("annotations") {
        meta["annotations"] = a.clone();
    }
    json!({"metadata": meta, "spec": template["spec"], "status": {"phase": "Pending", "qosClass": "Burstable"}})
}

pub fn reconcile(c: &Arc<Cluster>, st: &mut State) {
    let pods = c.objects("", "Pod");
    deployments(c, st);
    replicasets(c, &pods);
    statefulsets(c, &pods);
    jobs(c, &pods);
    daemonsets(c, &pods);
}

/// One pod per node whose taints the template tolerates (kubernetes/kubernetes pkg/controller/daemon@v1.21.1), bound
/// to the node directly; status counts as the DaemonSet controller writes them.
fn daemonsets(c: &Arc<Cluster>, pods: &[Value]) {
    let nodes = c.objects("", "Node");
    for ds in c.objects("apps", "DaemonSet") {
        let (dn, dns) = (name(&ds), ns(&ds));
        let revision = template_hash(&ds["spec"]["template"]);
        let mine = owned_by(pods, &ds);
        let template_pod = json!({"spec": ds["spec"]["template"]["spec"]});
        let mut desired = 0;
        let mut ready = 0;
        for node in &nodes {
            let node_name = name(node);
            let fits = node["spec"]["taints"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|t| t["effect"] != "NoSchedule" || tolerates(&template_pod, t));
            if !fits {
                continue;
            }
            desired += 1;
            match mine
                .iter()
                .find(|p| p["spec"]["nodeName"] == node_name.as_str())
            {
                Some(p) => {
                    if is_ready(p) {
                        ready += 1;
                    }
                }
                None => {
                    let mut pod = pod_from_template(
                        &ds["spec"]["template"],
                        &dns,
                        &format!("{dn}-{}", c.random_suffix()),
                        &json!({"controller-revision-hash": revision, "pod-template-generation": "1"}),
                        owner_ref(&ds, true),
                    );
                    pod["spec"]["nodeName"] = json!(node_name);
                    c.put("", "Pod", pod);
                }
            }
        }
        let status = json!({
            "currentNumberScheduled": desired, "desiredNumberScheduled": desired, "numberMisscheduled": 0,
            "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": desired,
            "observedGeneration": ds["metadata"]["generation"],
        });
        if ds["status"] != status {
            c.put_status("apps", "DaemonSet", &dns, &dn, status);
        }
    }
}

/// Sets a Deployment condition; a changed status or reason moves it to the end (§6,
/// SetDeploymentCondition); an unchanged one is left alone (no churn).
fn set_condition(conds: &mut Vec<Value>, ty: &str, status: &str, reason: &str, message: &str) {
    let now = now_rfc3339();
    if let Some(i) = conds.iter().position(|c| c["type"] == ty) {
        let old = &conds[i];
        if old["status"] == status && old["reason"] == reason {
            return;
        }
        let transition = if old["status"] == status {
            old["lastTransitionTime"].clone()
        } else {
            json!(now)
        };
        conds.remove(i);
        conds.push(json!({"type": ty, "status": status, "lastUpdateTime": now, "lastTransitionTime": transition, "reason": reason, "message": message}));
    } else {
        conds.push(json!({"type": ty, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message}));
    }
}

fn deployments(c: &Arc<Cluster>, _st: &mut State) {
    let rss = c.objects("apps", "ReplicaSet");
    for d in c.objects("apps", "Deployment") {
        let (dn, dns) = (name(&d), ns(&d));
        let hash = template_hash(&d["spec"]["template"]);
        let rs_name = format!("{dn}-{hash}");
        let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let owned = owned_by(&rss, &d);
        for old in owned.iter().filter(|r| name(r) != rs_name) {
            // Rollout simplified: the old ReplicaSet goes at once (its pods with it, via GC).
            c.delete_kind("apps", "ReplicaSet", &dns, &name(old));
        }
        let mut template = d["spec"]["template"].clone();
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let created = !owned.iter().any(|r| name(r) == rs_name);
        let rs = c.put("apps", "ReplicaSet", json!({
            "metadata": {"name": rs_name, "namespace": dns, "labels": template["metadata"]["labels"],
                         "annotations": {"deployment.kubernetes.io/revision": "1"},
                         "ownerReferences": [owner_ref(&d, true)]},
            "spec": {"replicas": want, "selector": selector, "template": template},
        }));
        let rs_status = &rs["status"];
        let ready = rs_status["readyReplicas"].as_i64().unwrap_or(0);
        let available = rs_status["availableReplicas"].as_i64().unwrap_or(0);
        let replicas = rs_status["replicas"].as_i64().unwrap_or(0);
        // maxUnavailable 25% rounds down (§6).
        let max_unavailable = want / 4;
        let mut conds: Vec<Value> = d["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if available >= want - max_unavailable {
            set_condition(
                &mut conds,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            );
        } else {
            set_condition(
                &mut conds,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            );
        }
        if created || conds.iter().all(|c| c["type"] != "Progressing") {
            set_condition(
                &mut conds,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                &format!("Created new replica set \"{rs_name}\""),
            );
        } else if available >= want && replicas == want {
            set_condition(
                &mut conds,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
            );
        } else {
            set_condition(
                &mut conds,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{rs_name}\" is progressing."),
            );
        }
        let mut status = omit_zero(json!({
            "observedGeneration": d["metadata"]["generation"], "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": ready, "availableReplicas": available, "unavailableReplicas": (want - available).max(0),
        }));
        status["conditions"] = json!(conds);
        if d["status"] != status {
            c.put_status("apps", "Deployment", &dns, &dn, status);
        }
    }
}

fn replicasets(c: &Arc<Cluster>, pods: &[Value]) {
    for rs in c.objects("apps", "ReplicaSet") {
        let (rn, rns) = (name(&rs), ns(&rs));
        let want = rs["spec"]["replicas"].as_i64().unwrap_or(1) as usize;
        let mine: Vec<&Value> = owned_by(pods, &rs)
            .into_iter()
            .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
            .collect();
        for _ in mine.len()..want {
            let pod_name = format!("{rn}-{}", c.random_suffix());
            c.put(
                "",
                "Pod",
                pod_from_template(
                    &rs["spec"]["template"],
                    &rns,
                    &pod_name,
                    &json!({}),
                    owner_ref(&rs, true),
                ),
            );
        }
        for extra in mine.iter().skip(want) {
            c.delete_kind("", "Pod", &rns, &name(extra));
        }
        let ready = mine.iter().filter(|p| is_ready(p)).count();
        let status = omit_zero(json!({
            "replicas": mine.len().min(want), "fullyLabeledReplicas": mine.len().min(want),
            "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"],
        }));
        if rs["status"] != status {
            c.put_status("apps", "ReplicaSet", &rns, &rn, status);
        }
    }
}

fn statefulsets(c: &Arc<Cluster>, pods: &[Value]) {
    for s in c.objects("apps", "StatefulSet") {
        let (sn, sns) = (name(&s), ns(&s));
        let want = s["spec"]["replicas"].as_i64().unwrap_or(1) as usize;
        let revision = format!("{sn}-{}", template_hash(&s["spec"]["template"]));
        let parallel = s["spec"]["podManagementPolicy"] == "Parallel";
        let mine = owned_by(pods, &s);
        let mut ready = 0;
        let mut updated = 0;
        let mut count = 0;
        for i in 0..want {
            let pn = format!("{sn}-{i}");
            match mine.iter().find(|p| name(p) == pn) {
                Some(p)
                    if p["metadata"]["labels"]["controller-revision-hash"] != revision.as_str() =>
                {
                    // RollingUpdate: replace a pod of an old revision.
                    c.delete_kind("", "Pod", &sns, &pn);
                    count += 1;
                    break;
                }
                Some(p) => {
                    count += 1;
                    updated += 1;
                    if is_ready(p) {
                        ready += 1;
                    } else if !parallel {
                        break; // OrderedReady: the next ordinal waits for this one.
                    }
                }
                None => {
                    let mut pod = pod_from_template(
                        &s["spec"]["template"],
                        &sns,
                        &pn,
                        &json!({"controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": pn}),
                        owner_ref(&s, true),
                    );
                    pod["spec"]["hostname"] = json!(pn);
                    if let Some(svc) = s["spec"]["serviceName"].as_str() {
                        pod["spec"]["subdomain"] = json!(svc);
                    }
                    c.put("", "Pod", pod);
                    count += 1;
                    updated += 1;
                    if !parallel {
                        break;
                    }
                }
            }
        }
        for extra in mine.iter().filter(|p| {
            name(p)
                .rsplit_once('-')
                .and_then(|(_, i)| i.parse::<usize>().ok())
                .is_none_or(|i| i >= want)
        }) {
            c.delete_kind("", "Pod", &sns, &name(extra));
        }
        let current = match s["status"]["currentRevision"].as_str() {
            Some(cur) if !(updated == want && ready == want) => cur.to_string(),
            _ => revision.clone(),
        };
        let mut status = omit_zero(json!({
            "readyReplicas": ready, "currentReplicas": if current == revision { updated } else { count - updated },
            "updatedReplicas": updated,
        }));
        status["observedGeneration"] = s["metadata"]["generation"].clone();
        status["replicas"] = json!(count);
        status["currentRevision"] = json!(current);
        status["updateRevision"] = json!(revision);
        status["collisionCount"] = json!(0);
        if c.profile.statefulset_available_replicas() {
            status["availableReplicas"] = json!(ready);
        }
        if s["status"] != status {
            c.put_status("apps", "StatefulSet", &sns, &sn, status);
        }
    }
}

fn jobs(c: &Arc<Cluster>, pods: &[Value]) {
    for j in c.objects("batch", "Job") {
        let (jn, jns) = (name(&j), ns(&j));
        let mine = owned_by(pods, &j);
        let uid = j["metadata"]["uid"].as_str().unwrap_or_default();
        let succeeded = mine.iter().filter(|p| phase(p) == "Succeeded").count();
        let active = mine
            .iter()
            .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
            .count();
        let completions = j["spec"]["completions"].as_i64().unwrap_or(1) as usize;
        if succeeded + active < completions {
            let mut labels = json!({"controller-uid": uid, "job-name": jn});
            if c.profile.job_batch_labels() {
                labels["batch.kubernetes.io/controller-uid"] = json!(uid);
                labels["batch.kubernetes.io/job-name"] = json!(jn);
            }
            let mut pod = pod_from_template(
                &j["spec"]["template"],
                &jns,
                &format!("{jn}-{}", c.random_suffix()),
                &labels,
                owner_ref(&j, true),
            );
            pod["spec"]["restartPolicy"] = j["spec"]["template"]["spec"]["restartPolicy"].clone();
            c.put("", "Pod", pod);
        }
        let mut status = omit_zero(json!({"active": active, "succeeded": succeeded}));
        status["startTime"] = j["status"]["startTime"].clone();
        if status["startTime"].is_null() {
            status["startTime"] = json!(now_rfc3339());
        }
        if succeeded >= completions {
            status["completionTime"] = j["status"]["completionTime"].clone();
            if status["completionTime"].is_null() {
                status["completionTime"] = json!(now_rfc3339());
            }
            let t = status["completionTime"].clone();
            status["conditions"] = json!([{"type": "Complete", "status": "True", "lastProbeTime": t, "lastTransitionTime": t}]);
        }
        if j["status"] != status {
            c.put_status("batch", "Job", &jns, &jn, status);
        }
    }
}
