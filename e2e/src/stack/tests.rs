use super::*;
use crate::operator::image_tag;

/// A stack shaped like a trimmed kube-prometheus: the operator in `monitoring`, Prometheus `k8s`
/// with two replicas, the kubelet ServiceMonitor whose endpoint 1 is cadvisor.
pub(crate) const MINI_STACK: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: monitoring
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: prometheuses.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: Prometheus, plural: prometheuses}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, plural: servicemonitors}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: prometheus-operator
  namespace: monitoring
spec:
  template:
    spec:
      containers:
      - name: prometheus-operator
        image: quay.io/prometheus-operator/prometheus-operator:v0.48.1
        args: [--kubelet-service=kube-system/kubelet, --prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.48.1]
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: prometheus-operator
  namespace: monitoring
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: prometheus-operator
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata:
  name: k8s
  namespace: monitoring
spec:
  replicas: 2
  serviceMonitorSelector: {}
---
# kube-prometheus's kubelet ServiceMonitor: endpoint 1 is cadvisor.
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: kubelet
  namespace: monitoring
spec:
  endpoints:
  - {port: https-metrics, scheme: https}
  - {port: https-metrics, scheme: https, path: /metrics/cadvisor}
  namespaceSelector: {matchNames: [kube-system]}
  selector: {matchLabels: {app.kubernetes.io/name: kubelet}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: kube-state-metrics
  namespace: monitoring
spec:
  template:
    spec:
      containers:
      - {name: kube-state-metrics, image: k8s.gcr.io/kube-state-metrics/kube-state-metrics:v2.0.0}
"#;

fn idents(v: &[ObjectIdent]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

fn none(_: &str, _: &str, _: &str) -> bool {
    false
}

#[test]
fn a_stack_is_applied_namespaces_and_crds_first_and_says_what_to_wait_for() {
    let stack = Stack::from_text("s.yaml", MINI_STACK).unwrap();
    assert_eq!(stack.documents.len(), 9);
    assert_eq!(stack.documents[8].origin(), "s.yaml, document 9");
    stack.check(None, &none, "").unwrap();
    let d = stack.derived();
    assert_eq!(
        idents(&d.first),
        [
            "Namespace monitoring",
            "CustomResourceDefinition prometheuses.monitoring.coreos.com",
            "CustomResourceDefinition servicemonitors.monitoring.coreos.com"
        ]
    );
    assert_eq!(
        idents(&d.rest),
        [
            "ServiceAccount monitoring/prometheus-operator",
            "ClusterRoleBinding prometheus-operator",
            "Deployment monitoring/prometheus-operator",
            "Prometheus monitoring/k8s",
            "ServiceMonitor monitoring/kubelet",
            "Deployment monitoring/kube-state-metrics"
        ]
    );
    assert_eq!(d.crds.len(), 2);
    assert_eq!(d.operators.len(), 1);
    let op = &d.operators[0];
    assert_eq!(
        (op.namespace.as_str(), op.version.as_deref()),
        ("monitoring", Some("v0.48.1"))
    );
    assert_eq!(
        op.kubelet_service,
        Some(("kube-system".to_string(), "kubelet".to_string()))
    );
    assert_eq!(
        d.deployments,
        [("monitoring".to_string(), "kube-state-metrics".to_string())]
    );
    assert_eq!(
        d.prometheuses[0].prometheus,
        PrometheusRef::new("monitoring", "k8s")
    );
    assert_eq!(d.prometheuses[0].replicas, 2);
    assert_eq!(
        d.cadvisor_servicemonitors,
        [("monitoring/kubelet".to_string(), vec![1])]
    );
    let spec = stack.assert_spec(None, &MetricName::defaults(), true);
    assert_eq!(spec.prometheuses, [PrometheusRef::new("monitoring", "k8s")]);
    assert_eq!(spec.namespaces, ["pme2e-apps", "pme2e-batch"]);
    assert!(spec.ours.is_none());
    assert!(stack.assert_spec(None, &[], false).namespaces.is_empty());
}

fn err(text: &str) -> String {
    match Stack::from_text("s.yaml", text) {
        Err(e) => e.to_string(),
        Ok(stack) => stack
            .check(
                None,
                &none,
                " (a new kind cluster serves no custom resources)",
            )
            .expect_err("refused")
            .to_string(),
    }
}

#[test]
fn bad_input_names_the_document_and_the_fix() {
    let e = err("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: [unclosed\n");
    assert!(
        e.starts_with("s.yaml, document 2 (from line 5): not YAML:"),
        "{e}"
    );
    let e = err("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n");
    assert!(
        e.starts_with("s.yaml, document 1: not a Kubernetes object (missing metadata.name)")
            && e.contains("apiVersion, kind and metadata.name"),
        "{e}"
    );
    let e = err("- a\n- b\n");
    assert!(
        e.contains("document 1: not a Kubernetes object (a YAML sequence"),
        "{e}"
    );
    let e = err("# nothing but a comment\n---\n");
    assert!(e.contains("holds no Kubernetes objects"), "{e}");
    let e = err(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n",
    );
    assert!(
        e.contains("this is a kustomization")
            && e.contains("kustomize build . | cargo xtask e2e --stack -"),
        "{e}"
    );
    let without = |kind: &str| {
        MINI_STACK
            .split("\n---\n")
            .filter(|d| !d.contains(&format!("kind: {kind}\n")))
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let e = err(&without("Prometheus"));
    assert!(
        e.contains("has no Prometheus object") && e.contains("add yours"),
        "{e}"
    );
    let e = err(&MINI_STACK.replace("path: /metrics/cadvisor", "path: /metrics/probes"));
    assert!(
        e.contains("no ServiceMonitor scraping /metrics/cadvisor (its ServiceMonitors: monitoring/kubelet)")
            && e.contains("bearerTokenFile"),
        "{e}"
    );
    let e = err(&without("ServiceMonitor"));
    assert!(e.contains("(it has no ServiceMonitor at all)"), "{e}");
    // A custom resource whose CRD the stack lacks, on a new cluster.
    let e = err(&format!(
        "{MINI_STACK}---\napiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {{name: pm, namespace: monitoring}}\n"
    ));
    assert_eq!(
        e,
        "s.yaml, document 10: PodMonitor monitoring/pm is a custom resource of monitoring.coreos.com/v1, \
         but neither the stack nor the cluster (a new kind cluster serves no custom resources) has a \
         CustomResourceDefinition serving kind PodMonitor there; add its CRD to the stack (CRDs are \
         applied first), or correct apiVersion and kind"
    );
    // The same kind served by the cluster passes.
    let stack = Stack::from_text(
        "s.yaml",
        &format!("{MINI_STACK}---\napiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {{name: pm}}\n"),
    )
    .unwrap();
    stack
        .check(
            None,
            &|g, v, k| (g, v, k) == ("monitoring.coreos.com", "v1", "PodMonitor"),
            "",
        )
        .unwrap();
    // A version the stack's CRD does not serve.
    let e = err(&MINI_STACK
        .replace(
            "kind: Prometheus\nmetadata:\n  name: k8s",
            "kind: Prometheus\nmetadata:\n  name: k8s\n  labels: {}",
        )
        .replace(
            "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus",
            "apiVersion: monitoring.coreos.com/v2\nkind: Prometheus",
        ));
    assert!(
        e.contains("is a custom resource of monitoring.coreos.com/v2"),
        "{e}"
    );
    // --prometheus must name one of the stack's.
    let stack = Stack::from_text("s.yaml", MINI_STACK).unwrap();
    let e = stack
        .check(Some(&PrometheusRef::new("monitoring", "main")), &none, "")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "--prometheus monitoring/main: the stack has no Prometheus monitoring/main; it has monitoring/k8s"
    );
}

#[test]
fn a_list_gives_its_items_and_objects_without_a_namespace_land_in_default() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ServiceAccount, metadata: {name: a}}\n- {apiVersion: apps/v1, kind: Deployment, metadata: {name: op}, spec: {template: {spec: {containers: [{name: x, image: 'quay.io/prometheus-operator/prometheus-operator:v0.60.1@sha256:ab'}]}}}}\n";
    let stack = Stack::from_text("-", text).unwrap();
    assert_eq!(stack.documents.len(), 2);
    assert!(stack
        .documents
        .iter()
        .all(|d| d.origin() == "-, document 1"));
    let d = stack.derived();
    assert_eq!(d.operators[0].namespace, "default");
    assert_eq!(d.operators[0].version.as_deref(), Some("v0.60.1"));
    assert_eq!(d.operators[0].kubelet_service, None);
}

