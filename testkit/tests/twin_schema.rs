//! The twin enforces schemas as each profile's API server does (issue 19 item 4): unknown
//! fields in server-side apply (HTTP 500 from the typed conversion), `fieldValidation` on
//! 1.27 (400 `strict decoding error`, `Warning` headers), silent dropping before it, custom
//! resources pruned by their CRD's structural schema; request bodies in JSON, YAML and
//! protobuf, and 415 for the rest. No data path (no Docker); the bundle (`E2E_OPERATOR_BUNDLE`)
//! supplies real CRDs.

use e2e::k8s::apply::Applier;
use e2e::k8s::client::kube_client;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::twin::{Profile, Twin, TwinOptions};

async fn twin(profile: Profile) -> Twin {
    let mut opts = TwinOptions::new(profile);
    opts.datapath = false;
    Twin::start(opts).await.expect("starting the twin")
}

/// One request with the admin token; answers (code, headers, body).
async fn raw(
    t: &Twin,
    method: reqwest::Method,
    path: &str,
    ct: Option<&str>,
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let mut req = client
        .request(method, format!("{}{path}", t.url()))
        .bearer_auth(&t.cluster().admin_token)
        .body(body);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    (code, headers, resp.text().await.unwrap())
}

fn manifest(path: &str) -> Vec<Value> {
    e2e::k8s::manifests::read_manifest_file(&e2e::workspace_root().join(path)).unwrap()
}

/// The workloads' Deployment `web`, with `terminationGracePeriodSeconds` misspelt.
fn misspelt_deployment() -> Value {
    let mut dep = manifest("fixtures/workloads/10-apps.yaml")
        .into_iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    let spec = dep["spec"]["template"]["spec"].as_object_mut().unwrap();
    let v = spec.remove("terminationGracePeriodSeconds").unwrap();
    spec.insert("terminationGracePeriodSecond".into(), v);
    dep
}

/// The mission's ServiceMonitor with `bearerTokenFile` misspelt.
fn misspelt_servicemonitor() -> Value {
    let mut sm = manifest("manifests/servicemonitor-cadvisor.yaml").remove(0);
    let ep = sm["spec"]["endpoints"][0].as_object_mut().unwrap();
    let v = ep.remove("bearerTokenFile").unwrap();
    ep.insert("bearerTokenFle".into(), v);
    sm
}

/// The bundle's CRDs, applied and Established.
async fn install_crds(client: &kube::Client) {
    let bundle = testkit::operator_bundle();
    let mut applier = Applier::new(client.clone(), Duration::from_secs(30));
    let crds: Vec<&Value> = bundle
        .apply_order()
        .into_iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .collect();
    applier.apply_all(&crds).await.unwrap();
    let gvk = kube::core::GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor");
    let deadline = Instant::now() + Duration::from_secs(20);
    while kube::discovery::pinned_kind(client, &gvk).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the bundle's CRDs were never Established"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_misspelt_field_in_a_manifest_fails_fast_naming_it_on_every_profile() {
    const DEADLINE: Duration = Duration::from_secs(30);
    for profile in Profile::ALL {
        let t = twin(profile).await;
        let client = kube_client(&t.kubeconfig_path()).await.unwrap();
        install_crds(&client).await;
        for (obj, field) in [
            (misspelt_deployment(), "terminationGracePeriodSecond"),
            (misspelt_servicemonitor(), "bearerTokenFle"),
        ] {
            let mut applier = Applier::new(client.clone(), DEADLINE);
            let started = Instant::now();
            let err = applier
                .apply(&obj)
                .await
                .expect_err("a misspelt field is refused");
            let text = e2e::errors::error_chain(&err);
            assert!(
                text.contains(field) && text.contains("field not declared in schema"),
                "{profile}: {text}"
            );
            assert!(
                started.elapsed() < DEADLINE / 3,
                "{profile}: a permanent error was retried for {:?} (the client side of issue 19 \
                 item 4 classifies it as permanent): {text}",
                started.elapsed()
            );
        }
    }
}

