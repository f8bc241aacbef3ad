//! The operator bundle `cargo xtask test` hands the tests (`E2E_OPERATOR_BUNDLE`): the one
//! given, else the verified cache `cargo xtask e2e` fills, else a download of the pin. It lives
//! here, at the edge that runs the tests, not in the library.

use anyhow::Result;
use e2e::matrix::Cell;
use e2e::operator::{load_bundle, BundleSource};
use e2e::pins;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// None of the three ways to provide the bundle worked. Its cause is part of its message (and
/// not returned again by `source()`), so `{:#}` says it once.
#[derive(Debug)]
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

impl std::fmt::Display for BundleUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let BundleUnavailable {
            version,
            url,
            cache,
            cause,
        } = self;
        write!(
            f,
            "the prometheus-operator {version} bundle is needed by the tests and is not available: \
             {}\n\
             Provide it one of three ways:\n  \
             1. --operator-bundle PATH (or E2E_OPERATOR_BUNDLE=PATH): a copy of {url}\n  \
             2. the verified cache {cache}: `cargo xtask e2e` (or any `cargo xtask test` with network) fills it\n  \
             3. network access to {url} (downloaded once, then cached)",
            e2e::errors::error_chain(cause.as_ref())
        )
    }
}

impl std::error::Error for BundleUnavailable {}

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
            cache: e2e::workdir::display_path(&cached),
            cause,
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use e2e::pins::sha256_hex;

    const DL: Duration = Duration::from_secs(10);

    /// The smallest bundle `Bundle::parse` accepts.
    const MINI_BUNDLE: &str =
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: prometheus-operator\n";

    /// The default cell, pinned to `bytes` and an unreachable URL.
    fn offline_cell(bytes: &[u8]) -> Cell {
        let mut cell = e2e::matrix::Matrix::load_default()
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
