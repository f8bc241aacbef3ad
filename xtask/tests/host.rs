//! Host preflight and the diagnosis of a failed `kind create`, end to end through `cargo xtask e2e`,
//! without Docker: the stand-in `kind` and `docker` sandbox `cli.rs` uses too (`common/`), plus
//! a stand-in `df`, a fake `/proc` (`E2E_PROC_ROOT`) and `E2E_WORK_DIR` in a temp dir.
//!
//! The stand-in `kind create cluster` fails the way each known cause does (kind's stderr), and
//! `kind export logs` copies node logs laid out as kind exports them.

mod common;

use common::*;
use std::process::Output;

/// POSIX `df -Pk` output: header, then 1024-blocks, used, available, capacity, mount point.
const STANDIN_DF: &str = r#"#!/bin/sh
printf 'df %s\n' "$*" >> "$STANDIN_LOG.df"
echo "Filesystem     1024-blocks      Used Available Capacity Mounted on"
echo "/dev/sda1        490617784 100000000 ${STANDIN_DF_AVAIL_KIB:-300000000}      25% /"
"#;

/// What `docker info` reports in a sandbox.
struct Docker {
    cgroup: &'static str,
    mem_gib: u64,
    root_dir: &'static str,
    rootless: bool,
}

const ROOMY_V1: Docker = Docker {
    cgroup: "1",
    mem_gib: 16,
    root_dir: "/var/lib/docker",
    rootless: false,
};

/// A sandbox whose fake `/proc` has these inotify limits and whose `docker info` says `docker`
/// (plus a stand-in `df`).
fn host_sandbox(watches: u64, instances: u64, docker: Docker) -> Sandbox {
    let sb = Sandbox::new();
    let root = sb.root.clone();
    write_script(&sb.bin.join("df"), STANDIN_DF);
    let inotify = root.join("proc/sys/fs/inotify");
    std::fs::create_dir_all(&inotify).unwrap();
    std::fs::write(inotify.join("max_user_watches"), format!("{watches}\n")).unwrap();
    std::fs::write(inotify.join("max_user_instances"), format!("{instances}\n")).unwrap();
    let info = serde_json::json!({
        "CgroupVersion": docker.cgroup,
        "CgroupDriver": if docker.cgroup == "2" { "systemd" } else { "cgroupfs" },
        "MemTotal": docker.mem_gib * 1024 * 1024 * 1024,
        "NCPU": 4,
        "DockerRootDir": docker.root_dir,
        "SecurityOptions": if docker.rootless {
            vec!["name=seccomp,profile=builtin", "name=rootless"]
        } else {
            vec!["name=seccomp,profile=builtin"]
        },
        "MemoryLimit": true, "PidsLimit": true, "CPUShares": true,
        "Name": "laptop",
        "OperatingSystem": "Ubuntu 22.04.3 LTS",
        "ServerVersion": "24.0.7",
    });
    std::fs::write(root.join("docker-info.json"), info.to_string()).unwrap();
    sb.env("E2E_PROC_ROOT", &root.join("proc").display().to_string())
        .env(
            "STANDIN_DOCKER_INFO",
            &root.join("docker-info.json").display().to_string(),
        )
}

/// What the host tests add to the shared sandbox.
trait HostSandbox {
    /// `kind create cluster` fails with `stderr`; `kind export logs` copies `nodes` (node name
    /// → [(file, lines)]) in kind's layout.
    fn failing_create(self, stderr: &str, nodes: &[NodeLogs]) -> Self;
    /// `kind export logs` writes the logs, then exits 1 with `stderr` (a collector failed).
    fn failing_export(self, stderr: &str) -> Self;
}

