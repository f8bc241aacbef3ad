//! Host preflight: what kind needs from this machine, read before anything is created.
//!
//! Facts come from `/proc` (through a root the caller passes, so tests use a fake tree),
//! `docker info --format '{{json .}}'` and `df` on Docker's data directory. [`assess`] is pure: it turns the facts, the matrix cell and the kind config into findings of the
//! [`crate::diagnose::catalogue`]. Warnings never block; only an error (a certain failure) does.

use crate::diagnose::{catalogue, Finding, Severity};
use crate::docker::DockerInfo;
use crate::errors::error_chain;
use crate::kind::KindConfigSummary;
use crate::matrix::{Cell, Matrix};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// inotify limits kind's known-issues page recommends ("Pod errors due to too many open files",
/// kubernetes-sigs/kind site/content/docs/user/known-issues.md): 524288 watches, 512 instances.
pub const INOTIFY_WATCHES: u64 = 524_288;
/// See [`INOTIFY_WATCHES`].
pub const INOTIFY_INSTANCES: u64 = 512;

/// Memory of the control-plane node: kubeadm's own minimum for a control plane
/// (kubernetes cmd/kubeadm/app/constants/constants.go `ControlPlaneMem = 1700`, in MB).
const CONTROL_PLANE_MIB: u64 = 1700;
/// Memory of a worker node: our estimate of kubelet + containerd + kube-proxy + kindnet at idle
/// (kubeadm sets no minimum for workers).
const WORKER_MIB: u64 = 512;
/// The Prometheus's memory request (manifests/prometheus/20-prometheus.yaml `requests.memory`).
const PROMETHEUS_MIB: u64 = 200;

/// Free space below which kind clusters start failing: our estimate of one node image unpacked
/// (~1.5 GiB for kindest/node v1.21) plus the images every node pulls (operator, Prometheus,
/// workloads). kind disables the kubelet's disk eviction (`evictionHard: nodefs.available: "0%"`,
/// kind pkg/cluster/internal/kubeadm/config.go), so a full disk shows up as write errors.
pub const DISK_MIN_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// The first kind release that fixed the node-boot race on cgroup-v2 hosts (FACTS.md, kind
/// v0.12.0 release notes).
const KIND_CGROUP_V2_FIXED: (u32, u32, u32) = (0, 12, 0);
/// Kubernetes supports cgroup v2 from 1.19 (kind known-issues page, "Failure to Create Cluster
/// with Cgroups v2", until kind commit 846a2cc6).
const KUBERNETES_CGROUP_V2: (u32, u32) = (1, 19);

/// `fs.inotify.max_user_watches` and `fs.inotify.max_user_instances`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inotify {
    /// `fs.inotify.max_user_watches`.
    pub max_user_watches: u64,
    /// `fs.inotify.max_user_instances`.
    pub max_user_instances: u64,
}

/// Reads the inotify limits under `<proc_root>/sys/fs/inotify/`.
///
/// # Errors
/// A file is missing or does not hold a number (the message names the file).
pub fn read_inotify(proc_root: &Path) -> Result<Inotify> {
    let read = |name: &str| -> Result<u64> {
        let path = proc_root.join("sys/fs/inotify").join(name);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("{} holds `{}`, not a number", path.display(), text.trim()))
    };
    Ok(Inotify {
        max_user_watches: read("max_user_watches")?,
        max_user_instances: read("max_user_instances")?,
    })
}

