//! kind: find (or fetch and verify) the pinned binary, and create, delete and inspect the clusters
//! this harness owns.
//!
//! Every cluster the harness creates is named `pme2e-…` ([`NAME_PREFIX`]) so `cargo xtask down`
//! and `cargo xtask ls` can never touch someone else's cluster. kind always gets an explicit
//! `--kubeconfig` (and `KUBECONFIG`) so `~/.kube/config` is never read or written.

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use xshell::{cmd, Shell};

/// Prefix of every cluster name this harness creates (and the only ones it deletes).
pub const NAME_PREFIX: &str = "pme2e-";

/// How long `kind create cluster` waits for the control plane (kind's own `--wait` only covers
/// control-plane nodes; [`crate::install::wait_nodes_ready`] waits for the workers).
pub const CREATE_WAIT: &str = "120s";

/// Root of everything the cluster tier writes: `target/e2e`, or `$E2E_WORK_DIR` (tests use a temp
/// dir so they never collide with real runs).
pub fn work_dir() -> PathBuf {
    match std::env::var_os("E2E_WORK_DIR") {
        // Absolute, because the assert phase runs nextest from the workspace root.
        Some(dir) if !dir.is_empty() => {
            std::path::absolute(&dir).unwrap_or_else(|_| PathBuf::from(dir))
        }
        _ => crate::workspace_root().join("target").join("e2e"),
    }
}

/// A path for messages and plans: relative to the workspace root when inside it, so output is
/// the same on every machine.
pub fn display_path(path: &Path) -> String {
    let root = crate::workspace_root();
    match path.strip_prefix(&root) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// The kind release platform of this machine (`linux-amd64`, `darwin-amd64`, `darwin-arm64`, …);
/// `$E2E_KIND_PLATFORM` overrides it (keeps `--dry-run` output identical across machines in tests).
pub fn platform() -> String {
    if let Ok(p) = std::env::var("E2E_KIND_PLATFORM") {
        if !p.is_empty() {
            return p;
        }
    }
    let os = std::env::consts::OS;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{os}-{arch}")
}

/// Node containers are named `<cluster>-control-plane` and used as hostnames (at most 63 chars).
const MAX_NAME_LEN: usize = 63 - "-control-plane".len();

/// Checks a cluster name: our prefix, and what kind (a Docker container name prefix) accepts.
pub fn validate_cluster_name(name: &str) -> Result<()> {
    ensure!(
        name.starts_with(NAME_PREFIX),
        "cluster name `{name}` does not start with `{NAME_PREFIX}`: this harness only creates and \
         deletes clusters named `{NAME_PREFIX}…`; use e.g. `--name {NAME_PREFIX}{}`",
        sanitize(name)
    );
    ensure!(
        name.len() > NAME_PREFIX.len() && name.len() <= MAX_NAME_LEN,
        "cluster name `{name}` must have 1 to {} characters after `{NAME_PREFIX}`",
        MAX_NAME_LEN - NAME_PREFIX.len()
    );
    ensure!(
        name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.ends_with('-'),
        "cluster name `{name}` may only contain a-z, 0-9 and `-` (not at the end); try `{NAME_PREFIX}{}`",
        sanitize(name)
    );
    Ok(())
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').trim_start_matches("pme2e-").to_string()
}

/// Where one run keeps its files: `<work_dir>/<name>/{kubeconfig,artifacts/,summary.md}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPaths {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub artifacts: PathBuf,
    pub summary: PathBuf,
}

