//! Server-side apply of manifests through API discovery, as field manager [`FIELD_MANAGER`] with
//! `force`, so re-running against the same cluster (`--reuse`) is idempotent and quick.

use super::manifests::ObjectIdent;
use super::wait::{poll_until, remaining, Transient, Waited};
use kube::api::{Patch, PatchParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Api, Client};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often discovery is asked again for a kind it does not serve yet.
const DISCOVERY_POLL: Duration = Duration::from_secs(1);

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "pod-metrics-e2e";

/// Sets `protocol: TCP` on every container port and Service port that omits it; returns how many.
///
/// Kubernetes 1.19 refuses a server-side apply whose list-map item omits a key field
/// (`containers[].ports` keys `containerPort,protocol`; Service `ports` keys `port,protocol`) with
/// HTTP 500 "associative list with keys has an element that omits key field \"protocol\"": the
/// v0.48.1 bundle's operator Deployment and Service do. Later versions default the field to TCP
/// in the apply schema: `ContainerPort.protocol` from 1.20.0, `ServicePort.protocol` from 1.21.0
/// (kubernetes#98576, backported to 1.20.6 by #100714; kubernetes/api core/v1/types.go
/// `+default="TCP"`@kubernetes-1.20.0 and @kubernetes-1.20.6; TWIN-FACTS §4), so setting it is
/// what every version stores anyway.
pub fn default_port_protocols(obj: &mut Value) -> usize {
    fn fill(ports: Option<&mut Value>) -> usize {
        let Some(Value::Array(ports)) = ports else {
            return 0;
        };
        let mut n = 0;
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            if !port.contains_key("protocol") {
                port.insert("protocol".into(), Value::String("TCP".into()));
                n += 1;
            }
        }
        n
    }
    fn pod_spec(spec: Option<&mut Value>) -> usize {
        let Some(spec) = spec else { return 0 };
        let mut n = 0;
        for key in ["initContainers", "containers", "ephemeralContainers"] {
            if let Some(Value::Array(cs)) = spec.get_mut(key) {
                n += cs
                    .iter_mut()
                    .map(|c| fill(c.get_mut("ports")))
                    .sum::<usize>();
            }
        }
        n
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some("Service") => fill(obj.pointer_mut("/spec/ports")),
        Some("Pod") => pod_spec(obj.get_mut("spec")),
        Some("Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job") => {
            pod_spec(obj.pointer_mut("/spec/template/spec"))
        }
        Some("CronJob") => pod_spec(obj.pointer_mut("/spec/jobTemplate/spec/template/spec")),
        _ => 0,
    }
}

/// Why an object was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The manifest is not a Kubernetes object (no apiVersion, kind or metadata.name).
    #[error("cannot apply this manifest: {0}")]
    NotAnObject(String),
    /// Discovery did not serve the kind within the grace.
    #[error(
        "cannot resolve {gvk} (needed for {ident}): either the API server does not answer, or it \
         does not serve that kind (is its CRD installed and Established?)"
    )]
    Unresolved {
        /// `group/version kind K`.
        gvk: String,
        /// The object that needed it.
        ident: String,
        /// Discovery's last error.
        #[source]
        source: kube::Error,
    },
    /// The apply kept failing transiently (no answer, 5xx, 429) until the deadline; the source
    /// reads `still failing after N s: <last error>`.
    #[error("server-side apply of {ident}")]
    StillFailing {
        /// The object.
        ident: String,
        /// The deadline.
        waited: Duration,
        /// The last error.
        #[source]
        source: anyhow::Error,
    },
    /// The API server refused the apply, permanently: any 4xx but 429 (400 bad request, 422
    /// invalid, 404 namespace missing, …), or a 500 for an object its schema cannot take
    /// ([`super::wait::is_schema_refusal`]). Reported at once with its code, reason and message.
    #[error("the API server refused server-side apply of {ident}: {}", refusal(.error))]
    Rejected {
        /// The object: kind, namespace and name.
        ident: String,
        /// The API server's answer (its text is in this error's message).
        error: kube::Error,
    },
}

/// Only a transient error that lasted until the deadline may heal; a refusal never does.
impl Transient for ApplyError {
    fn is_transient(&self) -> bool {
        matches!(self, ApplyError::StillFailing { .. })
    }
}

