//! Why `kind create cluster` failed: kind's own stderr plus each node's `kubelet.log`,
//! `containerd.log` and `serial.log` from `kind export logs`, matched against the usual causes.
//!
//! The exported layout (kubernetes-sigs/kind pkg/cluster/provider.go `CollectLogs`,
//! pkg/cluster/internal/providers/docker/provider.go `CollectLogs` and
//! pkg/cluster/internal/providers/common/logs.go, at v0.11.1 and v0.20.0): `<dir>/kind-version.txt`,
//! `<dir>/docker-info.txt`, and per node the node's `/var/log` plus
//! `<dir>/<node>/{kubernetes-version.txt, journal.log, kubelet.log, containerd.log, inspect.json,
//! serial.log}`, and from v0.20.0 also `images.log` (`crictl images`). The journals are
//! `journalctl --no-pager [-u …]` output; `serial.log` is the node container's console (`docker
//! logs`: systemd and kind's entrypoint, where a node that never boots says why). Each collector
//! writes its command's stdout and stderr to its file, and kind exits non-zero when any failed
//! (at v0.20.0 `crictl images` whenever containerd is down), so the files are read whatever
//! kind's exit status.
//!
//! Every cause is one [`Cause`]: signatures (stable fragments of the messages, matched
//! case-insensitively), where they appear, and the cause and fix. Order matters: the first cause
//! with a matching line wins, so more specific causes come first.

use super::{catalogue, Finding};
use std::path::{Path, PathBuf};

/// The node log files read, in this order.
pub const NODE_LOG_FILES: &[&str] = &["kubelet.log", "containerd.log", "serial.log"];

/// Where a cause's signatures are looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// kind's stderr only (the failure happened in Docker before any node ran).
    Kind,
    /// kind's stderr and the node logs.
    Any,
}

/// One known cause of a failed `kind create cluster`.
#[derive(Debug, Clone, Copy)]
pub struct Cause {
    /// Short name, printed in the finding (`cause: <name>: …`).
    pub name: &'static str,
    /// Substrings that identify it in a log line.
    pub signatures: &'static [&'static str],
    /// Which log they appear in.
    pub source: Source,
    /// Only with Docker installed as a snap (the signature alone is too common).
    pub needs_snap: bool,
    /// What it means.
    pub cause: &'static str,
    /// `{cell}` is replaced by the suggested cell ([`Context::suggested_cell`]).
    pub fix: &'static str,
}

