//! What Prometheus's Kubernetes discovery (`kubernetes_sd_configs`, role `endpoints`) attaches to
//! each target, computed from the objects themselves.
//!
//! Debian's Prometheus 2.42 is built without `kubernetes_sd_configs`, so the component tier,
//! `replay` and the cluster twin hand Prometheus these targets through `file_sd`/`http_sd`
//! instead: the operator's relabel rules then see exactly the labels a real cluster's discovery
//! would give. Everything here follows prometheus/prometheus
//! discovery/kubernetes/{endpoints,pod,service}.go@v2.26.0, the Prometheus the cluster tier runs, and
//! is judged by its `endpoints_test.go` (`e2e/tests/upstream`). 2.42.0 adds
//! `__meta_kubernetes_pod_container_image` to Pod targets and `attach_metadata`'s node labels,
//! which prometheus-operator v0.48.1 never asks for.

use crate::relabel::{sanitize_label_name, Labels};
use serde_json::{json, Map, Value};

/// One discovered target: its `__address__` and its `__meta_kubernetes_*` labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `ip:port` (`[ip]:port` for IPv6), as `net.JoinHostPort` writes it.
    pub address: String,
    /// Label name → value (always a JSON string).
    pub labels: Map<String, Value>,
}

impl Target {
    /// A label's value, if set.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).and_then(Value::as_str)
    }

    /// What Prometheus's relabeling starts from: the `__meta_kubernetes_*` labels and
    /// `__address__` ([`crate::relabel::ScrapeJob::target`] takes it).
    pub fn discovered_labels(&self) -> Labels {
        self.labels
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .chain([("__address__".to_string(), self.address.clone())])
            .collect()
    }

    /// The port of [`Target::address`].
    pub fn port(&self) -> Option<u16> {
        self.address.rsplit_once(':')?.1.parse().ok()
    }

    /// One `http_sd`/`file_sd` group holding only this target: labels apply to a whole group,
    /// so one group per target keeps each target's own labels.
    pub fn into_group(self) -> Value {
        json!({"targets": [self.address], "labels": self.labels})
    }
}

/// The targets discovery yields for one Endpoints object, in upstream's order.
///
/// `service` is the same-named Service if it exists; `pods` are the pods discovery knows
/// (a Pod `targetRef` that is not among them adds no pod labels, as upstream's store miss).
/// Values that are not strings (port numbers) are written as strings.
pub fn endpoints_targets(
    endpoints: &Value,
    service: Option<&Value>,
    pods: &[Value],
) -> Vec<Target> {
    let ns = str_of(&endpoints["metadata"]["namespace"]);
    // endpoints.go buildEndpoints: the group's labels.
    let mut group = Map::new();
    group.insert("__meta_kubernetes_namespace".into(), json!(ns));
    group.insert(
        "__meta_kubernetes_endpoints_name".into(),
        json!(str_of(&endpoints["metadata"]["name"])),
    );
    add_map(
        &mut group,
        "endpoints_label",
        "endpoints_labelpresent",
        &endpoints["metadata"]["labels"],
    );
    if let Some(svc) = service {
        // service.go serviceLabels, as endpoints.go addServiceLabels uses it: no service_port_*.
        group.insert(
            "__meta_kubernetes_service_name".into(),
            json!(str_of(&svc["metadata"]["name"])),
        );
        add_map(
            &mut group,
            "service_label",
            "service_labelpresent",
            &svc["metadata"]["labels"],
        );
        add_map(
            &mut group,
            "service_annotation",
            "service_annotationpresent",
            &svc["metadata"]["annotations"],
        );
    }

    let mut targets = Vec::new();
    // Pods seen through a targetRef and the endpoint ports they were seen on, in first-seen order.
    let mut seen: Vec<(&Value, Vec<i64>)> = Vec::new();
    for subset in arr(&endpoints["subsets"]) {
        // endpoints.go: for each port, first the ready addresses, then the not-ready ones.
        for port in arr(&subset["ports"]) {
            for (key, ready) in [("addresses", "true"), ("notReadyAddresses", "false")] {
                for addr in arr(&subset[key]) {
                    let mut labels = group.clone();
                    put(&mut labels, "endpoint_port_name", str_of(&port["name"]));
                    put(&mut labels, "endpoint_port_protocol", protocol(port));
                    put(&mut labels, "endpoint_ready", ready);
                    let target_ref = &addr["targetRef"];
                    if target_ref.is_object() {
                        put(
                            &mut labels,
                            "endpoint_address_target_kind",
                            str_of(&target_ref["kind"]),
                        );
                        put(
                            &mut labels,
                            "endpoint_address_target_name",
                            str_of(&target_ref["name"]),
                        );
                    }
                    // A pointer upstream: present (even empty) means set.
                    if let Some(node) = addr["nodeName"].as_str() {
                        put(&mut labels, "endpoint_node_name", node);
                    }
                    // A string upstream: empty means unset.
                    if let Some(host) = addr["hostname"].as_str().filter(|h| !h.is_empty()) {
                        put(&mut labels, "endpoint_hostname", host);
                    }
                    let number = port["port"].as_i64().unwrap_or_default();
                    if let Some(pod) = resolve_pod(target_ref, pods) {
                        pod_labels(&mut labels, pod);
                        // Number only; a later container with the same port overwrites an earlier.
                        for ctr in arr(&pod["spec"]["containers"]) {
                            if let Some(cport) = arr(&ctr["ports"])
                                .find(|c| c["containerPort"].as_i64() == Some(number))
                            {
                                // The endpoint port's protocol, not the container port's.
                                container_labels(&mut labels, ctr, cport, number, protocol(port));
                            }
                        }
                        match seen.iter_mut().find(|(p, _)| std::ptr::eq(*p, pod)) {
                            Some((_, ports)) => ports.push(number),
                            None => seen.push((pod, vec![number])),
                        }
                    }
                    targets.push(Target {
                        address: join_host_port(str_of(&addr["ip"]), number),
                        labels,
                    });
                }
            }
        }
    }

    // endpoints.go: every container port of a seen pod that no endpoint port covered is a
    // target of its own, with the group's and the pod's labels but no endpoint_* labels.
    for (pod, ports) in seen {
        for ctr in arr(&pod["spec"]["containers"]) {
            for cport in arr(&ctr["ports"]) {
                let number = cport["containerPort"].as_i64().unwrap_or_default();
                if ports.contains(&number) {
                    continue;
                }
                let mut labels = group.clone();
                pod_labels(&mut labels, pod);
                container_labels(&mut labels, ctr, cport, number, protocol(cport));
                targets.push(Target {
                    address: join_host_port(str_of(&pod["status"]["podIP"]), number),
                    labels,
                });
            }
        }
    }
    targets
}

