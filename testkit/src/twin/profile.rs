//! Version profiles: every behaviour of the twin that differs between Kubernetes 1.19, 1.20,
//! 1.21 and 1.27 is a method here, each citing its upstream source. The versions are the kind
//! node images of the matrix (v1.19.11, v1.20.7, v1.21.1, v1.27.3).

use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// The Kubernetes minor version the twin behaves like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Profile {
    V1_19,
    V1_20,
    V1_21,
    V1_27,
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim_start_matches('v') {
            "1.19" => Ok(Profile::V1_19),
            "1.20" => Ok(Profile::V1_20),
            "1.21" => Ok(Profile::V1_21),
            "1.27" => Ok(Profile::V1_27),
            other => Err(format!(
                "unknown twin profile {other:?}: use 1.19, 1.20, 1.21 or 1.27"
            )),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::V1_19 => "1.19",
            Profile::V1_20 => "1.20",
            Profile::V1_21 => "1.21",
            Profile::V1_27 => "1.27",
        })
    }
}

impl Profile {
    pub const ALL: [Profile; 4] = [
        Profile::V1_19,
        Profile::V1_20,
        Profile::V1_21,
        Profile::V1_27,
    ];

    /// `gitVersion` of `/version` (the kind node images of FACTS.md).
    pub fn git_version(self) -> &'static str {
        match self {
            Profile::V1_19 => "v1.19.11",
            // kind v0.11.1's node image of the matrix's 1.20 cell (fixtures/matrix.toml).
            Profile::V1_20 => "v1.20.7",
            Profile::V1_21 => "v1.21.1",
            Profile::V1_27 => "v1.27.3",
        }
    }

    /// SSA type-checks list-map keys without defaults: 1.19 has no default for
    /// `ContainerPort.protocol` nor `ServicePort.protocol` in the SSA schema (TWIN-FACTS §4;
    /// kubernetes/api core/v1/types.go@kubernetes-1.19.11, structured-merge-diff#130,
    /// kubernetes#100713).
    /// `ContainerPort.protocol` has `+default="TCP"` from 1.20.0, `ServicePort.protocol` from
    /// 1.21.0 (kubernetes#98576) and 1.20.6 (its backport #100714):
    /// kubernetes/api core/v1/types.go@kubernetes-1.20.0 and
    /// kubernetes/api core/v1/types.go@kubernetes-1.20.6. So v1.20.7 and later reject
    /// nothing. Returns the HTTP 500 message of the first offending element.
    pub fn apply_missing_key_error(self, obj: &Value) -> Option<String> {
        if self != Profile::V1_19 {
            return None;
        }
        let missing = |ports: &Value| -> Option<usize> {
            ports
                .as_array()?
                .iter()
                .position(|p| p.is_object() && p.get("protocol").is_none())
        };
        let prefix = "failed to create typed patch object: ";
        let suffix = "associative list with keys has an element that omits key field \"protocol\" (and doesn't have default value)";
        let pod_spec = |spec: &Value, path: &str| -> Option<String> {
            for key in ["initContainers", "containers"] {
                for c in spec[key].as_array().into_iter().flatten() {
                    if let Some(i) = missing(&c["ports"]) {
                        let name = c["name"].as_str().unwrap_or_default();
                        return Some(format!(
                            "{prefix}{path}.{key}[name=\"{name}\"].ports: element {i}: {suffix}"
                        ));
                    }
                }
            }
            None
        };
        match obj["kind"].as_str()? {
            "Service" => missing(&obj["spec"]["ports"])
                .map(|i| format!("{prefix}.spec.ports: element {i}: {suffix}")),
            "Pod" => pod_spec(&obj["spec"], ".spec"),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                pod_spec(&obj["spec"]["template"]["spec"], ".spec.template.spec")
            }
            _ => None,
        }
    }

    /// The service proxy's answer when it cannot reach its endpoint ("error trying to reach
    /// service: …"): a plain error, so 500 without a reason, on 1.19 and 1.20; a
    /// ServiceUnavailable 503 from 1.21 (TWIN-FACTS §2e; apimachinery commit 1174cb82:
    /// kubernetes/apimachinery pkg/util/proxy/transport.go@kubernetes-1.20.7 `fmt.Errorf` vs
    /// kubernetes/apimachinery pkg/util/proxy/transport.go@kubernetes-1.21.1
    /// `errors.NewServiceUnavailable`).
    pub fn proxy_dial_error(self) -> (u16, Option<&'static str>) {
        match self {
            Profile::V1_19 | Profile::V1_20 => (500, None),
            Profile::V1_21 | Profile::V1_27 => (503, Some("ServiceUnavailable")),
        }
    }

    /// Namespaces get the immutable label `kubernetes.io/metadata.name` from 1.21 on
    /// (NamespaceDefaultLabelName, beta in 1.21:
    /// kubernetes/kubernetes pkg/registry/core/namespace/strategy.go@v1.21.1).
    pub fn namespace_name_label(self) -> bool {
        self >= Profile::V1_21
    }

    /// StatefulSet `status.availableReplicas` exists from 1.22 and is always serialised in 1.27
    /// (TWIN-FACTS §6; kubernetes/api apps/v1/types.go@kubernetes-1.22.0 and
    /// kubernetes/api apps/v1/types.go@kubernetes-1.27.3).
    pub fn statefulset_available_replicas(self) -> bool {
        self >= Profile::V1_27
    }

    /// Job pods carry `batch.kubernetes.io/controller-uid` and `batch.kubernetes.io/job-name`
    /// next to the old labels in 1.27 (TWIN-FACTS §6).
    pub fn job_batch_labels(self) -> bool {
        self >= Profile::V1_27
    }

    /// Service accounts get a token Secret from the token controller up to 1.23 (removed by
    /// LegacyServiceAccountTokenNoAutoGeneration, on by default in 1.24, KEP-2799:
    /// kubernetes/kubernetes pkg/controller/serviceaccount/tokens_controller.go@v1.27.3).
    pub fn service_account_token_secrets(self) -> bool {
        self < Profile::V1_27
    }

    /// Control-plane node role labels: kubeadm 1.19 sets only `node-role.kubernetes.io/master`;
    /// 1.20–1.23 set `master` and `control-plane` (kubernetes#95382, in 1.20.0); 1.24+ only
    /// `control-plane` (kubeadm KEP-2067,
    /// kubernetes/kubernetes cmd/kubeadm/app/constants/constants.go@v1.27.3).
    pub fn control_plane_labels(self) -> &'static [&'static str] {
        match self {
            Profile::V1_19 => &["node-role.kubernetes.io/master"],
            Profile::V1_20 | Profile::V1_21 => &[
                "node-role.kubernetes.io/control-plane",
                "node-role.kubernetes.io/master",
            ],
            Profile::V1_27 => &["node-role.kubernetes.io/control-plane"],
        }
    }

    /// Server-side field validation (the `fieldValidation` parameter; unset means `Warn`): beta
    /// and on by default from 1.25, so the 1.27 profile. Before it, unknown fields are dropped
    /// without a word (built-ins: Go's JSON decoding; custom resources: pruning).
    /// kubernetes/apiserver pkg/endpoints/handlers/rest.go@kubernetes-1.27.3 (fieldValidation)
    pub fn server_side_field_validation(self) -> bool {
        self >= Profile::V1_27
    }

    /// The HTTP 500 message of a server-side apply whose body does not convert to the kind's
    /// schema (`errors` is structured-merge-diff's text); 1.27 names the object and its kind.
    /// kubernetes/apiserver pkg/endpoints/handlers/fieldmanager/structuredmerge.go@kubernetes-1.21.1,
    /// kubernetes/apimachinery pkg/util/managedfields/internal/structuredmerge.go@kubernetes-1.27.3
    pub fn typed_patch_error(self, applied: &Value, errors: &str) -> String {
        if self >= Profile::V1_27 {
            let (group, version) = applied["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .rsplit_once('/')
                .map_or(
                    ("", applied["apiVersion"].as_str().unwrap_or_default()),
                    |(g, v)| (g, v),
                );
            format!(
                "failed to create typed patch object ({}/{}; {group}/{version}, Kind={}): {errors}",
                applied["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default(),
                applied["metadata"]["name"].as_str().unwrap_or_default(),
                applied["kind"].as_str().unwrap_or_default(),
            )
        } else {
            format!("failed to create typed patch object: {errors}")
        }
    }
}
