//! `diagnose::cluster` (what `cargo xtask doctor` runs) against a cluster twin broken on purpose:
//! a job never loaded (the reload never comes), a nil selector, and no Prometheus pod. The other breakages are in
//! `xtask/tests/twin.rs` (doctor). Needs Docker and `E2E_OPERATOR_BUNDLE`.

use e2e::diagnose::{self, Finding};
use e2e::k8s::apply::Applier;
use e2e::k8s::client::kube_client;
use e2e::k8s::manifests::read_manifest_file;
use e2e::matrix::ServiceMonitorVariant;
use std::time::Duration;
use testkit::twin::{Profile, Twin, TwinOptions};

async fn diagnose(client: &kube::Client) -> Vec<Finding> {
    let pods = e2e::pods::list_running_pods(client).await.unwrap();
    let prom = e2e::kubeproxy::prometheus_client(
        client.clone(),
        e2e::install::PROMETHEUS_NAMESPACE,
        Duration::from_secs(2),
    );
    diagnose::cluster(client, &prom, &pods).await.unwrap()
}

fn ids(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.id).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_broken_link_is_the_finding() {
    let mut opts = TwinOptions::new(Profile::V1_27);
    opts.timing.config_reload = Duration::from_secs(3600);
    let t = Twin::start(opts).await.unwrap();
    let c = t.cluster().clone();
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let timeout = Duration::from_secs(120);
    testkit::install_operator_and_prometheus(&client, timeout).await;
    // Applied after Prometheus started, and the reload never comes: the job is not loaded.
    let sm =
        read_manifest_file(&e2e::workspace_root().join(ServiceMonitorVariant::Mission.manifest()))
            .unwrap();
    Applier::new(client.clone(), timeout)
        .apply_all(&[&sm[0]])
        .await
        .unwrap();
    let f = diagnose(&client).await;
    assert_eq!(ids(&f), ["no-scrape-job"], "{f:#?}");
    assert!(
        f[0].observed
            .contains("serviceMonitor/kube-system/cadvisor/"),
        "{}",
        f[0].observed
    );

    // A nil serviceMonitorSelector selects nothing.
    let mon = "monitoring.coreos.com";
    let prom = c.get(mon, "Prometheus", "monitoring", "e2e").unwrap();
    let mut nil = prom.clone();
    nil["spec"]
        .as_object_mut()
        .unwrap()
        .remove("serviceMonitorSelector");
    c.put(mon, "Prometheus", nil);
    assert_eq!(
        ids(&diagnose(&client).await),
        ["servicemonitor-not-selected"]
    );
    c.put(mon, "Prometheus", prom.clone());

    // No Prometheus pod: the service proxy answers 503 "no endpoints available" (§2e), and with
    // the cluster in reach that is the broken link.
    let mut none = prom.clone();
    none["spec"]["replicas"] = 0.into();
    c.put(mon, "Prometheus", none);
    let gone = std::time::Instant::now();
    while c.get("", "Pod", "monitoring", "prometheus-e2e-0").is_some() {
        assert!(
            gone.elapsed() < timeout,
            "the Prometheus pod was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let f = tokio::time::timeout(Duration::from_secs(60), diagnose(&client))
        .await
        .expect("diagnose::cluster answers within 60 s when Prometheus is gone");
    assert_eq!(ids(&f), ["prometheus-unreachable"], "{f:#?}");
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("no endpoints available")),
        "{f:#?}"
    );
}