impl HostSandbox for Sandbox {
    fn failing_create(self, stderr: &str, nodes: &[NodeLogs]) -> Self {
        let stderr_file = self.root.join("create-stderr.txt");
        std::fs::write(&stderr_file, stderr).unwrap();
        let export = self.root.join("export");
        std::fs::create_dir_all(&export).unwrap();
        // Top-level files of kind's export (kind pkg/cluster/provider.go, docker provider CollectLogs).
        std::fs::write(export.join("kind-version.txt"), "v0.11.1").unwrap();
        std::fs::write(export.join("docker-info.txt"), "Server Version: 24.0.7\n").unwrap();
        for (node, files) in nodes {
            let dir = export.join(node);
            std::fs::create_dir_all(&dir).unwrap();
            // Per node (kind providers/common/logs.go): journals, serial log, the node's version.
            for f in ["kubelet.log", "containerd.log", "journal.log", "serial.log"] {
                std::fs::write(dir.join(f), "").unwrap();
            }
            std::fs::write(dir.join("kubernetes-version.txt"), "v1.21.1").unwrap();
            for (file, lines) in *files {
                // The journals are journalctl output; serial.log is the node's console as is.
                let text: Vec<String> = lines
                    .iter()
                    .map(|l| match *file {
                        "serial.log" => l.to_string(),
                        _ => format!(
                            "Nov 25 10:00:01 {node} {}[231]: {l}",
                            file.trim_end_matches(".log")
                        ),
                    })
                    .collect();
                std::fs::write(dir.join(file), text.join("\n") + "\n").unwrap();
            }
        }
        let (f, e) = (
            stderr_file.display().to_string(),
            export.display().to_string(),
        );
        self.env("STANDIN_CREATE_STDERR", &f)
            .env("STANDIN_EXPORT_FROM", &e)
    }

    fn failing_export(self, stderr: &str) -> Self {
        let file = self.root.join("export-stderr.txt");
        std::fs::write(&file, stderr).unwrap();
        let file = file.display().to_string();
        self.env("STANDIN_EXPORT_STDERR", &file)
    }
}

/// One node's exported log files: (node, [(file, journal messages)]).
type NodeLogs<'a> = (&'a str, &'a [(&'a str, &'a [&'a str])]);

const CP: &str = "pme2e-kind0-11-k8s1-21-control-plane";
const W1: &str = "pme2e-kind0-11-k8s1-21-worker";
const W2: &str = "pme2e-kind0-11-k8s1-21-worker2";

/// kind v0.11.1's message when kubeadm init fails on the control plane
/// (pkg/cluster/internal/create/actions/kubeadminit: "failed to init node with kubeadm").
const KUBEADM_INIT_FAILED: &str = "Creating cluster \"pme2e-kind0-11-k8s1-21\" ...\n \
✓ Ensuring node image (kindest/node:v1.21.1) 🖼\n ✓ Preparing nodes 📦 📦 📦\n ✗ Starting control-plane 🕹️\n\
ERROR: failed to create cluster: failed to init node with kubeadm: command \"docker exec --privileged pme2e-kind0-11-k8s1-21-control-plane kubeadm init --skip-phases=preflight --config=/kind/kubeadm.conf --skip-token-print --v=6\" failed with error: exit status 1\n\
Command Output: [kubelet-check] It seems like the kubelet isn't running or healthy.\n";

/// The finding, diagnose.json and summary.md agree; the cluster was deleted; nothing else remains.
#[track_caller]
fn assert_create_failed_with(sb: &Sandbox, out: &Output, cause: &str, quoted: &str, fix: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let err = stderr(out);
    let headline = format!("error[cluster-create-failed]: `kind create cluster` failed: {cause}");
    assert!(err.contains(&headline), "stderr lacks {headline:?}:\n{err}");
    assert!(
        err.contains(quoted),
        "stderr lacks the quoted line {quoted:?}:\n{err}"
    );
    assert!(err.contains(fix), "stderr lacks the fix {fix:?}:\n{err}");
    let artifacts = sb.run_dir().join("artifacts");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.join("diagnose.json")).expect("diagnose.json written"),
    )
    .unwrap();
    assert_eq!(json["verdict"], "broken");
    assert_eq!(json["findings"][0]["id"], "cluster-create-failed");
    assert!(
        json["findings"][0]["observed"]
            .as_str()
            .unwrap()
            .ends_with(cause),
        "{json}"
    );
    let summary = std::fs::read_to_string(sb.run_dir().join("summary.md")).unwrap();
    assert!(summary.contains(&headline), "{summary}");
    assert!(summary.contains("| [2/8] cluster | failed |"), "{summary}");
    // Logs exported once, before the delete; the run's cluster deleted; no kubeconfig left.
    let calls = sb.kind_calls();
    let exports: Vec<_> = calls
        .iter()
        .filter(|c| c.starts_with("export logs"))
        .collect();
    assert_eq!(exports.len(), 1, "{calls:?}");
    assert!(
        exports[0].starts_with(&format!(
            "export logs {}",
            artifacts.join("kind-logs").display()
        )),
        "{calls:?}"
    );
    assert!(
        calls
            .last()
            .unwrap()
            .starts_with("delete cluster --name pme2e-kind0-11-k8s1-21"),
        "{calls:?}"
    );
    assert!(!sb.run_dir().join("kubeconfig").exists());
}

