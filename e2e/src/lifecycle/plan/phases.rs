//! One pure function per phase of the plan: what it runs, fetches and applies.

use super::*;

/// 1. Checks before anything is created.
pub(super) fn preflight(input: &PlanInput) -> Phase {
    let cell = input.cell;
    let name = &input.cluster_name;
    let mut steps = Vec::new();
    if let Mode::Existing { kubeconfig } = &input.mode {
        steps.push(format!(
            "kubeconfig {kubeconfig} is readable (no Docker or kind needed)"
        ));
    } else {
        steps.push(format!(
            "kind config {} is readable and a kind.x-k8s.io/v1alpha4 Cluster with only known fields",
            input.kind_config
        ));
        steps.push(
            "$ docker info --format {{.ServerVersion}}   (the Docker engine answers)".to_string(),
        );
        steps.push(format!(
            "kind {v} ({p}): `kind` on PATH if `kind version` reports {v}, else {t} (verified), else download and verify:",
            v = input.kind.version,
            p = input.kind.platform,
            t = input.tools_path
        ));
        steps.push(format!("    url    {}", input.kind.url));
        steps.push(format!("    sha256 {}", input.kind.sha256));
        steps.push("$ kind get clusters".to_string());
        steps.push(match input.mode {
            Mode::Reuse => format!("{name} is reused when listed"),
            _ => format!("{name} must not be listed yet (else: --reuse, or `cargo xtask down --name {name}`)"),
        });
    }
    if let BundleChoice::File { path } = &input.bundle {
        steps.push(format!(
            "--operator-bundle {path}: sha256 {} (verified, parsed)",
            cell.operator_bundle_sha256
        ));
    }
    Phase {
        id: PhaseId::Preflight,
        title: "fails before anything is created".into(),
        steps,
    }
}

/// 2. The kind cluster (or nothing, for `--kubeconfig`).
pub(super) fn cluster(input: &PlanInput) -> Phase {
    let cell = input.cell;
    let name = &input.cluster_name;
    let secs = input.timeout.as_secs();
    let steps = match &input.mode {
        Mode::Existing { .. } => vec![
            "skipped: the cluster exists already (only a client is built from the kubeconfig)"
                .to_string(),
        ],
        mode => {
            let mut s = Vec::new();
            if *mode == Mode::Reuse {
                s.push(format!(
                    "if {name} exists: $ kind {} > {}",
                    kind::get_kubeconfig_args(name).join(" "),
                    input.paths.kubeconfig
                ));
                s.push("otherwise:".to_string());
            }
            s.push(kind_line(kind::create_args(
                name,
                &input.kind_config,
                &cell.node_image,
                &input.paths.kubeconfig,
            )));
            s.push(format!(
                "wait until every node is Ready (timeout {secs}s; kind's --wait covers only the control plane)"
            ));
            s
        }
    };
    Phase {
        id: PhaseId::Cluster,
        title: format!("Kubernetes {}", cell.kubernetes_version()),
        steps,
    }
}

/// 3. prometheus-operator from the pinned bundle.
pub(super) fn operator(input: &PlanInput) -> Phase {
    let cell = input.cell;
    let secs = input.timeout.as_secs();
    let bundle = match &input.bundle {
        BundleChoice::Pinned { url, cache_dir } => {
            format!("bundle {url}\n    cached in {cache_dir}/")
        }
        BundleChoice::File { path } => format!("bundle from --operator-bundle {path}"),
    };
    let mut steps: Vec<String> = bundle.lines().map(String::from).collect();
    steps.push(format!(
        "    sha256 {} (verified; a mismatch is refused)",
        cell.operator_bundle_sha256
    ));
    steps.push(
        "server-side apply every object, CustomResourceDefinitions first; wait for Established"
            .into(),
    );
    steps.push(format!(
        "wait for Deployment default/prometheus-operator to be Available (timeout {secs}s)"
    ));
    steps.push(
        "wait for Service kube-system/kubelet: port https-metrics, one endpoint address per node"
            .into(),
    );
    Phase {
        id: PhaseId::Operator,
        title: format!("prometheus-operator {}", cell.operator_version),
        steps,
    }
}

/// 4–6. This repository's manifests, grouped by phase, with their digests and what they say.
pub(super) fn applied(input: &PlanInput) -> Vec<Phase> {
    let cell = input.cell;
    let secs = input.timeout.as_secs();
    let mut phases = Vec::new();
    let sm_manifest = cell.servicemonitor.manifest();
    let digests = |keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        input
            .manifests
            .iter()
            .filter(|(p, _)| keep(p))
            .map(|(p, sha)| format!("apply {p}  sha256 {sha}"))
            .collect()
    };
    let mut steps = digests(&|p| p.starts_with("manifests/prometheus/"));
    steps.extend(input.applied.prometheus.iter().cloned());
    steps.push(format!(
        "wait for StatefulSet {}/prometheus-{} to be ready (timeout {secs}s)",
        crate::install::PROMETHEUS_NAMESPACE,
        crate::install::PROMETHEUS_NAME
    ));
    phases.push(Phase {
        id: PhaseId::Prometheus,
        title: "manifests/prometheus/".into(),
        steps,
    });

    let mut steps = digests(&|p| p == sm_manifest);
    if steps.is_empty() {
        steps.push(format!("apply {sm_manifest}"));
    }
    steps.extend(input.applied.servicemonitor.iter().cloned());
    steps.push(format!(
        "wait until Prometheus has loaded its scrape job (/api/v1/status/config through the service proxy; timeout {secs}s)"
    ));
    phases.push(Phase {
        id: PhaseId::ServiceMonitor,
        title: format!("variant `{}`", cell.servicemonitor.as_str()),
        steps,
    });

    phases
}

