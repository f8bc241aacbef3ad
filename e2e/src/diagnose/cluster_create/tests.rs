use super::*;
use crate::diagnose::Severity;

const NODES: [&str; 3] = ["pme2e-x-control-plane", "pme2e-x-worker", "pme2e-x-worker2"];

/// kind's failure after kubeadm init on the control plane (kind v0.11.1
/// pkg/cluster/internal/create/actions/kubeadminit: "failed to init node with kubeadm").
const KUBEADM_INIT_FAILED: &str = "Creating cluster \"pme2e-x\" ...\n ✗ Starting control-plane\n\
ERROR: failed to create cluster: failed to init node with kubeadm: command \"docker exec --privileged pme2e-x-control-plane kubeadm init --skip-phases=preflight --config=/kind/kubeadm.conf --skip-token-print --v=6\" failed with error: exit status 1\n\
[kubelet-check] It seems like the kubelet isn't running or healthy.\n";

/// A journalctl line as `kind export logs` writes it (`journalctl --no-pager -u kubelet.service`).
fn journal(node: &str, unit: &str, msg: &str) -> String {
    format!("Nov 25 10:00:01 {node} {unit}[231]: {msg}")
}

/// Writes kind's exported-logs layout (kind v0.11.1 pkg/cluster/provider.go CollectLogs and
/// providers/common/logs.go): top-level kind-version.txt and docker-info.txt, per node
/// kubelet.log, containerd.log, journal.log, serial.log, kubernetes-version.txt.
fn exported(kubelet_extra: &[&str], containerd_extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kind-version.txt"),
        "kind v0.11.1 go1.16.4 linux/amd64",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("docker-info.txt"),
        "Server Version: 24.0.7\n",
    )
    .unwrap();
    for node in NODES {
        let n = dir.path().join(node);
        std::fs::create_dir_all(&n).unwrap();
        let mut kubelet = vec![
            journal(node, "kubelet", "I1125 10:00:01.000001     231 server.go:440] \"Kubelet version\" kubeletVersion=\"v1.21.1\""),
        ];
        kubelet.extend(kubelet_extra.iter().map(|m| journal(node, "kubelet", m)));
        let mut containerd = vec![journal(
            node,
            "containerd",
            "time=\"2026-11-25T10:00:00Z\" level=info msg=\"containerd successfully booted\"",
        )];
        containerd.extend(
            containerd_extra
                .iter()
                .map(|m| journal(node, "containerd", m)),
        );
        std::fs::write(n.join("kubelet.log"), kubelet.join("\n")).unwrap();
        std::fs::write(n.join("containerd.log"), containerd.join("\n")).unwrap();
        std::fs::write(n.join("journal.log"), kubelet.join("\n")).unwrap();
        std::fs::write(n.join("serial.log"), "").unwrap();
        std::fs::write(n.join("kubernetes-version.txt"), "v1.21.1").unwrap();
    }
    dir
}

fn ctx(stderr: &str, dir: &Path) -> Context {
    Context {
        kind_stderr: stderr.to_string(),
        logs_dir: dir.to_path_buf(),
        export_error: None,
        snap: false,
        suggested_cell: Some("kind0.20-k8s1.21".into()),
    }
}

#[track_caller]
fn assert_cause(f: &Finding, name: &str, quoted: &str, fix: &str) {
    assert_eq!(f.id, "cluster-create-failed");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.observed.ends_with(name), "{}", f.observed);
    assert!(f.cause.starts_with(name), "{}", f.cause);
    assert!(
        f.evidence.iter().any(|e| e.contains(quoted)),
        "no quoted line with {quoted:?}: {:#?}",
        f.evidence
    );
    assert!(f.fix.contains(fix), "{}", f.fix);
    assert!(
        f.evidence
            .last()
            .unwrap()
            .starts_with("exported node logs: ")
            || f.evidence.last().unwrap().contains("no node"),
        "{:#?}",
        f.evidence
    );
}

#[test]
fn reads_each_nodes_kubelet_and_containerd_journal_and_serial_log() {
    let dir = exported(&["E1125 10:00:02.0 231 x.go:1] boom"], &[]);
    let logs = read_exported_logs(dir.path());
    let labels: Vec<String> = logs.iter().map(NodeLog::label).collect();
    assert_eq!(
        labels,
        [
            "pme2e-x-control-plane/kubelet.log",
            "pme2e-x-control-plane/containerd.log",
            "pme2e-x-control-plane/serial.log",
            "pme2e-x-worker/kubelet.log",
            "pme2e-x-worker/containerd.log",
            "pme2e-x-worker/serial.log",
            "pme2e-x-worker2/kubelet.log",
            "pme2e-x-worker2/containerd.log",
            "pme2e-x-worker2/serial.log",
        ]
    );
    assert_eq!(logs[0].lines.len(), 2);
    assert!(read_exported_logs(Path::new("/nonexistent")).is_empty());
}