#[test]
fn low_inotify_limits_warn_before_anything_is_created_and_name_the_failure() {
    // Ubuntu's defaults (kind known-issues: 8192 watches, 128 instances).
    let sb = host_sandbox(8192, 128, ROOMY_V1).failing_create(
        KUBEADM_INIT_FAILED,
        &[
            // kind known-issues "too many open files": the kubelet cannot watch files.
            (CP, &[("kubelet.log", &["E1125 10:00:03.1 231 kubelet.go:1384] \"Failed to start cAdvisor\" err=\"inotify_init: too many open files\""])]),
            (W1, &[("kubelet.log", &["I1125 10:00:02.0 231 server.go:440] \"Kubelet version\""])]),
            (W2, &[]),
        ],
    );
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    let err = stderr(&out);
    let warning = err
        .find("warning[host-inotify-low]: inotify limits are 8192 watches and 128 instances")
        .unwrap_or_else(|| panic!("no inotify warning:\n{err}"));
    let cluster = err.find("[2/8] cluster").expect("the cluster phase ran");
    assert!(
        warning < cluster,
        "the warning comes before anything is created:\n{err}"
    );
    assert!(
        err[warning..cluster].contains("sudo sysctl fs.inotify.max_user_watches=524288"),
        "{err}"
    );
    assert!(
        err.contains("    fs.inotify.max_user_instances = 128"),
        "{err}"
    );
    assert_create_failed_with(
        &sb,
        &out,
        "inotify limits too low",
        &format!("    {CP}/kubelet.log: Nov 25 10:00:01 {CP} kubelet[231]: E1125"),
        "raise the inotify limits",
    );
    let summary = std::fs::read_to_string(sb.run_dir().join("summary.md")).unwrap();
    assert!(summary.contains("warning[host-inotify-low]"), "{summary}");
}

#[test]
fn kind_0_11_on_cgroup_v2_warns_naming_the_newer_kind_cell() {
    let sb = host_sandbox(
        524_288,
        512,
        Docker {
            cgroup: "2",
            ..ROOMY_V1
        },
    )
    .failing_create(
        KUBEADM_INIT_FAILED,
        &[(
            CP,
            // kind issue 2731: containerd cannot write cpu.weight with an old node image on a new kernel.
            &[("containerd.log", &["time=\"2026-11-25T10:00:04Z\" level=error msg=\"RunPodSandbox failed\" error=\"OCI runtime create failed: writing cpu.weight: open /sys/fs/cgroup/kubelet/cpu.weight: no such file or directory: unknown\""])],
        )],
    );
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    let err = stderr(&out);
    assert!(
        err.contains("warning[host-cgroup-old-kind]: cell `kind0.11-k8s1.21` runs kind v0.11.1 on a cgroup-v2 Docker host"),
        "{err}"
    );
    assert!(
        err.contains(
            "`cargo xtask e2e --cell kind0.20-k8s1.21` (kind v0.20.0, Kubernetes v1.21.14)"
        ),
        "{err}"
    );
    assert_create_failed_with(
        &sb,
        &out,
        "new kernel with an old kind node image (kind issue 2731)",
        &format!("{CP}/containerd.log"),
        "`--cell kind0.20-k8s1.21`",
    );
}

#[test]
fn cgroup_v2_kubelet_failure_names_the_cause() {
    let sb = host_sandbox(524_288, 512, ROOMY_V1).failing_create(
        KUBEADM_INIT_FAILED,
        // kind known-issues (cgroups v2 section, before kind commit 846a2cc6).
        &[(CP, &[("kubelet.log", &["F1125 10:00:03.2 231 server.go:274] failed to run Kubelet: mountpoint for  not found"])])],
    );
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    assert_create_failed_with(
        &sb,
        &out,
        "cgroup v2 host with Kubernetes older than 1.19",
        "failed to run Kubelet: mountpoint for",
        "--cell kind0.20-k8s1.21",
    );
}

