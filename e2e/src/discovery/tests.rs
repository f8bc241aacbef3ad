use super::*;
use crate::operator::kubelet_endpoints as operator_kubelet_endpoints;
use std::collections::BTreeMap;

fn labels_of(t: &Target) -> BTreeMap<&str, &str> {
    t.labels
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                v.as_str().expect("every label value is a string"),
            )
        })
        .collect()
}

/// TWIN-FACTS §8, "For kube-system/kubelet this is exactly": nothing more, nothing less.
#[test]
fn the_operators_kubelet_endpoints_carry_exactly_the_documented_labels() {
    let (endpoints, service) = operator_kubelet_endpoints(&["kind-worker".into()]);
    let targets = endpoints_targets(&endpoints, Some(&service), &[]);
    let ports: Vec<_> = targets
        .iter()
        .map(|t| {
            (
                t.label("__meta_kubernetes_endpoint_port_name").unwrap(),
                t.port().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("https-metrics", 10250),
            ("http-metrics", 10255),
            ("cadvisor", 4194)
        ]
    );
    let want: BTreeMap<&str, &str> = [
        ("__meta_kubernetes_namespace", "kube-system"),
        ("__meta_kubernetes_endpoints_name", "kubelet"),
        ("__meta_kubernetes_endpoints_label_k8s_app", "kubelet"),
        ("__meta_kubernetes_endpoints_labelpresent_k8s_app", "true"),
        (
            "__meta_kubernetes_endpoints_label_app_kubernetes_io_name",
            "kubelet",
        ),
        (
            "__meta_kubernetes_endpoints_labelpresent_app_kubernetes_io_name",
            "true",
        ),
        (
            "__meta_kubernetes_endpoints_label_app_kubernetes_io_managed_by",
            "prometheus-operator",
        ),
        (
            "__meta_kubernetes_endpoints_labelpresent_app_kubernetes_io_managed_by",
            "true",
        ),
        ("__meta_kubernetes_service_name", "kubelet"),
        ("__meta_kubernetes_service_label_k8s_app", "kubelet"),
        ("__meta_kubernetes_service_labelpresent_k8s_app", "true"),
        (
            "__meta_kubernetes_service_label_app_kubernetes_io_name",
            "kubelet",
        ),
        (
            "__meta_kubernetes_service_labelpresent_app_kubernetes_io_name",
            "true",
        ),
        (
            "__meta_kubernetes_service_label_app_kubernetes_io_managed_by",
            "prometheus-operator",
        ),
        (
            "__meta_kubernetes_service_labelpresent_app_kubernetes_io_managed_by",
            "true",
        ),
        ("__meta_kubernetes_endpoint_port_name", "https-metrics"),
        ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
        ("__meta_kubernetes_endpoint_ready", "true"),
        ("__meta_kubernetes_endpoint_address_target_kind", "Node"),
        (
            "__meta_kubernetes_endpoint_address_target_name",
            "kind-worker",
        ),
    ]
    .into();
    assert_eq!(labels_of(&targets[0]), want);
}

fn pod() -> Value {
    json!({
        "metadata": {"namespace": "apps", "name": "web-0", "uid": "u-1",
                     "labels": {"app.kubernetes.io/name": "web"},
                     "annotations": {"team": "a"},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "web-x", "controller": false},
                                         {"kind": "StatefulSet", "name": "web", "controller": true}]},
        "spec": {"nodeName": "n1", "containers": [
            {"name": "app", "image": "app:1", "ports": [{"name": "http", "containerPort": 8080}]},
            {"name": "sidecar", "image": "side:1", "ports": [{"name": "admin", "containerPort": 9090, "protocol": "UDP"}]}
        ]},
        "status": {"podIP": "10.0.0.5", "hostIP": "172.18.0.2", "phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn pod_endpoints() -> Value {
    json!({
        "metadata": {"namespace": "apps", "name": "web"},
        "subsets": [{
            "addresses": [{"ip": "10.0.0.5", "nodeName": "n1", "hostname": "",
                           "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "apps"}}],
            "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}]
        }]
    })
}

#[test]
fn a_pod_target_gets_the_pod_and_matching_container_labels() {
    let targets = endpoints_targets(&pod_endpoints(), None, &[pod()]);
    let t = &targets[0];
    assert_eq!(t.address, "10.0.0.5:8080");
    let l = labels_of(t);
    for (k, v) in [
        ("__meta_kubernetes_endpoint_node_name", "n1"),
        ("__meta_kubernetes_pod_name", "web-0"),
        ("__meta_kubernetes_pod_ip", "10.0.0.5"),
        ("__meta_kubernetes_pod_ready", "true"),
        ("__meta_kubernetes_pod_phase", "Running"),
        ("__meta_kubernetes_pod_node_name", "n1"),
        ("__meta_kubernetes_pod_host_ip", "172.18.0.2"),
        ("__meta_kubernetes_pod_uid", "u-1"),
        ("__meta_kubernetes_pod_controller_kind", "StatefulSet"),
        ("__meta_kubernetes_pod_controller_name", "web"),
        ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "web"),
        (
            "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name",
            "true",
        ),
        ("__meta_kubernetes_pod_annotation_team", "a"),
        ("__meta_kubernetes_pod_annotationpresent_team", "true"),
        ("__meta_kubernetes_pod_container_name", "app"),
        ("__meta_kubernetes_pod_container_port_name", "http"),
        ("__meta_kubernetes_pod_container_port_number", "8080"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ] {
        assert_eq!(l.get(k), Some(&v), "{k} in {l:#?}");
    }
    // prometheus@v2.26.0 names no image (2.42 adds __meta_kubernetes_pod_container_image).
    assert!(!l.contains_key("__meta_kubernetes_pod_container_image"));
    // An empty hostname is unset upstream; no service, so no service labels.
    assert!(!l.contains_key("__meta_kubernetes_endpoint_hostname"));
    assert!(!l
        .keys()
        .any(|k| k.starts_with("__meta_kubernetes_service_")));
}

#[test]
fn a_container_port_no_endpoint_covers_is_a_target_without_endpoint_labels() {
    let targets = endpoints_targets(&pod_endpoints(), None, &[pod()]);
    assert_eq!(targets.len(), 2);
    let extra = &targets[1];
    assert_eq!(extra.address, "10.0.0.5:9090");
    let l = labels_of(extra);
    assert_eq!(l["__meta_kubernetes_pod_container_name"], "sidecar");
    assert_eq!(l["__meta_kubernetes_pod_container_port_number"], "9090");
    // The container port's own protocol here.
    assert_eq!(l["__meta_kubernetes_pod_container_port_protocol"], "UDP");
    assert_eq!(l["__meta_kubernetes_pod_name"], "web-0");
    assert_eq!(l["__meta_kubernetes_namespace"], "apps");
    assert!(
        !l.keys()
            .any(|k| k.starts_with("__meta_kubernetes_endpoint_")),
        "{l:#?}"
    );
}

#[test]
fn a_pod_the_store_does_not_hold_adds_no_pod_labels_and_no_extra_targets() {
    let targets = endpoints_targets(&pod_endpoints(), None, &[]);
    assert_eq!(targets.len(), 1);
    let l = labels_of(&targets[0]);
    assert_eq!(l["__meta_kubernetes_endpoint_address_target_kind"], "Pod");
    assert!(
        !l.keys().any(|k| k.starts_with("__meta_kubernetes_pod_")),
        "{l:#?}"
    );
}

#[test]
fn ports_outer_ready_before_not_ready_and_ipv6_in_brackets() {
    let ep = json!({
        "metadata": {"namespace": "ns", "name": "svc"},
        "subsets": [{
            "addresses": [{"ip": "fd00::1", "hostname": "h1"}],
            "notReadyAddresses": [{"ip": "10.0.0.9"}],
            "ports": [{"port": 1, "protocol": "TCP"}, {"name": "b", "port": 2}]
        }]
    });
    let got: Vec<_> = endpoints_targets(&ep, None, &[])
        .iter()
        .map(|t| {
            (
                t.address.clone(),
                t.label("__meta_kubernetes_endpoint_ready")
                    .unwrap()
                    .to_string(),
                t.label("__meta_kubernetes_endpoint_port_name")
                    .unwrap()
                    .to_string(),
                t.label("__meta_kubernetes_endpoint_hostname")
                    .map(String::from),
            )
        })
        .collect();
    let want = [
        ("[fd00::1]:1", "true", "", Some("h1")),
        ("10.0.0.9:1", "false", "", None),
        ("[fd00::1]:2", "true", "b", Some("h1")),
        ("10.0.0.9:2", "false", "b", None),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(a, r, p, h)| {
            (
                a.to_string(),
                r.to_string(),
                p.to_string(),
                h.map(String::from),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn the_last_container_declaring_the_port_wins() {
    let mut p = pod();
    p["spec"]["containers"][1]["ports"] = json!([{"name": "dup", "containerPort": 8080}]);
    let targets = endpoints_targets(&pod_endpoints(), None, &[p]);
    assert_eq!(targets.len(), 1, "both container ports are covered");
    assert_eq!(
        targets[0].label("__meta_kubernetes_pod_container_name"),
        Some("sidecar")
    );
    assert_eq!(
        targets[0].label("__meta_kubernetes_pod_container_port_name"),
        Some("dup")
    );
}

#[test]
fn a_pod_without_a_ready_condition_is_unknown() {
    let mut p = pod();
    p["status"]["conditions"] = json!([]);
    let targets = endpoints_targets(&pod_endpoints(), None, &[p]);
    assert_eq!(
        targets[0].label("__meta_kubernetes_pod_ready"),
        Some("unknown")
    );
}

/// endpoints.go resolvePodRef looks the pod up by the reference's namespace only: without one
/// the target is the address alone, even if a pod of that name lives in the Endpoints' namespace.
#[test]
fn a_pod_reference_without_a_namespace_resolves_no_pod() {
    let mut ep = pod_endpoints();
    ep["subsets"][0]["addresses"][0]["targetRef"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let targets = endpoints_targets(&ep, None, &[pod()]);
    assert_eq!(
        targets.len(),
        1,
        "no pod, so no extra container-port targets"
    );
    let l = labels_of(&targets[0]);
    assert_eq!(
        l.get("__meta_kubernetes_endpoint_address_target_kind"),
        Some(&"Pod")
    );
    assert!(
        !l.keys().any(|k| k.starts_with("__meta_kubernetes_pod_")),
        "{l:#?}"
    );
}