#[test]
fn too_many_open_files_is_the_inotify_limit() {
    // kind known-issues "too many open files": the kubelet cannot create its fsnotify watchers.
    let dir = exported(
        &["E1125 10:00:03.1 231 kubelet.go:1384] \"Failed to start cAdvisor\" err=\"inotify_init: too many open files\""],
        &[],
    );
    let f = diagnose(&ctx(KUBEADM_INIT_FAILED, dir.path()));
    assert_cause(
        &f,
        "inotify limits too low",
        "pme2e-x-control-plane/kubelet.log: Nov 25 10:00:01 pme2e-x-control-plane kubelet[231]: E1125",
        "sudo sysctl fs.inotify.max_user_watches=524288",
    );
    // One line per node, the node named in each.
    assert!(f
        .evidence
        .iter()
        .any(|e| e.starts_with("pme2e-x-worker2/kubelet.log")));
}

#[test]
fn cgroup_v2_with_old_kubernetes() {
    // kind known-issues (cgroups v2 section): kubelet < 1.19 finds no cgroup-v1 cpu mountpoint.
    let dir = exported(
        &[
            "W1125 10:00:03.1 231 server.go:616] failed to get the kubelet's cgroup: mountpoint for cpu not found.",
            "F1125 10:00:03.2 231 server.go:274] failed to run Kubelet: mountpoint for  not found",
        ],
        &[],
    );
    let f = diagnose(&ctx(KUBEADM_INIT_FAILED, dir.path()));
    assert_cause(
        &f,
        "cgroup v2 host with Kubernetes older than 1.19",
        "mountpoint for cpu not found",
        "--cell kind0.20-k8s1.21",
    );
}

#[test]
fn kind_issue_2731_new_kernel_old_node_image() {
    // kind issue 2731: containerd cannot start containers, cpu.weight missing in the node's cgroup.
    let dir = exported(
        &[],
        &["time=\"2026-11-25T10:00:04Z\" level=error msg=\"StartContainer failed\" error=\"failed to create containerd task: OCI runtime create failed: process_linux.go:458: writing cpu.weight: open /sys/fs/cgroup/kubepods/cpu.weight: no such file or directory: unknown\""],
    );
    let f = diagnose(&ctx(KUBEADM_INIT_FAILED, dir.path()));
    assert_cause(
        &f,
        "new kernel with an old kind node image (kind issue 2731)",
        "pme2e-x-control-plane/containerd.log",
        "--cell kind0.20-k8s1.21",
    );
}

#[test]
fn oom_kills_mean_docker_memory() {
    let dir = exported(
        &[],
        &["time=\"2026-11-25T10:00:05Z\" level=info msg=\"TaskOOM event &TaskOOM{ContainerID:abc,}\"",
          "time=\"2026-11-25T10:00:05Z\" level=error msg=\"container kube-apiserver exited: OOMKilled\""],
    );
    let f = diagnose(&ctx(KUBEADM_INIT_FAILED, dir.path()));
    assert_cause(
        &f,
        "Docker ran out of memory",
        "OOMKilled",
        "give Docker more memory",
    );
}

#[test]
fn permission_denied_with_snap_docker() {
    // kind known-issues "Docker Installed With Snap": docker cannot reach paths outside $HOME.
    let stderr = "ERROR: failed to create cluster: command \"docker run --name pme2e-x-control-plane …\" failed with error: exit status 126\n\
                  docker: Error response from daemon: open /tmp/kind-123/config: permission denied.";
    let dir = tempfile::tempdir().unwrap();
    let mut c = ctx(stderr, dir.path());
    c.snap = true;
    let f = diagnose(&c);
    assert_cause(
        &f,
        "Docker installed as a snap",
        "permission denied",
        "TMPDIR",
    );
    // The same text without snap Docker is not claimed to be snap's fault.
    c.snap = false;
    let f = diagnose(&c);
    assert!(f.observed.ends_with("cause not recognised"), "{f:?}");
}

#[test]
fn disk_full_from_the_kubelet_or_containerd() {
    // kind known-issues "Failing to properly start cluster" (kind#156): eviction manager lines.
    let dir = exported(
        &["I1125 10:00:06.1 231 eviction_manager.go:340] eviction manager: must evict pod(s) to reclaim ephemeral-storage"],
        &["time=\"2026-11-25T10:00:06Z\" level=error msg=\"failed to unpack image\" error=\"write /var/lib/containerd/x: no space left on device\""],
    );
    let f = diagnose(&ctx(KUBEADM_INIT_FAILED, dir.path()));
    assert_cause(
        &f,
        "disk full",
        "no space left on device",
        "docker system prune",
    );
}

