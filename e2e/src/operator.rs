//! prometheus-operator: the pinned `bundle.yaml` (fetch, cache, verify, parse), its installation
//! by server-side apply (CRDs first, then the rest), and the kubelet Service the operator writes.
//!
//! Server-side apply matters here: the prometheuses CRD is ~222 KB as JSON, close to the 256 KiB
//! limit of client-side apply's last-applied annotation.

use crate::k8s::apply::Applier;
use crate::k8s::manifests::{self, ObjectIdent};
use crate::k8s::wait::{self, remaining, wait_deployment_available, WaitError, Waited};
use crate::matrix::Cell;
use crate::pins::{self, sha256_hex};
use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The Service the bundle's operator is told to maintain (`--kubelet-service`).
pub const KUBELET_SERVICE_NAMESPACE: &str = "kube-system";
/// Its name.
pub const KUBELET_SERVICE_NAME: &str = "kubelet";
/// The kubelet port that works on modern kubelets (HTTPS, authenticated).
pub const KUBELET_PORT_NAME: &str = "https-metrics";
/// The ports v0.48.1 gives the kubelet Service and Endpoints, in its order
/// (`pkg/prometheus/operator.go` syncNodeEndpoints; TWIN-FACTS §7).
pub const KUBELET_PORTS: [(&str, i32); 3] = [
    (KUBELET_PORT_NAME, 10250),
    ("http-metrics", 10255),
    ("cadvisor", 4194),
];
/// The labels v0.48.1 puts on the kubelet Service and Endpoints (operator.go syncNodeEndpoints).
pub const KUBELET_LABELS: [(&str, &str); 3] = [
    ("k8s-app", "kubelet"),
    ("app.kubernetes.io/name", "kubelet"),
    ("app.kubernetes.io/managed-by", "prometheus-operator"),
];

/// The Service the operator keeps for the kubelets: its `--kubelet-service=<ns>/<name>`
/// (prometheus-operator cmd/operator/main.go@v0.48.1 takes any namespace and name), else the
/// bundle's `kube-system/kubelet` (also when no operator was found, or the flag is malformed).
pub fn kubelet_service_of(operator_args: Option<&[String]>) -> (String, String) {
    operator_args
        .into_iter()
        .flatten()
        .find_map(|a| a.strip_prefix("--kubelet-service="))
        .and_then(|v| v.split_once('/'))
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
        .map(|(ns, name)| (ns.to_string(), name.to_string()))
        .unwrap_or_else(|| {
            (
                KUBELET_SERVICE_NAMESPACE.to_string(),
                KUBELET_SERVICE_NAME.to_string(),
            )
        })
}

/// The tag of an image reference (`quay.io/x/y:v0.48.1@sha256:…` → `v0.48.1`).
pub fn image_tag(image: &str) -> Option<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, t)| t.to_string())
}

/// A parsed bundle: every object as JSON, in file order.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// sha256 of the exact bytes parsed (hex).
    pub sha256: String,
    /// Size in bytes.
    pub len: usize,
    /// The objects, in file order.
    pub documents: Vec<Value>,
}

