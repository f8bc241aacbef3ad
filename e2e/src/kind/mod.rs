//! kind: create, delete and inspect the clusters this harness owns.
//!
//! Every cluster the harness creates is named `pme2e-…` ([`NAME_PREFIX`]) so `cargo xtask down`
//! and `cargo xtask ls` can never touch someone else's cluster. kind always gets an explicit
//! `--kubeconfig` (and `KUBECONFIG`) so `~/.kube/config` is never read or written.
//! [`config`] checks the kind config; [`binary`] finds or fetches the pinned kind.

pub mod binary;
pub mod config;

pub use binary::{
    ensure_kind, find_any_kind, kind_on_path, platform, KindBinary, KindOrigin, KindPin,
};
pub use config::{check_kind_config, read_kind_config, KindConfigError, KindConfigSummary};

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use xshell::{cmd, Shell};

/// Prefix of every cluster name this harness creates (and the only ones it deletes).
pub const NAME_PREFIX: &str = "pme2e-";

/// How long `kind create cluster` waits for the control plane (kind's own `--wait` only covers
/// control-plane nodes; [`crate::k8s::wait::wait_nodes_ready`] waits for the workers).
pub const CREATE_WAIT: &str = "120s";

/// Node containers are named `<cluster>-control-plane` and used as hostnames (at most 63 chars).
const MAX_NAME_LEN: usize = 63 - "-control-plane".len();

/// Why a cluster name is refused; each message suggests a valid one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not ours: only `pme2e-…` clusters are created or deleted.
    #[error(
        "cluster name `{name}` does not start with `{NAME_PREFIX}`: this harness only creates and \
         deletes clusters named `{NAME_PREFIX}…`; use e.g. `--name {NAME_PREFIX}{suggestion}`"
    )]
    Prefix {
        /// The name given.
        name: String,
        /// What to put after the prefix.
        suggestion: String,
    },
    /// Nothing after the prefix, or too long for kind's node hostnames.
    #[error("cluster name `{name}` must have 1 to {max} characters after `{NAME_PREFIX}`")]
    Length {
        /// The name given.
        name: String,
        /// The most characters after the prefix.
        max: usize,
    },
    /// Characters kind (a Docker container name prefix) refuses.
    #[error(
        "cluster name `{name}` may only contain a-z, 0-9 and `-` (not at the end); try \
         `{NAME_PREFIX}{suggestion}`"
    )]
    Characters {
        /// The name given.
        name: String,
        /// A valid spelling.
        suggestion: String,
    },
}