#[test]
fn exhausted_address_pools_before_any_node() {
    // kind creates its `kind` network first: no node ever runs, only kind's stderr says why.
    let stderr = "ERROR: failed to create cluster: failed to ensure docker network: command \"docker network create -d=bridge -o com.docker.network.bridge.enable_ip_masquerade=true -o com.docker.network.driver.mtu=1500 --ipv6 --subnet fc00:f853:ccd:e793::/64 kind\" failed with error: exit status 1\n\
Command Output: Error response from daemon: could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network";
    let dir = tempfile::tempdir().unwrap();
    let f = diagnose(&ctx(stderr, dir.path()));
    assert_cause(
        &f,
        "Docker address pools exhausted",
        "kind: Command Output: Error response from daemon: could not find an available",
        "docker network prune",
    );
    assert!(f.evidence.iter().any(|e| e.contains("no node")), "{f:?}");
}

#[test]
fn port_already_allocated() {
    let stderr = "ERROR: failed to create cluster: command \"docker run --hostname pme2e-x-control-plane --publish=127.0.0.1:6443:6443/TCP …\" failed with error: exit status 125\n\
Command Output: docker: Error response from daemon: driver failed programming external connectivity on endpoint pme2e-x-control-plane: Bind for 127.0.0.1:6443 failed: port is already allocated.";
    let dir = tempfile::tempdir().unwrap();
    let f = diagnose(&ctx(stderr, dir.path()));
    assert_cause(
        &f,
        "port already allocated",
        "port is already allocated",
        "docker ps",
    );
    // A kubelet line with the same words is not a port clash of kind's nodes.
    let dir = exported(
        &["E1125 x] listen tcp :10250: bind: address already in use"],
        &[],
    );
    let f = diagnose(&ctx(KUBEADM_INIT_FAILED, dir.path()));
    assert!(f.observed.ends_with("cause not recognised"), "{f:?}");
}

#[test]
fn an_unknown_failure_still_gets_the_finding_with_the_last_lines_and_the_path() {
    let dir = exported(
        &[
            "E1125 10:00:07.1 231 kubelet.go:2291] \"Error getting node\" err=\"node \\\"pme2e-x-control-plane\\\" not found\"",
            "E1125 10:00:07.2 231 kubelet.go:2291] \"Error getting node\" err=\"something new\"",
            "E1125 10:00:07.3 231 kubelet.go:2291] \"Error getting node\" err=\"the very last one\"",
        ],
        &[],
    );
    let f = diagnose(&ctx(KUBEADM_INIT_FAILED, dir.path()));
    assert_eq!(f.id, "cluster-create-failed");
    assert!(
        f.observed.ends_with("cause not recognised"),
        "{}",
        f.observed
    );
    assert!(
        f.evidence[0]
            .starts_with("kind: ERROR: failed to create cluster: failed to init node with kubeadm"),
        "{:#?}",
        f.evidence
    );
    assert!(
        f.evidence.iter().any(|e| e.contains("the very last one")),
        "{:#?}",
        f.evidence
    );
    assert!(
        !f.evidence.iter().any(|e| e.contains("not found")),
        "only the last two per file: {:#?}",
        f.evidence
    );
    let path = f.evidence.last().unwrap();
    assert!(path.contains(&dir.path().display().to_string()), "{path}");
    assert!(f.fix.contains("kubelet.log"), "{}", f.fix);
}

#[test]
fn a_failed_export_is_said_and_kinds_output_still_classified() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ctx(
        "ERROR: failed to create cluster: too many open files",
        dir.path(),
    );
    c.export_error = Some("`kind export logs` failed (exit status: 1)".into());
    let f = diagnose(&c);
    assert!(f.observed.ends_with("inotify limits too low"), "{f:?}");
    assert!(
        f.evidence
            .last()
            .unwrap()
            .starts_with("node logs could not be exported to "),
        "{:#?}",
        f.evidence
    );
}

#[test]
fn long_lines_are_cut_and_tokens_redacted() {
    let long = format!("F1125 x] too many open files {}", "x".repeat(1000));
    let dir = exported(
        &[
            &long,
            "E1125 y] too many open files Authorization: Bearer abc.def.ghi",
        ],
        &[],
    );
    let f = diagnose(&ctx("", dir.path()));
    assert!(
        f.evidence.iter().all(|e| e.chars().count() < MAX_LINE + 80),
        "{:#?}",
        f.evidence
    );
    assert!(
        !f.evidence.iter().any(|e| e.contains("abc.def.ghi")),
        "{:#?}",
        f.evidence
    );
    assert!(f.evidence.len() <= MAX_QUOTED + 1);
}