impl Bundle {
    /// Parses a bundle and records its sha256.
    ///
    /// # Errors
    /// A document does not parse or is not a named Kubernetes object.
    pub fn parse(bytes: &[u8]) -> Result<Bundle> {
        let text = std::str::from_utf8(bytes).context("the operator bundle is not UTF-8 text")?;
        let documents = manifests::parse_documents(text, "operator bundle")?;
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
        manifests::in_apply_order(&self.documents)
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
    ///
    /// # Errors
    /// The bundle has no Deployment with a `prometheus-operator` container.
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

/// Where the bundle comes from. Both are verified against the pinned sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    /// Downloaded once into the cache directory.
    Pinned {
        /// The pinned URL.
        url: String,
        /// The pinned sha256 (hex).
        sha256: String,
    },
    /// `--operator-bundle PATH`, for air-gapped machines.
    File {
        /// The file given.
        path: PathBuf,
        /// The pinned sha256 it must have.
        sha256: String,
    },
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
///
/// # Errors
/// The file cannot be read, is not the pinned bundle, or the download fails within
/// `download_deadline`; the message says how to provide the bundle by hand.
pub async fn load_bundle(
    src: &BundleSource,
    cache_dir: &Path,
    download_deadline: Duration,
) -> Result<Bundle> {
    match src {
        BundleSource::File { path, sha256 } => {
            let bytes = std::fs::read(path).with_context(|| {
                format!(
                    "cannot read the operator bundle {} (--operator-bundle)",
                    path.display()
                )
            })?;
            pins::verify(&bytes, sha256).map_err(|_| {
                let actual = sha256_hex(&bytes);
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
                if pins::verify(&bytes, sha256).is_ok() {
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
            let bytes = download(url, sha256, &cached, download_deadline).await?;
            Bundle::parse(&bytes).with_context(|| format!("in {}", cached.display()))
        }
    }
}

/// Where [`bundle_for_tests`] found the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleOrigin {
    /// `--operator-bundle PATH` or `E2E_OPERATOR_BUNDLE`.
    Given,
    /// The sha256-verified cache `cargo xtask e2e` fills.
    Cache,
    /// Downloaded now from the pinned URL (and cached).
    Downloaded,
}

/// None of the three ways to provide the bundle worked.
#[derive(Debug, thiserror::Error)]
#[error(
    "the prometheus-operator {version} bundle is needed by the tests and is not available: \
     {}\n\
     Provide it one of three ways:\n  \
     1. --operator-bundle PATH (or E2E_OPERATOR_BUNDLE=PATH): a copy of {url}\n  \
     2. the verified cache {cache}: `cargo xtask e2e` (or any `cargo xtask test` with network) fills it\n  \
     3. network access to {url} (downloaded once, then cached)",
    crate::errors::error_chain(.cause.as_ref())
)]
pub struct BundleUnavailable {
    /// The operator release, e.g. `v0.48.1`.
    pub version: String,
    /// The pinned bundle URL.
    pub url: String,
    /// The cache file it would be kept in.
    pub cache: String,
    /// Why none of the ways worked.
    pub cause: anyhow::Error,
}

/// The path of the cell's pinned operator bundle for `cargo xtask test`, verified by sha256:
/// `given` (`--operator-bundle` / `E2E_OPERATOR_BUNDLE`) when set, else the cache `cargo xtask e2e`
/// uses under `cache_dir`, else a download of the pinned URL into that cache.
///
/// # Errors
/// A `given` file that cannot be read or is not the pinned bundle is refused as such (no fallback:
/// the user asked for that file). Otherwise, when neither the cache nor the download yields the
/// pinned bundle, [`BundleUnavailable`] names the three ways to provide it.
pub async fn bundle_for_tests(
    cell: &Cell,
    given: Option<&Path>,
    cache_dir: &Path,
    download_deadline: Duration,
) -> Result<(PathBuf, BundleOrigin)> {
    if let Some(path) = given {
        load_bundle(
            &BundleSource::for_cell(cell, Some(path)),
            cache_dir,
            download_deadline,
        )
        .await?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        return Ok((path, BundleOrigin::Given));
    }
    let cached = BundleSource::cache_path(&cell.operator_bundle_sha256, cache_dir);
    let was_cached = std::fs::read(&cached)
        .is_ok_and(|bytes| pins::verify(&bytes, &cell.operator_bundle_sha256).is_ok());
    match load_bundle(
        &BundleSource::for_cell(cell, None),
        cache_dir,
        download_deadline,
    )
    .await
    {
        Ok(_) => Ok((
            cached,
            if was_cached {
                BundleOrigin::Cache
            } else {
                BundleOrigin::Downloaded
            },
        )),
        Err(cause) => Err(BundleUnavailable {
            version: cell.operator_version.clone(),
            url: cell.operator_bundle_url.clone(),
            cache: crate::workdir::display_path(&cached),
            cause,
        }
        .into()),
    }
}

/// Downloads the pinned bundle into the cache, verified before it is written.
async fn download(url: &str, sha256: &str, dest: &Path, deadline: Duration) -> Result<Vec<u8>> {
    let by_hand = || {
        format!(
            "download it by hand (`curl -fsSLo bundle.yaml {url}`) and pass --operator-bundle bundle.yaml"
        )
    };
    match pins::fetch_verified(url, sha256, dest, 0o644, deadline).await {
        Ok(bytes) => Ok(bytes),
        Err(pins::PinError::Mismatch { actual, expected }) => bail!(
            "the operator bundle downloaded from {url} has sha256 {actual}, expected {expected}; \
             nothing was kept in {}. The URL must serve the pinned release; check fixtures/matrix.toml",
            dest.parent().unwrap_or(dest).display()
        ),
        Err(err @ pins::PinError::Write { .. }) => Err(err.into()),
        Err(err) => bail!("cannot download the operator bundle: {err}; {}", by_hand()),
    }
}

/// How often a CRD's conditions are read: establishing takes well under a second on one
/// apiserver (TWIN-FACTS §3), so a short poll keeps the install phase quick.
const CRD_POLL: Duration = Duration::from_millis(250);

/// Server-side applies the bundle: CRDs, wait until each is `Established`, then everything else,
/// then wait until the operator Deployment is `Available`.
///
/// # Errors
/// An apply is rejected, a CRD is not Established, or the operator Deployment is not Available
/// by the deadline ([`WaitError`]).
pub async fn install(client: &Client, bundle: &Bundle, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let (crds, rest): (Vec<&Value>, Vec<&Value>) = bundle
        .apply_order()
        .into_iter()
        .partition(|d| d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"));
    let mut applier = Applier::new(client.clone(), timeout);
    applier.apply_all(&crds).await?;

    for name in bundle.crd_names() {
        wait_crd_established(client, &name, remaining(deadline)).await?;
    }

    applier.apply_all(&rest).await?;
    for (ns, name) in bundle.deployments() {
        wait_deployment_available(client, &ns, &name, remaining(deadline))
            .await
            .context("the operator did not start (its image is quay.io/prometheus-operator/prometheus-operator)")?;
    }
    Ok(())
}

/// Waits until CRD `name` is `Established` (its kinds served).
///
/// # Errors
/// At the deadline, naming the CRD; at once for a permanent API error.
pub async fn wait_crd_established(
    client: &Client,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let established = wait::poll_until(timeout, CRD_POLL, || async {
        let crd = crd_api
            .get_opt(name)
            .await
            .with_context(|| format!("cannot get CRD {name}"))?;
        let done = crd.as_ref().is_some_and(crd_established);
        Ok(if done { Ok(()) } else { Err(crd) })
    })
    .await;
    match established {
        Ok(()) => Ok(()),
        Err(Waited::Pending(crd)) => {
            let conditions: Vec<String> = crd
                .as_ref()
                .and_then(|c| c.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{}={} ({}) {}",
                        c.type_,
                        c.status,
                        c.reason.as_deref().unwrap_or_default(),
                        c.message.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            Err(WaitError::Timeout {
                what: format!("CustomResourceDefinition {name} not Established"),
                waited: timeout,
                state: if conditions.is_empty() {
                    "no conditions yet".into()
                } else {
                    format!("conditions: {}", conditions.join("; "))
                },
                fix: format!(
                    "a CRD whose names conflict with another's is never Established: check \
                     `kubectl get crd {name} -o yaml`, or raise --timeout"
                ),
            })
        }
        Err(Waited::Failed(e)) => Err(WaitError::api(
            format!("CRD {name} to be Established"),
            timeout,
            e,
        )),
    }
}

/// Waits until the operator has written Service `kube-system/kubelet` with port `https-metrics`
/// and Endpoints holding one address per Node.
///
/// # Errors
/// When the deadline passes, naming what is missing; at once for a permanent API error.
pub async fn wait_kubelet_service(client: &Client, timeout: Duration) -> Result<(), WaitError> {
    wait_kubelet_service_at(
        client,
        KUBELET_SERVICE_NAMESPACE,
        KUBELET_SERVICE_NAME,
        timeout,
    )
    .await
}

/// [`wait_kubelet_service`] for the Service an operator's `--kubelet-service=<ns>/<name>` names.
///
/// # Errors
/// As [`wait_kubelet_service`].
pub async fn wait_kubelet_service_at(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let at = format!("{ns}/{name}");
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let nodes: Api<Node> = Api::all(client.clone());
    let waited = wait::poll_until(timeout, Duration::from_secs(2), || async {
        let svc = services
            .get_opt(name)
            .await
            .with_context(|| format!("cannot get Service {at}"))?;
        let eps = endpoints
            .get_opt(name)
            .await
            .with_context(|| format!("cannot get Endpoints {at}"))?;
        let node_names: Vec<String> = nodes
            .list(&ListParams::default())
            .await
            .context("cannot list nodes")?
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        let gaps = kubelet_service_gaps(&at, svc.as_ref(), eps.as_ref(), &node_names);
        Ok(if gaps.is_empty() { Ok(()) } else { Err(gaps) })
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Pending(gaps)) => Err(WaitError::Timeout {
            what: "the kubelet Service is not complete".into(),
            waited: timeout,
            state: gaps.join("; "),
            fix: format!(
                "prometheus-operator (--kubelet-service={at}) writes it at start-up and then every \
                 3 minutes; it does not watch nodes, so a node added later can take up to 3 minutes \
                 to appear. Raise --timeout above 3m, or check the operator's log"
            ),
        }),
        Err(Waited::Failed(e)) => Err(WaitError::api(
            format!("the operator's kubelet Service {at}"),
            timeout,
            e,
        )),
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
    at: &str,
    svc: Option<&Service>,
    eps: Option<&Endpoints>,
    nodes: &[String],
) -> Vec<String> {
    let mut gaps = Vec::new();
    let Some(svc) = svc else {
        return vec![format!("Service {at} does not exist yet")];
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
            "Service {at} has no port named {KUBELET_PORT_NAME}"
        ));
    }
    let Some(eps) = eps else {
        gaps.push(format!("Endpoints {at} does not exist yet"));
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
            "Endpoints {at} has no {KUBELET_PORT_NAME} address for node(s) {}",
            missing.join(", ")
        ));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DL: Duration = Duration::from_secs(10);

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
            DL,
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
            DL,
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
        let first = load_bundle(&src, cache.path(), DL).await.unwrap();
        let second = load_bundle(&src, cache.path(), DL).await.unwrap();
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
        let err = load_bundle(&src, cache.path(), DL).await.unwrap_err();
        let msg = format!("{err:#}");
        let actual =
            sha256_hex(b"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: tampered\n");
        assert!(
            msg.contains(&pinned) && msg.contains(&actual) && msg.contains(&url),
            "{msg}"
        );
        assert!(msg.contains("nothing was kept"), "{msg}");
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
        let err = load_bundle(&src, dir.path(), DL).await.unwrap_err();
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
        assert_eq!(load_bundle(&src, dir.path(), DL).await.unwrap().sha256, sha);
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

    #[test]
    fn kubelet_service_is_complete_with_one_address_per_node() {
        let nodes = ["cp".to_string(), "w1".to_string()];
        assert!(kubelet_service_gaps(
            "kube-system/kubelet",
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
            kubelet_service_gaps("kube-system/kubelet", None, None, &nodes),
            ["Service kube-system/kubelet does not exist yet"]
        );
        let gaps = kubelet_service_gaps(
            "kube-system/kubelet",
            Some(&svc("http-metrics")),
            Some(&eps(&["cp"])),
            &nodes,
        );
        assert_eq!(
            gaps,
            [
                "Service kube-system/kubelet has no port named https-metrics",
                "Endpoints kube-system/kubelet has no https-metrics address for node(s) w1, w2"
            ]
        );
        let gaps = kubelet_service_gaps(
            "kube-system/kubelet",
            Some(&svc("https-metrics")),
            None,
            &nodes,
        );
        assert_eq!(gaps, ["Endpoints kube-system/kubelet does not exist yet"]);
    }

    /// The default cell, pinned to `bytes` and an unreachable URL.
    fn offline_cell(bytes: &[u8]) -> Cell {
        let mut cell = crate::matrix::Matrix::load_default()
            .unwrap()
            .default_cell()
            .clone();
        cell.operator_bundle_sha256 = sha256_hex(bytes);
        // Port 1 on loopback: connection refused at once, like a machine without network.
        cell.operator_bundle_url = "http://127.0.0.1:1/bundle.yaml".into();
        cell
    }

    #[tokio::test]
    async fn tests_get_the_given_bundle_then_the_cache_else_an_error_naming_three_ways() {
        let cell = offline_cell(MINI_BUNDLE.as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");

        // Nothing given, nothing cached, no network: the three ways, and nothing left behind.
        let err = bundle_for_tests(&cell, None, &cache, DL).await.unwrap_err();
        let text = format!("{err:#}");
        for needle in [
            "--operator-bundle PATH",
            "E2E_OPERATOR_BUNDLE",
            "cargo xtask e2e",
            "http://127.0.0.1:1/bundle.yaml",
            "prometheus-operator-bundle-",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from: {text}");
        }
        assert!(err.downcast_ref::<BundleUnavailable>().is_some());
        assert!(!BundleSource::cache_path(&cell.operator_bundle_sha256, &cache).exists());

        // A given file is verified and used as it is.
        let given = dir.path().join("bundle.yaml");
        std::fs::write(&given, MINI_BUNDLE).unwrap();
        let (path, origin) = bundle_for_tests(&cell, Some(&given), &cache, DL)
            .await
            .unwrap();
        assert_eq!((path, origin), (given.clone(), BundleOrigin::Given));

        // A given file that is not the pinned one is refused, with no fallback to the cache.
        std::fs::write(&given, format!("{MINI_BUNDLE}\n# edited\n")).unwrap();
        let err = bundle_for_tests(&cell, Some(&given), &cache, DL)
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("not the pinned bundle.yaml"),
            "{err:#}"
        );

        // The verified cache `cargo xtask e2e` fills is used without network.
        let cached = BundleSource::cache_path(&cell.operator_bundle_sha256, &cache);
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(&cached, MINI_BUNDLE).unwrap();
        let (path, origin) = bundle_for_tests(&cell, None, &cache, DL).await.unwrap();
        assert_eq!((path, origin), (cached.clone(), BundleOrigin::Cache));

        // A corrupt cache entry is deleted, then the download is tried (and fails here).
        std::fs::write(&cached, "truncated").unwrap();
        assert!(bundle_for_tests(&cell, None, &cache, DL).await.is_err());
        assert!(!cached.exists());
    }
}