#[test]
fn docker_memory() {
    let sb = host_sandbox(
        524_288,
        512,
        Docker {
            mem_gib: 2,
            ..ROOMY_V1
        },
    )
    .failing_create(
        KUBEADM_INIT_FAILED,
        // containerd reports a container killed by the OOM killer.
        &[(W1, &[("containerd.log", &["time=\"2026-11-25T10:00:05Z\" level=info msg=\"container kube-proxy exited: OOMKilled\""])])],
    );
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    let err = stderr(&out);
    assert!(
        err.contains("warning[host-docker-memory-low]: Docker can use 2.0 GiB of memory; 3 nodes and Prometheus need about 2.9 GiB"),
        "{err}"
    );
    assert_create_failed_with(
        &sb,
        &out,
        "Docker ran out of memory",
        "OOMKilled",
        "give Docker more memory",
    );
}

#[test]
fn snap_docker() {
    let sb = host_sandbox(
        524_288,
        512,
        Docker {
            root_dir: "/var/snap/docker/common/var-lib-docker",
            ..ROOMY_V1
        },
    )
    .failing_create(
        // kind known-issues "Docker Installed With Snap": docker is denied paths outside $HOME.
        "Creating cluster \"pme2e-kind0-11-k8s1-21\" ...\n ✗ Preparing nodes 📦\n\
         ERROR: failed to create cluster: command \"docker run --name pme2e-kind0-11-k8s1-21-control-plane …\" failed with error: exit status 126\n\
         Command Output: docker: Error response from daemon: open /tmp/kind-config-123: permission denied.\n",
        &[],
    );
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    let err = stderr(&out);
    assert!(
        err.contains("warning[host-docker-snap]: Docker is installed as a snap"),
        "{err}"
    );
    assert_create_failed_with(
        &sb,
        &out,
        "Docker installed as a snap",
        "permission denied",
        "TMPDIR",
    );
}

#[test]
fn disk_full() {
    let sb = host_sandbox(524_288, 512, ROOMY_V1)
        .env("STANDIN_DF_AVAIL_KIB", "1048576")
        .failing_create(
            KUBEADM_INIT_FAILED,
            // kind known-issues "Failing to properly start cluster" (kind#156).
            &[(CP, &[("kubelet.log", &["I1125 10:00:06.1 231 eviction_manager.go:340] eviction manager: must evict pod(s) to reclaim ephemeral-storage"])])],
        );
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    let err = stderr(&out);
    assert!(
        err.contains("warning[host-disk-low]: 1.0 GiB free where Docker keeps its data"),
        "{err}"
    );
    assert!(read_lines(&sb.log.with_extension("log.df"))
        .contains(&"df -Pk /var/lib/docker".to_string()));
    assert_create_failed_with(
        &sb,
        &out,
        "disk full",
        "must evict pod(s)",
        "docker system prune",
    );
}

#[test]
fn exhausted_address_pools() {
    // Docker's IPAM error when kind creates its network (moby libnetwork); no node ever ran.
    let sb = host_sandbox(524_288, 512, ROOMY_V1).failing_create(
        "Creating cluster \"pme2e-kind0-11-k8s1-21\" ...\n\
         ERROR: failed to create cluster: failed to ensure docker network: command \"docker network create -d=bridge -o com.docker.network.bridge.enable_ip_masquerade=true --ipv6 --subnet fc00:f853:ccd:e793::/64 kind\" failed with error: exit status 1\n\
         Command Output: Error response from daemon: could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network\n",
        &[],
    );
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    assert_create_failed_with(
        &sb,
        &out,
        "Docker address pools exhausted",
        "kind: Command Output: Error response from daemon: could not find an available, non-overlapping IPv4 address pool",
        "docker network prune",
    );
}

#[test]
fn port_already_allocated() {
    // Docker's port allocator when a node publishes a port another container holds.
    let sb = host_sandbox(524_288, 512, ROOMY_V1).failing_create(
        "Creating cluster \"pme2e-kind0-11-k8s1-21\" ...\n ✗ Preparing nodes 📦 📦 📦\n\
         ERROR: failed to create cluster: command \"docker run --hostname pme2e-kind0-11-k8s1-21-control-plane --publish=127.0.0.1:6443:6443/TCP …\" failed with error: exit status 125\n\
         Command Output: docker: Error response from daemon: driver failed programming external connectivity on endpoint pme2e-kind0-11-k8s1-21-control-plane: Bind for 127.0.0.1:6443 failed: port is already allocated.\n",
        &[],
    );
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    assert_create_failed_with(
        &sb,
        &out,
        "port already allocated",
        "port is already allocated",
        "docker ps",
    );
}

