//! Artifacts pinned by sha256: one download → verify → store for the kind binary and the
//! operator bundle, and the digest used for manifests.
//!
//! A download is verified in memory before anything is written, so a mismatching file never
//! lands where a later run could take it for a cached copy.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a pinned artifact could not be fetched or stored. Callers add what it was and how to get
/// it by hand.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The request failed (no network, DNS, refused, the deadline passed mid-transfer).
    #[error("cannot download {url}: {reason}")]
    Download {
        /// The URL asked for.
        url: String,
        /// The transport error, with its causes.
        reason: String,
    },
    /// The server answered, but not with the file.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL asked for.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The bytes are not the pinned ones.
    #[error("sha256 {actual}, expected {expected}")]
    Mismatch {
        /// The digest of what was received.
        actual: String,
        /// The pinned digest.
        expected: String,
    },
    /// Writing the verified file failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks `bytes` against the `expected` hex digest (case-insensitive).
///
/// # Errors
/// [`PinError::Mismatch`] with both digests.
pub fn verify(bytes: &[u8], expected: &str) -> Result<(), PinError> {
    let actual = sha256_hex(bytes);
    if actual.eq_ignore_ascii_case(expected.trim()) {
        Ok(())
    } else {
        Err(PinError::Mismatch {
            actual,
            expected: expected.trim().to_string(),
        })
    }
}

/// Downloads `url`, verifies it against `sha256` and only then writes it to `dest` (through a
/// `.part` file, so an interrupted write never looks complete), with `mode` on Unix.
///
/// # Errors
/// [`PinError`]: the download failed or timed out after `deadline`, the digest differs (nothing
/// is written), or `dest` cannot be written.
pub async fn fetch_verified(
    url: &str,
    sha256: &str,
    dest: &Path,
    mode: u32,
    deadline: Duration,
) -> Result<Vec<u8>, PinError> {
    let bytes = download(url, deadline).await?;
    verify(&bytes, sha256)?;
    write_atomically(dest, &bytes, mode)?;
    Ok(bytes)
}

async fn download(url: &str, deadline: Duration) -> Result<Vec<u8>, PinError> {
    let failed = |e: reqwest::Error| PinError::Download {
        url: url.to_string(),
        reason: crate::errors::error_chain(&e),
    };
    let http = reqwest::Client::builder()
        .connect_timeout(deadline.min(Duration::from_secs(15)))
        .timeout(deadline)
        .build()
        .map_err(failed)?;
    let resp = http.get(url).send().await.map_err(failed)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(PinError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    Ok(resp.bytes().await.map_err(failed)?.to_vec())
}

fn write_atomically(dest: &Path, bytes: &[u8], mode: u32) -> Result<(), PinError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PinError::Write { path, source }
    };
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut part = dest.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    std::fs::write(&part, bytes).map_err(io(&part))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&part, std::fs::Permissions::from_mode(mode))
            .map_err(io(&part))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    std::fs::rename(&part, dest).map_err(io(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_names_both_digests_and_ignores_case() {
        let good = sha256_hex(b"kind");
        assert!(verify(b"kind", &good.to_uppercase()).is_ok());
        match verify(b"not kind", &good) {
            Err(PinError::Mismatch { actual, expected }) => {
                assert_eq!(actual, sha256_hex(b"not kind"));
                assert_eq!(expected, good);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_mismatching_download_is_never_written() {
        let app = axum::Router::new().route("/kind", axum::routing::get(|| async { "tampered" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/kind", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("tools/kind-v0.11.1");
        let err = fetch_verified(
            &url,
            &sha256_hex(b"kind"),
            &dest,
            0o755,
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, PinError::Mismatch { .. }), "{err}");
        assert!(!dest.exists() && !dest.with_extension("1.part").exists());
        let ok = fetch_verified(
            &url,
            &sha256_hex(b"tampered"),
            &dest,
            0o755,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), ok);
    }

    #[tokio::test]
    async fn an_http_error_is_the_status_and_a_dead_host_the_url() {
        let app = axum::Router::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dest = tempfile::tempdir().unwrap().path().join("x");
        let err = fetch_verified(
            &format!("http://{addr}/missing"),
            "00",
            &dest,
            0o644,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, PinError::Status { status: 404, .. }), "{err}");
        let err = fetch_verified(
            "http://127.0.0.1:1/x",
            "00",
            &dest,
            0o644,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, PinError::Download { ref url, .. } if url == "http://127.0.0.1:1/x"),
            "{err}"
        );
    }
}
