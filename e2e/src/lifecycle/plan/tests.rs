use super::*;
use crate::matrix::Matrix;

fn input<'a>(cell: &'a Cell, mode: Mode, keep: Keep) -> PlanInput<'a> {
    let name = cell.default_cluster_name();
    let pin = kind::KindPin {
        version: cell.kind_version.clone(),
        platform: "linux-amd64".into(),
        url: cell.kind_url("linux-amd64"),
        sha256: cell.kind_sha256["linux-amd64"].clone(),
    };
    PlanInput {
        cell,
        mode,
        keep,
        tools_path: format!("target/e2e/tools/kind-{}", cell.kind_version),
        kind: pin,
        kind_config: cell.kind_config.display().to_string(),
        paths: DisplayPaths {
            kubeconfig: format!("target/e2e/{name}/kubeconfig"),
            artifacts: format!("target/e2e/{name}/artifacts"),
            summary: format!("target/e2e/{name}/summary.md"),
            junit: format!("target/e2e/{name}/junit.xml"),
        },
        cluster_name: name,
        bundle: BundleChoice::Pinned {
            url: cell.operator_bundle_url.clone(),
            cache_dir: "target/e2e/cache".into(),
        },
        manifests: vec![
            ("manifests/prometheus/prometheus.yaml".into(), "aa".into()),
            (cell.servicemonitor.manifest().into(), "bb".into()),
            ("fixtures/workloads/apps.yaml".into(), "cc".into()),
        ],
        timeout: Duration::from_secs(300),
        applied: Applied::default(),
        stack: None,
        workloads: true,
    }
}

fn matrix() -> Matrix {
    Matrix::load_default().expect("fixtures/matrix.toml loads")
}

#[test]
fn phases_are_in_order_and_numbered() {
    let m = matrix();
    let plan = build(&input(m.default_cell(), Mode::Create, Keep::Never));
    let ids: Vec<PhaseId> = plan.phases.iter().map(|p| p.id).collect();
    assert_eq!(ids, PhaseId::ALL);
    assert_eq!(PhaseId::Operator.label(), "[3/8] operator");
}

#[test]
fn create_plan_names_every_pin() {
    let m = matrix();
    let cell = m.default_cell();
    let text = build(&input(cell, Mode::Create, Keep::Never)).render();
    for needle in [
        cell.kind_url("linux-amd64").as_str(),
        cell.kind_sha256["linux-amd64"].as_str(),
        cell.node_image.as_str(),
        cell.operator_bundle_url.as_str(),
        cell.operator_bundle_sha256.as_str(),
        "--wait 120s --retain",
        "$ kind delete cluster --name",
        "sha256 aa",
        "sha256 bb",
        "sha256 cc",
        "cargo xtask assert --kubeconfig target/e2e/",
        "pods/<pod>:9090/proxy",
    ] {
        assert!(text.contains(needle), "plan lacks {needle:?}:\n{text}");
    }
    // Every manifest lands in exactly one phase.
    assert_eq!(
        text.matches("apply manifests/prometheus/prometheus.yaml")
            .count(),
        1
    );
}

#[test]
fn existing_cluster_plan_never_creates_or_deletes() {
    let m = matrix();
    let text = build(&input(
        m.default_cell(),
        Mode::Existing {
            kubeconfig: "/k".into(),
        },
        Keep::Never,
    ))
    .render();
    assert!(
        !text.contains("kind create")
            && !text.contains("kind delete")
            && !text.contains("docker info"),
        "{text}"
    );
    assert!(
        text.contains("cargo xtask assert --kubeconfig /k "),
        "{text}"
    );
}

#[test]
fn keep_flags_change_teardown() {
    let m = matrix();
    let cell = m.default_cell();
    let keep = build(&input(cell, Mode::Create, Keep::Always)).render();
    assert!(!keep.contains("kind delete"), "{keep}");
    let on_failure = build(&input(cell, Mode::Create, Keep::OnFailure)).render();
    assert!(
        on_failure.contains("success: $ kind delete"),
        "{on_failure}"
    );
    assert!(on_failure.contains("then keep the cluster"), "{on_failure}");
    let reuse = build(&input(cell, Mode::Reuse, Keep::Never)).render();
    assert!(
        reuse.contains("$ kind get kubeconfig --name")
            && reuse.contains("only when this run created it"),
        "{reuse}"
    );
}

#[test]
fn every_cell_renders() {
    let m = matrix();
    for cell in &m.cells {
        let text = build(&input(cell, Mode::Create, Keep::Never)).render();
        assert!(text.contains(&cell.node_image), "{}", cell.name);
        assert!(
            text.contains(cell.servicemonitor.manifest()),
            "{}",
            cell.name
        );
    }
}