/// The known causes, most specific first.
pub const CAUSES: &[Cause] = &[
    // kind known-issues "Pod errors due to too many open files" (inotify limits are not
    // namespaced); exhausted watches make inotify_add_watch fail with ENOSPC (inotify(7)), so this
    // comes before the disk cause.
    Cause {
        name: "inotify limits too low",
        signatures: &[
            "too many open files",
            "failed to create fsnotify watcher",
            "inotify_init",
            "inotify_add_watch",
            "inotify instance",
        ],
        source: Source::Any,
        needs_snap: false,
        cause: "the nodes exhausted the host's inotify watches or instances (shared by every node: inotify limits are not namespaced)",
        fix: "raise the inotify limits: sudo sysctl fs.inotify.max_user_watches=524288 && sudo sysctl fs.inotify.max_user_instances=512 \
              (persist both in /etc/sysctl.conf), then run again",
    },
    // kind's node entrypoint refuses to boot a rootless node without cgroup v2 or without the
    // cpu, memory and pids controllers delegated (kubernetes-sigs/kind
    // images/base/files/usr/local/bin/entrypoint@v0.11.1 and @v0.20.0 `validate_userns`); the
    // line is in the node's serial.log.
    Cause {
        name: "rootless Docker without cgroup v2 delegation",
        signatures: &[
            "userns: cgroup v2 needs to be enabled",
            "controller needs to be delegated",
        ],
        source: Source::Any,
        needs_snap: false,
        cause: "the nodes run in a user namespace (rootless Docker) and kind's node entrypoint found cgroup v1, or cgroup v2 without the cpu, memory and pids controllers delegated to it",
        fix: "boot the host with cgroup v2 (`systemd.unified_cgroup_hierarchy=1`) and create /etc/systemd/system/user@.service.d/delegate.conf with `[Service]` `Delegate=yes` (kind's rootless guide), then `sudo systemctl daemon-reload` and restart Docker; or use rootful Docker",
    },
    // kind known-issues "Failure to Create Cluster with Cgroups v2" (removed in kind commit
    // 846a2cc6): the kubelet of Kubernetes < 1.19 finds no cgroup-v1 mountpoints.
    Cause {
        name: "cgroup v2 host with Kubernetes older than 1.19",
        signatures: &["mountpoint for cpu not found", "failed to run kubelet: mountpoint for"],
        source: Source::Any,
        needs_snap: false,
        cause: "Kubernetes below 1.19 does not support cgroup v2, and this Docker host uses it",
        fix: "use a cell with Kubernetes 1.19 or newer: `--cell {cell}`",
    },
    // kind issue 2731 ("Cluster startup cgroups v2-related failure"): new kernels expose cgroup
    // controllers old node images' runtimes do not scope; fixed in node images from kind v0.13.0
    // (kind commit db40a9b5, entrypoint fix_cgroup).
    Cause {
        name: "new kernel with an old kind node image (kind issue 2731)",
        signatures: &["cpu.weight: no such file or directory"],
        source: Source::Any,
        needs_snap: false,
        cause: "the node image of this kind release cannot set up cgroups on this host's newer kernel",
        fix: "run the same Kubernetes minor on a newer kind: `--cell {cell}`",
    },
    // kind known-issues "Failure to build node image" (kind#229: Docker Desktop memory) and the
    // kernel OOM killer's "Out of memory: Killed process" / containerd's OOM events.
    Cause {
        name: "Docker ran out of memory",
        signatures: &[
            "out of memory",
            "oom-kill",
            "oomkilled",
            "cannot allocate memory",
        ],
        source: Source::Any,
        needs_snap: false,
        cause: "the node containers ran out of the memory Docker may use, and processes were killed",
        fix: "give Docker more memory (Docker Desktop: Settings → Resources → Memory; about 3 GiB for three nodes and Prometheus), or stop other containers",
    },
    // kind known-issues "Docker Installed With Snap": snap confinement denies docker access to
    // paths outside $HOME such as $TMPDIR.
    Cause {
        name: "Docker installed as a snap",
        signatures: &["permission denied"],
        source: Source::Kind,
        needs_snap: true,
        cause: "snap confinement keeps Docker out of paths outside $HOME (such as $TMPDIR) that kind passes to it",
        fix: "set TMPDIR to a directory under $HOME (e.g. `mkdir -p ~/tmp && TMPDIR=~/tmp cargo xtask e2e`), or install Docker from docker.com's packages",
    },
    // kind known-issues "Failing to properly start cluster" (kind#156): the kubelet's eviction
    // manager lines; a full disk otherwise shows as ENOSPC writes.
    Cause {
        name: "disk full",
        signatures: &[
            "no space left on device",
            "must evict pod(s) to reclaim ephemeral-storage",
            "eviction thresholds have been met",
        ],
        source: Source::Any,
        needs_snap: false,
        cause: "the disk holding Docker's data is full",
        fix: "free space where Docker keeps its data: `docker system prune` and `docker image prune`, then run again",
    },
    // Docker's IPAM ("could not find an available, non-overlapping IPv4 address pool among the
    // defaults", moby libnetwork) and kind's own network code (kind v0.11.1
    // pkg/cluster/internal/providers/docker/network.go: "Pool overlaps", "exhausted attempts").
    Cause {
        name: "Docker address pools exhausted",
        signatures: &[
            "non-overlapping ipv4 address pool",
            "exhausted attempts trying to find a non-overlapping subnet",
            "pool overlaps with other one on this address space",
        ],
        source: Source::Kind,
        needs_snap: false,
        cause: "Docker has no free subnet left for kind's `kind` network (too many networks, or a VPN's routes overlap the default pools)",
        fix: "remove unused networks with `docker network prune`, or add address pools in /etc/docker/daemon.json (`default-address-pools`) and restart Docker",
    },
    // Docker's port allocator ("Bind for 0.0.0.0:<port> failed: port is already allocated", moby
    // portallocator) when a node container publishes a port another process holds.
    Cause {
        name: "port already allocated",
        signatures: &["port is already allocated", "address already in use"],
        source: Source::Kind,
        needs_snap: false,
        cause: "a port a node publishes (the API server's, or an extraPortMappings entry) is held by another container or process",
        fix: "find the holder with `docker ps` or `ss -ltnp`, stop it or delete its kind cluster (`cargo xtask ls`), then run again",
    },
];

