//! The Docker engine: is it there, and what does it say about itself.
//!
//! One home for every `docker info` the harness runs (the preflight's liveness check, the host
//! checks, `cargo xtask image`), each with the caller's deadline.

use serde::Deserialize;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Why Docker could not be used; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No `docker` executable could be started.
    #[error(
        "Docker is not installed: running `docker` failed; install Docker \
         (https://docs.docker.com/engine/install/) and start the engine"
    )]
    NotInstalled(#[source] std::io::Error),
    /// The client ran but the engine did not answer in time.
    #[error(
        "Docker is not answering: `docker {command}` did not return within {}s; check the Docker engine",
        deadline.as_secs()
    )]
    NotAnswering {
        /// The arguments after `docker`.
        command: String,
        /// The caller's deadline.
        deadline: Duration,
    },
    /// The client exited non-zero (engine stopped, socket not permitted).
    #[error(
        "Docker is not running: `docker {command}` failed ({status}): {stderr}\nstart the Docker engine \
         (e.g. `sudo systemctl start docker`, or Docker Desktop) and check that this user may use it (`docker info`)"
    )]
    NotRunning {
        /// The arguments after `docker`.
        command: String,
        /// The exit status.
        status: String,
        /// What the client printed on stderr.
        stderr: String,
    },
    /// `docker info --format '{{json .}}'` printed something else (engines before 1.13).
    #[error("`docker info --format '{{{{json .}}}}'` did not print a JSON object: `{0}`")]
    NotJson(String),
}

/// Checks that the engine answers `docker info` within `deadline`.
///
/// # Errors
/// [`DockerError`] naming what is wrong (not installed, not running, not answering) and the fix.
pub async fn check_engine(deadline: Duration) -> Result<(), DockerError> {
    run(&["info", "--format", "{{.ServerVersion}}"], deadline)
        .await
        .map(drop)
}

/// `docker info --format '{{json .}}'`, parsed, within `deadline`.
///
/// # Errors
/// As [`check_engine`], and [`DockerError::NotJson`] for an engine that prints no JSON.
pub async fn info(deadline: Duration) -> Result<DockerInfo, DockerError> {
    let out = run(&["info", "--format", "{{json .}}"], deadline).await?;
    DockerInfo::parse(&out)
}