#[tokio::test]
async fn server_side_apply_answers_each_profiles_typed_conversion_error() {
    let expect = [
        (Profile::V1_19, "failed to create typed patch object: .spec.template.spec.terminationGracePeriodSecond: field not declared in schema"),
        (Profile::V1_21, "failed to create typed patch object: .spec.template.spec.terminationGracePeriodSecond: field not declared in schema"),
        (Profile::V1_27, "failed to create typed patch object (pme2e-apps/web; apps/v1, Kind=Deployment): .spec.template.spec.terminationGracePeriodSecond: field not declared in schema"),
    ];
    for (profile, message) in expect {
        let t = twin(profile).await;
        raw(
            &t,
            reqwest::Method::POST,
            "/api/v1/namespaces",
            None,
            br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"pme2e-apps"}}"#.to_vec(),
        )
        .await;
        let mut dep = misspelt_deployment();
        e2e::k8s::apply::default_port_protocols(&mut dep);
        let (code, _, body) = raw(
            &t,
            reqwest::Method::PATCH,
            "/apis/apps/v1/namespaces/pme2e-apps/deployments/web?&force=true&fieldManager=t",
            Some("application/apply-patch+yaml"),
            dep.to_string().into_bytes(),
        )
        .await;
        let status: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(code, 500, "{profile}: {body}");
        assert_eq!(status["message"], message, "{profile}");
        assert!(status.get("reason").is_none(), "{profile}: {body}");
    }
}

#[tokio::test]
async fn create_drops_unknown_fields_before_1_25_and_validates_them_on_1_27() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "c", "labelz": {"a": "b"}}, "data": {"a": "1"}, "dta": {}});
    for profile in Profile::ALL {
        let t = twin(profile).await;
        let post = |q: &'static str, name: &'static str| {
            let mut cm = cm.clone();
            cm["metadata"]["name"] = json!(name);
            let t = &t;
            async move {
                raw(
                    t,
                    reqwest::Method::POST,
                    &format!("/api/v1/namespaces/default/configmaps{q}"),
                    Some("application/json"),
                    cm.to_string().into_bytes(),
                )
                .await
            }
        };
        let (code, headers, body) = post("?fieldValidation=Strict", "strict").await;
        if profile >= Profile::V1_27 {
            assert_eq!(code, 400, "{profile}: {body}");
            let status: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(status["reason"], "BadRequest");
            assert_eq!(
                status["message"],
                "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"metadata.labelz\", unknown field \"dta\""
            );
            // Unset means Warn: stored without the fields, one Warning header each.
            let (code, headers, body) = post("", "warned").await;
            assert_eq!(code, 201, "{body}");
            let warnings: Vec<&str> = headers
                .get_all("warning")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(
                warnings,
                [
                    r#"299 - "unknown field \"metadata.labelz\"""#,
                    r#"299 - "unknown field \"dta\"""#
                ]
            );
            let (code, _, body) = post("?fieldValidation=Bogus", "bogus").await;
            assert_eq!(code, 422, "{body}");
        } else {
            // No server-side field validation: the parameter is ignored, the fields dropped.
            assert_eq!(code, 201, "{profile}: {body}");
            assert!(headers.get("warning").is_none(), "{profile}");
            let stored: Value = serde_json::from_str(&body).unwrap();
            assert!(stored.get("dta").is_none() && stored["metadata"].get("labelz").is_none());
            assert_eq!(stored["data"], json!({"a": "1"}));
        }
    }
}

#[tokio::test]
async fn custom_resources_are_pruned_by_their_crds_schema() {
    for profile in Profile::ALL {
        let t = twin(profile).await;
        let client = kube_client(&t.kubeconfig_path()).await.unwrap();
        install_crds(&client).await;
        let mut sm = misspelt_servicemonitor();
        sm["metadata"]["namespace"] = json!("default");
        let (code, _, body) = raw(
            &t,
            reqwest::Method::POST,
            "/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors?fieldValidation=Strict",
            None,
            sm.to_string().into_bytes(),
        )
        .await;
        if profile >= Profile::V1_27 {
            assert_eq!(code, 400, "{profile}: {body}");
            assert!(
                body.contains(
                    r#"strict decoding error: unknown field \"spec.endpoints[0].bearerTokenFle\""#
                ),
                "{body}"
            );
        } else {
            assert_eq!(code, 201, "{profile}: {body}");
            let stored: Value = serde_json::from_str(&body).unwrap();
            assert!(stored["spec"]["endpoints"][0]
                .get("bearerTokenFle")
                .is_none());
            assert_eq!(stored["spec"]["endpoints"][0]["port"], "https-metrics");
        }
    }
}

