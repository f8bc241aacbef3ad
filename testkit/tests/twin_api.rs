//! The twin's API pinned against upstream behaviour (TWIN-FACTS §1–§5), driven through the
//! project's own kube 5 client where the harness uses it, and raw HTTPS where the wire bytes
//! matter. No data path here (no Docker needed).

use e2e::k8s::client::kube_client;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::GroupVersionKind;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::twin::{Profile, Twin, TwinOptions};

async fn twin(profile: Profile) -> Twin {
    let mut opts = TwinOptions::new(profile);
    opts.datapath = false;
    Twin::start(opts).await.expect("starting the twin")
}

/// Raw request with the admin token; the CA is the twin's own, so skip verification here.
async fn raw(
    t: &Twin,
    method: reqwest::Method,
    path: &str,
    ct: Option<&str>,
    body: Option<String>,
) -> (u16, String, String) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let mut req = client
        .request(method, format!("{}{path}", t.url()))
        .bearer_auth(&t.cluster().admin_token);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (code, ct, resp.text().await.unwrap())
}

const CRD: &str = r#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
 "metadata":{"name":"widgets.example.com"},
 "spec":{"group":"example.com","scope":"Namespaced",
  "names":{"plural":"widgets","singular":"widget","kind":"Widget","listKind":"WidgetList"},
  "versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}}"#;

#[tokio::test]
async fn kube_client_connects_and_get_opt_is_none_for_a_json_not_found() {
    let t = twin(Profile::V1_21).await;
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let svcs: Api<Service> = Api::namespaced(client, "kube-system");
    assert!(svcs.get_opt("kubelet").await.unwrap().is_none());
    let (code, ct, body) = raw(
        &t,
        reqwest::Method::GET,
        "/api/v1/namespaces/kube-system/services/kubelet",
        None,
        None,
    )
    .await;
    assert_eq!((code, ct.as_str()), (404, "application/json"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["message"], "services \"kubelet\" not found");
    assert_eq!(v["reason"], "NotFound");
    assert_eq!(v["details"], json!({"name": "kubelet", "kind": "services"}));
}

#[tokio::test]
async fn unregistered_group_is_plain_text_404_and_kube_cannot_call_it_not_found() {
    let t = twin(Profile::V1_27).await;
    let (code, ct, body) = raw(
        &t,
        reqwest::Method::GET,
        "/apis/monitoring.coreos.com/v1/namespaces/kube-system/servicemonitors",
        None,
        None,
    )
    .await;
    assert_eq!(
        (code, ct.as_str(), body.as_str()),
        (404, "text/plain; charset=utf-8", "404 page not found\n")
    );
    // An unknown resource inside a built-in group/version is JSON instead (go-restful).
    let (code, ct, _) = raw(&t, reqwest::Method::GET, "/apis/apps/v1/foos", None, None).await;
    assert_eq!((code, ct.as_str()), (404, "application/json"));
    // What kube 5 makes of the plain text: not a NotFound (the defect diagnose had to fix).
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let ar = kube::discovery::ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, "kube-system", &ar);
    match api.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 404);
            assert_ne!(s.reason, "NotFound");
            assert!(!s.is_not_found());
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn crd_group_is_discovered_only_once_established_after_a_delay() {
    let t = twin(Profile::V1_19).await;
    let (code, _, _) = raw(
        &t,
        reqwest::Method::POST,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        Some("application/json"),
        Some(CRD.into()),
    )
    .await;
    assert_eq!(code, 201);
    // /apis lists the group at once (crd-autoregister), the group/version 404s until Established.
    let (_, _, groups) = raw(&t, reqwest::Method::GET, "/apis", None, None).await;
    assert!(groups.contains("\"example.com\""));
    let (code, _, body) = raw(&t, reqwest::Method::GET, "/apis/example.com/v1", None, None).await;
    assert_eq!((code, body.as_str()), (404, "404 page not found\n"));
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    assert!(kube::discovery::pinned_kind(&client, &gvk).await.is_err());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if kube::discovery::pinned_kind(&client, &gvk).await.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "CRD never became discoverable"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, _, crd) = raw(
        &t,
        reqwest::Method::GET,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        None,
        None,
    )
    .await;
    let crd: Value = serde_json::from_str(&crd).unwrap();
    let conds: Vec<(&str, &str)> = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(conds, [("NamesAccepted", "True"), ("Established", "True")]);
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Widget");
}

fn operator_like_deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "op", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"app": "op"}},
                    "template": {"metadata": {"labels": {"app": "op"}},
                                 "spec": {"containers": [{"name": "op", "image": "busybox", "ports": [{"containerPort": 8080, "name": "http"}]}]}}}})
}

