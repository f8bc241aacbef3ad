//! The library against the cluster twin (testkit) instead of route-table fakes: the Applier's
//! requests, the operator install order, the waits' messages, the Prometheus client through the
//! service proxy, and artifact collection with redaction. Needs `E2E_OPERATOR_BUNDLE`; the
//! proxy/artifacts test also Docker and `E2E_PROMETHEUS_IMAGE`.

use e2e::install::{self, PROMETHEUS_DIR};
use e2e::k8s::apply::{Applier, ApplyError};
use e2e::k8s::client::kube_client;
use e2e::k8s::manifests::{read_manifest_dir, read_manifest_file};
use e2e::k8s::wait::WaitError;
use e2e::matrix::ServiceMonitorVariant;
use e2e::operator;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::twin::{Profile, Recorded, Twin, TwinOptions};

use testkit::operator_bundle as bundle;

async fn twin(datapath: bool, tweak: impl FnOnce(&mut TwinOptions)) -> Twin {
    let mut opts = TwinOptions::new(Profile::V1_21);
    opts.datapath = datapath;
    tweak(&mut opts);
    Twin::start(opts).await.expect("starting the twin")
}

fn requests(t: &Twin) -> Vec<Recorded> {
    t.cluster().requests.lock().unwrap().clone()
}

#[tokio::test]
async fn applier_server_side_applies_with_our_field_manager_force_and_the_right_scope() {
    let t = twin(false, |_| {}).await;
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    // The ServiceMonitor CRD from the bundle, so its kind is served.
    operator::install(&client, &bundle(), Duration::from_secs(60))
        .await
        .unwrap();
    t.cluster().requests.lock().unwrap().clear();
    let sm =
        read_manifest_file(&e2e::workspace_root().join(ServiceMonitorVariant::Mission.manifest()))
            .unwrap();
    let role = read_manifest_dir(&e2e::workspace_root().join(PROMETHEUS_DIR))
        .unwrap()
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole")
        .unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let mut applier = Applier::new(client, Duration::from_secs(5));
    applier
        .apply_all(&[&sm[0], &role, &cm, &sm[0]])
        .await
        .unwrap();
    let reqs = requests(&t);
    let patches: Vec<&Recorded> = reqs.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 4, "{reqs:#?}");
    // Discovery once per group/version, not per object.
    assert_eq!(
        reqs.iter()
            .filter(|r| r.path_and_query == "/apis/monitoring.coreos.com/v1")
            .count(),
        1
    );
    let expect = [
        "/apis/monitoring.coreos.com/v1/namespaces/kube-system/servicemonitors/cadvisor",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/pod-metrics-e2e-prometheus",
        "/api/v1/namespaces/default/configmaps/c",
        "/apis/monitoring.coreos.com/v1/namespaces/kube-system/servicemonitors/cadvisor",
    ];
    for (patch, path) in patches.iter().zip(expect) {
        let (p, query) = patch.path_and_query.split_once('?').unwrap();
        assert_eq!(p, path);
        assert!(
            query.contains("fieldManager=pod-metrics-e2e") && query.contains("force=true"),
            "{query}"
        );
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
    }
    let sent: Value = serde_json::from_str(&patches[0].body).unwrap();
    assert_eq!(sent, sm[0], "the manifest is sent as is");
    // And the twin stored it with our field manager.
    let stored = t
        .cluster()
        .get(
            "monitoring.coreos.com",
            "ServiceMonitor",
            "kube-system",
            "cadvisor",
        )
        .unwrap();
    assert_eq!(
        stored["metadata"]["managedFields"][0]["manager"],
        "pod-metrics-e2e"
    );
}

