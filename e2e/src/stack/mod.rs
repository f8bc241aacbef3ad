//! Someone's own prometheus-operator stack (`--stack PATH`): a multi-document YAML file, a
//! directory of them, or stdin (`kustomize build overlays/dev | cargo xtask e2e --stack -`),
//! replacing the pinned bundle, `manifests/prometheus/` and our ServiceMonitor.
//!
//! Reading and checking are pure and happen in preflight, before anything is created: every
//! document must be a Kubernetes object (a mistake names the file and the document's number), the
//! stack must bring a Prometheus object and a ServiceMonitor scraping `/metrics/cadvisor`, and
//! every custom resource needs a CustomResourceDefinition in the stack (or, for an existing
//! cluster, served by it). What a run then does with the stack — the apply order, what to wait
//! for, where to assert — is derived here too ([`Stack::derived`]).

use crate::assert::{PrometheusRef, Spec};
use crate::coverage::MetricName;
use crate::diagnose::kube_checks::{cadvisor_servicemonitors, object_key, CADVISOR_PATH};
use crate::k8s::manifests::ObjectIdent;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub mod install;
mod parse;
#[cfg(test)]
pub(crate) mod tests;

use parse::parse;
#[cfg(test)]
use parse::split_documents;

/// Where the stack comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackSource {
    /// A YAML file, or a directory whose `*.yaml`/`*.yml` files (recursively, by path) are read.
    Path(PathBuf),
    /// `-`: standard input, read once.
    Stdin,
}

impl StackSource {
    /// `-` is stdin; anything else a path.
    pub fn from_arg(arg: &Path) -> Self {
        if arg == Path::new("-") {
            StackSource::Stdin
        } else {
            StackSource::Path(arg.to_path_buf())
        }
    }

    /// As messages and the plan show it.
    pub fn display(&self) -> String {
        match self {
            StackSource::Path(p) => crate::workdir::display_path(p),
            StackSource::Stdin => "- (stdin)".into(),
        }
    }
}

/// Why a stack is refused. Every variant names the input and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The file or directory cannot be read.
    #[error("cannot read the stack {path} (--stack takes a YAML file, a directory of YAML files, or - for stdin)")]
    Read {
        /// As given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A kustomization, not its output.
    #[error("{file}: this is a kustomization, not Kubernetes objects; build it first: `kustomize build {dir} | cargo xtask e2e --stack -`")]
    Kustomization {
        /// The kustomization file.
        file: String,
        /// Its directory.
        dir: String,
    },
    /// A document is not YAML.
    #[error("{file}, document {index} (from line {line}): not YAML: {message}; fix the document or remove it from the stack")]
    NotYaml {
        /// The file (`-` for stdin).
        file: String,
        /// 1-based number of the document in the file.
        index: usize,
        /// Line of the file where the document starts.
        line: usize,
        /// The parser's message (its line and column count from the document's start).
        message: String,
    },
    /// A document is YAML but not a Kubernetes object.
    #[error("{file}, document {index}: not a Kubernetes object ({what}); every document needs apiVersion, kind and metadata.name")]
    NotAnObject {
        /// The file.
        file: String,
        /// 1-based number of the document.
        index: usize,
        /// What is missing.
        what: String,
    },
    /// Nothing in it.
    #[error("the stack {stack} holds no Kubernetes objects; pass the YAML of your stack (e.g. the output of `kustomize build`)")]
    Empty {
        /// As displayed.
        stack: String,
    },
    /// No Prometheus object.
    #[error("the stack {stack} has no Prometheus object (monitoring.coreos.com/v1 kind Prometheus): the harness asserts in the Prometheus your stack brings; add yours (kube-prometheus: prometheus-prometheus.yaml)")]
    NoPrometheus {
        /// As displayed.
        stack: String,
    },
    /// No ServiceMonitor scraping `/metrics/cadvisor`.
    #[error("the stack {stack} has no ServiceMonitor scraping /metrics/cadvisor ({found}): per-pod CPU and memory come from the kubelet's cAdvisor endpoint; add an endpoint `port: https-metrics`, `scheme: https`, `path: /metrics/cadvisor` with `bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token` selecting the operator's kubelet Service (manifests/servicemonitor-cadvisor.yaml is one)")]
    NoCadvisorServiceMonitor {
        /// As displayed.
        stack: String,
        /// The ServiceMonitors it has, or "none".
        found: String,
    },
    /// A custom resource whose CRD neither the stack nor the cluster has.
    #[error("{origin}: {ident} is a custom resource of {api_version}, but neither the stack nor the cluster{cluster} has a CustomResourceDefinition serving kind {kind} there; add its CRD to the stack (CRDs are applied first), or correct apiVersion and kind")]
    UnknownKind {
        /// `file, document N`.
        origin: String,
        /// `Kind ns/name`.
        ident: String,
        /// `group/version`.
        api_version: String,
        /// The kind.
        kind: String,
        /// "" or a note on what was checked (a new cluster has no CRDs).
        cluster: String,
    },
    /// `--prometheus` names one the stack lacks.
    #[error("--prometheus {wanted}: the stack has no Prometheus {wanted}; it has {available}")]
    NoSuchPrometheus {
        /// As given.
        wanted: String,
        /// The stack's, comma-separated.
        available: String,
    },
}

