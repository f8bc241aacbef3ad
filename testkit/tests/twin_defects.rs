//! One twin test per defect of issue 8; each fails on the code before its fix:
//! 1. 1.19 rejects server-side apply of the v0.48.1 bundle as-is (ports without `protocol`);
//! 2. the plain-text 404 of an unregistered group must read as "ServiceMonitor CRD missing";
//! 3. Prometheus loads a new scrape job only after the Secret sync + reload delay;
//! 4. every wait tolerates transient API errors until its deadline.
//!
//! Needs `E2E_OPERATOR_BUNDLE`; the reload test also Docker and `E2E_PROMETHEUS_IMAGE`.

use e2e::install;
use e2e::k8s::client::kube_client;
use e2e::matrix::ServiceMonitorVariant;
use e2e::operator;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::twin::{Profile, Twin, TwinOptions};

use testkit::operator_bundle as bundle;

async fn twin(profile: Profile, datapath: bool) -> Twin {
    let mut opts = TwinOptions::new(profile);
    opts.datapath = datapath;
    Twin::start(opts).await.expect("starting the twin")
}

/// Defect 1: the bundle's operator Deployment, applied as the pre-fix Applier did (no
/// protocol defaulting), is refused by 1.19 with the real HTTP 500; the fixed installer passes.
#[tokio::test]
async fn defect1_v1_19_refuses_the_unpatched_bundle_and_the_fixed_install_passes() {
    let t = twin(Profile::V1_19, false).await;
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let b = bundle();
    let deploy = b
        .apply_order()
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the bundle has the operator Deployment")
        .clone();
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment")),
    );
    let err = api
        .patch(
            "prometheus-operator",
            &PatchParams::apply("pod-metrics-e2e").force(),
            &Patch::Apply(&deploy),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else {
        panic!("{err:?}")
    };
    assert_eq!(s.code, 500);
    assert!(
        s.message.contains("omits key field \"protocol\""),
        "{}",
        s.message
    );
    operator::install(&client, &b, Duration::from_secs(60))
        .await
        .expect("the fixed installer defaults protocol: TCP");
}

/// Defect 2: with the kubelet Service in place and no operator bundle, the API answers the
/// plain-text 404 for monitoring.coreos.com; diagnosis must report `servicemonitor-missing`
/// (before the fix it failed with "listing servicemonitors…").
#[tokio::test]
async fn defect2_plain_404_for_the_unregistered_group_reads_as_servicemonitor_missing() {
    let t = twin(Profile::V1_27, false).await;
    let c = t.cluster();
    // What the operator would have written (the diagnosis checks it first).
    let nodes = c.objects("", "Node");
    let addresses: Vec<_> = nodes.iter().map(|n| json!({"ip": n["status"]["addresses"][0]["address"], "targetRef": {"kind": "Node", "name": n["metadata"]["name"]}})).collect();
    c.put("", "Service", json!({"metadata": {"name": "kubelet", "namespace": "kube-system", "labels": {"app.kubernetes.io/name": "kubelet"}},
        "spec": {"clusterIP": "None", "ports": [{"name": "https-metrics", "port": 10250}]}}));
    c.put("", "Endpoints", json!({"metadata": {"name": "kubelet", "namespace": "kube-system"},
        "subsets": [{"addresses": addresses, "ports": [{"name": "https-metrics", "port": 10250, "protocol": "TCP"}]}]}));
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let prom = e2e::kubeproxy::prometheus_client(
        client.clone(),
        e2e::install::PROMETHEUS_NAMESPACE,
        Duration::from_secs(1),
    );
    let findings = e2e::diagnose::cluster(&client, &prom, &[])
        .await
        .expect("diagnosis runs without the CRD");
    let ids: Vec<&str> = findings.iter().map(|f| f.id).collect();
    assert_eq!(ids, ["servicemonitor-missing"]);
}

/// Defect 3: the twin reloads Prometheus only `config_reload` after the ServiceMonitor changes
/// (Secret propagation + config-reloader). `apply_servicemonitor` must return only once the job
/// is loaded; before the fix it returned right after the apply.
#[tokio::test(flavor = "multi_thread")]
async fn defect3_apply_servicemonitor_returns_only_once_prometheus_loaded_the_job() {
    let mut opts = TwinOptions::new(Profile::V1_21);
    opts.timing.config_reload = Duration::from_secs(6);
    let t = Twin::start(opts).await.unwrap();
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let timeout = Duration::from_secs(120);
    operator::install(&client, &bundle(), timeout)
        .await
        .unwrap();
    install::apply_prometheus(&client, timeout).await.unwrap();
    let prom = e2e::kubeproxy::prometheus_client(
        client.clone(),
        e2e::install::PROMETHEUS_NAMESPACE,
        Duration::from_secs(30),
    );
    assert!(install::scrape_job_names(&prom.config_yaml().await.unwrap()).is_empty());
    let started = Instant::now();
    install::apply_servicemonitor(&client, ServiceMonitorVariant::Mission, timeout)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "returned before the modelled reload delay: {:?}",
        started.elapsed()
    );
    let jobs = install::scrape_job_names(&prom.config_yaml().await.unwrap());
    assert_eq!(jobs, ["serviceMonitor/kube-system/cadvisor/0"]);
}

/// Defect 4: transient 503s/500s while the operator Deployment, kubelet Service and Prometheus
/// StatefulSet waits poll; every wait keeps going until its deadline (before the fix all but
/// the node wait failed on the first error).
#[tokio::test]
async fn defect4_waits_tolerate_transient_api_errors() {
    let t = twin(Profile::V1_21, false).await;
    let c = t.cluster();
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let timeout = Duration::from_secs(60);
    c.faults.inject(
        Some(http::Method::GET),
        "/apis/apps/v1/namespaces/default/deployments/prometheus-operator",
        503,
        3,
    );
    operator::install(&client, &bundle(), timeout)
        .await
        .expect("the Deployment wait rides out 503s");
    c.faults.inject(
        Some(http::Method::GET),
        "/api/v1/namespaces/kube-system/services/kubelet",
        500,
        2,
    );
    c.faults.inject(
        Some(http::Method::GET),
        "/api/v1/namespaces/kube-system/endpoints/kubelet",
        503,
        2,
    );
    operator::wait_kubelet_service(&client, timeout)
        .await
        .expect("the kubelet Service wait rides out errors");
    c.faults.inject(
        Some(http::Method::GET),
        "/apis/apps/v1/namespaces/monitoring/statefulsets/prometheus-e2e",
        503,
        3,
    );
    // kube's own retry layer is off: server-side apply rides out 503 and 429 by itself.
    c.faults.inject(
        Some(http::Method::PATCH),
        "/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheuses/e2e",
        503,
        1,
    );
    c.faults.inject(
        Some(http::Method::PATCH),
        "/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheuses/e2e",
        429,
        1,
    );
    install::apply_prometheus(&client, timeout)
        .await
        .expect("the apply and the StatefulSet wait ride out 503s and 429s");
    assert_eq!(c.faults.pending(), 0, "every injected fault was hit");
}
