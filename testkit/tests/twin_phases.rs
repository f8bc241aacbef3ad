//! The harness's phases 3–6 (the library calls `cargo xtask e2e --kubeconfig` makes) against a
//! twin with its data path, then the coverage check through the twin's service proxy to the
//! real Prometheus: on 1.21, and on 1.20 (the matrix's kind v0.11.1 cell; a phase-level run is
//! its only main-job run) with the proxy unable to reach Prometheus's pod for a while when the
//! check starts. Needs Docker, `E2E_OPERATOR_BUNDLE` and `E2E_PROMETHEUS_IMAGE`.

use e2e::coverage::{self, WaitOptions};
use e2e::install;
use e2e::k8s::client::kube_client;
use e2e::matrix::ServiceMonitorVariant;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::time::Duration;
use testkit::twin::{Profile, Twin, TwinOptions};

/// How long the service proxy cannot reach the Prometheus pod when the check starts.
async fn main_job(profile: Profile, variant: ServiceMonitorVariant, cut: Option<Duration>) {
    let timeout = Duration::from_secs(120);
    let twin = Twin::start(TwinOptions::new(profile)).await.unwrap();
    let client = kube_client(&twin.kubeconfig_path()).await.unwrap();
    e2e::k8s::wait::wait_nodes_ready(&client, timeout)
        .await
        .unwrap();
    testkit::install_operator_and_prometheus(&client, timeout).await;
    install::apply_servicemonitor(&client, variant, timeout)
        .await
        .unwrap();
    install::apply_workloads(&client, timeout).await.unwrap();
    let pods: Api<Pod> = Api::all(client.clone());
    let running = e2e::pods::running_pods(&pods.list(&Default::default()).await.unwrap().items);
    assert!(running.len() >= 4, "{running:?}");
    let prom = e2e::kubeproxy::prometheus_client(
        client.clone(),
        e2e::install::PROMETHEUS_NAMESPACE,
        Duration::from_secs(30),
    );
    let healed = cut.map(|cut| {
        // Its Endpoints still list it: the proxy answers its "error trying to reach service"
        // (500 on 1.20, 503 from 1.21) and the check retries until the pod is back.
        let c = twin.cluster().clone();
        c.unreachable.cut("monitoring", "prometheus-e2e-0");
        tokio::spawn(async move {
            tokio::time::sleep(cut).await;
            c.unreachable.restore("monitoring", "prometheus-e2e-0");
        })
    });
    let sent = prom.request_count();
    let report = coverage::check(
        &prom,
        &running,
        &WaitOptions::for_scrape_interval(Duration::from_secs(10)),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(report.missing.is_empty(), "{profile}: {report:?}");
    if let Some(healed) = healed {
        healed.await.unwrap();
        assert!(
            prom.request_count() - sent > 2,
            "{profile}: the unreachable pod was not retried"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn main_job_phases_pass_on_1_21() {
    main_job(Profile::V1_21, ServiceMonitorVariant::Mission, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn main_job_phases_pass_on_1_20_through_a_proxy_that_loses_prometheus_for_a_while() {
    main_job(
        Profile::V1_20,
        ServiceMonitorVariant::Mission,
        Some(Duration::from_secs(3)),
    )
    .await;
}