/// Free bytes of the filesystem holding `dir`, from `df -Pk` (POSIX output: 1024-byte blocks,
/// the fourth column is what is available to unprivileged users).
///
/// # Errors
/// `df` fails or prints something else than POSIX output.
pub async fn free_bytes(dir: &Path, deadline: Duration) -> Result<u64> {
    let mut command = tokio::process::Command::new("df");
    command
        .arg("-Pk")
        .arg(dir)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::time::timeout(deadline, command.output())
        .await
        .with_context(|| format!("`df -Pk {}` timed out", dir.display()))?
        .context("running `df`")?;
    if !out.status.success() {
        bail!(
            "`df -Pk {}` failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_df(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("unexpected `df -Pk {}` output", dir.display()))
}

/// The available bytes in `df -Pk` output.
pub fn parse_df(text: &str) -> Option<u64> {
    let line = text.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

/// Everything the host checks read. `None` with a note when a fact could not be read.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// inotify limits, when readable.
    pub inotify: Option<Inotify>,
    /// `docker info`, when Docker answered.
    pub docker: Option<DockerInfo>,
    /// Free bytes where Docker keeps its data.
    pub docker_free: Option<u64>,
    /// What could not be checked, and why (printed, never blocking).
    pub notes: Vec<String>,
}

/// Reads every fact, each bounded by `deadline`. Never fails: a fact that cannot be read becomes
/// a note (the checks it feeds are skipped).
pub async fn gather(proc_root: &Path, deadline: Duration) -> HostFacts {
    let mut facts = HostFacts::default();
    match read_inotify(proc_root) {
        Ok(i) => facts.inotify = Some(i),
        Err(err) => facts.notes.push(format!(
            "inotify limits not checked: {}",
            error_chain(err.as_ref())
        )),
    }
    match crate::docker::info(deadline).await {
        Ok(info) => {
            if info.desktop() {
                facts.notes.push(format!(
                    "free disk space not checked: {} keeps its data inside its VM",
                    info.operating_system
                ));
            } else if !info.docker_root_dir.is_empty() {
                match free_bytes(Path::new(&info.docker_root_dir), deadline).await {
                    Ok(free) => facts.docker_free = Some(free),
                    Err(err) => facts.notes.push(format!(
                        "free disk space not checked: {}",
                        error_chain(err.as_ref())
                    )),
                }
            }
            facts.docker = Some(info);
        }
        Err(err) => facts.notes.push(format!(
            "Docker's cgroups, memory, disk, rootless and snap not checked: {}",
            error_chain(&err)
        )),
    }
    facts
}

/// What the cluster needs, from the cell and its kind config.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// Control-plane nodes of the kind config.
    pub control_planes: usize,
    /// Worker nodes of the kind config.
    pub workers: usize,
}

impl From<&KindConfigSummary> for Needs {
    fn from(s: &KindConfigSummary) -> Self {
        Needs {
            control_planes: s.control_planes,
            workers: s.workers,
        }
    }
}

impl Needs {
    /// MiB of memory for the nodes plus Prometheus.
    pub fn memory_mib(&self) -> u64 {
        self.control_planes as u64 * CONTROL_PLANE_MIB
            + self.workers as u64 * WORKER_MIB
            + PROMETHEUS_MIB
    }
}

/// `v1.21.1` → (1, 21, 1); `v0.11.1` → (0, 11, 1).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.trim().trim_start_matches('v').split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor, patch))
}

/// A cell running the same Kubernetes minor as `cell` on a kind that supports cgroup v2,
/// preferring a required one (what `--cell` should name in a fix).
pub fn cgroup_v2_twin<'m>(matrix: &'m Matrix, cell: &Cell) -> Option<&'m Cell> {
    let minor = |c: &Cell| parse_version(c.kubernetes_version()).map(|(a, b, _)| (a, b));
    let want = minor(cell)?;
    let fixed = |c: &&Cell| {
        parse_version(&c.kind_version).is_some_and(|v| v >= KIND_CGROUP_V2_FIXED)
            && minor(c) == Some(want)
    };
    let candidates: Vec<&Cell> = matrix.cells.iter().filter(fixed).collect();
    candidates
        .iter()
        .find(|c| !c.allowed_to_fail)
        .or(candidates.first())
        .copied()
}

/// The cell to name when a cgroup-v2 problem stops `cell`: its [`cgroup_v2_twin`], else the first
/// required cell on a kind that supports cgroup v2.
pub fn suggested_cell<'m>(matrix: &'m Matrix, cell: &Cell) -> Option<&'m Cell> {
    cgroup_v2_twin(matrix, cell).or_else(|| {
        matrix.cells.iter().find(|c| {
            !c.allowed_to_fail
                && parse_version(&c.kind_version).is_some_and(|v| v >= KIND_CGROUP_V2_FIXED)
        })
    })
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

fn finding(kind: &catalogue::Kind, observed: String, evidence: Vec<String>) -> Finding {
    Finding::new(kind, observed, evidence)
}

