//! prometheus-operator: the pinned `bundle.yaml` (fetch, cache, verify, parse), its installation
//! by server-side apply (CRDs first, then the rest), and the kubelet Service the operator writes.
//!
//! Server-side apply matters here: the prometheuses CRD is ~222 KB as JSON, close to the 256 KiB
//! limit of client-side apply's last-applied annotation.

use crate::install::{self, Applier, ObjectIdent};
use crate::matrix::Cell;
use crate::wait::{self, Waited};
use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The Service the bundle's operator is told to maintain (`--kubelet-service`).
pub const KUBELET_SERVICE_NAMESPACE: &str = "kube-system";
pub const KUBELET_SERVICE_NAME: &str = "kubelet";
/// The kubelet port that works on modern kubelets (HTTPS, authenticated).
pub const KUBELET_PORT_NAME: &str = "https-metrics";

/// A parsed bundle: every object as JSON, in file order.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// sha256 of the exact bytes parsed (hex).
    pub sha256: String,
    pub len: usize,
    pub documents: Vec<Value>,
}

impl Bundle {
    pub fn parse(bytes: &[u8]) -> Result<Bundle> {
        let text = std::str::from_utf8(bytes).context("the operator bundle is not UTF-8 text")?;
        let documents = install::parse_documents(text, "operator bundle")?;
        if documents.is_empty() {
            bail!("the operator bundle holds no Kubernetes objects");
        }
        Ok(Bundle {
            sha256: sha256_hex(bytes),
            len: bytes.len(),
            documents,
        })
    }

    /// CRDs first (they must be Established before anything uses their kinds), then
    /// Namespaces, ServiceAccounts and RBAC, then the rest; file order within each group.
    pub fn apply_order(&self) -> Vec<&Value> {
        install::in_apply_order(&self.documents)
    }

    /// Names of the CustomResourceDefinitions, in file order.
    pub fn crd_names(&self) -> Vec<String> {
        self.of_kind("CustomResourceDefinition")
            .map(|i| i.name)
            .collect()
    }

    /// (namespace, name) of every Deployment; the bundle leaves namespaced objects in `default`.
    pub fn deployments(&self) -> Vec<(String, String)> {
        self.of_kind("Deployment")
            .map(|i| (i.namespace.unwrap_or_else(|| "default".into()), i.name))
            .collect()
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = ObjectIdent> + 'a {
        self.documents
            .iter()
            .filter_map(|d| ObjectIdent::of(d).ok())
            .filter(move |i| i.kind == kind)
    }

    /// The `args` of the operator container (the Deployment container named
    /// `prometheus-operator`), e.g. `--kubelet-service=kube-system/kubelet`.
    pub fn operator_args(&self) -> Result<Vec<String>> {
        for doc in &self.documents {
            if doc.get("kind").and_then(Value::as_str) != Some("Deployment") {
                continue;
            }
            let containers = doc
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for c in containers {
                if c.get("name").and_then(Value::as_str) == Some("prometheus-operator") {
                    let args = c
                        .get("args")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten();
                    return args
                        .map(|a| {
                            a.as_str().map(str::to_string).with_context(|| {
                                format!("operator container arg {a} is not a string")
                            })
                        })
                        .collect();
                }
            }
        }
        bail!("the operator bundle has no Deployment with a container named prometheus-operator")
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where the bundle comes from. Both are verified against the pinned sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    /// Downloaded once into the cache directory.
    Pinned { url: String, sha256: String },
    /// `--operator-bundle PATH`, for air-gapped machines.
    File { path: PathBuf, sha256: String },
}

impl BundleSource {
    /// The cell's pinned bundle, or `path` with the same pin when given.
    pub fn for_cell(cell: &Cell, path: Option<&Path>) -> Self {
        let sha256 = cell.operator_bundle_sha256.clone();
        match path {
            Some(path) => BundleSource::File {
                path: path.to_path_buf(),
                sha256,
            },
            None => BundleSource::Pinned {
                url: cell.operator_bundle_url.clone(),
                sha256,
            },
        }
    }

