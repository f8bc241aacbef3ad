//! Which resources the twin serves: the built-in ones the harness, the v0.48.1 bundle,
//! `manifests/` and `fixtures/workloads/` use, plus every CustomResourceDefinition once its
//! names are accepted (TWIN-FACTS §3).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::RwLock;

/// One resource of one group/version, as discovery lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// `""` for core.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    /// Has a `/status` subresource (listed as `<plural>/status`, TWIN-FACTS §1).
    pub status: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
}

impl ResourceType {
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `<plural>[.<group>]`, as error messages name a resource (TWIN-FACTS §2b).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

fn builtin(
    gv: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    status: bool,
    short: &[&str],
) -> ResourceType {
    let (group, version) = gv.split_once('/').unwrap_or(("", gv));
    ResourceType {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        status,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
    }
}

/// The object as read through `rt`'s group/version.
pub fn as_version(mut obj: Value, rt: &ResourceType) -> Value {
    obj["apiVersion"] = json!(rt.group_version());
    obj["kind"] = json!(rt.kind);
    obj
}

/// The built-in resources (group/version, plural, kind, namespaced, has status).
pub fn builtins() -> Vec<ResourceType> {
    vec![
        builtin("v1", "namespaces", "Namespace", false, true, &["ns"]),
        builtin("v1", "nodes", "Node", false, true, &["no"]),
        builtin("v1", "pods", "Pod", true, true, &["po"]),
        builtin("v1", "services", "Service", true, true, &["svc"]),
        builtin("v1", "endpoints", "Endpoints", true, false, &["ep"]),
        builtin(
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            false,
            &["sa"],
        ),
        builtin("v1", "secrets", "Secret", true, false, &[]),
        builtin("v1", "configmaps", "ConfigMap", true, false, &["cm"]),
        builtin("v1", "events", "Event", true, false, &["ev"]),
        builtin(
            "apps/v1",
            "deployments",
            "Deployment",
            true,
            true,
            &["deploy"],
        ),
        builtin(
            "apps/v1",
            "statefulsets",
            "StatefulSet",
            true,
            true,
            &["sts"],
        ),
        builtin("apps/v1", "replicasets", "ReplicaSet", true, true, &["rs"]),
        builtin("apps/v1", "daemonsets", "DaemonSet", true, true, &["ds"]),
        builtin("batch/v1", "jobs", "Job", true, true, &[]),
        builtin(
            "rbac.authorization.k8s.io/v1",
            "clusterroles",
            "ClusterRole",
            false,
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io/v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io/v1",
            "roles",
            "Role",
            true,
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io/v1",
            "rolebindings",
            "RoleBinding",
            true,
            false,
            &[],
        ),
        builtin(
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            true,
            &["crd", "crds"],
        ),
    ]
}

/// Per CRD: its resource types (one per served version) and whether the API serves them
/// (NamesAccepted) and discovery lists them (Established).
#[derive(Debug, Clone)]
struct Crd {
    types: Vec<ResourceType>,
    serving: bool,
    established: bool,
}

/// Built-ins plus CRDs; shared by the API and the CRD controller.
pub struct Registry {
    builtins: Vec<ResourceType>,
    crds: RwLock<BTreeMap<String, Crd>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            builtins: builtins(),
            crds: RwLock::new(BTreeMap::new()),
        }
    }
}

/// The resource types a CRD object defines (one per served version).
pub fn crd_types(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let plural = names["plural"].as_str().unwrap_or_default().to_string();
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .map(|v| ResourceType {
            group: spec["group"].as_str().unwrap_or_default().into(),
            version: v["name"].as_str().unwrap_or_default().into(),
            plural: plural.clone(),
            singular: names["singular"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| names["kind"].as_str().unwrap_or_default().to_lowercase()),
            kind: names["kind"].as_str().unwrap_or_default().into(),
            namespaced: spec["scope"].as_str() != Some("Cluster"),
            status: v.pointer("/subresources/status").is_some(),
            short_names: strs(&names["shortNames"]),
            categories: strs(&names["categories"]),
        })
        .collect()
}

impl Registry {
    /// Registers (or replaces) a CRD's types, not yet serving.
    pub fn put_crd(&self, name: &str, types: Vec<ResourceType>) {
        let mut crds = self.crds.write().unwrap();
        let e = crds.entry(name.to_string()).or_insert(Crd {
            types: Vec::new(),
            serving: false,
            established: false,
        });
        e.types = types;
    }

    pub fn remove_crd(&self, name: &str) {
        self.crds.write().unwrap().remove(name);
    }

    pub fn set_crd_state(&self, name: &str, serving: bool, established: bool) {
        if let Some(c) = self.crds.write().unwrap().get_mut(name) {
            c.serving = serving;
            c.established = established;
        }
    }

    /// A type the API serves for `group/version` and `plural`: built-ins always, CRD types once
    /// NamesAccepted (TWIN-FACTS §3 "Custom-resource endpoints already serve once NamesAccepted").
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.builtins
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
            .or_else(|| {
                self.crds
                    .read()
                    .unwrap()
                    .values()
                    .filter(|c| c.serving)
                    .flat_map(|c| c.types.iter())
                    .find(|t| t.group == group && t.version == version && t.plural == plural)
                    .cloned()
            })
    }

    /// By kind, for the controllers' own writes.
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<ResourceType> {
        self.builtins
            .iter()
            .find(|t| t.group == group && t.kind == kind)
            .cloned()
            .or_else(|| {
                self.crds
                    .read()
                    .unwrap()
                    .values()
                    .flat_map(|c| c.types.iter())
                    .find(|t| t.group == group && t.kind == kind)
                    .cloned()
            })
    }

    /// Built-in group/versions (the `/api/v1` + `/apis/<g>/<v>` the twin always serves).
    pub fn builtin_types(&self, group: &str, version: &str) -> Vec<ResourceType> {
        self.builtins
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .cloned()
            .collect()
    }

    /// CRD types discovery lists for `group/version`: Established CRDs only (TWIN-FACTS §1).
    pub fn established_types(&self, group: &str, version: &str) -> Vec<ResourceType> {
        self.crds
            .read()
            .unwrap()
            .values()
            .filter(|c| c.established)
            .flat_map(|c| c.types.iter())
            .filter(|t| t.group == group && t.version == version)
            .cloned()
            .collect()
    }

    /// Every group with its versions for `/apis`: built-in groups, then every CRD group whatever
    /// its conditions (crd-autoregister creates the APIService at once, TWIN-FACTS §1).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        let mut add = |g: &str, v: &str| {
            if g.is_empty() {
                return;
            }
            match out.iter_mut().find(|(n, _)| n == g) {
                Some((_, vs)) if !vs.iter().any(|x| x == v) => vs.push(v.to_string()),
                Some(_) => {}
                None => out.push((g.to_string(), vec![v.to_string()])),
            }
        };
        for t in &self.builtins {
            add(&t.group, &t.version);
        }
        for c in self.crds.read().unwrap().values() {
            for t in &c.types {
                add(&t.group, &t.version);
            }
        }
        out
    }
}