/// One object of the stack and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file (`-` for stdin), as displayed.
    pub file: String,
    /// 1-based number of the document in its file (items of a `List` share it).
    pub index: usize,
    /// The object.
    pub value: Value,
    /// Its identity.
    pub ident: ObjectIdent,
}

impl Document {
    /// `file, document N`.
    pub fn origin(&self) -> String {
        format!("{}, document {}", self.file, self.index)
    }

    fn is(&self, group: &str, kind: &str) -> bool {
        self.ident.group == group && self.ident.kind == kind
    }
}

/// A stack: its objects in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// Where it came from, as displayed.
    pub source: String,
    /// sha256 of every file read (`-` for stdin), in reading order.
    pub digests: Vec<(String, String)>,
    /// Every object, in file order.
    pub documents: Vec<Document>,
}

/// API groups every API server serves without a CRD (k8s-openapi's groups, plus the
/// aggregator's `apiregistration.k8s.io`): an object of another group is a custom resource.
const BUILTIN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "extensions",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// The group of Prometheus, ServiceMonitor and the operator's other kinds.
pub const MONITORING_GROUP: &str = "monitoring.coreos.com";

impl Stack {
    /// Reads and parses the stack (no checks beyond "every document is a Kubernetes object";
    /// [`Stack::check`] does the rest).
    ///
    /// # Errors
    /// The input cannot be read, is a kustomization, or a document is not YAML or not an object.
    pub fn load(src: &StackSource) -> Result<Stack, StackError> {
        let read_err = |path: &Path, source| StackError::Read {
            path: crate::workdir::display_path(path),
            source,
        };
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        match src {
            StackSource::Stdin => {
                use std::io::Read;
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .map_err(|e| read_err(Path::new("-"), e))?;
                files.push(("-".into(), buf));
            }
            StackSource::Path(p) if p.is_dir() => {
                let paths = crate::k8s::manifests::yaml_files(p, true).map_err(|e| {
                    read_err(
                        p,
                        std::io::Error::other(crate::errors::error_chain(e.as_ref())),
                    )
                })?;
                for path in paths {
                    let bytes = std::fs::read(&path).map_err(|e| read_err(&path, e))?;
                    files.push((crate::workdir::display_path(&path), bytes));
                }
            }
            StackSource::Path(p) => {
                let bytes = std::fs::read(p).map_err(|e| read_err(p, e))?;
                files.push((crate::workdir::display_path(p), bytes));
            }
        }
        let mut documents = Vec::new();
        let mut digests = Vec::new();
        for (file, bytes) in &files {
            digests.push((file.clone(), crate::pins::sha256_hex(bytes)));
            let text = String::from_utf8_lossy(bytes);
            documents.extend(parse(file, &text)?);
        }
        let source = src.display();
        if documents.is_empty() {
            return Err(StackError::Empty { stack: source });
        }
        Ok(Stack {
            source,
            digests,
            documents,
        })
    }

    /// Parses a stack from text (tests, and what [`Stack::load`] does per file).
    ///
    /// # Errors
    /// As [`Stack::load`].
    pub fn from_text(file: &str, text: &str) -> Result<Stack, StackError> {
        let documents = parse(file, text)?;
        if documents.is_empty() {
            return Err(StackError::Empty { stack: file.into() });
        }
        Ok(Stack {
            source: file.into(),
            digests: vec![(file.into(), crate::pins::sha256_hex(text.as_bytes()))],
            documents,
        })
    }