/// [`check_engine`] for synchronous callers (`cargo xtask image`, the test kit).
///
/// # Errors
/// As [`check_engine`].
pub fn check_engine_blocking(deadline: Duration) -> Result<(), DockerError> {
    let args = ["info", "--format", "{{.ServerVersion}}"];
    let mut child = std::process::Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(DockerError::NotInstalled)?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(DockerError::NotInstalled)? {
            if status.success() {
                return Ok(());
            }
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            return Err(DockerError::NotRunning {
                command: args.join(" "),
                status: status.to_string(),
                stderr: stderr.trim().to_string(),
            });
        }
        if start.elapsed() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DockerError::NotAnswering {
                command: args.join(" "),
                deadline,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn run(args: &[&str], deadline: Duration) -> Result<String, DockerError> {
    let mut command = tokio::process::Command::new("docker");
    command
        .args(args)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = match tokio::time::timeout(deadline, command.output()).await {
        Err(_) => {
            return Err(DockerError::NotAnswering {
                command: args.join(" "),
                deadline,
            })
        }
        Ok(res) => res.map_err(DockerError::NotInstalled)?,
    };
    if !out.status.success() {
        return Err(DockerError::NotRunning {
            command: args.join(" "),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The fields of `docker info --format '{{json .}}'` the checks read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DockerInfo {
    /// `"1"` or `"2"` (Docker 20.10+); empty on older engines.
    pub cgroup_version: String,
    /// `cgroupfs`, `systemd`, or `none` (rootless without delegation).
    pub cgroup_driver: String,
    /// Bytes of memory the engine's host (or Docker Desktop's VM) has.
    pub mem_total: u64,
    /// CPUs the engine can use.
    #[serde(rename = "NCPU")]
    pub ncpu: u64,
    /// Where the engine keeps images and containers.
    pub docker_root_dir: String,
    /// e.g. `name=seccomp,profile=default`, `name=rootless`. `null` (no AppArmor, seccomp,
    /// SELinux, userns, rootless, cgroupns or no-new-privileges: moby daemon/info.go
    /// `fillSecurityOptions` leaves the slice nil, @v20.10.24 and @v24.0.7) reads as empty.
    #[serde(deserialize_with = "null_as_empty")]
    pub security_options: Vec<String>,
    /// The engine host's name.
    pub name: String,
    /// e.g. `Ubuntu 22.04.3 LTS` or `Docker Desktop`.
    pub operating_system: String,
    /// The engine's version.
    pub server_version: String,
    /// Whether the engine can limit memory, pids and CPU shares (absent on old engines, which
    /// kind reads as false).
    pub memory_limit: Option<bool>,
    /// See [`DockerInfo::memory_limit`].
    pub pids_limit: Option<bool>,
    /// See [`DockerInfo::memory_limit`].
    #[serde(rename = "CPUShares")]
    pub cpu_shares: Option<bool>,
}

impl DockerInfo {
    /// Parses `docker info --format '{{json .}}'` output.
    ///
    /// # Errors
    /// [`DockerError::NotJson`] when the text is not a JSON object.
    pub fn parse(json: &str) -> Result<DockerInfo, DockerError> {
        serde_json::from_str(json.trim())
            .map_err(|_| DockerError::NotJson(json.trim().chars().take(120).collect()))
    }

    /// Rootless Docker reports `name=rootless` among its security options (Docker docs,
    /// "Run the Docker daemon as a non-root user").
    pub fn rootless(&self) -> bool {
        self.security_options
            .iter()
            .any(|o| o.split(',').any(|kv| kv == "name=rootless"))
    }

    /// Why kind refuses this rootless engine, if it does, by kind's own rules
    /// (kubernetes-sigs/kind pkg/cluster/internal/create/create.go `validateProvider` and
    /// pkg/cluster/internal/providers/docker/provider.go `info`, the same at v0.11.1 and
    /// v0.20.0): rootless needs `CgroupVersion` to be exactly "2" (an engine that does not say,
    /// before Docker 20.10, is refused too), and memory, pids and CPU-shares limits, i.e. systemd
    /// `Delegate=yes`; kind decodes them into plain bools, so a missing one counts as false, and
    /// with `CgroupDriver: none` all count as false.
    pub fn rootless_refusal(&self) -> Option<&'static str> {
        if !self.rootless() {
            return None;
        }
        match self.cgroup_version.as_str() {
            "2" => {}
            "1" => return Some("rootless Docker on a cgroup-v1 host: kind requires cgroup v2 for rootless providers"),
            _ => return Some("rootless Docker that does not report cgroup v2 (no `CgroupVersion` in `docker info`: Docker before 20.10): kind requires cgroup v2 for rootless providers"),
        }
        let none = self.cgroup_driver == "none";
        let limits = [self.memory_limit, self.pids_limit, self.cpu_shares];
        (none || limits.iter().any(|l| !l.unwrap_or(false))).then_some(
            "rootless Docker without memory, pids or CPU-shares limits: kind requires cgroup delegation (systemd `Delegate=yes`)",
        )
    }

    /// Docker installed as a snap keeps its data under `/var/snap/docker`.
    pub fn snap(&self) -> bool {
        self.docker_root_dir.starts_with("/var/snap/docker")
    }

    /// Docker Desktop runs the engine in a VM: its data directory is not on this host's disks.
    pub fn desktop(&self) -> bool {
        self.operating_system.contains("Docker Desktop")
    }
}

/// A JSON array of strings, or `null` (a Go nil slice) as an empty one.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_without_json_output_is_named() {
        let err = DockerInfo::parse("20.10.24").unwrap_err();
        assert!(
            matches!(err, DockerError::NotJson(ref s) if s == "20.10.24"),
            "{err}"
        );
    }

    #[test]
    fn messages_name_the_command_and_the_fix() {
        let slow = DockerError::NotAnswering {
            command: "info".into(),
            deadline: Duration::from_secs(7),
        };
        assert_eq!(
            slow.to_string(),
            "Docker is not answering: `docker info` did not return within 7s; check the Docker engine"
        );
        let stopped = DockerError::NotRunning {
            command: "info".into(),
            status: "exit status: 1".into(),
            stderr: "Cannot connect to the Docker daemon".into(),
        };
        assert!(stopped.to_string().contains("sudo systemctl start docker"));
    }
}