#[test]
fn applied_lines_say_what_each_field_is_and_what_unset_means() {
    let sm = serde_json::json!({
        "kind": "ServiceMonitor",
        "metadata": {"name": "cadvisor", "namespace": "kube-system"},
        "spec": {"endpoints": [
            {"port": "https-metrics", "scheme": "https", "path": "/metrics/cadvisor",
             "honorLabels": true, "tlsConfig": {"insecureSkipVerify": true}},
            {"port": "http-metrics"}
        ]}
    });
    let lines = describe_servicemonitor(&sm);
    assert_eq!(
        lines,
        [
            "ServiceMonitor kube-system/cadvisor (labels (unset: no labels))",
            "    endpoint 0: port https-metrics, scheme https, path /metrics/cadvisor",
            "      bearerTokenFile (unset: no token sent)",
            "      tlsConfig {insecureSkipVerify: true}",
            "      honorLabels true",
            "    endpoint 1: port http-metrics, scheme (unset: http), path (unset: /metrics)",
            "      bearerTokenFile (unset: no token sent)",
            "      tlsConfig (unset: verify against the system CAs)",
            "      honorLabels (unset: false: pod namespaces arrive as exported_namespace)",
            "    namespaceSelector (unset: the ServiceMonitor's own namespace)",
            "    selector (unset: every Service)",
        ]
    );
    let prom = serde_json::json!({
        "kind": "Prometheus",
        "metadata": {"name": "p", "namespace": "monitoring"},
        "spec": {"serviceMonitorNamespaceSelector": {"matchLabels": {"a": "b"}}}
    });
    assert_eq!(
        describe_prometheus(&prom),
        [
            "Prometheus monitoring/p: version (unset: the untagged (latest) image in v0.48.1), scrapeInterval (unset: 30s)",
            "    serviceMonitorSelector (unset: selects no ServiceMonitor)",
            "    serviceMonitorNamespaceSelector {matchLabels: {a: b}}",
        ]
    );
    let other = serde_json::json!({"kind": "Namespace"});
    assert!(describe_applied(std::slice::from_ref(&other), &sm).is_err());
    assert!(describe_applied(std::slice::from_ref(&prom), &other).is_err());
    let applied = describe_applied(&[other, prom], &sm).unwrap();
    assert_eq!(applied.servicemonitor, lines);
}

#[test]
fn the_plan_shows_the_applied_settings_in_their_phases() {
    let m = matrix();
    let mut with_applied = input(m.default_cell(), Mode::Create, Keep::Never);
    with_applied.applied = Applied {
        prometheus: vec!["PROM-LINE".into()],
        servicemonitor: vec!["SM-LINE".into()],
    };
    let plan = build(&with_applied);
    let steps = |id: PhaseId| {
        plan.phases
            .iter()
            .find(|p| p.id == id)
            .unwrap()
            .steps
            .clone()
    };
    assert!(steps(PhaseId::Prometheus).contains(&"PROM-LINE".to_string()));
    assert!(steps(PhaseId::ServiceMonitor).contains(&"SM-LINE".to_string()));
}

#[test]
fn a_stack_plan_lists_its_objects_in_apply_order_and_what_it_waits_for() {
    let m = matrix();
    let stack =
        crate::stack::Stack::from_text("stack.yaml", crate::stack::tests::MINI_STACK).unwrap();
    let asserted = vec![crate::assert::PrometheusRef::new("monitoring", "k8s")];
    let mut i = input(m.default_cell(), Mode::Create, Keep::Never);
    i.stack = Some(StackPlan::of(&stack, true, &asserted));
    i.workloads = false;
    let text = build(&i).render();
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("plan lacks {needle:?}:\n{text}"))
    };
    // Namespaces and CRDs, wait, then the rest with identities and RBAC first.
    assert!(
        at("    Namespace monitoring")
            < at("    CustomResourceDefinition prometheuses.monitoring.coreos.com")
    );
    assert!(
        at("CustomResourceDefinition servicemonitors")
            < at("wait until each of the 2 CustomResourceDefinitions is Established")
    );
    assert!(at("Established") < at("    ServiceAccount monitoring/prometheus-operator"));
    assert!(
        at("    ClusterRoleBinding prometheus-operator")
            < at("    Deployment monitoring/prometheus-operator")
    );
    assert!(
        at("    Deployment monitoring/prometheus-operator") < at("    Prometheus monitoring/k8s")
    );
    for needle in [
        "[3/8] operator: the stack stack.yaml",
        "read stack.yaml  sha256 ",
        "wait for Deployment monitoring/prometheus-operator (quay.io/prometheus-operator/prometheus-operator:v0.48.1) to be Available",
        "wait for Service kube-system/kubelet (its --kubelet-service)",
        "wait for StatefulSet monitoring/prometheus-k8s to have 2 ready replica(s) (Prometheus monitoring/k8s",
        "ServiceMonitor monitoring/kubelet scrapes /metrics/cadvisor: job serviceMonitor/monitoring/kubelet/1",
        "Prometheus monitoring/k8s selects one of them, and each replica has loaded its job",
        "skipped (--no-workloads)",
        "Prometheus monitoring/k8s: each replica, through the API server's pod proxy",
        "cargo xtask assert --kubeconfig target/e2e/",
        "the stack stack.yaml (its operator: quay.io/prometheus-operator/prometheus-operator:v0.48.1)",
    ] {
        at(needle);
    }
    assert!(
        !text.contains("bundle.yaml") && !text.contains("manifests/prometheus"),
        "{text}"
    );

    // On a cluster that runs the stack already, nothing of it is applied.
    i.stack = Some(StackPlan::of(&stack, false, &asserted));
    let text = build(&i).render();
    assert!(
        text.contains("nothing applied: the cluster runs the stack already"),
        "{text}"
    );
    assert!(!text.contains("    Namespace monitoring"), "{text}");
}
