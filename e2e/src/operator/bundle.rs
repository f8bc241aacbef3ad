//! The pinned `bundle.yaml`: fetched once (or given), cached by its digest, verified against
//! the pin, and parsed into objects in the order they are applied.

use crate::k8s::manifests::{self, ObjectIdent};
use crate::matrix::Cell;
use crate::pins::{self, sha256_hex};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
