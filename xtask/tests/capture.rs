//! `cargo xtask capture` against the cluster twin (no operator installed: the twin's kubelets,
//! no Prometheus), then `cargo xtask replay` of what it wrote. The replay needs Docker and
//! `E2E_PROMETHEUS_IMAGE`; the capture alone needs neither.

use std::path::Path;
use std::process::{Command, Output};
use testkit::twin::{Profile, Twin, TwinOptions};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

async fn xtask(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(XTASK)
            .args(&args)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_a_twin_then_replay_it_and_refuse_a_used_directory() {
    let t = Twin::start(TwinOptions::new(Profile::V1_27)).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    t.write_kubeconfig(&kubeconfig).unwrap();
    let out = tmp.path().join("capture");
    // kind's system pods must be Running on every node before the capture means anything.
    let client = e2e::k8s::client::kube_client(&kubeconfig).await.unwrap();
    e2e::k8s::wait::wait_nodes_ready(&client, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    // A missing kubeconfig: refused by path, nothing written.
    let o = xtask(vec![
        "capture".into(),
        "--kubeconfig".into(),
        "/nonexistent/kc".into(),
        "--out".into(),
        s(&out),
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/kc"));
    assert!(!out.exists());

    let o = xtask(vec![
        "capture".into(),
        "--kubeconfig".into(),
        s(&kubeconfig),
        "--out".into(),
        s(&out),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stderr}\n{stdout}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("capture.json")).unwrap()).unwrap();
    let nodes = manifest["nodes"].as_array().unwrap();
    assert!(nodes.len() >= 2, "{manifest:#}");
    // A progress line per node, and the absent operator said once.
    for (i, n) in nodes.iter().enumerate() {
        let name = n["name"].as_str().unwrap();
        let line = format!("node {}/{}: {name}: ", i + 1, nodes.len());
        assert!(stderr.contains(&line), "{line:?} not in {stderr}");
        let file = out.join(n["cadvisor"].as_str().unwrap());
        let body = std::fs::read_to_string(&file).unwrap();
        assert!(
            body.contains("container_cpu_usage_seconds_total{"),
            "{}",
            file.display()
        );
    }
    assert!(
        stderr.contains("monitoring.coreos.com/v1 is not served"),
        "{stderr}"
    );
    assert_eq!(manifest["cluster_version"], Profile::V1_27.git_version());
    assert_eq!(manifest["servicemonitors"], serde_json::json!([]));
    // Every file is listed with its sha256.
    for (rel, sha) in manifest["files"].as_object().unwrap() {
        let bytes = std::fs::read(out.join(rel)).unwrap();
        assert_eq!(sha, &e2e::pins::sha256_hex(&bytes), "{rel}");
    }
    assert!(stdout.contains("cargo xtask replay"), "{stdout}");

    // The directory is not empty now: refused, untouched.
    let before = std::fs::read_to_string(out.join("capture.json")).unwrap();
    let o = xtask(vec![
        "capture".into(),
        "--kubeconfig".into(),
        s(&kubeconfig),
        "--out".into(),
        s(&out),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--out") && stderr.contains("not empty"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("capture.json")).unwrap(),
        before
    );

    // No ServiceMonitor in the capture: replay says how to give one.
    let o = xtask(vec!["replay".into(), s(&out)]).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--servicemonitor FILE"), "{stderr}");

    // With the mission's ServiceMonitor (and the Endpoints the operator would write): every
    // running pod of the twin is covered, check's exit code 0.
    let sm = e2e::workspace_root().join("manifests/servicemonitor-cadvisor.yaml");
    let o = xtask(vec![
        "replay".into(),
        s(&out),
        "--servicemonitor".into(),
        s(&sm),
        "--metric".into(),
        "container_cpu_usage_seconds_total".into(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("covered: 1/1 metrics"), "{stdout}");
    t.shutdown().await;
}