#[tokio::test]
async fn v1_19_rejects_apply_of_ports_without_protocol_with_the_real_500() {
    let t = twin(Profile::V1_19).await;
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let deploys: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::discovery::ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment")),
    );
    let err = deploys
        .patch(
            "op",
            &PatchParams::apply("t").force(),
            &Patch::Apply(operator_like_deployment()),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else {
        panic!("{err:?}")
    };
    assert_eq!(s.code, 500);
    assert_eq!(s.message, "failed to create typed patch object: .spec.template.spec.containers[name=\"op\"].ports: element 0: associative list with keys has an element that omits key field \"protocol\" (and doesn't have default value)");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "op", "namespace": "default"},
                     "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": "http"}], "selector": {"app": "op"}}});
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let err = svcs
        .patch("op", &PatchParams::apply("t").force(), &Patch::Apply(&svc))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert_eq!(s.message, "failed to create typed patch object: .spec.ports: element 0: associative list with keys has an element that omits key field \"protocol\" (and doesn't have default value)");
}

/// 1.20.7 too: `ContainerPort.protocol` defaults from 1.20.0, `ServicePort.protocol` from 1.20.6
/// (TWIN-FACTS §4).
#[tokio::test]
async fn v1_20_and_later_accept_and_default_protocol_tcp() {
    for p in [Profile::V1_20, Profile::V1_21, Profile::V1_27] {
        let t = twin(p).await;
        let client = kube_client(&t.kubeconfig_path()).await.unwrap();
        let svcs: Api<Service> = Api::namespaced(client, "default");
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "op", "namespace": "default"},
                         "spec": {"ports": [{"name": "http", "port": 8080}], "selector": {"app": "op"}}});
        let (code, _, body) = raw(
            &t,
            reqwest::Method::PATCH,
            "/api/v1/namespaces/default/services/op?&force=true&fieldManager=t",
            Some("application/apply-patch+yaml"),
            Some(svc.to_string()),
        )
        .await;
        assert_eq!(code, 201, "{p}: {body}");
        let (code, _, _) = raw(
            &t,
            reqwest::Method::PATCH,
            "/api/v1/namespaces/default/services/op?&force=true&fieldManager=t",
            Some("application/apply-patch+yaml"),
            Some(svc.to_string()),
        )
        .await;
        assert_eq!(code, 200, "{p}: a second apply updates");
        let got = svcs.get("op").await.unwrap();
        let spec = got.spec.unwrap();
        let port = &spec.ports.unwrap()[0];
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
        assert_eq!(
            port.target_port,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
        );
        assert_eq!(spec.session_affinity.as_deref(), Some("None"));
        let mf = got.metadata.managed_fields.unwrap();
        assert_eq!(
            (mf[0].manager.as_deref(), mf[0].operation.as_deref()),
            (Some("t"), Some("Apply"))
        );
    }
}

/// The service proxy when it cannot reach a pod its Endpoints list (the `unreachable` fault, and
/// a refused connection): 500 without a reason on 1.19 and 1.20, 503 ServiceUnavailable from
/// 1.21, "error trying to reach service: dial tcp <ip:port>: connect: connection refused" (§2e).
#[tokio::test]
async fn the_service_proxy_answers_per_profile_when_it_cannot_reach_its_endpoint() {
    for p in Profile::ALL {
        let t = twin(p).await;
        let served = testkit::served::ServedPod::start(&t, "default", "web", "served").await;
        let path = "/api/v1/namespaces/default/services/web:web/proxy/-/ready";
        let (code, _, body) = raw(&t, reqwest::Method::GET, path, None, None).await;
        assert_eq!((code, body.as_str()), (200, "served"), "{p}");

        t.cluster().unreachable.cut("default", &served.pod);
        let (code, ct, body) = raw(&t, reqwest::Method::GET, path, None, None).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        let (want_code, want_reason) = match p {
            Profile::V1_19 | Profile::V1_20 => (500, Value::Null),
            Profile::V1_21 | Profile::V1_27 => (503, json!("ServiceUnavailable")),
        };
        assert_eq!((code, ct.as_str()), (want_code, "application/json"), "{p}");
        assert_eq!(v["kind"], "Status", "{p}");
        assert_eq!(v["code"], want_code, "{p}");
        assert_eq!(v["reason"], want_reason, "{p}: {body}");
        assert_eq!(
            v["message"],
            format!(
                "error trying to reach service: dial tcp {}: connect: connection refused",
                served.addr
            ),
            "{p}"
        );
        // The Endpoints still list the pod as ready: only the path to it is broken.
        let ep = t.cluster().get("", "Endpoints", "default", "web").unwrap();
        assert_eq!(
            ep["subsets"][0]["addresses"][0]["targetRef"]["name"],
            "web-0"
        );

        t.cluster().unreachable.restore("default", &served.pod);
        let (code, _, _) = raw(&t, reqwest::Method::GET, path, None, None).await;
        assert_eq!(code, 200, "{p}");
        // A refused connection (nothing listens any more) answers the same way.
        drop(served);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (code, _, body) = raw(&t, reqwest::Method::GET, path, None, None).await;
        assert_eq!(code, want_code, "{p}: {body}");
        assert!(body.contains("connect: connection refused"), "{p}: {body}");
    }
}