#[tokio::test]
async fn the_harness_objects_carry_no_unknown_field() {
    // The bundle, manifests/ and the workloads as the harness applies them: nothing refused.
    let t = twin(Profile::V1_27).await;
    let client = kube_client(&t.kubeconfig_path()).await.unwrap();
    install_crds(&client).await;
    let bundle = testkit::operator_bundle();
    let mut objs: Vec<Value> = bundle.apply_order().into_iter().cloned().collect();
    for dir in ["manifests/prometheus", "fixtures/workloads"] {
        objs.extend(
            e2e::k8s::manifests::read_manifest_dir(&e2e::workspace_root().join(dir)).unwrap(),
        );
    }
    objs.extend(manifest("manifests/servicemonitor-cadvisor.yaml"));
    objs.extend(manifest(
        "manifests/servicemonitor-cadvisor-honorlabels.yaml",
    ));
    let objs = e2e::k8s::manifests::in_apply_order(&objs);
    let mut applier = Applier::new(client.clone(), Duration::from_secs(30));
    for obj in objs {
        applier
            .apply(obj)
            .await
            .unwrap_or_else(|e| panic!("{}", e2e::errors::error_chain(&e)));
    }
}

#[tokio::test]
async fn protobuf_bodies_decode_and_unknown_media_types_are_415() {
    use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use prost::Message;
    let t = twin(Profile::V1_27).await;
    // What kubectl's typed client sends for `kubectl create namespace foo`.
    let ns = k8s_pb::api::core::v1::Namespace {
        metadata: Some(ObjectMeta {
            name: Some("foo".into()),
            ..Default::default()
        }),
        spec: Some(Default::default()),
        status: Some(Default::default()),
    };
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Namespace".into()),
        }),
        raw: Some(ns.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let body = [b"k8s\x00".to_vec(), envelope.encode_to_vec()].concat();
    let (code, headers, text) = raw(
        &t,
        reqwest::Method::POST,
        "/api/v1/namespaces?fieldManager=kubectl-create&fieldValidation=Strict",
        Some("application/vnd.kubernetes.protobuf"),
        body,
    )
    .await;
    assert_eq!(code, 201, "{text}");
    assert_eq!(headers["content-type"], "application/json");
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stored["metadata"]["name"], "foo");
    assert_eq!(
        stored["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "foo"
    );
    // A body type the API server does not decode.
    let (code, _, text) = raw(
        &t,
        reqwest::Method::POST,
        "/api/v1/namespaces/default/configmaps",
        Some("text/plain"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(code, 415, "{text}");
    let status: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["reason"], "UnsupportedMediaType");
    assert_eq!(
        status["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
    );
}

#[tokio::test]
async fn openapi_documents_advertise_field_validation_only_where_the_server_has_it() {
    for profile in Profile::ALL {
        let t = twin(profile).await;
        let (code, _, index) = raw(&t, reqwest::Method::GET, "/openapi/v3", None, vec![]).await;
        let (v2_code, _, _) = raw(&t, reqwest::Method::GET, "/openapi/v2", None, vec![]).await;
        if !profile.server_side_field_validation() {
            // kubectl then needs the full v2 schema for client-side validation: README names
            // --validate=false.
            assert_eq!((code, v2_code), (404, 404), "{profile}");
            continue;
        }
        assert_eq!((code, v2_code), (200, 200), "{profile}: {index}");
        let index: Value = serde_json::from_str(&index).unwrap();
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
        let (code, _, doc) = raw(&t, reqwest::Method::GET, &url, None, vec![]).await;
        assert_eq!(code, 200);
        let doc: Value = serde_json::from_str(&doc).unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
    }
}