impl RunPaths {
    pub fn new(work_dir: &Path, name: &str) -> Self {
        let dir = work_dir.join(name);
        RunPaths {
            kubeconfig: dir.join("kubeconfig"),
            artifacts: dir.join("artifacts"),
            summary: dir.join("summary.md"),
            dir,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kind config (kind.x-k8s.io/v1alpha4): checked before anything is created, so a typo is an error
// here rather than a half-created cluster.

/// What a valid kind config describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindConfigSummary {
    pub control_planes: usize,
    pub workers: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // fields exist to be recognised, not read
struct KindCluster {
    kind: String,
    api_version: String,
    name: Option<String>,
    #[serde(default)]
    nodes: Vec<KindNode>,
    networking: Option<serde_yaml::Value>,
    feature_gates: Option<BTreeMap<String, bool>>,
    runtime_config: Option<BTreeMap<String, String>>,
    kubeadm_config_patches: Option<Vec<String>>,
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    kubeadm_config_patches_json6902: Option<Vec<serde_yaml::Value>>,
    containerd_config_patches: Option<Vec<String>>,
    #[serde(rename = "containerdConfigPatchesJSON6902")]
    containerd_config_patches_json6902: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct KindNode {
    role: String,
    image: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    extra_mounts: Option<Vec<serde_yaml::Value>>,
    extra_port_mappings: Option<Vec<serde_yaml::Value>>,
    kubeadm_config_patches: Option<Vec<String>>,
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    kubeadm_config_patches_json6902: Option<Vec<serde_yaml::Value>>,
}

/// Parses a kind config and checks it is a `kind.x-k8s.io/v1alpha4` Cluster with only known
/// fields, at least one control-plane node, and no per-node image (the cell pins the image).
pub fn check_kind_config(text: &str, origin: &str) -> Result<KindConfigSummary> {
    let cfg: KindCluster = serde_yaml::from_str(text).with_context(|| {
        format!(
            "{origin}: not a valid kind config (kind: Cluster, apiVersion: kind.x-k8s.io/v1alpha4, \
             fields name/nodes/networking/featureGates/runtimeConfig/kubeadmConfigPatches/\
             containerdConfigPatches)"
        )
    })?;
    ensure!(
        cfg.kind == "Cluster",
        "{origin}: `kind: {}` should be `kind: Cluster`",
        cfg.kind
    );
    ensure!(
        cfg.api_version == "kind.x-k8s.io/v1alpha4",
        "{origin}: `apiVersion: {}` should be `apiVersion: kind.x-k8s.io/v1alpha4`",
        cfg.api_version
    );
    let mut summary = KindConfigSummary {
        control_planes: 0,
        workers: 0,
    };
    for (i, node) in cfg.nodes.iter().enumerate() {
        match node.role.as_str() {
            "control-plane" => summary.control_planes += 1,
            "worker" => summary.workers += 1,
            other => {
                bail!("{origin}: nodes[{i}].role `{other}` should be `control-plane` or `worker`")
            }
        }
        ensure!(
            node.image.is_none(),
            "{origin}: nodes[{i}].image would override the matrix cell's pinned node image; remove it"
        );
    }
    if cfg.nodes.is_empty() {
        // kind's default: a single control-plane node.
        summary.control_planes = 1;
    }
    ensure!(
        summary.control_planes > 0,
        "{origin}: needs at least one node with `role: control-plane`"
    );
    Ok(summary)
}

/// Reads and checks the kind config at `path`.
pub fn read_kind_config(path: &Path) -> Result<KindConfigSummary> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read kind config {}: pass a readable file with --kind-config",
            display_path(path)
        )
    })?;
    check_kind_config(&text, &display_path(path))
}

// ---------------------------------------------------------------------------------------------
// The kind binary.

/// The pinned kind binary for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPin {
    pub version: String,
    pub platform: String,
    /// Where it is downloaded from (`$E2E_KIND_URL` replaces the pinned URL, e.g. for a mirror;
    /// the sha256 stays pinned).
    pub url: String,
    pub sha256: String,
}

impl KindPin {
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
    Path,
    Tools,
    Downloaded,
}

/// A kind binary of the pinned version, ready to run.
#[derive(Debug, Clone)]
pub struct KindBinary {
    pub path: PathBuf,
    pub origin: KindOrigin,
}

/// True when `kind version` output (`kind v0.11.1 go1.16.4 linux/amd64`) is `version`.
pub fn version_matches(output: &str, version: &str) -> bool {
    output.split_whitespace().nth(1) == Some(version)
}