/// 6. Our workloads (pods with several containers, a Job, a DaemonSet), unless `--no-workloads`.
pub(super) fn workloads(input: &PlanInput) -> Phase {
    let secs = input.timeout.as_secs();
    let steps = if input.workloads {
        let mut steps: Vec<String> = input
            .manifests
            .iter()
            .filter(|(p, _)| p.starts_with("fixtures/workloads/"))
            .map(|(p, sha)| format!("apply {p}  sha256 {sha}"))
            .collect();
        steps.push(format!(
            "wait until their pods are Running (timeout {secs}s)"
        ));
        steps
    } else {
        vec!["skipped (--no-workloads): the assert phase checks the pods that run already".into()]
    };
    Phase {
        id: PhaseId::Workloads,
        title: "fixtures/workloads/".into(),
        steps,
    }
}

/// 3–5 with a stack: apply it (or not, on a cluster that runs it), then what it asks to wait for.
pub(super) fn stack_phases(input: &PlanInput, stack: &StackPlan) -> Vec<Phase> {
    let secs = input.timeout.as_secs();
    let d = &stack.derived;
    let mut steps = Vec::new();
    for (file, sha) in &stack.digests {
        steps.push(format!("read {file}  sha256 {sha}"));
    }
    if stack.applies {
        steps.push(format!(
            "server-side apply (field manager {}), in this order:",
            crate::k8s::apply::FIELD_MANAGER
        ));
        for ident in &d.first {
            steps.push(format!("    {ident}"));
        }
        if !d.crds.is_empty() {
            steps.push(format!(
                "  wait until each of the {} CustomResourceDefinitions is Established",
                d.crds.len()
            ));
        }
        for ident in &d.rest {
            steps.push(format!("    {ident}"));
        }
    } else {
        steps.push(format!(
            "nothing applied: the cluster runs the stack already ({} objects, --kubeconfig)",
            d.first.len() + d.rest.len()
        ));
    }
    if d.operators.is_empty() {
        steps.push(
            "no prometheus-operator Deployment in the stack: the cluster must run one".into(),
        );
    }
    for op in &d.operators {
        steps.push(format!(
            "wait for Deployment {}/{} ({}) to be Available (timeout {secs}s)",
            op.namespace, op.name, op.image
        ));
        match &op.kubelet_service {
            Some((ns, name)) => steps.push(format!(
                "wait for Service {ns}/{name} (its --kubelet-service): port https-metrics, one endpoint address per node"
            )),
            None => steps.push(
                "its args lack --kubelet-service: no kubelet Service is waited for".into(),
            ),
        }
    }
    let operator = Phase {
        id: PhaseId::Operator,
        title: format!("the stack {}", stack.source),
        steps,
    };

    let mut steps: Vec<String> = d
        .deployments
        .iter()
        .map(|(ns, name)| format!("wait for Deployment {ns}/{name} to be Available"))
        .collect();
    for p in &d.prometheuses {
        steps.push(format!(
            "wait for StatefulSet {}/{} to have {} ready replica(s) (Prometheus {}; timeout {secs}s)",
            p.prometheus.namespace,
            p.prometheus.statefulset(),
            p.replicas,
            p.prometheus
        ));
    }
    for block in &stack.described {
        steps.extend(block.iter().cloned());
    }
    let prometheus = Phase {
        id: PhaseId::Prometheus,
        title: "the stack's Deployments and Prometheus objects".into(),
        steps,
    };

    let mut steps: Vec<String> = d
        .cadvisor_servicemonitors
        .iter()
        .map(|(key, eps)| {
            format!(
                "ServiceMonitor {key} scrapes /metrics/cadvisor: job {}",
                eps.iter()
                    .map(|i| format!("serviceMonitor/{key}/{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    for p in &stack.asserted {
        steps.push(format!(
            "Prometheus {p} selects one of them, and each replica has loaded its job (timeout {secs}s)"
        ));
    }
    let servicemonitor = Phase {
        id: PhaseId::ServiceMonitor,
        title: "the stack's cadvisor ServiceMonitors".into(),
        steps,
    };
    vec![operator, prometheus, servicemonitor]
}

/// 7. The checks, in-process, against each replica of our Prometheus.
pub(super) fn assert(input: &PlanInput) -> Phase {
    if let Some(stack) = &input.stack {
        return assert_stack(input, stack);
    }
    let cell = input.cell;
    let kubeconfig = kubeconfig(input);
    let ns = crate::install::PROMETHEUS_NAMESPACE;
    let honor = cell.servicemonitor == crate::matrix::ServiceMonitorVariant::HonorLabels;
    let steps = vec![
        format!(
            "Prometheus {ns}/{}: each replica, through the API server's pod proxy (/api/v1/namespaces/{ns}/pods/<pod>:9090/proxy):",
            crate::install::PROMETHEUS_NAME
        ),
        format!("  {}", crate::assert::Check::Replicas.title()),
        format!(
            "  {}: serviceMonitor/kube-system/cadvisor/0 with /metrics/cadvisor, https, the service account token, insecure_skip_verify, honor_labels {honor}",
            crate::assert::Check::JobLoaded.title()
        ),
        format!(
            "  {}: https://<node>:10250/metrics/cadvisor",
            crate::assert::Check::TargetsPerNode.title()
        ),
        format!(
            "  {} ({} label): {}",
            crate::assert::Check::Coverage.title(),
            if honor { "namespace" } else { "exported_namespace" },
            metrics_env(&cell.metrics).replace(',', ", ")
        ),
        format!(
            "writes {} and {}/coverage.json (diagnose.json when a check fails)",
            input.paths.junit, input.paths.artifacts
        ),
        format!(
            "rerun them alone: cargo xtask assert --kubeconfig {kubeconfig} --cell {}",
            cell.name
        ),
    ];
    Phase {
        id: PhaseId::Assert,
        title: "checks against each Prometheus replica (in-process)".into(),
        steps,
    }
}

/// 7 with a stack: each Prometheus of the stack (or `--prometheus`), each replica.
fn assert_stack(input: &PlanInput, stack: &StackPlan) -> Phase {
    let cell = input.cell;
    let kubeconfig = kubeconfig(input);
    let mut steps = Vec::new();
    for p in &stack.asserted {
        steps.push(format!(
            "Prometheus {p}: each replica, through the API server's pod proxy (/api/v1/namespaces/{}/pods/<pod>:9090/proxy):",
            p.namespace
        ));
        for check in [
            crate::assert::Check::Replicas,
            crate::assert::Check::JobLoaded,
            crate::assert::Check::TargetsPerNode,
        ] {
            steps.push(format!("  {}", check.title()));
        }
        steps.push(format!(
            "  {} (the stack's and ours): {}",
            crate::assert::Check::Coverage.title(),
            metrics_env(&cell.metrics).replace(',', ", ")
        ));
    }
    steps.push(format!(
        "writes {} and {}/coverage.json (diagnose.json when a check fails)",
        input.paths.junit, input.paths.artifacts
    ));
    steps.push(format!(
        "rerun them alone: cargo xtask assert --kubeconfig {kubeconfig} --stack {}",
        stack.source.trim_end_matches(" (stdin)")
    ));
    Phase {
        id: PhaseId::Assert,
        title: "checks against each Prometheus replica of the stack (in-process)".into(),
        steps,
    }
}

/// 8. Teardown: what success, failure and Ctrl-C do, by [`Keep::deletes`].
pub(super) fn teardown(input: &PlanInput) -> Phase {
    let name = &input.cluster_name;
    let existing = matches!(input.mode, Mode::Existing { .. });
    let delete = kind_line(kind::delete_args(name, &input.paths.kubeconfig));
    let mut steps = Vec::new();
    let deletes = |failed: bool| input.keep.deletes(failed);
    if existing {
        steps.push("success: nothing to delete".into());
        steps.push(format!(
            "failure: collect artifacts into {}/; the cluster is left as it is",
            input.paths.artifacts
        ));
        steps.push("Ctrl-C: stop, exit code 130; nothing is deleted".into());
    } else {
        let reused = if input.mode == Mode::Reuse {
            " (only when this run created it)"
        } else {
            ""
        };
        steps.push(if deletes(false) {
            format!("success: {delete}{reused}")
        } else {
            "success: keep the cluster".into()
        });
        steps.push(format!(
            "failure: collect artifacts into {}/ (pod logs, targets, config redacted, YAMLs, pod list) and",
            input.paths.artifacts
        ));
        steps.push(format!(
            "         {}",
            kind_line(kind::export_logs_args(
                &format!("{}/kind-logs", input.paths.artifacts),
                name
            ))
        ));
        steps.push(if deletes(true) {
            format!("         then {delete}{reused}")
        } else {
            "         then keep the cluster".into()
        });
        steps.push(if deletes(false) {
            format!("Ctrl-C: stop, {delete}{reused}, exit code 130")
        } else {
            "Ctrl-C: stop, exit code 130; keep the cluster".into()
        });
        if deletes(false) {
            steps.push(format!("after deleting: remove {}", input.paths.kubeconfig));
        }
    }
    steps.push(format!(
        "write {} (phase timings, coverage)",
        input.paths.summary
    ));
    Phase {
        id: PhaseId::Teardown,
        title: String::new(),
        steps,
    }
}
