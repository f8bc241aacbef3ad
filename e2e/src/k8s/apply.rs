//! Server-side apply of manifests through API discovery, as field manager [`FIELD_MANAGER`] with
//! `force`, so re-running against the same cluster (`--reuse`) is idempotent and quick.

use super::manifests::ObjectIdent;
use super::wait::{poll_until, remaining, Waited};
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
/// (kubernetes#98576 in 1.21, backported to 1.20.6; TWIN-FACTS §4), so setting it is what every
/// version stores anyway.
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
    /// The API server did not answer the apply before the deadline.
    #[error("server-side apply of {ident} got no answer within {waited:?}: {last}")]
    NoAnswer {
        /// The object.
        ident: String,
        /// The deadline.
        waited: Duration,
        /// The last transient error, if any.
        last: String,
    },
    /// The API server refused the apply; its message is the source.
    #[error("server-side apply of {ident} was rejected")]
    Rejected {
        /// The object.
        ident: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
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
    /// When the kind cannot be resolved within the discovery grace, or the API server rejects the
    /// apply (its message is kept).
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
            Err(Waited::Failed(e)) => {
                return Err(match e.downcast::<kube::Error>() {
                    Ok(source) => ApplyError::Rejected {
                        ident: ident.to_string(),
                        source,
                    },
                    Err(other) => ApplyError::NoAnswer {
                        ident: ident.to_string(),
                        waited: self.discovery_grace,
                        last: crate::errors::error_chain(other.as_ref()),
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
