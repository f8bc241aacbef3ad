//! The pinned kind binary: found on PATH or in the tools directory, or downloaded and verified
//! against its sha256 ([`crate::pins`]).

use crate::pins;
use crate::workdir::display_path;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use xshell::{cmd, Shell};

/// The kind release platform of this machine (`linux-amd64`, `darwin-amd64`, `darwin-arm64`, …).
pub fn platform() -> String {
    let os = std::env::consts::OS;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{os}-{arch}")
}

/// The pinned kind binary for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPin {
    /// kind release, e.g. `v0.11.1`.
    pub version: String,
    /// Release platform, e.g. `linux-amd64`.
    pub platform: String,
    /// Where it is downloaded from (`$E2E_KIND_URL` replaces the pinned URL, e.g. for a mirror;
    /// the sha256 stays pinned).
    pub url: String,
    /// The pinned sha256 of that release's binary (hex).
    pub sha256: String,
}

impl KindPin {
    /// The cell's pin for `platform`; `$E2E_KIND_URL` replaces the URL.
    ///
    /// # Errors
    /// The cell pins no binary for `platform` (the message says to put kind on PATH).
    pub fn new(cell: &crate::matrix::Cell, platform: &str) -> Result<KindPin> {
        let sha256 = cell.kind_sha256.get(platform).with_context(|| {
            format!(
                "matrix cell `{}` pins kind {} only for {}; this machine is {platform}: put kind {} on PATH yourself",
                cell.name,
                cell.kind_version,
                cell.kind_sha256.keys().cloned().collect::<Vec<_>>().join(", "),
                cell.kind_version
            )
        })?;
        let url = match std::env::var("E2E_KIND_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => cell.kind_url(platform),
        };
        Ok(KindPin {
            version: cell.kind_version.clone(),
            platform: platform.to_string(),
            url,
            sha256: sha256.clone(),
        })
    }

    /// `<work_dir>/tools/kind-<version>`: where a downloaded (or hand-installed) binary lives.
    pub fn tools_path(&self, work_dir: &Path) -> PathBuf {
        work_dir
            .join("tools")
            .join(format!("kind-{}", self.version))
    }

    /// The commands to install it by hand (for machines without network access).
    pub fn manual_install(&self, dest: &Path) -> String {
        let dest = display_path(dest);
        format!(
            "install kind {v} by hand: download {url} on a machine with network access, then\n  \
             mkdir -p {dir} && cp kind-{p} {dest} && chmod +x {dest}\n  \
             echo '{sha}  {dest}' | sha256sum -c   # expected sha256 {sha}\n\
             or put a `kind` that reports {v} (`kind version`) first on PATH",
            v = self.version,
            url = self.url,
            p = self.platform,
            sha = self.sha256,
            dir = Path::new(&dest)
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        )
    }
}

/// Where the kind binary came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindOrigin {
    /// A `kind` on PATH that reports the pinned version.
    Path,
    /// `<work_dir>/tools/kind-<version>`, verified by sha256.
    Tools,
    /// Downloaded now from the pinned URL, verified, then kept in the tools directory.
    Downloaded,
}

/// A kind binary of the pinned version, ready to run.
#[derive(Debug, Clone)]
pub struct KindBinary {
    /// The executable.
    pub path: PathBuf,
    /// Where it came from (printed by preflight).
    pub origin: KindOrigin,
}

