//! The stand-in sandbox `cli.rs` and `host.rs` share: a temp dir whose `bin/` holds stand-in
//! `kind` and `docker` scripts (first on PATH; they record every call and fail on demand),
//! `E2E_WORK_DIR` pointing into it, and no real kubeconfig, proxy or kind in reach.
//!
//! Each stand-in models what the harness reads from the real tool, with the source named.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use e2e::matrix::Matrix;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// Stand-in `kind`. Environment: `STANDIN_KIND_VERSION`, `STANDIN_KIND_FAIL` (a command prefix
/// to fail), `STANDIN_CREATE_STDERR` (`create cluster` prints this file on stderr and exits 1
/// before writing any kubeconfig), `STANDIN_CREATE_SLEEP`, `STANDIN_KUBECONFIG` /
/// `STANDIN_API` (what `create` writes), `STANDIN_CLUSTERS` (`get clusters`),
/// `STANDIN_EXPORT_FROM` (what `export logs` copies), `STANDIN_EXPORT_STDERR` (`export logs`
/// writes the logs, then prints this file on stderr and exits 1, as kind does when one of its
/// collectors failed).
pub const STANDIN_KIND: &str = r#"#!/bin/sh
printf '%s\n' "$*" >> "$STANDIN_LOG"
printf '%s\n' "${KUBECONFIG:-<unset>}" >> "$STANDIN_LOG.kubeconfig"
case "$1" in version) echo "kind ${STANDIN_KIND_VERSION:-v0.11.1} go1.16.4 linux/amd64"; exit 0;; esac
if [ -n "$STANDIN_KIND_FAIL" ]; then
  case "$*" in "$STANDIN_KIND_FAIL"*) echo "stand-in kind: failing '$*' on demand" >&2; exit 1;; esac
fi
kubeconfig() {
  if [ -n "$STANDIN_KUBECONFIG" ]; then cat "$STANDIN_KUBECONFIG"; return; fi
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster:
    server: ${STANDIN_API:-https://127.0.0.1:1}
contexts:
- name: standin
  context: {cluster: standin, user: standin}
current-context: standin
users:
- name: standin
  user: {token: standin-not-a-secret}
EOF
}
case "$1 $2" in
  "create cluster")
    # kind prints its progress and the error on stderr and exits 1 (kind v0.11.1 cmd/kind/app);
    # it writes the kubeconfig only once the cluster is up (kind pkg/cluster/internal/create).
    if [ -n "$STANDIN_CREATE_STDERR" ]; then cat "$STANDIN_CREATE_STDERR" >&2; exit 1; fi
    prev=
    for a in "$@"; do
      if [ "$prev" = --kubeconfig ]; then kubeconfig > "$a"; fi
      prev=$a
    done
    if [ -n "$STANDIN_CREATE_SLEEP" ]; then exec sleep "$STANDIN_CREATE_SLEEP"; fi ;;
  "get clusters") for c in $STANDIN_CLUSTERS; do echo "$c"; done ;;
  "get kubeconfig") kubeconfig ;;
  # kind export logs DIR --name N writes DIR/<node>/… (kind pkg/cluster/provider.go CollectLogs).
  # It prints the directory on stdout, runs every collector and then exits 1 with all their
  # errors if any failed (kind pkg/cluster/internal/providers/docker/provider.go CollectLogs,
  # errors.AggregateConcurrent, at v0.11.1 and v0.20.0; cmd/kind/app logError prints "ERROR: …").
  "export logs")
    mkdir -p "$3"
    echo "Exporting logs for cluster \"$5\" to:" >&2
    echo "$3"
    if [ -n "$STANDIN_EXPORT_FROM" ]; then cp -R "$STANDIN_EXPORT_FROM"/. "$3"/
    else echo "stand-in node logs" > "$3/standin.log"; fi
    if [ -n "$STANDIN_EXPORT_STDERR" ]; then cat "$STANDIN_EXPORT_STDERR" >&2; exit 1; fi ;;
  "delete cluster")
    # kind locks the kubeconfig first and creates its directory to do so (kind
    # pkg/cluster/internal/kubeconfig/internal/kubeconfig/lock.go lockFile: MkdirAll, then .lock).
    prev=
    for a in "$@"; do
      if [ "$prev" = --kubeconfig ]; then mkdir -p "$(dirname "$a")"; fi
      prev=$a
    done ;;
  *) echo "stand-in kind: unexpected '$*'" >&2; exit 2 ;;
esac
"#;

/// Stand-in `docker`: with `STANDIN_DOCKER_DOWN` it answers as a CLI whose daemon is not
/// running; `info --format {{json .}}` prints `STANDIN_DOCKER_INFO`'s file when that is set
/// (one JSON object: Docker CLI `--format` with the `json` template function); anything else
/// prints a server version.
pub const STANDIN_DOCKER: &str = r#"#!/bin/sh
printf 'docker %s\n' "$*" >> "$STANDIN_LOG.docker"
if [ -n "$STANDIN_DOCKER_DOWN" ]; then
  echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
  exit 1
fi
if [ "$*" = "info --format {{json .}}" ] && [ -n "$STANDIN_DOCKER_INFO" ]; then
  cat "$STANDIN_DOCKER_INFO"; exit 0
fi
echo "20.10.24"
"#;

/// A temp dir with `bin/` (stand-ins), `work/` (E2E_WORK_DIR) and the stand-ins' call logs.
pub struct Sandbox {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub bin: PathBuf,
    pub work: PathBuf,
    pub log: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new() -> Self {
        Self::with(true)
    }

    /// `with_kind: false` leaves `kind` off PATH entirely.
    pub fn with(with_kind: bool) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let bin = root.join("bin");
        let work = root.join("work");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        if with_kind {
            write_script(&bin.join("kind"), STANDIN_KIND);
        }
        write_script(&bin.join("docker"), STANDIN_DOCKER);
        Sandbox {
            log: root.join("calls.log"),
            _tmp: tmp,
            root,
            bin,
            work,
            env: Vec::new(),
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(XTASK);
        cmd.args(args);
        // Only the stand-ins and the basic tools their scripts need; never a real kind.
        cmd.env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()));
        cmd.env("E2E_WORK_DIR", &self.work);
        cmd.env("E2E_KIND_PLATFORM", "linux-amd64");
        cmd.env("STANDIN_LOG", &self.log);
        // Whatever happens, no real kubeconfig is in reach.
        cmd.env("HOME", &self.root);
        for var in [
            "KUBECONFIG",
            "E2E_KIND_URL",
            "E2E_KUBECONFIG",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("xtask runs");
        eprintln!(
            "$ xtask {}\n--- stdout\n{}--- stderr\n{}---",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Arguments of every stand-in kind call, in order.
    pub fn kind_calls(&self) -> Vec<String> {
        read_lines(&self.log)
    }

    pub fn docker_calls(&self) -> Vec<String> {
        read_lines(&self.log.with_extension("log.docker"))
    }

    /// `KUBECONFIG` as each kind call saw it.
    pub fn kind_kubeconfigs(&self) -> Vec<String> {
        read_lines(&self.log.with_extension("log.kubeconfig"))
    }

    pub fn run_dir(&self) -> PathBuf {
        self.work.join(default_name())
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.run_dir().join("kubeconfig")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().map(String::from).collect())
        .unwrap_or_default()
}

pub fn matrix() -> Matrix {
    Matrix::load_default().unwrap()
}

pub fn default_name() -> String {
    matrix().default_cell().default_cluster_name()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