/// Checks a cluster name: our prefix, and what kind (a Docker container name prefix) accepts.
///
/// # Errors
/// [`NameError`]: the name lacks the `pme2e-` prefix, is too long for kind's node hostnames, or
/// has characters kind refuses; the message suggests a valid name.
pub fn validate_cluster_name(name: &str) -> Result<(), NameError> {
    if !name.starts_with(NAME_PREFIX) {
        return Err(NameError::Prefix {
            name: name.to_string(),
            suggestion: sanitize(name),
        });
    }
    if name.len() <= NAME_PREFIX.len() || name.len() > MAX_NAME_LEN {
        return Err(NameError::Length {
            name: name.to_string(),
            max: MAX_NAME_LEN - NAME_PREFIX.len(),
        });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.ends_with('-')
    {
        return Err(NameError::Characters {
            name: name.to_string(),
            suggestion: sanitize(name),
        });
    }
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
    /// The kind executable.
    pub bin: PathBuf,
    /// Set as `KUBECONFIG` for every kind process, so kind never falls back to `~/.kube/config`.
    pub kubeconfig: PathBuf,
    /// Stream kind's output instead of capturing it (`-v`).
    pub verbose: bool,
}

impl Kind {
    /// `kind create cluster` with [`create_args`]; the node image is `image` (`tag@sha256:…`).
    ///
    /// # Errors
    /// [`KindFailed`] (downcast it) with kind's stderr when kind exits non-zero.
    pub async fn create(&self, name: &str, config: &Path, image: &str) -> Result<()> {
        let args = create_args(
            name,
            &path_str(config)?,
            image,
            &path_str(&self.kubeconfig)?,
        );
        self.run(&args).await.map(drop)
    }

    /// `kind delete cluster --name <name>`.
    ///
    /// # Errors
    /// [`KindFailed`] when kind exits non-zero.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let args = delete_args(name, &path_str(&self.kubeconfig)?);
        self.run(&args).await.map(drop)
    }

    /// `kind export logs <dir> --name <name>`: every node's journals, serial log and more.
    ///
    /// kind runs every collector and returns all their errors together (kubernetes-sigs/kind
    /// pkg/cluster/internal/providers/docker/provider.go `CollectLogs`@v0.11.1 and @v0.20.0), so
    /// a non-zero exit often comes after most logs were written: at v0.20.0 `crictl images`
    /// fails whenever containerd is down, which is exactly when a create failed. That is
    /// [`Export::Partial`]; the caller reads what is there.
    ///
    /// # Errors
    /// The command cannot run, or kind exits non-zero having written nothing under `dir` (no
    /// such cluster, no nodes): [`KindFailed`] (downcast it).
    pub async fn export_logs(&self, dir: &Path, name: &str) -> Result<Export> {
        match self.run(&export_logs_args(&path_str(dir)?, name)).await {
            Ok(_) => Ok(Export::Complete),
            Err(err) => match err.downcast::<KindFailed>() {
                Ok(failed) if wrote_something(dir) => Ok(Export::Partial(failed)),
                Ok(failed) => Err(failed.into()),
                Err(other) => Err(other),
            },
        }
    }

    /// The names of all kind clusters on this Docker engine, ours or not.
    ///
    /// # Errors
    /// [`KindFailed`] when kind exits non-zero.
    pub async fn get_clusters(&self) -> Result<Vec<String>> {
        let out = self
            .run_captured(&["get", "clusters"].map(String::from))
            .await?;
        Ok(parse_clusters(&out))
    }

    /// The kubeconfig of cluster `name`, as kind prints it.
    ///
    /// # Errors
    /// [`KindFailed`] when kind exits non-zero (for example, no such cluster).
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

/// What `kind export logs` did.
#[derive(Debug)]
pub enum Export {
    /// Every collector succeeded.
    Complete,
    /// kind exited non-zero after writing logs: some collectors failed (their errors, as kind
    /// printed them, are in the [`KindFailed`]); what was written is worth reading.
    Partial(KindFailed),
}

/// Whether `dir` exists and holds anything (kind writes `kind-version.txt` first).
fn wrote_something(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// A kind command that exited non-zero. Shows the last 15 lines of its stderr; the whole stderr
/// stays available (downcast) for classifying a failed `kind create`.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` failed ({status}):\n{}", tail(stderr, 15))]
pub struct KindFailed {
    /// The command line, for the message.
    pub command: String,
    /// How it exited.
    pub status: String,
    /// Everything it wrote to stderr.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_must_carry_the_prefix() {
        validate_cluster_name("pme2e-kind0-11-k8s1-21").unwrap();
        let err = validate_cluster_name("kind").unwrap_err();
        assert_eq!(
            err,
            NameError::Prefix {
                name: "kind".into(),
                suggestion: "kind".into()
            }
        );
        assert!(err.to_string().contains("--name pme2e-kind"), "{err}");
        assert!(matches!(
            validate_cluster_name("pme2e-"),
            Err(NameError::Length { max: 43, .. })
        ));
        assert_eq!(
            validate_cluster_name("pme2e-Kind_1"),
            Err(NameError::Characters {
                name: "pme2e-Kind_1".into(),
                suggestion: "kind-1".into()
            })
        );
        validate_cluster_name(&format!("pme2e-{}", "a".repeat(43))).unwrap();
        assert!(matches!(
            validate_cluster_name(&format!("pme2e-{}", "a".repeat(44))),
            Err(NameError::Length { .. })
        ));
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
}