/// The first executable file called `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
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

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The `kind` on PATH when `kind version` reports `version`; otherwise why not (for messages).
pub fn kind_on_path(version: &str) -> std::result::Result<PathBuf, String> {
    let path = find_on_path("kind").ok_or_else(|| "no `kind` on PATH".to_string())?;
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
pub async fn ensure_kind(pin: &KindPin, work_dir: &Path) -> Result<KindBinary> {
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
        let actual = sha256_hex(&bytes);
        if actual != pin.sha256 {
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
    let bytes = match download(&pin.url).await {
        Ok(bytes) => bytes,
        Err(err) => {
            notes.push(format!("no {}", display_path(&dest)));
            bail!(
                "kind {} is not available ({}) and downloading {} failed: {err:#}\n{}",
                pin.version,
                notes.join("; "),
                pin.url,
                pin.manual_install(&dest)
            );
        }
    };
    let actual = sha256_hex(&bytes);
    // Verified in memory: a mismatching download is never written, so nothing is left to delete.
    ensure!(
        actual == pin.sha256,
        "refusing the kind binary downloaded from {}: sha256 {actual}, expected {} (kind {} {}, pinned \
         in fixtures/matrix.toml); nothing was kept. Check for a proxy rewriting downloads, or {}",
        pin.url,
        pin.sha256,
        pin.version,
        pin.platform,
        pin.manual_install(&dest)
    );
    let dir = dest.parent().expect("tools path has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", display_path(dir)))?;
    let tmp = dest.with_file_name(format!("kind-{}.part", pin.version));
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", display_path(&tmp)))?;
    make_executable(&tmp)?;
    std::fs::rename(&tmp, &dest)
        .with_context(|| format!("moving {} into place", display_path(&tmp)))?;
    Ok(KindBinary {
        path: dest,
        origin: KindOrigin::Downloaded,
    })
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

async fn download(url: &str) -> Result<Vec<u8>> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(300))
        .build()?;
    let resp = client.get(url).send().await?;
    let status = resp.status();
    ensure!(status.is_success(), "HTTP {status}");
    Ok(resp.bytes().await?.to_vec())
}