/// One node log file, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLog {
    /// The node whose log it is.
    pub node: String,
    /// The log file, e.g. `kubelet.log`.
    pub file: &'static str,
    /// The matching lines.
    pub lines: Vec<String>,
}

impl NodeLog {
    fn label(&self) -> String {
        format!("{}/{}", self.node, self.file)
    }
}

/// Reads every node's [`NODE_LOG_FILES`] under an exported-logs directory (node directories are
/// the subdirectories holding at least one of them), sorted by node name.
pub fn read_exported_logs(dir: &Path) -> Vec<NodeLog> {
    let mut nodes: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    let mut out = Vec::new();
    for node_dir in nodes {
        let node = node_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for file in NODE_LOG_FILES {
            if let Ok(bytes) = std::fs::read(node_dir.join(file)) {
                out.push(NodeLog {
                    node: node.clone(),
                    file,
                    lines: String::from_utf8_lossy(&bytes)
                        .lines()
                        .map(String::from)
                        .collect(),
                });
            }
        }
    }
    out
}

/// What the classification knows besides the logs.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// kind's stderr (or its error message when it was not captured).
    pub kind_stderr: String,
    /// Where `kind export logs` wrote (shown in the finding).
    pub logs_dir: PathBuf,
    /// Why `kind export logs` failed, if it did (it may have written most logs first).
    pub export_error: Option<String>,
    /// Docker is a snap (from `docker info`).
    pub snap: bool,
    /// The cell to suggest for the cgroup causes (same Kubernetes minor on a newer kind).
    pub suggested_cell: Option<String>,
}

/// At most this many quoted lines per finding.
const MAX_QUOTED: usize = 6;
/// Long lines (kubeadm dumps, stack traces) are cut to this many characters.
const MAX_LINE: usize = 300;

fn quote(label: &str, line: &str) -> String {
    let line = line.trim();
    let cut: String = line.chars().take(MAX_LINE).collect();
    let ellipsis = if cut.len() < line.len() { "…" } else { "" };
    crate::redact::redact(&format!("{label}: {cut}{ellipsis}"))
}

/// The first known cause with a matching line, and the matching lines (quoted).
pub fn match_cause(ctx: &Context, logs: &[NodeLog]) -> Option<(&'static Cause, Vec<String>)> {
    for cause in CAUSES {
        if cause.needs_snap && !ctx.snap {
            continue;
        }
        let hit = |line: &str| {
            let lower = line.to_ascii_lowercase();
            cause.signatures.iter().any(|s| lower.contains(s))
        };
        let mut quoted: Vec<String> = ctx
            .kind_stderr
            .lines()
            .filter(|l| hit(l))
            .map(|l| quote("kind", l))
            .collect();
        if cause.source == Source::Any {
            for log in logs {
                quoted.extend(
                    log.lines
                        .iter()
                        .filter(|l| hit(l))
                        .map(|l| quote(&log.label(), l)),
                );
            }
        }
        if !quoted.is_empty() {
            quoted.dedup();
            quoted.truncate(MAX_QUOTED);
            return Some((cause, quoted));
        }
    }
    None
}