#[test]
fn an_unknown_failure_gets_the_generic_finding_with_the_logs_path() {
    let sb = host_sandbox(524_288, 512, ROOMY_V1).failing_create(
        KUBEADM_INIT_FAILED,
        &[
            (CP, &[("kubelet.log", &["E1125 10:00:07.1 231 kubelet.go:2291] \"Error getting node\" err=\"something nobody has seen\""])]),
            (W1, &[]),
        ],
    );
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    let err = stderr(&out);
    assert!(
        !err.contains("warning["),
        "a healthy host warns about nothing:\n{err}"
    );
    assert_create_failed_with(
        &sb,
        &out,
        "cause not recognised",
        "something nobody has seen",
        "kubelet.log, containerd.log and serial.log",
    );
    let logs = sb.run_dir().join("artifacts/kind-logs");
    assert!(
        err.contains(&format!("exported node logs: {}", logs.display())),
        "{err}"
    );
    assert!(logs.join(CP).join("kubelet.log").exists());
}

/// A node whose entrypoint refused to boot is a stopped container: every `docker exec` collector
/// fails, so `kind export logs` exits 1 with their errors aggregated (kubernetes-sigs/kind
/// pkg/cluster/internal/providers/docker/provider.go CollectLogs@v0.11.1), after writing the
/// node's serial.log (`docker logs`). What it wrote is read, the cause named from serial.log, and
/// the failed export said.
#[test]
fn a_log_export_that_exits_non_zero_after_writing_is_read_and_serial_log_names_the_cause() {
    const NOT_RUNNING: &str = "Error response from daemon: Container 0a1b2c3d is not running";
    let sb = host_sandbox(524_288, 512, ROOMY_V1)
        .failing_create(
            "Creating cluster \"pme2e-kind0-11-k8s1-21\" ...\n ✗ Preparing nodes 📦 📦 📦\n\
             ERROR: failed to create cluster: could not find a log line that matches \"Reached target .*Multi-User System.*|detected cgroup v1\"\n",
            &[(
                CP,
                &[
                    ("kubelet.log", &[NOT_RUNNING]),
                    ("containerd.log", &[NOT_RUNNING]),
                    // kind's node entrypoint, validate_userns (images/base/files/usr/local/bin/entrypoint@v0.11.1).
                    ("serial.log", &["INFO: running in a user namespace (experimental)", "ERROR: UserNS: cpu controller needs to be delegated"]),
                ],
            )],
        )
        .failing_export(&format!(
            "ERROR: [command \"docker exec --privileged {CP} journalctl --no-pager\" failed with error: exit status 1, \
             command \"docker exec --privileged {CP} journalctl --no-pager -u kubelet.service\" failed with error: exit status 1]\n"
        ));
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    assert_create_failed_with(
        &sb,
        &out,
        "rootless Docker without cgroup v2 delegation",
        &format!("    {CP}/serial.log: ERROR: UserNS: cpu controller needs to be delegated"),
        "Delegate=yes",
    );
    let err = stderr(&out);
    assert!(
        err.contains(
            "`kind export logs` exited non-zero after writing them (some collectors failed): "
        ),
        "{err}"
    );
    assert!(err.contains("journalctl --no-pager"), "{err}");
    assert!(!err.contains("could not be exported"), "{err}");
    let logs = sb.run_dir().join("artifacts/kind-logs");
    assert!(logs.join(CP).join("serial.log").exists());
}