/// True when `kind version` output (`kind v0.11.1 go1.16.4 linux/amd64`) is `version`.
pub fn version_matches(output: &str, version: &str) -> bool {
    output.split_whitespace().nth(1) == Some(version)
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// The `kind` on PATH when `kind version` reports `version`; otherwise why not (for messages).
///
/// # Errors
/// Why the `kind` on PATH does not do (absent, another version, does not run), for messages.
pub fn kind_on_path(version: &str) -> std::result::Result<PathBuf, String> {
    let path = which::which("kind").map_err(|_| "no `kind` on PATH".to_string())?;
    let sh = Shell::new().map_err(|e| e.to_string())?;
    match cmd!(sh, "{path} version").quiet().ignore_stderr().read() {
        Ok(out) if version_matches(&out, version) => Ok(path),
        Ok(out) => Err(format!(
            "`kind` on PATH ({}) reports `{}`, not {version}",
            path.display(),
            out.trim()
        )),
        Err(err) => Err(format!(
            "`kind` on PATH ({}) did not run: {err}",
            path.display()
        )),
    }
}

/// Finds kind `pin.version`: on PATH (if `kind version` agrees), else in the tools dir (verified
/// against the pinned sha256), else downloads it from `pin.url` and verifies it before keeping it.
/// A mismatch is refused and the bad file deleted.
///
/// # Errors
/// No kind of that version on PATH or in the tools directory, and the download fails within
/// `download_deadline` or is not the pinned binary; the message gives the commands to install it
/// by hand.
pub async fn ensure_kind(
    pin: &KindPin,
    work_dir: &Path,
    download_deadline: Duration,
) -> Result<KindBinary> {
    let mut notes = Vec::new();
    match kind_on_path(&pin.version) {
        Ok(path) => {
            return Ok(KindBinary {
                path,
                origin: KindOrigin::Path,
            })
        }
        Err(note) => notes.push(note),
    }
    let dest = pin.tools_path(work_dir);
    if dest.exists() {
        let bytes =
            std::fs::read(&dest).with_context(|| format!("reading {}", display_path(&dest)))?;
        if let Err(pins::PinError::Mismatch { actual, .. }) = pins::verify(&bytes, &pin.sha256) {
            let _ = std::fs::remove_file(&dest);
            bail!(
                "{} is not kind {} for {}: sha256 {actual}, expected {} (pinned in fixtures/matrix.toml); \
                 the file was deleted. Run again to download it, or {}",
                display_path(&dest),
                pin.version,
                pin.platform,
                pin.sha256,
                pin.manual_install(&dest)
            );
        }
        make_executable(&dest)?;
        return Ok(KindBinary {
            path: dest,
            origin: KindOrigin::Tools,
        });
    }
    match pins::fetch_verified(&pin.url, &pin.sha256, &dest, 0o755, download_deadline).await {
        Ok(_) => Ok(KindBinary {
            path: dest,
            origin: KindOrigin::Downloaded,
        }),
        // Verified in memory: a mismatching download is never written, so nothing is left to delete.
        Err(pins::PinError::Mismatch { actual, expected }) => bail!(
            "refusing the kind binary downloaded from {}: sha256 {actual}, expected {expected} (kind {} {}, pinned \
             in fixtures/matrix.toml); nothing was kept. Check for a proxy rewriting downloads, or {}",
            pin.url,
            pin.version,
            pin.platform,
            pin.manual_install(&dest)
        ),
        Err(err @ pins::PinError::Write { .. }) => Err(err.into()),
        Err(err) => {
            notes.push(format!("no {}", display_path(&dest)));
            bail!(
                "kind {} is not available ({}) and downloading {} failed: {}\n{}",
                pin.version,
                notes.join("; "),
                pin.url,
                crate::errors::error_chain(&err),
                pin.manual_install(&dest)
            );
        }
    }
}

fn make_executable(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod +x {}", display_path(path)))?;
    }
    Ok(())
}

/// Any kind binary (for `down` and `ls`, where the version does not matter): PATH first, then
/// the newest in the tools dir.
pub fn find_any_kind(work_dir: &Path) -> Option<PathBuf> {
    which::which("kind").ok().or_else(|| {
        let mut found: Vec<PathBuf> = std::fs::read_dir(work_dir.join("tools"))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("kind-") && !n.ends_with(".part"))
                    && is_executable(p)
            })
            .collect();
        found.sort();
        found.pop()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_version_output() {
        assert!(version_matches(
            "kind v0.11.1 go1.16.4 linux/amd64\n",
            "v0.11.1"
        ));
        assert!(!version_matches(
            "kind v0.20.0 go1.20.4 linux/amd64",
            "v0.11.1"
        ));
        assert!(!version_matches("", "v0.11.1"));
    }
}