/// endpoints.go resolvePodRef: only a `Pod` reference the pod store holds, looked up by the
/// reference's own namespace (the store keys pods `<namespace>/<name>`, so a reference without
/// one finds none; prometheus/prometheus discovery/kubernetes/endpoints.go@v2.26.0).
fn resolve_pod<'a>(target_ref: &Value, pods: &'a [Value]) -> Option<&'a Value> {
    if target_ref["kind"] != "Pod" {
        return None;
    }
    let ns = target_ref["namespace"].as_str()?;
    pods.iter()
        .find(|p| p["metadata"]["namespace"] == ns && p["metadata"]["name"] == target_ref["name"])
}

/// pod.go podLabels.
fn pod_labels(labels: &mut Map<String, Value>, pod: &Value) {
    put(labels, "pod_name", str_of(&pod["metadata"]["name"]));
    put(labels, "pod_ip", str_of(&pod["status"]["podIP"]));
    put(labels, "pod_ready", &pod_ready(pod));
    put(labels, "pod_phase", str_of(&pod["status"]["phase"]));
    put(labels, "pod_node_name", str_of(&pod["spec"]["nodeName"]));
    put(labels, "pod_host_ip", str_of(&pod["status"]["hostIP"]));
    put(labels, "pod_uid", str_of(&pod["metadata"]["uid"]));
    // GetControllerOf: the first ownerReference with controller: true.
    if let Some(owner) = arr(&pod["metadata"]["ownerReferences"]).find(|o| o["controller"] == true)
    {
        if let Some(kind) = owner["kind"].as_str().filter(|k| !k.is_empty()) {
            put(labels, "pod_controller_kind", kind);
        }
        if let Some(name) = owner["name"].as_str().filter(|n| !n.is_empty()) {
            put(labels, "pod_controller_name", name);
        }
    }
    add_map(
        labels,
        "pod_label",
        "pod_labelpresent",
        &pod["metadata"]["labels"],
    );
    add_map(
        labels,
        "pod_annotation",
        "pod_annotationpresent",
        &pod["metadata"]["annotations"],
    );
}

/// endpoints.go: the labels of the container (and its port) a target is.
fn container_labels(
    labels: &mut Map<String, Value>,
    ctr: &Value,
    cport: &Value,
    number: i64,
    protocol: &str,
) {
    // prometheus@v2.26.0 has no pod_container_image (2.42 adds it).
    put(labels, "pod_container_name", str_of(&ctr["name"]));
    put(labels, "pod_container_port_name", str_of(&cport["name"]));
    put(labels, "pod_container_port_number", &number.to_string());
    put(labels, "pod_container_port_protocol", protocol);
}

/// pod.go podReady: the Ready condition's status, lowercased; `unknown` without one.
fn pod_ready(pod: &Value) -> String {
    arr(&pod["status"]["conditions"])
        .find(|c| c["type"] == "Ready")
        .map(|c| str_of(&c["status"]).to_lowercase())
        .unwrap_or_else(|| "unknown".into())
}

/// `<prefix>_<name>` and `<present>_<name>` = "true" for each entry of a label or annotation map,
/// the name sanitised (kubernetes.go / strutil.SanitizeLabelName).
fn add_map(labels: &mut Map<String, Value>, prefix: &str, present: &str, map: &Value) {
    for (k, v) in map.as_object().into_iter().flatten() {
        let k = sanitize_label_name(k);
        put(labels, &format!("{prefix}_{k}"), str_of(v));
        put(labels, &format!("{present}_{k}"), "true");
    }
}

fn put(labels: &mut Map<String, Value>, name: &str, value: &str) {
    labels.insert(format!("__meta_kubernetes_{name}"), json!(value));
}

/// Upstream's `lv(s)` keeps empty strings: an unset field is the label with value "".
fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// A port's protocol as the API server stores it: an omitted one is defaulted to `TCP`
/// (kubernetes/kubernetes pkg/apis/core/v1/defaults.go@v1.21.1 `SetDefaults_Service`,
/// `SetDefaults_EndpointPort`), so hand-written inputs read like fetched ones.
fn protocol(port: &Value) -> &str {
    port["protocol"].as_str().unwrap_or("TCP")
}

fn arr(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// Go's net.JoinHostPort: brackets around an IPv6 address.
fn join_host_port(ip: &str, port: i64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

#[cfg(test)]
mod tests;