    /// Where a pinned bundle is cached: named by its digest so two pins never collide.
    pub fn cache_path(sha256: &str, cache_dir: &Path) -> PathBuf {
        cache_dir.join(format!("prometheus-operator-bundle-{sha256}.yaml"))
    }
}

/// Gets the bundle from `src`, verifies its sha256 and parses it. A downloaded or cached file
/// whose digest is wrong is deleted; a user-supplied file is left alone.
pub async fn load_bundle(src: &BundleSource, cache_dir: &Path) -> Result<Bundle> {
    match src {
        BundleSource::File { path, sha256 } => {
            let bytes = std::fs::read(path).with_context(|| {
                format!(
                    "cannot read the operator bundle {} (--operator-bundle)",
                    path.display()
                )
            })?;
            verify(&bytes, sha256).map_err(|actual| {
                anyhow::anyhow!(
                    "operator bundle {} has sha256 {actual}, expected {sha256}: \
                     it is not the pinned bundle.yaml; download the pinned one again",
                    path.display()
                )
            })?;
            Bundle::parse(&bytes).with_context(|| format!("in {}", path.display()))
        }
        BundleSource::Pinned { url, sha256 } => {
            let cached = BundleSource::cache_path(sha256, cache_dir);
            if let Ok(bytes) = std::fs::read(&cached) {
                if verify(&bytes, sha256).is_ok() {
                    return Bundle::parse(&bytes)
                        .with_context(|| format!("in {}", cached.display()));
                }
                // A corrupt or truncated cache entry: drop it and download again.
                tracing::warn!(
                    "cached bundle {} fails its sha256; downloading again",
                    cached.display()
                );
                std::fs::remove_file(&cached)
                    .with_context(|| format!("cannot delete {}", cached.display()))?;
            }
            let bytes = download(url, &cached).await?;
            if let Err(actual) = verify(&bytes, sha256) {
                let _ = std::fs::remove_file(&cached);
                bail!(
                    "the operator bundle downloaded from {url} has sha256 {actual}, expected {sha256}; \
                     the file was deleted from {}. The URL must serve the pinned release; check fixtures/matrix.toml",
                    cache_dir.display()
                );
            }
            Bundle::parse(&bytes).with_context(|| format!("in {}", cached.display()))
        }
    }
}

/// `Err(actual)` when `bytes` do not hash to `expected` (hex, case-insensitive).
pub fn verify(bytes: &[u8], expected: &str) -> std::result::Result<(), String> {
    let actual = sha256_hex(bytes);
    if actual.eq_ignore_ascii_case(expected.trim()) {
        Ok(())
    } else {
        Err(actual)
    }
}

/// Downloads `url` to `dest` (via a `.part` file, so an interrupted download never looks cached).
async fn download(url: &str, dest: &Path) -> Result<Vec<u8>> {
    let by_hand = || {
        format!(
            "download it by hand (`curl -fsSLo bundle.yaml {url}`) and pass --operator-bundle bundle.yaml"
        )
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("cannot build an HTTP client")?;
    let resp = http.get(url).send().await.with_context(|| {
        format!(
            "cannot download the operator bundle from {url}; {}",
            by_hand()
        )
    })?;
    let status = resp.status();
    if !status.is_success() {
        bail!(
            "downloading the operator bundle from {url} answered HTTP {status}; {}",
            by_hand()
        );
    }
    let bytes = resp
        .bytes()
        .await
        .with_context(|| format!("download of {url} broke off; {}", by_hand()))?
        .to_vec();
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let part = dest.with_extension("yaml.part");
    std::fs::write(&part, &bytes).with_context(|| format!("cannot write {}", part.display()))?;
    std::fs::rename(&part, dest)
        .with_context(|| format!("cannot move {} into place", part.display()))?;
    Ok(bytes)
}

/// How often a CRD's conditions are read: establishing takes well under a second on one
/// apiserver (TWIN-FACTS §3), so a short poll keeps the install phase quick.
const CRD_POLL: Duration = Duration::from_millis(250);

/// Server-side applies the bundle: CRDs, wait until each is `Established`, then everything else,
/// then wait until the operator Deployment is `Available`.
pub async fn install(client: &Client, bundle: &Bundle, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let (crds, rest): (Vec<&Value>, Vec<&Value>) = bundle
        .apply_order()
        .into_iter()
        .partition(|d| d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"));
    let mut applier = Applier::new(client.clone(), timeout);
    applier.apply_all(&crds).await?;

    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in bundle.crd_names() {
        let established = wait::poll_until(install::remaining(deadline), CRD_POLL, || async {
            let crd = crd_api
                .get_opt(&name)
                .await
                .with_context(|| format!("cannot get CRD {name}"))?;
            let done = crd.as_ref().is_some_and(crd_established);
            Ok(if done { Ok(()) } else { Err(()) })
        })
        .await;
        match established {
            Ok(()) => {}
            Err(Waited::Pending(())) => bail!(
                "CRD {name} not Established after {timeout:?}; its status conditions say why \
                 (kubectl --kubeconfig <kubeconfig> get crd {name} -o yaml)"
            ),
            Err(Waited::Failed(e)) => {
                return Err(e.context(format!(
                    "waiting {timeout:?} for CRD {name} to be Established"
                )))
            }
        }
    }

    applier.apply_all(&rest).await?;
    for (ns, name) in bundle.deployments() {
        install::wait_deployment_available(client, &ns, &name, install::remaining(deadline))
            .await
            .context("the operator did not start (its image is quay.io/prometheus-operator/prometheus-operator)")?;
    }
    Ok(())
}

/// Waits until the operator has written Service `kube-system/kubelet` with port `https-metrics`
/// and Endpoints holding one address per Node.
///
/// # Errors
/// When the deadline passes, naming what is missing; at once for a permanent API error.
pub async fn wait_kubelet_service(client: &Client, timeout: Duration) -> Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), KUBELET_SERVICE_NAMESPACE);
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), KUBELET_SERVICE_NAMESPACE);
    let nodes: Api<Node> = Api::all(client.clone());
    let waited = wait::poll_until(timeout, Duration::from_secs(2), || async {
        let svc = services
            .get_opt(KUBELET_SERVICE_NAME)
            .await
            .context("cannot get Service kube-system/kubelet")?;
        let eps = endpoints
            .get_opt(KUBELET_SERVICE_NAME)
            .await
            .context("cannot get Endpoints kube-system/kubelet")?;
        let node_names: Vec<String> = nodes
            .list(&ListParams::default())
            .await
            .context("cannot list nodes")?
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        let gaps = kubelet_service_gaps(svc.as_ref(), eps.as_ref(), &node_names);
        Ok(if gaps.is_empty() { Ok(()) } else { Err(gaps) })
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Pending(gaps)) => bail!(
            "the kubelet Service is not complete after {timeout:?}: {}. prometheus-operator \
             (--kubelet-service=kube-system/kubelet) writes it at start-up and then every 3 minutes; \
             it does not watch nodes, so a node added later can take up to 3 minutes to appear. \
             Raise --timeout above 3m, or check the operator log (default/prometheus-operator)",
            gaps.join("; ")
        ),
        Err(Waited::Failed(e)) => Err(e.context(format!(
            "waiting {timeout:?} for the operator's kubelet Service kube-system/kubelet"
        ))),
    }
}