#[test]
fn every_cause_has_signatures_in_lower_case() {
    for c in CAUSES {
        assert!(!c.signatures.is_empty(), "{}", c.name);
        for s in c.signatures {
            assert_eq!(
                *s,
                s.to_ascii_lowercase(),
                "{}: signatures match lower-cased lines",
                c.name
            );
        }
    }
}

/// kind v0.20.0's export after a failed create: containerd is down, so `crictl images` fails and
/// kind exits non-zero having written everything else (its collectors' errors aggregated,
/// kubernetes-sigs/kind pkg/cluster/internal/providers/docker/provider.go@v0.20.0). The logs are
/// read and the cause named; the failed export is said, not taken for "no logs".
#[test]
fn a_partial_export_is_read_and_its_failure_said() {
    let dir = exported(
        &[],
        &["time=\"2026-11-25T10:00:02Z\" level=fatal msg=\"failed to create fsnotify watcher: too many open files\""],
    );
    for node in NODES {
        std::fs::write(
            dir.path().join(node).join("images.log"),
            "time=\"2026-11-25T10:00:09Z\" level=fatal msg=\"validate service connection: validate CRI v1 image API for endpoint \\\"unix:///run/containerd/containerd.sock\\\": rpc error: code = Unavailable desc = connection error\"\n",
        )
        .unwrap();
    }
    let mut c = ctx(KUBEADM_INIT_FAILED, dir.path());
    c.export_error = Some(format!(
        "`kind export logs {} --name pme2e-x` failed (exit status: 1):\nERROR: [command \"docker exec --privileged pme2e-x-control-plane crictl images\" failed with error: exit status 1, command \"docker exec --privileged pme2e-x-worker crictl images\" failed with error: exit status 1]",
        dir.path().display()
    ));
    let f = diagnose(&c);
    assert!(f.observed.ends_with("inotify limits too low"), "{f:#?}");
    assert!(
        f.evidence
            .iter()
            .any(|e| e.starts_with("pme2e-x-control-plane/containerd.log: ")),
        "{f:#?}"
    );
    let last = f.evidence.last().unwrap();
    assert!(
        last.starts_with(
            "`kind export logs` exited non-zero after writing them (some collectors failed): "
        ) && last.contains("crictl images"),
        "{f:#?}"
    );
    assert!(
        !f.evidence
            .iter()
            .any(|e| e.contains("could not be exported")),
        "{f:#?}"
    );
}

/// A node that never boots says why on its console: kind's entrypoint refuses a rootless node
/// without delegated controllers (kubernetes-sigs/kind
/// images/base/files/usr/local/bin/entrypoint@v0.20.0 `validate_userns`), and only serial.log
/// (`docker logs` of the node) has it.
#[test]
fn a_node_boot_failure_is_read_from_the_serial_log() {
    let dir = exported(&[], &[]);
    std::fs::write(
        dir.path().join("pme2e-x-control-plane/serial.log"),
        "INFO: running in a user namespace (experimental)\n\
         WARN: UserNS: expected RLIMIT_NOFILE to be at least 64000, got 1024\n\
         ERROR: UserNS: cpu controller needs to be delegated\n",
    )
    .unwrap();
    let stderr = "Creating cluster \"pme2e-x\" ...\n ✗ Preparing nodes 📦\n\
                  ERROR: failed to create cluster: could not find a log line that matches \"Reached target .*Multi-User System.*|detected cgroup v1\"";
    let f = diagnose(&ctx(stderr, dir.path()));
    assert_cause(
        &f,
        "rootless Docker without cgroup v2 delegation",
        "pme2e-x-control-plane/serial.log: ERROR: UserNS: cpu controller needs to be delegated",
        "Delegate=yes",
    );
    // Unknown causes quote the entrypoint's ERROR lines too.
    std::fs::write(
        dir.path().join("pme2e-x-control-plane/serial.log"),
        "INFO: ensuring we can execute mount/umount even with userns-remap\n\
         ERROR: Have an old IPv4 address but no current IPv4 address (!)\n",
    )
    .unwrap();
    let f = diagnose(&ctx(stderr, dir.path()));
    assert!(f.observed.ends_with("cause not recognised"), "{f:#?}");
    assert!(
        f.evidence.iter().any(|e| e
            == "pme2e-x-control-plane/serial.log: ERROR: Have an old IPv4 address but no current IPv4 address (!)"),
        "{f:#?}"
    );
}