#[test]
fn keep_on_failure_keeps_the_failed_nodes() {
    let sb = host_sandbox(524_288, 512, ROOMY_V1).failing_create(KUBEADM_INIT_FAILED, &[(CP, &[])]);
    let out = sb.run(&["e2e", "--timeout", "5s", "--keep-on-failure"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("error[cluster-create-failed]"), "{err}");
    let calls = sb.kind_calls();
    assert!(!calls.iter().any(|c| c.starts_with("delete")), "{calls:?}");
    assert!(
        calls.iter().any(|c| c.starts_with("export logs")),
        "{calls:?}"
    );
}

#[test]
fn unreadable_facts_are_notes_and_never_block() {
    // No inotify files, and a `docker info` that prints no JSON (an old engine).
    let sb = host_sandbox(524_288, 512, ROOMY_V1).failing_create(KUBEADM_INIT_FAILED, &[]);
    std::fs::remove_dir_all(sb.root.join("proc/sys")).unwrap();
    std::fs::write(sb.root.join("docker-info.json"), "20.10.24\n").unwrap();
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    let err = stderr(&out);
    assert!(
        err.contains("note: inotify limits not checked: cannot read"),
        "{err}"
    );
    assert!(
        err.contains("note: Docker's cgroups, memory, disk, rootless and snap not checked"),
        "{err}"
    );
    assert!(err.contains("[2/8] cluster"), "the run went on:\n{err}");
}

/// `SecurityOptions: null` (moby daemon/info.go fillSecurityOptions@v24.0.7 leaves the slice nil
/// when no option is on) used to fail the decode and skip every Docker check.
#[test]
fn null_security_options_still_run_the_docker_checks() {
    let sb = host_sandbox(
        524_288,
        512,
        Docker {
            mem_gib: 2,
            ..ROOMY_V1
        },
    )
    .failing_create(KUBEADM_INIT_FAILED, &[]);
    let path = sb.root.join("docker-info.json");
    let mut info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    info["SecurityOptions"] = serde_json::Value::Null;
    std::fs::write(&path, info.to_string()).unwrap();
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    let err = stderr(&out);
    assert!(!err.contains("not checked"), "{err}");
    assert!(
        err.contains("warning[host-docker-memory-low]: Docker can use 2.0 GiB of memory"),
        "{err}"
    );
}

#[test]
fn dry_run_runs_no_host_check() {
    let sb = host_sandbox(8192, 128, ROOMY_V1);
    let out = sb.run(&["e2e", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("host-inotify-low"));
    assert!(read_lines(&sb.log.with_extension("log.docker")).is_empty());
    assert!(sb.kind_calls().is_empty());
}

#[test]
fn doctor_list_shows_the_new_findings() {
    let sb = host_sandbox(524_288, 512, ROOMY_V1);
    let out = sb.run(&["doctor", "--list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for id in [
        "host-inotify-low",
        "host-cgroup-old-kubernetes",
        "host-cgroup-old-kind",
        "host-docker-memory-low",
        "host-disk-low",
        "host-docker-rootless",
        "host-docker-snap",
        "cluster-create-failed",
    ] {
        assert!(
            table.contains(&format!("| `{id}` |")),
            "{id} missing:\n{table}"
        );
    }
    assert!(
        table.contains("| `host-cgroup-old-kubernetes` | error |"),
        "{table}"
    );
    assert!(
        table.contains("| `host-inotify-low` | warning |"),
        "{table}"
    );
}

#[test]
fn verbose_runs_stream_kinds_output_and_still_classify_it() {
    // With -v kind's stderr goes straight to the terminal; it is kept for the diagnosis too.
    let sb = host_sandbox(524_288, 512, ROOMY_V1).failing_create(
        "ERROR: failed to create cluster: failed to ensure docker network: command \"docker network create -d=bridge kind\" failed with error: exit status 1\n\
         Command Output: Error response from daemon: could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network\n",
        &[],
    );
    let out = sb.run(&["e2e", "--timeout", "5s", "-v"]);
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l
                .starts_with("ERROR: failed to create cluster: failed to ensure docker network")),
        "kind's output was not streamed:\n{err}"
    );
    assert_create_failed_with(
        &sb,
        &out,
        "Docker address pools exhausted",
        "non-overlapping IPv4 address pool",
        "docker network prune",
    );
}

#[test]
fn a_certain_failure_stops_preflight_and_creates_nothing() {
    // Rootless Docker on cgroup v1: kind's validateProvider would refuse it after we had begun.
    let sb = host_sandbox(
        8192,
        128,
        Docker {
            rootless: true,
            ..ROOMY_V1
        },
    );
    let out = sb.run(&["e2e", "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("preflight failed; nothing was created"),
        "{err}"
    );
    assert!(
        err.contains("the host checks found a certain failure"),
        "{err}"
    );
    assert!(
        err.contains("error[host-rootless-unsupported]: rootless Docker on a cgroup-v1 host"),
        "{err}"
    );
    assert!(err.contains("Delegate=yes"), "{err}");
    // The warnings found alongside are shown too, and nothing reached kind but its version.
    assert!(err.contains("warning[host-inotify-low]"), "{err}");
    assert!(!err.contains("[2/8] cluster"), "{err}");
    let calls = sb.kind_calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("create") || c.starts_with("delete") || c.starts_with("export")),
        "{calls:?}"
    );
    assert!(!sb.run_dir().exists(), "a run directory was left behind");
}