/// A CRD's `Established` condition is `True`: its resources are served and discovery lists them
/// (TWIN-FACTS §1, §3).
pub fn crd_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

/// What is still missing from the kubelet Service/Endpoints; empty when complete.
pub fn kubelet_service_gaps(
    svc: Option<&Service>,
    eps: Option<&Endpoints>,
    nodes: &[String],
) -> Vec<String> {
    let mut gaps = Vec::new();
    let Some(svc) = svc else {
        return vec!["Service kube-system/kubelet does not exist yet".into()];
    };
    let has_port = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|ports| {
            ports
                .iter()
                .any(|p| p.name.as_deref() == Some(KUBELET_PORT_NAME))
        });
    if !has_port {
        gaps.push(format!(
            "Service kube-system/kubelet has no port named {KUBELET_PORT_NAME}"
        ));
    }
    let Some(eps) = eps else {
        gaps.push("Endpoints kube-system/kubelet does not exist yet".into());
        return gaps;
    };
    let mut covered: Vec<&str> = Vec::new();
    for subset in eps.subsets.iter().flatten() {
        let serves_port = subset
            .ports
            .iter()
            .flatten()
            .any(|p| p.name.as_deref() == Some(KUBELET_PORT_NAME));
        if !serves_port {
            continue;
        }
        for addr in subset.addresses.iter().flatten() {
            if let Some(t) = addr.target_ref.as_ref() {
                if t.kind.as_deref() == Some("Node") {
                    covered.extend(t.name.as_deref());
                }
            }
        }
    }
    let missing: Vec<&str> = nodes
        .iter()
        .map(String::as_str)
        .filter(|n| !covered.contains(n))
        .collect();
    if nodes.is_empty() {
        gaps.push("the cluster has no nodes".into());
    } else if !missing.is_empty() {
        gaps.push(format!(
            "Endpoints kube-system/kubelet has no {KUBELET_PORT_NAME} address for node(s) {}",
            missing.join(", ")
        ));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MINI_BUNDLE: &str = "---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: alertmanagers.monitoring.coreos.com
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: prometheus-operator
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: prometheus-operator
  namespace: default
spec:
  template:
    spec:
      containers:
      - name: prometheus-operator
        args:
        - --kubelet-service=kube-system/kubelet
        - --prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.48.1
        image: quay.io/prometheus-operator/prometheus-operator:v0.48.1
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: prometheus-operator
  namespace: default
";

    #[test]
    fn parses_orders_crds_first_and_extracts_args() {
        let bundle = Bundle::parse(MINI_BUNDLE.as_bytes()).unwrap();
        assert_eq!(bundle.documents.len(), 5);
        assert_eq!(bundle.len, MINI_BUNDLE.len());
        assert_eq!(bundle.sha256, sha256_hex(MINI_BUNDLE.as_bytes()));
        let kinds: Vec<&str> = bundle
            .apply_order()
            .iter()
            .map(|d| d["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "ClusterRoleBinding",
                "ServiceAccount",
                "Deployment"
            ]
        );
        assert_eq!(
            bundle.crd_names(),
            [
                "alertmanagers.monitoring.coreos.com",
                "servicemonitors.monitoring.coreos.com"
            ]
        );
        assert_eq!(
            bundle.deployments(),
            [("default".to_string(), "prometheus-operator".to_string())]
        );
        assert_eq!(
            bundle.operator_args().unwrap(),
            [
                "--kubelet-service=kube-system/kubelet",
                "--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.48.1"
            ]
        );
    }

    #[test]
    fn a_bundle_without_the_operator_container_says_so() {
        let bundle =
            Bundle::parse(b"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\n").unwrap();
        let err = bundle.operator_args().unwrap_err();
        assert!(
            err.to_string()
                .contains("container named prometheus-operator"),
            "{err}"
        );
        assert!(Bundle::parse(b"---\n")
            .unwrap_err()
            .to_string()
            .contains("no Kubernetes objects"));
    }

    #[tokio::test]
    async fn a_file_source_is_verified_and_a_mismatch_names_both_digests_and_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.yaml");
        std::fs::write(&path, MINI_BUNDLE).unwrap();
        let good = sha256_hex(MINI_BUNDLE.as_bytes());
        let ok = load_bundle(
            &BundleSource::File {
                path: path.clone(),
                sha256: good.to_uppercase(),
            },
            dir.path(),
        )
        .await
        .unwrap();
        assert_eq!(ok.documents.len(), 5);

        let wrong = "0".repeat(64);
        let err = load_bundle(
            &BundleSource::File {
                path: path.clone(),
                sha256: wrong.clone(),
            },
            dir.path(),
        )
        .await
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&wrong) && msg.contains(&good) && msg.contains("bundle.yaml"),
            "{msg}"
        );
        assert!(path.exists(), "a user's file is never deleted");
    }

    /// Serves `body` at `/bundle.yaml`; returns the URL and a request counter.
    async fn serve_bundle(
        body: &'static str,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/bundle.yaml",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { body }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/bundle.yaml", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, hits)
    }

    #[tokio::test]
    async fn a_pinned_bundle_is_downloaded_once_then_served_from_the_cache() {
        use std::sync::atomic::Ordering;
        let (url, hits) = serve_bundle(MINI_BUNDLE).await;
        let cache = tempfile::tempdir().unwrap();
        let sha256 = sha256_hex(MINI_BUNDLE.as_bytes());
        let src = BundleSource::Pinned {
            url,
            sha256: sha256.clone(),
        };
        let first = load_bundle(&src, cache.path()).await.unwrap();
        let second = load_bundle(&src, cache.path()).await.unwrap();
        assert_eq!(
            (first.sha256.as_str(), second.sha256.as_str()),
            (sha256.as_str(), sha256.as_str())
        );
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "the second load uses the cache"
        );
        let files: Vec<_> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            files,
            [std::ffi::OsString::from(format!(
                "prometheus-operator-bundle-{sha256}.yaml"
            ))]
        );
    }

    #[tokio::test]
    async fn a_download_with_the_wrong_digest_is_refused_and_deleted_from_the_cache() {
        let (url, _) =
            serve_bundle("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: tampered\n")
                .await;
        let cache = tempfile::tempdir().unwrap();
        let pinned = sha256_hex(MINI_BUNDLE.as_bytes());
        let src = BundleSource::Pinned {
            url: url.clone(),
            sha256: pinned.clone(),
        };
        let err = load_bundle(&src, cache.path()).await.unwrap_err();
        let msg = format!("{err:#}");
        let actual =
            sha256_hex(b"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: tampered\n");
        assert!(
            msg.contains(&pinned) && msg.contains(&actual) && msg.contains(&url),
            "{msg}"
        );
        assert!(msg.contains("deleted"), "{msg}");
        assert_eq!(
            std::fs::read_dir(cache.path()).unwrap().count(),
            0,
            "nothing left in the cache"
        );
    }

    #[tokio::test]
    async fn a_corrupt_cache_entry_is_deleted_and_a_failed_download_explains_the_offline_route() {
        let dir = tempfile::tempdir().unwrap();
        let sha = sha256_hex(MINI_BUNDLE.as_bytes());
        let cached = BundleSource::cache_path(&sha, dir.path());
        std::fs::write(&cached, "truncated").unwrap();
        // Port 9 (discard) on localhost: nothing listens, so the download fails fast.
        let src = BundleSource::Pinned {
            url: "http://127.0.0.1:9/bundle.yaml".into(),
            sha256: sha.clone(),
        };
        let err = load_bundle(&src, dir.path()).await.unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("--operator-bundle") && msg.contains("http://127.0.0.1:9/bundle.yaml"),
            "{msg}"
        );
        assert!(!cached.exists(), "the corrupt cache entry is deleted");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left behind"
        );

        // A good cache entry is used without any network.
        std::fs::write(&cached, MINI_BUNDLE).unwrap();
        assert_eq!(load_bundle(&src, dir.path()).await.unwrap().sha256, sha);
    }

    fn svc(port: &str) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "kubelet", "namespace": "kube-system"},
            "spec": {"clusterIP": "None", "ports": [{"name": port, "port": 10250}]}}),
        )
        .unwrap()
    }

    fn eps(nodes: &[&str]) -> Endpoints {
        let addresses: Vec<Value> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"ip": format!("172.18.0.{}", i + 2), "targetRef": {"kind": "Node", "name": n}}))
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "kubelet"}, "subsets": [{
            "addresses": addresses,
            "ports": [{"name": "https-metrics", "port": 10250}, {"name": "http-metrics", "port": 10255}]}]}))
        .unwrap()
    }

    const NODES: &str = r#"{"kind":"NodeList","apiVersion":"v1","metadata":{},"items":[
        {"metadata":{"name":"cp"},"status":{"conditions":[{"type":"Ready","status":"True"}]}},
        {"metadata":{"name":"w1"},"status":{"conditions":[{"type":"Ready","status":"False","reason":"KubeletNotReady","message":"cni plugin not initialized"}]}}]}"#;

    fn established_crd(name: &str) -> Value {
        let (plural, group) = name.split_once('.').unwrap();
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "resourceVersion": "7"},
            "spec": {"group": group, "scope": "Namespaced", "names": {"kind": "X", "plural": plural},
                     "versions": [{"name": "v1", "served": true, "storage": true}]},
            "status": {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]}})
    }

    #[tokio::test]
    async fn install_applies_crds_waits_for_established_then_the_rest_then_the_deployment() {
        use crate::kubeproxy::fake_apiserver;
        let bundle = Bundle::parse(MINI_BUNDLE.as_bytes()).unwrap();
        let crd_list =
            json!({"kind": "CustomResourceDefinitionList", "apiVersion": "apiextensions.k8s.io/v1",
            "metadata": {"resourceVersion": "7"},
            "items": bundle.crd_names().iter().map(|n| established_crd(n)).collect::<Vec<_>>()})
            .to_string();
        let crd_paths: Vec<String> = bundle
            .crd_names()
            .iter()
            .map(|n| format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{n}"))
            .collect();
        let crd_bodies: Vec<String> = bundle
            .crd_names()
            .iter()
            .map(|n| established_crd(n).to_string())
            .collect();
        let deployment = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"prometheus-operator","namespace":"default"},
            "status":{"conditions":[{"type":"Available","status":"True"}]}}"#;
        let discovery = |gv: &str, entries: &str| {
            format!(r#"{{"kind":"APIResourceList","groupVersion":"{gv}","resources":[{entries}]}}"#)
        };
        let apiext = discovery(
            "apiextensions.k8s.io/v1",
            r#"{"name":"customresourcedefinitions","singularName":"","namespaced":false,"kind":"CustomResourceDefinition","verbs":["get","list","patch","watch"]}"#,
        );
        let rbac = discovery(
            "rbac.authorization.k8s.io/v1",
            r#"{"name":"clusterrolebindings","singularName":"","namespaced":false,"kind":"ClusterRoleBinding","verbs":["patch"]}"#,
        );
        let apps = discovery(
            "apps/v1",
            r#"{"name":"deployments","singularName":"","namespaced":true,"kind":"Deployment","verbs":["get","patch"]}"#,
        );
        let core = discovery(
            "v1",
            r#"{"name":"serviceaccounts","singularName":"","namespaced":true,"kind":"ServiceAccount","verbs":["patch"]}"#,
        );
        let mut routes: Vec<(&str, u16, &str)> = vec![
            ("/apis/apiextensions.k8s.io/v1", 200, &apiext),
            ("/apis/rbac.authorization.k8s.io/v1", 200, &rbac),
            ("/apis/apps/v1", 200, &apps),
            ("/api/v1", 200, &core),
            (
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                200,
                &crd_list,
            ),
            (
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/prometheus-operator",
                200,
                r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"prometheus-operator"}}"#,
            ),
            (
                "/api/v1/namespaces/default/serviceaccounts/prometheus-operator",
                200,
                r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"prometheus-operator","namespace":"default"}}"#,
            ),
            (
                "/apis/apps/v1/namespaces/default/deployments/prometheus-operator",
                200,
                deployment,
            ),
        ];
        for (path, body) in crd_paths.iter().zip(&crd_bodies) {
            routes.push((path, 200, body));
        }
        let server = fake_apiserver::start(&routes).await;
        let client = crate::install::kube_client(&server.kubeconfig)
            .await
            .unwrap();
        install(&client, &bundle, Duration::from_secs(20))
            .await
            .unwrap();

        let requests = server.requests.lock().unwrap().clone();
        let steps: Vec<String> = requests
            .iter()
            .filter(|r| {
                r.method != "GET" || r.path_and_query.contains("customresourcedefinitions/")
            })
            .map(|r| {
                let path = r.path_and_query.split('?').next().unwrap();
                format!(
                    "{} {}",
                    r.method,
                    path.rsplit('/').take(2).collect::<Vec<_>>().join("<")
                )
            })
            .collect();
        // Both CRDs applied, then each one's Established checked, then the rest in rank order.
        assert_eq!(
            steps,
            [
                "PATCH alertmanagers.monitoring.coreos.com<customresourcedefinitions",
                "PATCH servicemonitors.monitoring.coreos.com<customresourcedefinitions",
                "GET alertmanagers.monitoring.coreos.com<customresourcedefinitions",
                "GET servicemonitors.monitoring.coreos.com<customresourcedefinitions",
                "PATCH prometheus-operator<clusterrolebindings",
                "PATCH prometheus-operator<serviceaccounts",
                "PATCH prometheus-operator<deployments",
            ],
            "{requests:#?}"
        );
        assert!(
            requests
                .last()
                .unwrap()
                .path_and_query
                .ends_with("/deployments/prometheus-operator"),
            "the Deployment's availability is the last thing checked"
        );
    }

    /// A fake API server with nodes cp and w1, the kubelet Service, and Endpoints addressing
    /// `nodes`. The server lives as long as the returned handle.
    async fn kubelet_service_cluster(
        nodes: &[&str],
    ) -> (
        crate::kubeproxy::fake_apiserver::FakeApiServer,
        kube::Client,
    ) {
        let svc = serde_json::to_string(&svc("https-metrics")).unwrap();
        let eps = serde_json::to_string(&eps(nodes)).unwrap();
        let server = crate::kubeproxy::fake_apiserver::start(&[
            ("/api/v1/namespaces/kube-system/services/kubelet", 200, &svc),
            (
                "/api/v1/namespaces/kube-system/endpoints/kubelet",
                200,
                &eps,
            ),
            ("/api/v1/nodes", 200, NODES),
        ])
        .await;
        let client = crate::install::kube_client(&server.kubeconfig)
            .await
            .unwrap();
        (server, client)
    }

    #[tokio::test]
    async fn waiting_for_the_kubelet_service_times_out_naming_nodes_and_the_resync() {
        let (_server, client) = kubelet_service_cluster(&["cp"]).await;
        let err = wait_kubelet_service(&client, Duration::ZERO)
            .await
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("no https-metrics address for node(s) w1"),
            "{msg}"
        );
        assert!(
            msg.contains("every 3 minutes") && msg.contains("--timeout"),
            "{msg}"
        );

        // And the nodes wait names the node that is not Ready, with the kubelet's reason.
        let err = crate::install::wait_nodes_ready(&client, Duration::ZERO)
            .await
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("1 of 2 nodes not Ready")
                && msg.contains("w1 (Ready=False: KubeletNotReady cni plugin not initialized"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn the_kubelet_service_wait_succeeds_once_every_node_has_an_address() {
        let (_server, client) = kubelet_service_cluster(&["cp", "w1"]).await;
        wait_kubelet_service(&client, Duration::ZERO).await.unwrap();
    }

    #[test]
    fn kubelet_service_is_complete_with_one_address_per_node() {
        let nodes = ["cp".to_string(), "w1".to_string()];
        assert!(kubelet_service_gaps(
            Some(&svc("https-metrics")),
            Some(&eps(&["cp", "w1"])),
            &nodes
        )
        .is_empty());
    }

    #[test]
    fn kubelet_service_gaps_name_what_is_missing() {
        let nodes = ["cp".to_string(), "w1".to_string(), "w2".to_string()];
        assert_eq!(
            kubelet_service_gaps(None, None, &nodes),
            ["Service kube-system/kubelet does not exist yet"]
        );
        let gaps = kubelet_service_gaps(Some(&svc("http-metrics")), Some(&eps(&["cp"])), &nodes);
        assert_eq!(
            gaps,
            [
                "Service kube-system/kubelet has no port named https-metrics",
                "Endpoints kube-system/kubelet has no https-metrics address for node(s) w1, w2"
            ]
        );
        let gaps = kubelet_service_gaps(Some(&svc("https-metrics")), None, &nodes);
        assert_eq!(gaps, ["Endpoints kube-system/kubelet does not exist yet"]);
    }
}
