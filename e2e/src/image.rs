//! A local Prometheus image for machines that cannot pull from a registry.
//!
//! Packs a `prometheus` binary, the shared libraries it links (from `ldd`), the dynamic loader and
//! `/etc/ssl/certs` into a tarball and `docker import`s it as `localhost/e2e-prometheus:<version>`.
//! The component tier runs it through `E2E_PROMETHEUS_IMAGE`.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use xshell::{cmd, Shell};

/// Repository of the images this module builds.
pub const IMAGE_REPO: &str = "localhost/e2e-prometheus";
/// Image label holding the sha256 of the packed binary, so an up-to-date image is not rebuilt.
pub const BINARY_SHA_LABEL: &str = "io.pod-metrics-e2e.prometheus-sha256";
/// Where the binary lives inside the image (the image's entrypoint).
pub const ENTRYPOINT: &str = "/usr/bin/prometheus";

/// What `build_prometheus_image` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// `localhost/e2e-prometheus:<tag>`.
    pub image: String,
    /// The version `prometheus --version` printed.
    pub version: String,
    /// Files packed (absolute host paths).
    pub files: Vec<PathBuf>,
    /// False when an image built from the same binary already existed.
    pub rebuilt: bool,
}

/// Parses the first line of `prometheus --version`, e.g.
/// `prometheus, version 2.42.0+ds (branch: debian/sid, revision: …)` → `2.42.0+ds`.
///
/// # Errors
/// The output has no version (`prometheus, version X.Y.Z`).
pub fn parse_version(output: &str) -> Result<String> {
    let first = output.lines().next().unwrap_or_default();
    let version = first
        .split_once("version ")
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or_default())
        .unwrap_or_default();
    if version.is_empty() {
        bail!("cannot find a version in `prometheus --version` output {first:?}; expected `prometheus, version X.Y.Z (…)`");
    }
    Ok(version.to_string())
}

/// A Docker tag for a version: `v` prefix, characters a tag may not hold (such as `+`) become `-`.
pub fn tag_for_version(version: &str) -> String {
    let clean: String = version
        .trim_start_matches('v')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("v{clean}")
}