/// Lines worth showing when no cause is known: kind's `ERROR:` lines and the last klog error or
/// fatal lines (`E0102 …`, `F0102 …`), `level=error` lines, or lines of kind's node entrypoint
/// starting `ERROR: ` (its `log_error`, in serial.log) of each node log.
fn relevant_lines(ctx: &Context, logs: &[NodeLog]) -> Vec<String> {
    let klog = regex::Regex::new(r"\b[EF]\d{4} \d").expect("valid regex");
    let mut out: Vec<String> = ctx
        .kind_stderr
        .lines()
        .filter(|l| l.contains("ERROR") || l.to_ascii_lowercase().contains("failed"))
        .take(2)
        .map(|l| quote("kind", l))
        .collect();
    if out.is_empty() {
        if let Some(last) = ctx.kind_stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            out.push(quote("kind", last));
        }
    }
    for log in logs {
        let picked: Vec<&String> = log
            .lines
            .iter()
            .filter(|l| {
                klog.is_match(l)
                    || l.contains("level=error")
                    || l.trim_start().starts_with("ERROR: ")
            })
            .collect();
        let start = picked.len().saturating_sub(2);
        out.extend(picked[start..].iter().map(|l| quote(&log.label(), l)));
    }
    out.truncate(MAX_QUOTED + 2);
    out
}

/// Classifies a failed `kind create cluster` from kind's stderr and the exported node logs (pure).
pub fn classify(ctx: &Context, logs: &[NodeLog]) -> Finding {
    let logs_at = format!(
        "exported node logs: {}",
        crate::workdir::display_path(&ctx.logs_dir)
    );
    let mut where_ = vec![logs_at];
    match (&ctx.export_error, logs.is_empty()) {
        (Some(err), true) => {
            where_[0] = format!(
                "node logs could not be exported to {}: {err}",
                crate::workdir::display_path(&ctx.logs_dir)
            )
        }
        // kind aggregates every collector's error: the logs it did write were read.
        (Some(err), false) => where_.push(format!(
            "`kind export logs` exited non-zero after writing them (some collectors failed): {err}"
        )),
        (None, true) => where_.push(
            "no node wrote a kubelet.log, containerd.log or serial.log (no node container ran)"
                .into(),
        ),
        (None, false) => {}
    }
    let kind = &catalogue::CLUSTER_CREATE_FAILED;
    match match_cause(ctx, logs) {
        Some((cause, quoted)) => {
            let mut evidence = quoted;
            evidence.extend(where_);
            let mut f = Finding::new(
                kind,
                format!("`kind create cluster` failed: {}", cause.name),
                evidence,
            );
            f.cause = format!("{}: {}", cause.name, cause.cause);
            let cell = ctx
                .suggested_cell
                .clone()
                .unwrap_or_else(|| "<a cell of `cargo xtask matrix` with a newer kind>".into());
            f.fix = cause.fix.replace("{cell}", &cell);
            f
        }
        None => {
            let mut evidence = relevant_lines(ctx, logs);
            evidence.extend(where_);
            let mut f = Finding::new(
                kind,
                "`kind create cluster` failed: cause not recognised".to_string(),
                evidence,
            );
            f.cause = "none of the known causes (inotify limits, rootless without delegation, cgroup v2 with old Kubernetes, \
                       kind issue 2731, Docker memory, snap Docker, disk full, address pools, ports) matched kind's output or the node logs"
                .to_string();
            f.fix = format!(
                "read the node logs under {} (each node's kubelet.log, containerd.log and serial.log, the node's console; \
                 journal.log has everything), and kind's output above",
                crate::workdir::display_path(&ctx.logs_dir)
            );
            f
        }
    }
}

/// Reads the exported logs under `ctx.logs_dir` and classifies: whatever `kind export logs`
/// wrote, also when it exited non-zero.
pub fn diagnose(ctx: &Context) -> Finding {
    classify(ctx, &read_exported_logs(&ctx.logs_dir))
}

#[cfg(test)]
mod tests;