/// The API server's answer as a user reads it: `HTTP <code> [<reason>]: <message>`.
fn refusal(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.reason.is_empty() => format!("HTTP {}: {}", s.code, s.message),
        kube::Error::Api(s) => format!("HTTP {} {}: {}", s.code, s.reason, s.message),
        other => crate::errors::error_chain(other),
    }
}

/// Server-side applies objects, resolving each kind through API discovery once.
pub struct Applier {
    client: Client,
    resolved: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>,
    /// The one deadline of every apply and discovery retry of this applier.
    deadline: Instant,
    /// What it was when the applier was made, for messages.
    discovery_grace: Duration,
}

impl Applier {
    /// `discovery_grace`: how long, from now, kinds the API server does not serve yet and applies
    /// answered with a transient error are retried before they are reported (discovery lists a
    /// CRD's group only once it is Established, TWIN-FACTS §1). One budget for everything this
    /// applier applies, not one per object: callers pass what is left of their phase's deadline.
    pub fn new(client: Client, discovery_grace: Duration) -> Self {
        Applier {
            client,
            resolved: HashMap::new(),
            deadline: Instant::now() + discovery_grace,
            discovery_grace,
        }
    }

    /// What is left of the budget.
    fn grace(&self) -> Duration {
        remaining(self.deadline)
    }

    /// [`Applier::apply`] for each object, in the order given; stops at the first error.
    ///
    /// # Errors
    /// As [`Applier::apply`].
    pub async fn apply_all(&mut self, objs: &[&Value]) -> Result<(), ApplyError> {
        for obj in objs {
            self.apply(obj).await?;
        }
        Ok(())
    }

