//! A stack's install phases against the cluster twin (no data path: nothing here needs a
//! Prometheus): a CRD that is never Established fails the operator phase at its deadline naming
//! the CRD and why, and an object the API server refuses is named by its file and document.

use e2e::stack::{install, Stack};
use std::time::{Duration, Instant};
use testkit::twin::{Profile, Twin, TwinOptions};

async fn twin() -> Twin {
    let mut opts = TwinOptions::new(Profile::V1_21);
    opts.datapath = false;
    Twin::start(opts).await.unwrap()
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: PLURAL.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: PLURAL, singular: SINGULAR}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

#[tokio::test(flavor = "multi_thread")]
async fn a_crd_that_is_never_established_fails_at_the_phase_deadline_naming_it() {
    let t = twin().await;
    let client = e2e::k8s::client::kube_client(&t.kubeconfig_path())
        .await
        .unwrap();
    // Two CRDs claiming kind Widget in one group: whichever the naming controller takes second
    // has its names refused, so it is never Established (apiextensions-apiserver
    // naming_controller.go).
    let text = format!(
        "{}---\n{}",
        CRD.replace("PLURAL", "widgets")
            .replace("SINGULAR", "widget"),
        CRD.replace("PLURAL", "gadgets")
            .replace("SINGULAR", "gadget")
    );
    let stack = Stack::from_text("crds.yaml", &text).unwrap();
    let started = Instant::now();
    let err = install::operator_phase(&client, &stack, true, Duration::from_secs(6))
        .await
        .unwrap_err();
    let msg = e2e::errors::error_chain(err.as_ref());
    let named = ["gadgets", "widgets"].iter().any(|p| {
        msg.contains(&format!(
            "CustomResourceDefinition {p}.example.com not Established"
        ))
    });
    assert!(
        named
            && msg.contains("NamesAccepted=False (KindConflict)")
            && msg.contains("\"Widget\" is already in use"),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_the_api_server_refuses_is_named_by_its_document() {
    let t = twin().await;
    let client = e2e::k8s::client::kube_client(&t.kubeconfig_path())
        .await
        .unwrap();
    // A namespaced object in a namespace nobody creates: refused at once (NotFound), named.
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: here}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: nowhere}\n";
    let stack = Stack::from_text("objs.yaml", text).unwrap();
    let err = install::operator_phase(&client, &stack, true, Duration::from_secs(10))
        .await
        .unwrap_err();
    let msg = e2e::errors::error_chain(err.as_ref());
    assert!(
        msg.starts_with("objs.yaml, document 2 (ConfigMap nowhere/c)"),
        "{msg}"
    );
    assert!(msg.contains("nowhere"), "{msg}");
}

/// The twin's pod proxy answers as the API server's (k/k pod ResourceLocation): a missing pod is a
/// NotFound Status, a pod without an IP is refused ("address not allowed"), a refused connection
/// is the proxy's dial error.
#[tokio::test(flavor = "multi_thread")]
async fn the_pod_proxy_answers_as_the_api_server_does() {
    let t = twin().await;
    let client = e2e::k8s::client::kube_client(&t.kubeconfig_path())
        .await
        .unwrap();
    let get = |path: &str| {
        let client = client.clone();
        let path = path.to_string();
        async move {
            let req = http::Request::get(path)
                .body(kube::client::Body::empty())
                .unwrap();
            let resp = client.send(req).await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.into_body().collect_bytes().await.unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (code, body) = get("/api/v1/namespaces/default/pods/nope:9090/proxy/-/ready").await;
    assert_eq!(code, 404, "{body}");
    assert!(
        body.contains(r#""reason":"NotFound""#) && body.contains(r#"pods \"nope\" not found"#),
        "{body}"
    );

    // A pod nothing schedules (no node fits) has no IP.
    let c = t.cluster();
    c.put("", "Pod", serde_json::json!({
        "metadata": {"name": "pending", "namespace": "default"},
        "spec": {"nodeSelector": {"nowhere": "true"}, "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}]},
    }));
    let (code, body) = get("/api/v1/namespaces/default/pods/pending/proxy/").await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("address not allowed"), "{body}");

    // A running pod whose port nothing listens on: the proxy's dial error, with the pod's IP and
    // the first container port when none is given.
    let started = Instant::now();
    let mut running = loop {
        let pod = c.get("", "Pod", "kube-system", "etcd-twin-control-plane");
        match pod {
            Some(p) if p["status"]["podIP"].is_string() => break p,
            _ => {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "etcd never got an IP"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let ip = running["status"]["podIP"].as_str().unwrap().to_string();
    running["spec"]["containers"][0]["ports"] = serde_json::json!([{"containerPort": 1}]);
    c.put("", "Pod", running);
    let (code, body) =
        get("/api/v1/namespaces/kube-system/pods/etcd-twin-control-plane/proxy/metrics").await;
    assert!(code == 503 || code == 500, "{code} {body}");
    assert!(body.contains(&format!("dial tcp {ip}:1")), "{body}");
}
