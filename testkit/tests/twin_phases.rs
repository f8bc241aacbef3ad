//! The harness's phases 3–6 (the library calls `cargo xtask e2e --kubeconfig` makes) against a
//! twin with its data path, then the coverage check through the twin's service proxy to the
//! real Prometheus. Needs Docker, `E2E_OPERATOR_BUNDLE` and `E2E_PROMETHEUS_IMAGE`.

use e2e::coverage::{self, WaitOptions};
use e2e::install;
use e2e::k8s::client::kube_client;
use e2e::matrix::ServiceMonitorVariant;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::time::Duration;
use testkit::twin::{Profile, Twin, TwinOptions};

async fn main_job(profile: Profile, variant: ServiceMonitorVariant) {
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
    let prom = e2e::kubeproxy::prometheus_client(client.clone(), Duration::from_secs(30));
    let report = coverage::check(
        &prom,
        &running,
        &WaitOptions::for_scrape_interval(Duration::from_secs(10)),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(report.missing.is_empty(), "{profile}: {report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn main_job_phases_pass_on_1_21() {
    main_job(Profile::V1_21, ServiceMonitorVariant::Mission).await;
}