#[tokio::test]
async fn watch_streams_added_modified_deleted_with_increasing_resource_versions() {
    let t = twin(Profile::V1_27).await;
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let list = cms.list(&Default::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    use futures::StreamExt;
    let mut stream = cms
        .watch(&WatchParams::default().timeout(20), &rv)
        .await
        .unwrap()
        .boxed();
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    cms.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    cms.delete("c", &Default::default()).await.unwrap();
    let mut seen = Vec::new();
    let mut last_rv = rv.parse::<u64>().unwrap();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("watch event")
            .unwrap()
            .unwrap();
        let (kind, obj) = match ev {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            other => panic!("unexpected {other:?}"),
        };
        let rv: u64 = obj.metadata.resource_version.unwrap().parse().unwrap();
        assert!(rv > last_rv);
        last_rv = rv;
        seen.push(kind);
    }
    assert_eq!(seen, ["ADDED", "MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn errors_have_the_real_bodies() {
    let t = twin(Profile::V1_21).await;
    let cm =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}).to_string();
    let (code, _, _) = raw(
        &t,
        reqwest::Method::POST,
        "/api/v1/namespaces/default/configmaps",
        Some("application/json"),
        Some(cm.clone()),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _, body) = raw(
        &t,
        reqwest::Method::POST,
        "/api/v1/namespaces/default/configmaps",
        Some("application/json"),
        Some(cm),
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (code, v["reason"].as_str(), v["message"].as_str()),
        (
            409,
            Some("AlreadyExists"),
            Some("configmaps \"c\" already exists")
        )
    );
    let stale = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "1"}}).to_string();
    let (code, _, body) = raw(
        &t,
        reqwest::Method::PUT,
        "/api/v1/namespaces/default/configmaps/c",
        Some("application/json"),
        Some(stale),
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, v["reason"].as_str()), (409, Some("Conflict")));
    assert!(v["message"].as_str().unwrap().starts_with(
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified"
    ));
    let (code, _, body) = raw(
        &t,
        reqwest::Method::GET,
        "/apis/apps/v1/namespaces/default/statefulsets/prometheus-k8s",
        None,
        None,
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (code, v["message"].as_str()),
        (404, Some("statefulsets.apps \"prometheus-k8s\" not found"))
    );
    let (code, _, _) = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .get(format!("{}/api/v1/nodes", t.url()))
        .send()
        .await
        .map(|r| (r.status().as_u16(), (), ()))
        .unwrap();
    assert_eq!(code, 401, "no token, no answer");
}

#[tokio::test]
async fn injected_faults_answer_a_few_times_then_stop() {
    let t = twin(Profile::V1_21).await;
    t.cluster().faults.inject(None, "/api/v1/nodes", 503, 2);
    for want in [503, 503, 200] {
        let (code, _, _) = raw(&t, reqwest::Method::GET, "/api/v1/nodes", None, None).await;
        assert_eq!(code, want);
    }
}

/// The node proxy forwards to the node's kubelet with the API server's own credentials
/// (k/k `pkg/registry/core/node/rest/proxy.go`, `strategy.go` ResourceLocation): the caller's
/// token never reaches the kubelet, which answers 401 to it directly.
#[tokio::test]
async fn node_proxy_reaches_the_kubelet_with_the_api_servers_credentials() {
    let t = Twin::start(TwinOptions::new(Profile::V1_21))
        .await
        .expect("starting the twin");
    let (code, _, body) = raw(&t, reqwest::Method::GET, "/api/v1/nodes", None, None).await;
    assert_eq!(code, 200, "{body}");
    let nodes: Value = serde_json::from_str(&body).unwrap();
    let node = nodes["items"][0]["metadata"]["name"]
        .as_str()
        .expect("the twin has nodes")
        .to_string();
    let path = format!("/api/v1/nodes/{node}/proxy/metrics/cadvisor");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (code, ct, body) = raw(&t, reqwest::Method::GET, &path, None, None).await;
        // kind's system pods (DaemonSets on every node) come up: their rows come through.
        if code == 200 && body.contains("namespace=\"kube-system\"") {
            assert!(ct.starts_with("text/plain"), "{ct}");
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node proxy never served the kubelet's cadvisor rows: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        body.contains("container_cpu_usage_seconds_total{"),
        "{body}"
    );

    // The admin token itself is not a kubelet credential (webhook authn → 401).
    let addr = t.datapath().unwrap().kubelet_addr(&node).unwrap();
    let direct = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .get(format!("https://{addr}/metrics/cadvisor"))
        .bearer_auth(&t.cluster().admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 401);

    // A missing node: the registry's JSON NotFound (TWIN-FACTS §2b).
    let (code, ct, body) = raw(
        &t,
        reqwest::Method::GET,
        "/api/v1/nodes/nope/proxy/metrics/cadvisor",
        None,
        None,
    )
    .await;
    assert_eq!((code, ct.as_str()), (404, "application/json"), "{body}");
    assert!(body.contains(r#"nodes \"nope\" not found"#), "{body}");
    t.shutdown().await;
}