/// The host checks (pure). Order: certain failures first, then warnings.
pub fn assess(facts: &HostFacts, matrix: &Matrix, cell: &Cell, needs: Needs) -> Vec<Finding> {
    let mut out = Vec::new();
    let k8s = cell.kubernetes_version();
    let k8s_minor = parse_version(k8s).map(|(a, b, _)| (a, b));
    if let Some(d) = &facts.docker {
        let evidence = vec![format!(
            "docker info: CgroupVersion={:?} CgroupDriver={:?} ServerVersion={:?} OperatingSystem={:?}",
            d.cgroup_version, d.cgroup_driver, d.server_version, d.operating_system
        )];
        if d.cgroup_version == "2" {
            // Kubernetes < 1.19 has no cgroup v2 support: its kubelet never starts
            // (kind known-issues "Failure to Create Cluster with Cgroups v2").
            if k8s_minor.is_some_and(|m| m < KUBERNETES_CGROUP_V2) {
                let mut f = finding(
                    &catalogue::HOST_CGROUP_V2_OLD_KUBERNETES,
                    format!(
                        "cell `{}` runs Kubernetes {k8s} on a cgroup-v2 Docker host",
                        cell.name
                    ),
                    evidence.clone(),
                );
                if let Some(twin) = suggested_cell(matrix, cell) {
                    f.fix = format!(
                        "run a cell with Kubernetes 1.19 or newer, e.g. `cargo xtask e2e --cell {}`; \
                         Kubernetes below 1.19 needs a cgroup-v1 host",
                        twin.name
                    );
                }
                out.push(f);
            } else if parse_version(&cell.kind_version).is_some_and(|v| v < KIND_CGROUP_V2_FIXED) {
                // kind fixed a node-boot race on cgroup v2 in v0.12.0 (FACTS.md; kind issue 2731
                // for new kernels with old node images).
                let mut f = finding(
                    &catalogue::HOST_CGROUP_V2_OLD_KIND,
                    format!(
                        "cell `{}` runs kind {} on a cgroup-v2 Docker host",
                        cell.name, cell.kind_version
                    ),
                    evidence.clone(),
                );
                if let Some(twin) = cgroup_v2_twin(matrix, cell) {
                    f.fix = format!(
                        "if the cluster does not come up, run the same Kubernetes minor on a newer kind: \
                         `cargo xtask e2e --cell {}` (kind {}, Kubernetes {})",
                        twin.name,
                        twin.kind_version,
                        twin.kubernetes_version()
                    );
                }
                out.push(f);
            }
        }
        let need_mib = needs.memory_mib();
        if d.mem_total > 0 && d.mem_total < need_mib * 1024 * 1024 {
            let mut f = finding(
                &catalogue::HOST_DOCKER_MEMORY_LOW,
                format!(
                    "Docker can use {} of memory; {} nodes and Prometheus need about {}",
                    gib(d.mem_total),
                    needs.control_planes + needs.workers,
                    gib(need_mib * 1024 * 1024)
                ),
                vec![format!(
                    "docker info: MemTotal={} NCPU={} Name={:?}",
                    d.mem_total, d.ncpu, d.name
                )],
            );
            f.fix = format!(
                "give Docker at least {} of memory (Docker Desktop: Settings → Resources → Memory), \
                 or close other containers",
                gib(need_mib * 1024 * 1024)
            );
            out.push(f);
        }
        if let Some(free) = facts.docker_free.filter(|f| *f < DISK_MIN_BYTES) {
            out.push(finding(
                &catalogue::HOST_DISK_LOW,
                format!(
                    "{} free where Docker keeps its data; kind needs about {}",
                    gib(free),
                    gib(DISK_MIN_BYTES)
                ),
                vec![format!(
                    "df -Pk {}: {free} bytes available",
                    d.docker_root_dir
                )],
            ));
        }
        if let Some(why) = d.rootless_refusal() {
            out.push(finding(
                &catalogue::HOST_ROOTLESS_UNSUPPORTED,
                why.to_string(),
                vec![format!(
                    "docker info: SecurityOptions={:?} CgroupVersion={:?} CgroupDriver={:?} MemoryLimit={:?} PidsLimit={:?} CPUShares={:?}",
                    d.security_options, d.cgroup_version, d.cgroup_driver, d.memory_limit, d.pids_limit, d.cpu_shares
                )],
            ));
        } else if d.rootless() {
            out.push(finding(
                &catalogue::HOST_DOCKER_ROOTLESS,
                "Docker runs rootless".to_string(),
                vec![format!(
                    "docker info: SecurityOptions={:?} CgroupVersion={:?}",
                    d.security_options, d.cgroup_version
                )],
            ));
        }
        if d.snap() {
            out.push(finding(
                &catalogue::HOST_DOCKER_SNAP,
                "Docker is installed as a snap".to_string(),
                vec![format!(
                    "docker info: DockerRootDir={:?}",
                    d.docker_root_dir
                )],
            ));
        }
    }
    if let Some(i) = facts.inotify {
        // kind known-issues "Pod errors due to too many open files": Ubuntu's 8192/128 are too
        // low for multi-node clusters; it recommends 524288/512.
        if i.max_user_watches < INOTIFY_WATCHES || i.max_user_instances < INOTIFY_INSTANCES {
            out.push(finding(
                &catalogue::HOST_INOTIFY_LOW,
                format!(
                    "inotify limits are {} watches and {} instances; kind recommends {INOTIFY_WATCHES} and \
                     {INOTIFY_INSTANCES} for {} nodes",
                    i.max_user_watches,
                    i.max_user_instances,
                    needs.control_planes + needs.workers
                ),
                vec![
                    format!("fs.inotify.max_user_watches = {}", i.max_user_watches),
                    format!("fs.inotify.max_user_instances = {}", i.max_user_instances),
                ],
            ));
        }
    }
    out.sort_by_key(|f| f.severity);
    out
}

/// The host findings as printed in preflight: a line per finding with evidence, cause and fix,
/// then the notes.
pub fn render(findings: &[Finding], notes: &[String]) -> String {
    let mut out = String::new();
    if !findings.is_empty() {
        out.push_str(&crate::diagnose::render_text(findings));
    }
    for n in notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// True when a finding is a certain failure (preflight stops).
pub fn blocks(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

#[cfg(test)]
mod tests;