    /// Server-side applies one object (field manager [`FIELD_MANAGER`], forced), with every port
    /// given an explicit `protocol` first ([`default_port_protocols`]).
    ///
    /// # Errors
    /// When the kind cannot be resolved within the discovery grace; [`ApplyError::Rejected`] at
    /// once when the API server refuses the apply for good (its code, reason and message kept);
    /// [`ApplyError::StillFailing`] when transient errors last until the grace is over.
    pub async fn apply(&mut self, obj: &Value) -> Result<(), ApplyError> {
        let ident = ObjectIdent::of(obj)
            .map_err(|e| ApplyError::NotAnObject(crate::errors::error_chain(e.as_ref())))?;
        let mut obj = obj.clone();
        default_port_protocols(&mut obj);
        let obj = &obj;
        let (ar, caps) = self.resolve(&ident).await?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(self.client.clone(), &ar),
            Scope::Namespaced => Api::namespaced_with(
                self.client.clone(),
                ident.namespace.as_deref().unwrap_or("default"),
                &ar,
            ),
        };
        let params = PatchParams::apply(FIELD_MANAGER).force();
        // Transient answers (5xx, 429, no connection) are retried until the grace is over, like
        // every wait's: kube's own retry layer is off (`k8s::client`).
        let waited = poll_until(self.grace(), DISCOVERY_POLL, || async {
            api.patch(&ident.name, &params, &Patch::Apply(obj))
                .await
                .map(|_| Ok::<(), ()>(()))
                .map_err(anyhow::Error::new)
        })
        .await;
        match waited {
            Ok(()) => {}
            // Transient until the deadline: poll_until says "still failing after N s".
            Err(Waited::Failed(e)) if e.is_transient() => {
                return Err(ApplyError::StillFailing {
                    ident: ident.to_string(),
                    waited: self.discovery_grace,
                    source: e,
                })
            }
            Err(Waited::Failed(e)) => {
                return Err(match e.downcast::<kube::Error>() {
                    Ok(error) => ApplyError::Rejected {
                        ident: ident.to_string(),
                        error,
                    },
                    Err(other) => ApplyError::StillFailing {
                        ident: ident.to_string(),
                        waited: self.discovery_grace,
                        source: other,
                    },
                })
            }
            Err(Waited::Pending(())) => unreachable!("the apply probe is never pending"),
        }
        tracing::debug!("applied {ident}");
        Ok(())
    }

    /// Discovery lags a freshly Established CRD by a few seconds, so an unknown kind is retried
    /// for a while before it is reported.
    async fn resolve(
        &mut self,
        ident: &ObjectIdent,
    ) -> Result<(ApiResource, ApiCapabilities), ApplyError> {
        let gvk = ident.gvk();
        if let Some(found) = self.resolved.get(&gvk) {
            return Ok(found.clone());
        }
        // Every discovery error counts as "not yet" until the grace is over: a 404 for the
        // group is what a CRD not yet Established looks like.
        let waited = poll_until(self.grace(), DISCOVERY_POLL, || async {
            Ok(kube::discovery::pinned_kind(&self.client, &gvk).await)
        })
        .await;
        let unresolved = |source| ApplyError::Unresolved {
            gvk: format!("{}/{} kind {}", gvk.group, gvk.version, gvk.kind),
            ident: ident.to_string(),
            source,
        };
        let found = match waited {
            Ok(found) => found,
            Err(Waited::Pending(source)) => return Err(unresolved(source)),
            // The probe never fails, so only a probe cut off at the deadline gets here.
            Err(Waited::Failed(e)) => {
                return Err(unresolved(kube::Error::Discovery(
                    kube::error::DiscoveryError::MissingKind(crate::errors::error_chain(
                        e.as_ref(),
                    )),
                )))
            }
        };
        self.resolved.insert(gvk, found.clone());
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The API server's error bodies as they arrive (TWIN-FACTS §2, §4), as kube decodes them.
    fn refused(body: &str) -> kube::Error {
        kube::Error::Api(Box::new(serde_json::from_str(body).unwrap()))
    }

    /// Kubernetes 1.19 refusing a port without `protocol` (k/apiserver
    /// pkg/endpoints/handlers/fieldmanager/structuredmerge.go@kubernetes-1.19.11).
    const OMITS_KEY_1_19: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"failed to create typed patch object: .spec.ports: element 0: associative list with keys has an element that omits key field \"protocol\" (and doesn't have default value)","code":500}"#;
    /// Kubernetes 1.27 refusing a misspelt field of a built-in kind (k/apimachinery
    /// pkg/util/managedfields/internal/structuredmerge.go@kubernetes-1.27.3, structured-merge-diff
    /// typed/validate.go).
    const UNDECLARED_1_27: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"failed to create typed patch object (pme2e-apps/web; apps/v1, Kind=Deployment): .spec.replicaz: field not declared in schema","code":500}"#;
    const BAD_REQUEST: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Incorrect version specified in apply patch. Specified patch version: apps/v2, expected: apps/v1","reason":"BadRequest","code":400}"#;
    const INVALID: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`","reason":"Invalid","details":{"name":"web","group":"apps","kind":"Deployment","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`","field":"spec.template.metadata.labels"}]},"code":422}"#;
    const ETCD_TIMEOUT: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Internal error occurred: etcdserver: request timed out","reason":"InternalError","details":{"causes":[{"message":"etcdserver: request timed out"}]},"code":500}"#;
    const UNAVAILABLE: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the request has been made before all known HTTP paths have been installed, please try again","reason":"ServiceUnavailable","details":{"retryAfterSeconds":5},"code":503}"#;
    const TOO_MANY: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too many requests, please try again later.","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}"#;

    #[test]
    fn schema_refusals_400_and_422_are_permanent_other_5xx_and_429_transient() {
        for body in [OMITS_KEY_1_19, UNDECLARED_1_27, BAD_REQUEST, INVALID] {
            assert!(!refused(body).is_transient(), "{body}");
        }
        for body in [ETCD_TIMEOUT, UNAVAILABLE, TOO_MANY] {
            assert!(refused(body).is_transient(), "{body}");
        }
    }

    #[test]
    fn a_refusal_names_the_object_and_keeps_the_api_servers_words() {
        let err = ApplyError::Rejected {
            ident: "Service default/prometheus-operator".into(),
            error: refused(OMITS_KEY_1_19),
        };
        assert_eq!(
            err.to_string(),
            "the API server refused server-side apply of Service default/prometheus-operator: \
             HTTP 500: failed to create typed patch object: .spec.ports: element 0: associative list \
             with keys has an element that omits key field \"protocol\" (and doesn't have default value)"
        );
        assert!(!err.is_transient());
        let err = ApplyError::Rejected {
            ident: "Deployment pme2e-apps/web".into(),
            error: refused(INVALID),
        };
        assert!(err
            .to_string()
            .starts_with("the API server refused server-side apply of Deployment pme2e-apps/web: HTTP 422 Invalid: Deployment.apps \"web\" is invalid: "));
    }

    /// A stand-in API server: discovery of core/v1 services, and PATCH answered from a script
    /// (the last answer repeats); counts the PATCHes.
    async fn api_server(
        script: Vec<(u16, &'static str)>,
    ) -> (
        tempfile::TempDir,
        Client,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use axum::http::StatusCode;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let script = Arc::new(script);
        let app = axum::Router::new()
            .route(
                "/api/v1",
                axum::routing::get(|| async {
                    axum::Json(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                        {"name": "services", "singularName": "service", "namespaced": true, "kind": "Service",
                         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}]}))
                }),
            )
            .fallback(move |body: String| {
                let (counted, script) = (counted.clone(), script.clone());
                async move {
                    let n = counted.fetch_add(1, Ordering::SeqCst).min(script.len() - 1);
                    let (code, answer) = script[n];
                    let answer = if code < 300 { body } else { answer.to_string() };
                    (
                        StatusCode::from_u16(code).unwrap(),
                        [("content-type", "application/json")],
                        answer,
                    )
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
                 clusters: [{{name: c, cluster: {{server: 'http://{addr}'}}}}]\n\
                 users: [{{name: u, user: {{token: t}}}}]\n\
                 contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n"
            ),
        )
        .unwrap();
        let client = super::super::client::kube_client(&kubeconfig)
            .await
            .unwrap();
        (dir, client, hits)
    }

    fn service() -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "prometheus-operator", "namespace": "default"},
               "spec": {"ports": [{"name": "http", "port": 8080}]}})
    }

    #[tokio::test]
    async fn a_permanent_refusal_fails_at_once_a_transient_one_is_retried() {
        use std::sync::atomic::Ordering;
        let (_dir, client, hits) = api_server(vec![(500, OMITS_KEY_1_19)]).await;
        let started = std::time::Instant::now();
        let err = Applier::new(client, Duration::from_secs(60))
            .apply(&service())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ApplyError::Rejected { ident, error: kube::Error::Api(s) }
                if ident == "Service default/prometheus-operator" && s.code == 500),
            "{err:?}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_secs(5), "not at once");

        let (_dir, client, hits) =
            api_server(vec![(500, ETCD_TIMEOUT), (429, TOO_MANY), (201, "")]).await;
        Applier::new(client, Duration::from_secs(60))
            .apply(&service())
            .await
            .unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_transient_failure_at_the_deadline_is_still_failing_never_rejected() {
        let (_dir, client, _) = api_server(vec![(503, UNAVAILABLE)]).await;
        let err = Applier::new(client, Duration::from_millis(1500))
            .apply(&service())
            .await
            .unwrap_err();
        assert!(matches!(err, ApplyError::StillFailing { .. }), "{err:?}");
        assert!(err.is_transient());
        let text = crate::errors::error_chain(&err);
        assert!(
            text.starts_with("server-side apply of Service default/prometheus-operator: still failing after 1 s: ")
                && text.contains("the request has been made before all known HTTP paths have been installed"),
            "{text}"
        );
        assert!(
            !text.contains("refused") && !text.contains("rejected"),
            "{text}"
        );
    }

    #[test]
    fn ports_without_protocol_get_tcp_and_others_are_kept() {
        // The shape of the v0.48.1 bundle's operator Deployment and Service (TWIN-FACTS §4).
        let mut deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "prometheus-operator", "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "prometheus-operator", "ports": [{"containerPort": 8080, "name": "http"}]},
                {"name": "other", "ports": [{"containerPort": 53, "protocol": "UDP"}]},
                {"name": "none"}]}}}});
        assert_eq!(default_port_protocols(&mut deployment), 1);
        let ports = &deployment["spec"]["template"]["spec"]["containers"];
        assert_eq!(ports[0]["ports"][0]["protocol"], "TCP");
        assert_eq!(ports[1]["ports"][0]["protocol"], "UDP");
        assert!(ports[2].get("ports").is_none());

        let mut service = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "prometheus-operator", "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}});
        assert_eq!(default_port_protocols(&mut service), 1);
        assert_eq!(service["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(default_port_protocols(&mut service), 0, "idempotent");

        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"ports": "x"}});
        let before = cm.clone();
        assert_eq!(default_port_protocols(&mut cm), 0);
        assert_eq!(cm, before);
    }
}