#[test]
fn image_tags_ignore_registries_ports_and_digests() {
    assert_eq!(image_tag("quay.io/a/b:v1.2"), Some("v1.2".into()));
    assert_eq!(
        image_tag("localhost:5000/a/b:v3@sha256:00"),
        Some("v3".into())
    );
    assert_eq!(image_tag("localhost:5000/a/b"), None);
    assert_eq!(image_tag("b@sha256:00"), None);
}

#[test]
fn documents_split_at_markers_and_keep_their_first_line() {
    let parts = split_documents("a: 1\n---\nb: 2\n--- # c\nc: 3\n...\n");
    assert_eq!(
        parts,
        [
            (1, "a: 1\n".to_string()),
            (3, "b: 2\n".to_string()),
            (5, "c: 3\n".to_string())
        ]
    );
}

#[test]
fn the_fixture_stacks_load_pass_the_checks_and_their_servicemonitors_parse() {
    let root = crate::workspace_root();
    for (path, prometheus, replicas, cadvisor) in [
        (
            "fixtures/stacks/kube-prometheus",
            "monitoring/k8s",
            2,
            ("monitoring/kubelet", vec![1]),
        ),
        (
            "fixtures/stacks/no-token.yaml",
            "metrics/main",
            1,
            ("metrics/cadvisor", vec![0]),
        ),
    ] {
        let stack = Stack::load(&StackSource::Path(root.join(path))).unwrap();
        stack.check(None, &none, "").unwrap();
        let d = stack.derived();
        assert_eq!(d.prometheuses.len(), 1, "{path}");
        assert_eq!(d.prometheuses[0].prometheus.to_string(), prometheus);
        assert_eq!(d.prometheuses[0].replicas, replicas);
        assert_eq!(
            d.cadvisor_servicemonitors,
            [(cadvisor.0.to_string(), cadvisor.1)],
            "{path}"
        );
        assert_eq!(d.operators.len(), 1, "{path}");
        assert_eq!(d.operators[0].version.as_deref(), Some("v0.48.1"));
        // Every ServiceMonitor reads through the one parser the twin's operator model uses.
        for doc in stack
            .documents
            .iter()
            .filter(|d| d.ident.kind == "ServiceMonitor")
        {
            crate::operator::scrape_config::specs_from_servicemonitor(&doc.value)
                .unwrap_or_else(|e| panic!("{}: {e}", doc.origin()));
        }
    }
    let kp = Stack::load(&StackSource::Path(
        root.join("fixtures/stacks/kube-prometheus"),
    ))
    .unwrap();
    // kube-prometheus's RoleList and RoleBindingList are flattened, as kubectl does.
    let roles = kp
        .documents
        .iter()
        .filter(|d| d.ident.kind == "Role")
        .count();
    assert_eq!(roles, 3);
    assert!(kp.documents.iter().any(|d| d.ident.kind == "PodMonitor"));
    assert!(kp.documents.iter().any(|d| d.ident.kind == "DaemonSet"
        && d.value.pointer("/spec/template/spec/hostNetwork") == Some(&Value::Bool(true))));
    assert!(kp
        .digests
        .iter()
        .all(|(f, _)| f.starts_with("fixtures/stacks/kube-prometheus/")));
}