#[tokio::test]
async fn applier_names_the_object_a_server_rejects_and_an_unserved_kind() {
    let t = twin(false, |_| {}).await;
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let mut applier = Applier::new(client.clone(), Duration::from_secs(5));
    // NamespaceLifecycle: a namespaced object in a namespace that does not exist.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "nowhere"}});
    let err = applier.apply(&cm).await.unwrap_err();
    assert!(
        matches!(&err, ApplyError::Rejected { ident, error: kube::Error::Api(status) }
            if ident == "ConfigMap nowhere/c" && status.message.contains("namespaces \"nowhere\" not found")),
        "{err:?}"
    );
    let mut applier = Applier::new(client, Duration::ZERO);
    let sm = json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "cadvisor", "namespace": "kube-system"}});
    let err = applier.apply(&sm).await.unwrap_err();
    assert!(
        matches!(&err, ApplyError::Unresolved { gvk, ident, .. }
            if gvk == "monitoring.coreos.com/v1 kind ServiceMonitor" && ident == "ServiceMonitor kube-system/cadvisor"),
        "{err:?}"
    );
    assert!(err.to_string().contains("is its CRD installed"), "{err}");
}

#[tokio::test]
async fn install_applies_crds_waits_for_established_then_the_rest_then_the_deployment() {
    let t = twin(false, |_| {}).await;
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let b = bundle();
    operator::install(&client, &b, Duration::from_secs(60))
        .await
        .unwrap();
    let reqs = requests(&t);
    let crd_patch = |r: &Recorded| {
        r.method == "PATCH" && r.path_and_query.contains("/customresourcedefinitions/")
    };
    let crd_get = |r: &Recorded| {
        r.method == "GET" && r.path_and_query.contains("/customresourcedefinitions/")
    };
    let last_crd_patch = reqs.iter().rposition(crd_patch).unwrap();
    let first_crd_get = reqs.iter().position(crd_get).unwrap();
    let last_crd_get = reqs.iter().rposition(crd_get).unwrap();
    let first_other_patch = reqs
        .iter()
        .position(|r| r.method == "PATCH" && !crd_patch(r))
        .unwrap();
    assert_eq!(
        reqs.iter().filter(|r| crd_patch(r)).count(),
        b.crd_names().len()
    );
    // Every CRD applied, then each one's Established checked, then the rest.
    assert!(
        last_crd_patch < first_crd_get && last_crd_get < first_other_patch,
        "{reqs:#?}"
    );
    let others: Vec<String> = reqs
        .iter()
        .filter(|r| r.method == "PATCH" && !crd_patch(r))
        .map(|r| {
            r.path_and_query
                .split('?')
                .next()
                .unwrap()
                .rsplit('/')
                .take(2)
                .collect::<Vec<_>>()
                .join("<")
        })
        .collect();
    assert_eq!(
        others,
        [
            "prometheus-operator<clusterrolebindings",
            "prometheus-operator<clusterroles",
            "prometheus-operator<serviceaccounts",
            "prometheus-operator<deployments",
            "prometheus-operator<services"
        ],
        "{reqs:#?}"
    );
    assert!(
        reqs.last()
            .unwrap()
            .path_and_query
            .ends_with("/deployments/prometheus-operator"),
        "the Deployment's availability is the last thing checked"
    );
}