    /// What every run needs of a stack, knowable without a cluster: a Prometheus object, a
    /// ServiceMonitor scraping `/metrics/cadvisor`, `prometheus` (when given) among the stack's,
    /// and a CRD in the stack for every custom resource whose kind `served` does not know
    /// (`served` is the cluster's discovery for an existing cluster; for a new one, nothing).
    ///
    /// # Errors
    /// The first problem found, naming the document and the fix.
    pub fn check(
        &self,
        prometheus: Option<&PrometheusRef>,
        served: &dyn Fn(&str, &str, &str) -> bool,
        cluster_note: &str,
    ) -> Result<(), StackError> {
        let d = self.derived();
        if d.prometheuses.is_empty() {
            return Err(StackError::NoPrometheus {
                stack: self.source.clone(),
            });
        }
        if d.cadvisor_servicemonitors.is_empty() {
            let sms: Vec<String> = self
                .of(MONITORING_GROUP, "ServiceMonitor")
                .map(|doc| object_key(&doc.value))
                .collect();
            return Err(StackError::NoCadvisorServiceMonitor {
                stack: self.source.clone(),
                found: if sms.is_empty() {
                    "it has no ServiceMonitor at all".into()
                } else {
                    format!("its ServiceMonitors: {}", sms.join(", "))
                },
            });
        }
        if let Some(wanted) = prometheus {
            if !d.prometheuses.iter().any(|p| &p.prometheus == wanted) {
                return Err(StackError::NoSuchPrometheus {
                    wanted: wanted.to_string(),
                    available: d
                        .prometheuses
                        .iter()
                        .map(|p| p.prometheus.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        for doc in self.custom_without_crd() {
            let i = &doc.ident;
            if !served(&i.group, &i.version, &i.kind) {
                return Err(StackError::UnknownKind {
                    origin: doc.origin(),
                    ident: i.to_string(),
                    api_version: format!("{}/{}", i.group, i.version),
                    kind: i.kind.clone(),
                    cluster: cluster_note.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The custom resources (a group no API server serves by itself) whose kind no CRD of the
    /// stack serves: the cluster must serve them already.
    pub fn custom_without_crd(&self) -> Vec<&Document> {
        self.documents
            .iter()
            .filter(|doc| {
                let i = &doc.ident;
                !BUILTIN_GROUPS.contains(&i.group.as_str())
                    && !self
                        .crds()
                        .any(|crd| crd_serves(crd, &i.group, &i.version, &i.kind))
            })
            .collect()
    }

    fn of<'a>(&'a self, group: &'a str, kind: &'a str) -> impl Iterator<Item = &'a Document> + 'a {
        self.documents.iter().filter(move |d| d.is(group, kind))
    }

    fn crds(&self) -> impl Iterator<Item = &Value> {
        self.of("apiextensions.k8s.io", "CustomResourceDefinition")
            .map(|d| &d.value)
    }

    /// What a run does with the stack, derived from its objects (pure).
    pub fn derived(&self) -> Derived {
        let ns_of = |d: &Document| {
            d.ident
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string())
        };
        let (first, rest) = self.ordered();
        let mut operators = Vec::new();
        let mut deployments = Vec::new();
        for d in self.of("apps", "Deployment") {
            let ns = ns_of(d);
            match operator_container(&d.value) {
                Some((image, args)) => operators.push(Operator {
                    namespace: ns,
                    name: d.ident.name.clone(),
                    version: crate::operator::image_tag(&image),
                    image,
                    kubelet_service: args.iter().find_map(|a| {
                        let v = a.strip_prefix("--kubelet-service=")?;
                        let (ns, name) = v.split_once('/')?;
                        Some((ns.to_string(), name.to_string()))
                    }),
                    args,
                }),
                None => deployments.push((ns, d.ident.name.clone())),
            }
        }
        let prometheuses = self
            .of(MONITORING_GROUP, "Prometheus")
            .map(|d| StackPrometheus {
                prometheus: PrometheusRef::new(&ns_of(d), &d.ident.name),
                replicas: d
                    .value
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1),
            })
            .collect();
        let sms: Vec<Value> = self
            .of(MONITORING_GROUP, "ServiceMonitor")
            .map(|d| {
                let mut v = d.value.clone();
                // Where it lands, for its job name.
                v["metadata"]["namespace"] = Value::String(ns_of(d));
                v
            })
            .collect();
        let cadvisor_servicemonitors = cadvisor_servicemonitors(&sms)
            .into_iter()
            .map(|sm| {
                let endpoints: Vec<usize> = sm
                    .pointer("/spec/endpoints")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .filter(|(_, e)| e.get("path").and_then(Value::as_str) == Some(CADVISOR_PATH))
                    .map(|(i, _)| i)
                    .collect();
                (object_key(sm), endpoints)
            })
            .collect();
        Derived {
            first: first.iter().map(|d| d.ident.clone()).collect(),
            rest: rest.iter().map(|d| d.ident.clone()).collect(),
            crds: self
                .of("apiextensions.k8s.io", "CustomResourceDefinition")
                .map(|d| d.ident.name.clone())
                .collect(),
            operators,
            deployments,
            prometheuses,
            cadvisor_servicemonitors,
        }
    }

    /// The objects in apply order: first the Namespaces, then the CRDs (file order); then, once
    /// the CRDs are Established, the rest, identities and RBAC before what runs as them
    /// (`apply_rank`), file order otherwise.
    pub fn ordered(&self) -> (Vec<&Document>, Vec<&Document>) {
        let is_first = |d: &&Document| {
            d.is("", "Namespace") || d.is("apiextensions.k8s.io", "CustomResourceDefinition")
        };
        let mut first: Vec<&Document> = self.of("", "Namespace").collect();
        first.extend(self.of("apiextensions.k8s.io", "CustomResourceDefinition"));
        let mut rest: Vec<&Document> = self.documents.iter().filter(|d| !is_first(d)).collect();
        rest.sort_by_key(|d| crate::k8s::manifests::apply_rank(&d.value));
        (first, rest)
    }

    /// The assert phase's spec: each Prometheus of the stack (or `only`), the metrics, and our
    /// workloads' namespaces when they were applied.
    pub fn assert_spec(
        &self,
        only: Option<&PrometheusRef>,
        metrics: &[MetricName],
        workloads: bool,
    ) -> Spec {
        let prometheuses = match only {
            Some(p) => vec![p.clone()],
            None => self
                .derived()
                .prometheuses
                .into_iter()
                .map(|p| p.prometheus)
                .collect(),
        };
        Spec {
            prometheuses,
            metrics: metrics.to_vec(),
            ours: None,
            namespaces: if workloads {
                vec!["pme2e-apps".into(), "pme2e-batch".into()]
            } else {
                Vec::new()
            },
        }
    }
}

/// What a run does with a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// Applied first: the Namespaces, then the CRDs (in file order).
    pub first: Vec<ObjectIdent>,
    /// Applied once every CRD is Established: everything else, identities and RBAC first.
    pub rest: Vec<ObjectIdent>,
    /// The CRDs, to wait for `Established`.
    pub crds: Vec<String>,
    /// Deployments running a prometheus-operator image.
    pub operators: Vec<Operator>,
    /// The other Deployments, `(namespace, name)`.
    pub deployments: Vec<(String, String)>,
    /// The Prometheus objects.
    pub prometheuses: Vec<StackPrometheus>,
    /// `(namespace/name, endpoint indices)` of the ServiceMonitors scraping `/metrics/cadvisor`.
    pub cadvisor_servicemonitors: Vec<(String, Vec<usize>)>,
}

/// A prometheus-operator Deployment of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Its namespace (`default` when the manifest names none).
    pub namespace: String,
    /// The Deployment's name.
    pub name: String,
    /// The container image.
    pub image: String,
    /// Its tag (e.g. `v0.48.1`), when it has one.
    pub version: Option<String>,
    /// The container's args.
    pub args: Vec<String>,
    /// `--kubelet-service=<ns>/<name>`, when given.
    pub kubelet_service: Option<(String, String)>,
}

/// A Prometheus object of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackPrometheus {
    /// Where it is.
    pub prometheus: PrometheusRef,
    /// `spec.replicas` (default 1).
    pub replicas: i64,
}

/// The image and args of a Deployment's prometheus-operator container: the one whose image is
/// `…/prometheus-operator/prometheus-operator` (quay.io or a mirror), or, failing that, the one
/// named `prometheus-operator`.
pub fn operator_container(deployment: &Value) -> Option<(String, Vec<String>)> {
    let containers = deployment
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)?;
    let c = containers
        .iter()
        .find(|c| {
            c.get("image")
                .and_then(Value::as_str)
                .is_some_and(|i| i.contains("prometheus-operator/prometheus-operator"))
        })
        .or_else(|| {
            containers
                .iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some("prometheus-operator"))
        })?;
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let args = c
        .get("args")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    Some((image, args))
}

/// Whether a CRD (as JSON) serves `kind` in `group/version`.
pub fn crd_serves(crd: &Value, group: &str, version: &str, kind: &str) -> bool {
    let spec = &crd["spec"];
    spec["group"] == group
        && spec["names"]["kind"] == kind
        && spec["versions"].as_array().is_some_and(|vs| {
            vs.iter()
                .any(|v| v["name"] == version && v["served"].as_bool().unwrap_or(true))
        })
}