/// Extracts the absolute library paths from `ldd` output. The vDSO has no file and is skipped;
/// a `not found` library is an error because the image would not start.
///
/// # Errors
/// A library `ldd` lists is "not found".
pub fn parse_ldd(output: &str) -> Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("not a dynamic executable") || line.contains("statically linked") {
            continue;
        }
        if line.contains("=> not found") {
            bail!("the prometheus binary needs a library that is not installed: {line}");
        }
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`.
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.trim(),
            None => line,
        };
        let path = path.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    libs.sort();
    libs.dedup();
    Ok(libs)
}

/// The `tar` arguments packing `files` relative to `/` and renaming `binary` to the entrypoint.
pub fn tar_args(archive: &Path, binary: &Path, files: &[PathBuf]) -> Vec<String> {
    let rel = |p: &Path| p.to_string_lossy().trim_start_matches('/').to_string();
    let escaped: String = rel(binary)
        .chars()
        .flat_map(|c| {
            let special = ".[]*^$\\,".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect();
    let mut args = vec![
        "-C".to_string(),
        "/".to_string(),
        // Follow symlinks: the image has no other copy of what a link points to.
        "-chf".to_string(),
        archive.to_string_lossy().into_owned(),
        // The entrypoint is fixed, wherever the binary came from; `S` keeps symlink targets as is.
        format!(
            "--transform=flags=rS;s,^{escaped}$,{},",
            ENTRYPOINT.trim_start_matches('/')
        ),
    ];
    args.extend(files.iter().map(|f| rel(f)));
    args
}

/// How long `docker info` may take before the engine counts as not answering: it answers in
/// well under a second when it runs.
pub const DOCKER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Finds `prometheus` on PATH (or uses `binary`), and imports the image unless one built from
/// the same binary exists. `tag` overrides the version-derived tag.
///
/// # Errors
/// No `prometheus` binary, Docker not answering within [`DOCKER_DEADLINE`], `ldd`/`tar` or
/// `docker import` failing; each message names the fix.
pub fn build_prometheus_image(binary: Option<&Path>, tag: Option<&str>) -> Result<BuiltImage> {
    let sh = Shell::new()?;
    let binary = match binary {
        Some(b) => {
            if !b.is_file() {
                bail!("--binary {}: no such file; pass the path of a prometheus executable", b.display());
            }
            b.canonicalize().with_context(|| format!("resolving --binary {}", b.display()))?
        }
        None => find_on_path("prometheus").context(
            "no `prometheus` on PATH: install it (`sudo apt-get install --no-install-recommends prometheus` on Debian/Ubuntu) \
             or pass --binary PATH",
        )?,
    };
    // kingpin prints the version on stdout in recent releases and on stderr in old ones.
    let out = cmd!(sh, "{binary} --version")
        .quiet()
        .output()
        .with_context(|| format!("running `{} --version`", binary.display()))?;
    let version = parse_version(&format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))?;
    let image = format!(
        "{IMAGE_REPO}:{}",
        tag.map(str::to_string)
            .unwrap_or_else(|| tag_for_version(&version))
    );

    crate::docker::check_engine_blocking(DOCKER_DEADLINE)?;

    let sha = sha256_file(&binary)?;
    let label_format = format!("{{{{index .Config.Labels \"{BINARY_SHA_LABEL}\"}}}}");
    let existing = cmd!(sh, "docker image inspect --format {label_format} {image}")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();

    let ldd_out = cmd!(sh, "ldd {binary}").quiet().ignore_status().read()?;
    let mut files = vec![binary.clone()];
    files.extend(parse_ldd(&ldd_out)?);
    // Go's TLS reads the system roots; the component tier does not need them, a real setup may.
    if Path::new("/etc/ssl/certs").is_dir() {
        files.push(PathBuf::from("/etc/ssl/certs"));
    }
    if existing.trim() == sha {
        return Ok(BuiltImage {
            image,
            version,
            files,
            rebuilt: false,
        });
    }

    let tmp =
        tempfile::tempdir().context("creating a temporary directory for the image tarball")?;
    let archive = tmp.path().join("rootfs.tar");
    let args = tar_args(&archive, &binary, &files);
    cmd!(sh, "tar {args...}")
        .quiet()
        .run()
        .context("packing the prometheus binary and its libraries with tar")?;
    let entrypoint = format!("ENTRYPOINT [\"{ENTRYPOINT}\"]");
    let label = format!("LABEL {BINARY_SHA_LABEL}={sha}");
    cmd!(
        sh,
        "docker import -c {entrypoint} -c {label} {archive} {image}"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .with_context(|| format!("docker import of {} as {image}", archive.display()))?;
    Ok(BuiltImage {
        image,
        version,
        files,
        rebuilt: true,
    })
}

fn find_on_path(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("`{name}` not found in any PATH directory"))
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_debian_and_upstream_builds() {
        let debian = "prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5+deb12u1)\n  build user: x\n";
        assert_eq!(parse_version(debian).unwrap(), "2.42.0+ds");
        assert_eq!(
            parse_version("prometheus, version 2.26.0 (branch: HEAD, revision: 3cafc58)").unwrap(),
            "2.26.0"
        );
        let err = parse_version("usage: prometheus [<flags>]").unwrap_err();
        assert!(err.to_string().contains("usage: prometheus"), "{err}");
    }

    #[test]
    fn a_missing_binary_names_the_flag_before_touching_docker() {
        let err =
            build_prometheus_image(Some(Path::new("/nonexistent/prometheus")), None).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("--binary /nonexistent/prometheus"), "{msg}");
    }

    #[test]
    fn tags_are_docker_safe() {
        assert_eq!(tag_for_version("2.42.0+ds"), "v2.42.0-ds");
        assert_eq!(tag_for_version("v2.26.0"), "v2.26.0");
    }

    #[test]
    fn ldd_output_yields_library_files_only() {
        let out = "\tlinux-vdso.so.1 (0x00007fc9d2d61000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fc9d2b6e000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007fc9d2d63000)\n";
        assert_eq!(
            parse_ldd(out).unwrap(),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n")
            .unwrap()
            .is_empty());
        let err = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(err.to_string().contains("libfoo.so.1"), "{err}");
    }

    #[test]
    fn tar_renames_the_binary_to_the_entrypoint() {
        let files = vec![
            PathBuf::from("/opt/p.1/prometheus"),
            PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
        ];
        let args = tar_args(Path::new("/tmp/x/rootfs.tar"), &files[0], &files);
        assert_eq!(&args[..4], ["-C", "/", "-chf", "/tmp/x/rootfs.tar"]);
        assert_eq!(
            args[4],
            r"--transform=flags=rS;s,^opt/p\.1/prometheus$,usr/bin/prometheus,"
        );
        assert_eq!(
            &args[5..],
            ["opt/p.1/prometheus", "lib64/ld-linux-x86-64.so.2"]
        );
    }
}