/// Any kind binary (for `down` and `ls`, where the version does not matter): PATH first, then
/// the newest in the tools dir.
pub fn find_any_kind(work_dir: &Path) -> Option<PathBuf> {
    find_on_path("kind").or_else(|| {
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

// ---------------------------------------------------------------------------------------------
// kind commands. The argument lists are pure so `--dry-run` prints exactly what runs.

/// `kind create cluster …` arguments.
pub fn create_args(name: &str, config: &str, image: &str, kubeconfig: &str) -> Vec<String> {
    [
        "create",
        "cluster",
        "--name",
        name,
        "--config",
        config,
        "--image",
        image,
        "--kubeconfig",
        kubeconfig,
        "--wait",
        CREATE_WAIT,
        "--retain",
    ]
    .map(String::from)
    .to_vec()
}

/// `kind delete cluster …` arguments.
pub fn delete_args(name: &str, kubeconfig: &str) -> Vec<String> {
    [
        "delete",
        "cluster",
        "--name",
        name,
        "--kubeconfig",
        kubeconfig,
    ]
    .map(String::from)
    .to_vec()
}

/// `kind export logs …` arguments.
pub fn export_logs_args(dir: &str, name: &str) -> Vec<String> {
    ["export", "logs", dir, "--name", name]
        .map(String::from)
        .to_vec()
}

/// `kind get kubeconfig …` arguments.
pub fn get_kubeconfig_args(name: &str) -> Vec<String> {
    ["get", "kubeconfig", "--name", name]
        .map(String::from)
        .to_vec()
}

/// Cluster names in `kind get clusters` output (kind says "No kind clusters found." on stderr).
pub fn parse_clusters(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("No kind clusters"))
        .map(String::from)
        .collect()
}

/// Runs kind commands. Children are killed when their future is dropped (Ctrl-C).
#[derive(Debug, Clone)]
pub struct Kind {
    pub bin: PathBuf,
    /// Set as `KUBECONFIG` for every kind process, so kind never falls back to `~/.kube/config`.
    pub kubeconfig: PathBuf,
    /// Stream kind's output instead of capturing it (`-v`).
    pub verbose: bool,
}

impl Kind {
    pub async fn create(&self, name: &str, config: &Path, image: &str) -> Result<()> {
        let args = create_args(
            name,
            &path_str(config)?,
            image,
            &path_str(&self.kubeconfig)?,
        );
        self.run(&args).await.map(drop)
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let args = delete_args(name, &path_str(&self.kubeconfig)?);
        self.run(&args).await.map(drop)
    }

    pub async fn export_logs(&self, dir: &Path, name: &str) -> Result<()> {
        self.run(&export_logs_args(&path_str(dir)?, name))
            .await
            .map(drop)
    }

    pub async fn get_clusters(&self) -> Result<Vec<String>> {
        let out = self
            .run_captured(&["get", "clusters"].map(String::from))
            .await?;
        Ok(parse_clusters(&out))
    }

    pub async fn get_kubeconfig(&self, name: &str) -> Result<String> {
        self.run_captured(&get_kubeconfig_args(name)).await
    }

    async fn run(&self, args: &[String]) -> Result<String> {
        if self.verbose {
            // kind's stderr streams to ours and is also kept, so a failed create can be classified.
            let mut child = self
                .command(args)?
                .stdin(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("running `{}`", self.describe(args)))?;
            let kept = child.stderr.take().map(tee_stderr);
            let status = child.wait().await.with_context(|| self.describe(args))?;
            let stderr = match kept {
                Some(rx) => rx.await.unwrap_or_default(),
                None => String::new(),
            };
            if !status.success() {
                return Err(KindFailed {
                    command: self.describe(args),
                    status: status.to_string(),
                    stderr,
                }
                .into());
            }
            Ok(String::new())
        } else {
            self.run_captured(args).await
        }
    }

    async fn run_captured(&self, args: &[String]) -> Result<String> {
        let out = self
            .command(args)?
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .with_context(|| format!("running `{}`", self.describe(args)))?;
        if !out.status.success() {
            return Err(KindFailed {
                command: self.describe(args),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn command(&self, args: &[String]) -> Result<tokio::process::Command> {
        let sh = Shell::new()?;
        sh.set_var("KUBECONFIG", &self.kubeconfig);
        let bin = &self.bin;
        let mut command =
            tokio::process::Command::from(std::process::Command::from(cmd!(sh, "{bin} {args...}")));
        command.kill_on_drop(true);
        // Own process group: a terminal's Ctrl-C reaches only us, so a second Ctrl-C cannot cut
        // `kind delete` short during cleanup; we stop kind ourselves (kill on drop).
        #[cfg(unix)]
        command.process_group(0);
        Ok(command)
    }

    fn describe(&self, args: &[String]) -> String {
        format!("kind {}", args.join(" "))
    }
}

/// A kind command that exited non-zero. Shows the last 15 lines of its stderr; the whole stderr
/// stays available (downcast) for classifying a failed `kind create`.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` failed ({status}):\n{}", tail(stderr, 15))]
pub struct KindFailed {
    pub command: String,
    pub status: String,
    pub stderr: String,
}

/// Copies a child's stderr to ours as it arrives and hands back everything copied at EOF. A
/// plain thread (not the runtime's blocking pool), so a child killed mid-way never holds up exit.
fn tee_stderr(stderr: tokio::process::ChildStderr) -> tokio::sync::oneshot::Receiver<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    #[cfg(unix)]
    {
        use std::io::{Read, Write};
        if let Ok(fd) = stderr.into_owned_fd() {
            std::thread::spawn(move || {
                let mut pipe = std::fs::File::from(fd);
                let (mut kept, mut buf) = (Vec::new(), [0u8; 4096]);
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let _ = std::io::stderr().write_all(&buf[..n]);
                    kept.extend_from_slice(&buf[..n]);
                }
                let _ = tx.send(String::from_utf8_lossy(&kept).into_owned());
            });
        }
    }
    #[cfg(not(unix))]
    drop((stderr, tx));
    rx
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn path_str(path: &Path) -> Result<String> {
    path.to_str()
        .map(String::from)
        .with_context(|| format!("path {} is not UTF-8", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Docker.

/// Checks that the Docker engine answers (`docker info`), with the fix when it does not.
pub async fn check_docker() -> Result<()> {
    let sh = Shell::new()?;
    let format = "{{.ServerVersion}}";
    let mut command = tokio::process::Command::from(std::process::Command::from(cmd!(
        sh,
        "docker info --format {format}"
    )));
    command
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = match tokio::time::timeout(Duration::from_secs(30), command.output()).await {
        Err(_) => bail!("Docker is not answering: `docker info` did not return within 30s; check the Docker engine"),
        Ok(Err(err)) => bail!(
            "Docker is not installed: running `docker` failed ({err}); install Docker (https://docs.docker.com/engine/install/) \
             and start the engine"
        ),
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "Docker is not running: `docker info` failed ({}): {}\nstart the Docker engine (e.g. `sudo systemctl start docker`, \
             or Docker Desktop) and check that this user may use it (`docker info`)",
            out.status,
            stderr.trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_harness_config_shape() {
        let text = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n- role: worker\n";
        assert_eq!(
            check_kind_config(text, "c.yaml").unwrap(),
            KindConfigSummary {
                control_planes: 1,
                workers: 2
            }
        );
        let empty = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n";
        assert_eq!(
            check_kind_config(empty, "c.yaml").unwrap().control_planes,
            1
        );
    }

    #[test]
    fn every_cell_config_is_one_control_plane_and_two_workers() {
        let m = crate::matrix::Matrix::load_default().unwrap();
        for cell in &m.cells {
            let summary = read_kind_config(&crate::workspace_root().join(&cell.kind_config))
                .unwrap_or_else(|e| panic!("{}: {e:#}", cell.name));
            assert_eq!(
                summary,
                KindConfigSummary {
                    control_planes: 1,
                    workers: 2
                },
                "{}",
                cell.name
            );
        }
    }

    #[test]
    fn rejects_unknown_fields_with_origin_and_line() {
        let text = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: worker\n  imagee: x\n";
        let err = format!("{:#}", check_kind_config(text, "bad.yaml").unwrap_err());
        assert!(
            err.contains("bad.yaml") && err.contains("imagee") && err.contains("line 5"),
            "{err}"
        );
    }

    #[test]
    fn rejects_wrong_api_version_role_and_pinned_node_image() {
        let e = |t: &str| format!("{:#}", check_kind_config(t, "f").unwrap_err());
        assert!(e("kind: Cluster\napiVersion: kind.sigs.k8s.io/v1alpha3\n")
            .contains("kind.x-k8s.io/v1alpha4"));
        assert!(
            e("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: master\n")
                .contains("nodes[0].role")
        );
        assert!(
            e("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: worker\n")
                .contains("control-plane")
        );
        assert!(e("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  image: x\n")
            .contains("nodes[0].image"));
        assert!(e("kind: Pod\napiVersion: kind.x-k8s.io/v1alpha4\n").contains("kind: Cluster"));
        assert!(e("nodes: [").contains("not a valid kind config"));
    }

    #[test]
    fn cluster_names_must_carry_the_prefix() {
        validate_cluster_name("pme2e-kind0-11-k8s1-21").unwrap();
        let err = validate_cluster_name("kind").unwrap_err().to_string();
        assert!(
            err.contains("pme2e-") && err.contains("--name pme2e-kind"),
            "{err}"
        );
        assert!(validate_cluster_name("pme2e-").is_err());
        let err = validate_cluster_name("pme2e-Kind_1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pme2e-kind-1"), "{err}");
        validate_cluster_name(&format!("pme2e-{}", "a".repeat(43))).unwrap();
        assert!(validate_cluster_name(&format!("pme2e-{}", "a".repeat(44))).is_err());
    }

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

    #[test]
    fn command_lines_are_exactly_what_facts_prescribe() {
        assert_eq!(
            create_args("pme2e-x", "fixtures/kind/cluster.yaml", "kindest/node:v1.21.1@sha256:abc", "target/e2e/pme2e-x/kubeconfig")
                .join(" "),
            "create cluster --name pme2e-x --config fixtures/kind/cluster.yaml --image kindest/node:v1.21.1@sha256:abc \
             --kubeconfig target/e2e/pme2e-x/kubeconfig --wait 120s --retain"
        );
        assert_eq!(
            delete_args("pme2e-x", "k").join(" "),
            "delete cluster --name pme2e-x --kubeconfig k"
        );
        assert_eq!(
            export_logs_args("d", "pme2e-x").join(" "),
            "export logs d --name pme2e-x"
        );
    }

    #[test]
    fn parses_get_clusters() {
        assert_eq!(parse_clusters("kind\npme2e-a\n\n"), vec!["kind", "pme2e-a"]);
        assert!(parse_clusters("No kind clusters found.\n").is_empty());
    }

    #[test]
    fn run_paths_layout() {
        let p = RunPaths::new(Path::new("/w"), "pme2e-x");
        assert_eq!(p.kubeconfig, Path::new("/w/pme2e-x/kubeconfig"));
        assert_eq!(p.artifacts, Path::new("/w/pme2e-x/artifacts"));
        assert_eq!(p.summary, Path::new("/w/pme2e-x/summary.md"));
    }
}