#[tokio::test]
async fn the_waits_name_what_is_missing_at_their_deadline() {
    // Nodes that never become Ready, and no operator writing the kubelet Service.
    let t = twin(false, |o| o.timing.node_ready = Duration::from_secs(3600)).await;
    let c = t.cluster();
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let err = e2e::k8s::wait::wait_nodes_ready(&client, Duration::ZERO)
        .await
        .unwrap_err();
    let WaitError::Timeout { what, state, .. } = &err else {
        panic!("a timeout, not {err:?}");
    };
    assert_eq!(what, "3 of 3 nodes not Ready");
    assert!(
        state.contains("twin-worker (Ready=False: KubeletNotReady")
            && state.contains("cni plugin not initialized"),
        "{state}"
    );
    let nodes = c.objects("", "Node");
    let address = |n: &Value| json!({"ip": n["status"]["addresses"][0]["address"], "targetRef": {"kind": "Node", "name": n["metadata"]["name"]}});
    c.put("", "Service", json!({"metadata": {"name": "kubelet", "namespace": "kube-system"}, "spec": {"clusterIP": "None", "ports": [{"name": "https-metrics", "port": 10250}]}}));
    c.put("", "Endpoints", json!({"metadata": {"name": "kubelet", "namespace": "kube-system"},
        "subsets": [{"addresses": [address(&nodes[0])], "ports": [{"name": "https-metrics", "port": 10250, "protocol": "TCP"}]}]}));
    let err = operator::wait_kubelet_service(&client, Duration::ZERO)
        .await
        .unwrap_err();
    let WaitError::Timeout { state, fix, .. } = &err else {
        panic!("a timeout, not {err:?}");
    };
    assert!(
        state.contains("no https-metrics address for node(s) twin-worker, twin-worker2"),
        "{state}"
    );
    assert!(
        fix.contains("every 3 minutes") && fix.contains("--timeout"),
        "{fix}"
    );
    c.put("", "Endpoints", json!({"metadata": {"name": "kubelet", "namespace": "kube-system"},
        "subsets": [{"addresses": nodes.iter().map(address).collect::<Vec<_>>(), "ports": [{"name": "https-metrics", "port": 10250, "protocol": "TCP"}]}]}));
    operator::wait_kubelet_service(&client, Duration::ZERO)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_through_the_proxy_and_artifacts_with_nothing_secret() {
    use e2e::prometheus::PromError;
    let t = twin(true, |_| {}).await;
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let timeout = Duration::from_secs(120);
    testkit::install_operator_and_prometheus(&client, timeout).await;
    install::apply_servicemonitor(&client, ServiceMonitorVariant::Mission, timeout)
        .await
        .unwrap();
    let prom = e2e::kubeproxy::prometheus_client(
        client.clone(),
        e2e::install::PROMETHEUS_NAMESPACE,
        Duration::from_secs(30),
    );
    t.cluster().requests.lock().unwrap().clear();
    prom.ready().await.unwrap();
    let answer = prom.query("vector(1)").await.unwrap();
    assert_eq!(answer.series.len(), 1);
    assert_eq!(answer.series[0].value, 1.0);
    let reqs = requests(&t);
    let prefix = "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy";
    assert_eq!(reqs[0].path_and_query, format!("{prefix}/-/ready"));
    assert!(
        reqs[1]
            .path_and_query
            .starts_with(&format!("{prefix}/api/v1/query?"))
            && reqs[1].path_and_query.contains("query=vector"),
        "{reqs:?}"
    );
    // The kubeconfig's token authenticates to the API server and never appears in messages.
    let token = &t.cluster().admin_token;
    assert_eq!(
        reqs[1].authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(!prom.describe().contains(token.as_str()));
    // Prometheus's own 4xx error body passes the proxy untouched.
    match prom.query("up{{").await {
        Err(PromError::Api {
            error_type, error, ..
        }) => {
            assert_eq!(error_type, "bad_data");
            assert!(error.contains("parse error"), "{error}");
        }
        other => panic!("expected the API error verbatim, got {other:?}"),
    }

    // Discovery (http_sd refresh) follows the reload by a moment: collect until the target shows.
    let dir = tempfile::tempdir().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        e2e::artifacts::collect(&client, dir.path()).await.unwrap();
        let targets = std::fs::read_to_string(
            dir.path()
                .join("prometheus/monitoring_prometheus-e2e-0/targets.json"),
        )
        .unwrap_or_default();
        if targets.contains("serviceMonitor/kube-system/cadvisor/0")
            || std::time::Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let read = |f: &str| {
        std::fs::read_to_string(dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    assert!(read("logs/monitoring_prometheus-e2e-0_prometheus.log").contains("Server is ready"));
    assert!(dir
        .path()
        .join("logs/monitoring_prometheus-e2e-0_config-reloader.log")
        .exists());
    // Each replica's own answer, through its pod proxy.
    assert!(read("prometheus/monitoring_prometheus-e2e-0/targets.json")
        .contains("serviceMonitor/kube-system/cadvisor/0"));
    let config = read("prometheus/monitoring_prometheus-e2e-0/config.yaml");
    assert!(
        // Prometheus 2.42 shows bearer_token_file as authorization.credentials_file.
        config.contains("_file: /var/run/secrets/kubernetes.io/serviceaccount/token"),
        "{config}"
    );
    assert!(read("prometheuses/monitoring_e2e.yaml").contains("serviceMonitorSelector"));
    let sm = read("servicemonitors/kube-system_cadvisor.yaml");
    assert!(
        sm.contains("bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token")
            && !sm.contains("managedFields"),
        "{sm}"
    );
    assert!(read("kubelet-service.yaml").contains("https-metrics"));
    assert!(read("pods.txt").contains("monitoring/prometheus-e2e-0"));
    let mut files = vec![dir.path().to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert!(
                !std::fs::read_to_string(&path)
                    .unwrap()
                    .contains(token.as_str()),
                "{}",
                path.display()
            );
        }
    }
}

/// The Prometheus client through the twin's service proxy, on the versions whose proxy answers
/// differ (TWIN-FACTS §2e): a pod the proxy cannot reach while its Endpoints list it is retried
/// until it answers, and named with the API server's own words when it never does; a Service
/// that does not exist is the API server's 404, reported at once.
#[tokio::test]
async fn the_prometheus_client_rides_out_a_proxy_that_cannot_reach_the_pod() {
    use e2e::kubeproxy::KubeProxyTransport;
    use e2e::prometheus::{PromError, PrometheusClient};
    use std::sync::Arc;
    for (profile, answer) in [
        (
            Profile::V1_20,
            "HTTP 500: error trying to reach service: dial tcp ",
        ),
        (
            Profile::V1_21,
            "HTTP 503 ServiceUnavailable: error trying to reach service: dial tcp ",
        ),
    ] {
        let t = twin(false, |o| o.profile = profile).await;
        let served =
            testkit::served::ServedPod::start(&t, "default", "web", "Prometheus is Ready.").await;
        let client = kube_client(&t.kubeconfig_path()).await.unwrap();
        let prom = |svc: &str, retry| {
            PrometheusClient::with_transport(
                Arc::new(KubeProxyTransport::for_service(
                    client.clone(),
                    "default",
                    svc,
                    "web",
                )),
                retry,
            )
        };
        let c = t.cluster().clone();
        c.unreachable.cut("default", &served.pod);
        let healed = {
            let (c, pod) = (c.clone(), served.pod.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                c.unreachable.restore("default", &pod);
            })
        };
        let riding = prom("web", Duration::from_secs(30));
        riding.ready().await.expect("retried until the pod is back");
        assert!(riding.request_count() > 1, "{profile}: not retried");
        healed.await.unwrap();

        c.unreachable.cut("default", &served.pod);
        let err = prom("web", Duration::from_secs(1))
            .ready()
            .await
            .unwrap_err();
        match &err {
            PromError::Unreachable { last_error, .. } => assert!(
                last_error.starts_with(&format!("the Kubernetes API server answered {answer}")),
                "{profile}: {last_error}"
            ),
            other => panic!("{profile}: expected Unreachable, got {other:?}"),
        }

        let missing = prom("nope", Duration::from_secs(30));
        let err = missing.ready().await.unwrap_err();
        assert!(
            matches!(&err, PromError::ApiServer { status, .. }
                if status.code == 404 && status.reason == "NotFound"
                    && status.message == "endpoints \"nope\" not found"),
            "{profile}: {err:?}"
        );
        assert_eq!(missing.request_count(), 1, "{profile}: a 404 is final");
    }
}
