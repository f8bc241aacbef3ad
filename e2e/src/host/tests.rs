use super::*;
use crate::diagnose::Severity;

const GIB: u64 = 1024 * 1024 * 1024;

/// A fake `/proc` with the given inotify limits.
fn proc_tree(watches: &str, instances: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let inotify = dir.path().join("sys/fs/inotify");
    std::fs::create_dir_all(&inotify).unwrap();
    std::fs::write(inotify.join("max_user_watches"), watches).unwrap();
    std::fs::write(inotify.join("max_user_instances"), instances).unwrap();
    dir
}

/// `docker info --format '{{json .}}'` of a healthy rootful cgroup-v2 engine (field names as
/// Docker 20.10+ prints them, the limits always present; unrelated fields included to show they
/// are ignored).
fn docker_json(cgroup: &str, mem: u64, root: &str, security: &[&str]) -> String {
    serde_json::json!({
        "ID": "x", "Containers": 3, "Driver": "overlay2",
        "CgroupDriver": if cgroup == "2" { "systemd" } else { "cgroupfs" },
        "CgroupVersion": cgroup, "MemTotal": mem, "NCPU": 4,
        "DockerRootDir": root, "SecurityOptions": security,
        "MemoryLimit": true, "PidsLimit": true, "CPUShares": true,
        "Name": "laptop", "OperatingSystem": "Ubuntu 22.04.3 LTS", "ServerVersion": "24.0.7",
    })
    .to_string()
}

fn facts(cgroup: &str, mem: u64, free: u64, watches: u64, instances: u64) -> HostFacts {
    HostFacts {
        inotify: Some(Inotify {
            max_user_watches: watches,
            max_user_instances: instances,
        }),
        docker: Some(
            DockerInfo::parse(&docker_json(
                cgroup,
                mem,
                "/var/lib/docker",
                &["name=seccomp,profile=builtin"],
            ))
            .unwrap(),
        ),
        docker_free: Some(free),
        notes: vec![],
    }
}

const THREE_NODES: Needs = Needs {
    control_planes: 1,
    workers: 2,
};

fn shipped() -> Matrix {
    Matrix::load_default().unwrap()
}

fn ids(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.id).collect()
}

/// The shipped matrix plus a Kubernetes 1.18 cell (allowed to fail: the parser refuses it otherwise).
fn with_k8s_1_18() -> Matrix {
    let mut text = std::fs::read_to_string(Matrix::default_path()).unwrap();
    text.push_str(
        r#"
[[cell]]
name = "kind0.11-k8s1.18"
kind_version = "v0.11.1"
node_image = "kindest/node:v1.18.19@sha256:7af1492e19b3192a79f606e43c35fb741e520d195f96399284515f077b3b622c"
kind_config = "fixtures/kind/cluster.yaml"
operator_version = "v0.48.1"
servicemonitor = "mission"
allowed_to_fail = true
note = "cgroup-v1 hosts only"
"#,
    );
    Matrix::parse(&text, "matrix.toml").unwrap()
}

#[test]
fn reads_inotify_limits_from_an_injected_proc_root() {
    let dir = proc_tree("8192\n", "128\n");
    assert_eq!(
        read_inotify(dir.path()).unwrap(),
        Inotify {
            max_user_watches: 8192,
            max_user_instances: 128
        }
    );
    let bad = proc_tree("lots", "128");
    let err = format!("{:#}", read_inotify(bad.path()).unwrap_err());
    assert!(
        err.contains("max_user_watches") && err.contains("lots"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    let err = format!("{:#}", read_inotify(empty.path()).unwrap_err());
    assert!(err.contains("sys/fs/inotify/max_user_watches"), "{err}");
}

#[test]
fn parses_docker_info_json() {
    let d = DockerInfo::parse(&docker_json(
        "2",
        8 * GIB,
        "/var/lib/docker",
        &["name=rootless"],
    ))
    .unwrap();
    assert_eq!(d.cgroup_version, "2");
    assert_eq!(d.cgroup_driver, "systemd");
    assert_eq!(d.mem_total, 8 * GIB);
    assert_eq!(d.ncpu, 4);
    assert!(d.rootless() && !d.snap() && !d.desktop());
    // Older engines print no CgroupVersion: it stays empty, the cgroup checks are skipped.
    let old = DockerInfo::parse(
        r#"{"MemTotal": 1, "DockerRootDir": "/var/snap/docker/common/var-lib-docker"}"#,
    )
    .unwrap();
    assert_eq!(old.cgroup_version, "");
    assert!(old.snap());
    let err = format!("{:#}", DockerInfo::parse("20.10.24").unwrap_err());
    assert!(err.contains("JSON") && err.contains("20.10.24"), "{err}");
}

/// `docker info --format '{{json .}}'` as Docker 24.0.7 prints it (every field of moby
/// api/types/types.go `Info`@v24.0.7, values from a rootful engine on a cgroup-v1 host without
/// AppArmor or seccomp): `SecurityOptions`, `Warnings` and `GenericResources` are Go nil slices,
/// so `null` (daemon/info.go `fillSecurityOptions` appends to a nil slice only when an option is
/// on).
const DOCKER_24_NULL_SECURITY_OPTIONS: &str = r#"{"ID":"b5f4c1c2-6d0e-4c39-9a4e-3a3d0c8e1f00","Containers":0,"ContainersRunning":0,"ContainersPaused":0,"ContainersStopped":0,"Images":3,"Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"],["Supports d_type","true"],["Using metacopy","false"],["Native Overlay Diff","true"],["userxattr","false"]],"Plugins":{"Volume":["local"],"Network":["bridge","host","ipvlan","macvlan","null","overlay"],"Authorization":null,"Log":["awslogs","fluentd","gcplogs","gelf","journald","json-file","local","logentries","splunk","syslog"]},"MemoryLimit":true,"SwapLimit":false,"KernelMemoryTCP":true,"CpuCfsPeriod":true,"CpuCfsQuota":true,"CPUShares":true,"CPUSet":true,"PidsLimit":true,"IPv4Forwarding":true,"BridgeNfIptables":true,"BridgeNfIp6tables":true,"Debug":false,"NFd":24,"OomKillDisable":true,"NGoroutines":35,"SystemTime":"2026-11-25T10:00:00.000000000Z","LoggingDriver":"json-file","CgroupDriver":"cgroupfs","CgroupVersion":"1","NEventsListener":0,"KernelVersion":"5.10.0-26-amd64","OperatingSystem":"Debian GNU/Linux 11 (bullseye)","OSVersion":"11","OSType":"linux","Architecture":"x86_64","IndexServerAddress":"https://index.docker.io/v1/","RegistryConfig":{"AllowNondistributableArtifactsCIDRs":null,"AllowNondistributableArtifactsHostnames":null,"InsecureRegistryCIDRs":["127.0.0.0/8"],"IndexConfigs":{"docker.io":{"Name":"docker.io","Mirrors":[],"Secure":true,"Official":true}},"Mirrors":null},"NCPU":2,"MemTotal":25216999424,"GenericResources":null,"DockerRootDir":"/var/lib/docker","HttpProxy":"","HttpsProxy":"","NoProxy":"","Name":"ci-runner","Labels":[],"ExperimentalBuild":false,"ServerVersion":"24.0.7","Runtimes":{"io.containerd.runc.v2":{"path":"runc"},"runc":{"path":"runc"}},"DefaultRuntime":"runc","Swarm":{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null},"LiveRestoreEnabled":false,"Isolation":"","InitBinary":"docker-init","ContainerdCommit":{"ID":"61f9fd88f79f081d64d6fa3bb1a0dc71ec870523","Expected":"61f9fd88f79f081d64d6fa3bb1a0dc71ec870523"},"RuncCommit":{"ID":"v1.1.9-0-gccaecfc","Expected":"v1.1.9-0-gccaecfc"},"InitCommit":{"ID":"de40ad0","Expected":"de40ad0"},"SecurityOptions":null,"Warnings":null,"ClientInfo":{"Debug":false,"Version":"24.0.7","GitCommit":"afdd53b","GoVersion":"go1.20.10","Os":"linux","Arch":"amd64","BuildTime":"Thu Oct 26 09:08:01 2023","Context":"default","Plugins":[],"Warnings":null}}"#;

/// Docker 20.10.24 rootless on cgroup v2 with delegation (moby api/types/types.go
/// `Info`@v20.10.24; rootless adds `name=rootless`, cgroup v2 `name=cgroupns`).
const DOCKER_20_10_ROOTLESS: &str = r#"{"ID":"QX7V:2XKD","Containers":1,"ContainersRunning":1,"ContainersPaused":0,"ContainersStopped":0,"Images":2,"Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"]],"Plugins":{"Volume":["local"],"Network":["bridge","host"],"Authorization":null,"Log":["json-file"]},"MemoryLimit":true,"SwapLimit":true,"KernelMemory":false,"KernelMemoryTCP":false,"CpuCfsPeriod":true,"CpuCfsQuota":true,"CPUShares":true,"CPUSet":true,"PidsLimit":true,"IPv4Forwarding":true,"BridgeNfIptables":false,"BridgeNfIp6tables":false,"Debug":false,"NFd":30,"OomKillDisable":false,"NGoroutines":40,"SystemTime":"2026-11-25T10:00:00.000000000Z","LoggingDriver":"json-file","CgroupDriver":"systemd","CgroupVersion":"2","NEventsListener":0,"KernelVersion":"6.1.0-13-amd64","OperatingSystem":"Debian GNU/Linux 12 (bookworm)","OSVersion":"12","OSType":"linux","Architecture":"x86_64","IndexServerAddress":"https://index.docker.io/v1/","RegistryConfig":null,"NCPU":8,"MemTotal":16656003072,"GenericResources":null,"DockerRootDir":"/home/dev/.local/share/docker","HttpProxy":"","HttpsProxy":"","NoProxy":"","Name":"laptop","Labels":[],"ExperimentalBuild":false,"ServerVersion":"20.10.24","Runtimes":{"runc":{"path":"runc"}},"DefaultRuntime":"runc","Swarm":{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null},"LiveRestoreEnabled":false,"Isolation":"","InitBinary":"docker-init","ContainerdCommit":{"ID":"x","Expected":"x"},"RuncCommit":{"ID":"x","Expected":"x"},"InitCommit":{"ID":"x","Expected":"x"},"SecurityOptions":["name=seccomp,profile=default","name=rootless","name=cgroupns"],"Warnings":["WARNING: No cpuset support"]}"#;

#[test]
fn real_docker_info_shapes_parse_null_security_options_included() {
    let d = DockerInfo::parse(DOCKER_24_NULL_SECURITY_OPTIONS).expect("null SecurityOptions");
    assert!(d.security_options.is_empty());
    assert!(!d.rootless());
    assert_eq!(d.cgroup_version, "1");
    assert_eq!(d.mem_total, 25_216_999_424);
    assert_eq!(d.docker_root_dir, "/var/lib/docker");
    // So the host checks run: a rootful cgroup-v1 engine has no finding for the 1.27 cell.
    let m = shipped();
    let h = HostFacts {
        docker: Some(d),
        docker_free: Some(100 * GIB),
        ..HostFacts::default()
    };
    assert!(assess(&h, &m, m.cell("kind0.20-k8s1.27").unwrap(), THREE_NODES).is_empty());

    let d = DockerInfo::parse(DOCKER_20_10_ROOTLESS).unwrap();
    assert!(d.rootless());
    assert_eq!(
        (d.memory_limit, d.pids_limit, d.cpu_shares),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(d.rootless_refusal(), None);
    // The same engine before Docker 20.10 printed no CgroupVersion, and no limits.
    let old = DOCKER_20_10_ROOTLESS
        .replace(r#""CgroupVersion":"2","#, "")
        .replace(r#""MemoryLimit":true,"#, "");
    let d = DockerInfo::parse(&old).unwrap();
    assert!(d.rootless_refusal().is_some());
}

#[test]
fn parses_df_posix_output() {
    let out = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n/dev/nvme0n1p2   490617784 402155308  63466956      87% /\n";
    assert_eq!(parse_df(out), Some(63_466_956 * 1024));
    assert_eq!(parse_df("garbage"), None);
}

#[test]
fn a_healthy_host_has_no_findings() {
    let m = shipped();
    let cell = m.cell("kind0.20-k8s1.21").unwrap();
    let f = assess(
        &facts("2", 16 * GIB, 100 * GIB, 524_288, 512),
        &m,
        cell,
        THREE_NODES,
    );
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn low_inotify_limits_warn_with_the_sysctl_fix() {
    let m = shipped();
    let f = assess(
        &facts("1", 16 * GIB, 100 * GIB, 8192, 128),
        &m,
        m.default_cell(),
        THREE_NODES,
    );
    assert_eq!(ids(&f), ["host-inotify-low"]);
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(!blocks(&f));
    assert!(f[0]
        .evidence
        .contains(&"fs.inotify.max_user_watches = 8192".to_string()));
    assert!(
        f[0].fix
            .contains("sysctl fs.inotify.max_user_watches=524288")
            && f[0].fix.contains("fs.inotify.max_user_instances=512"),
        "{}",
        f[0].fix
    );
    // Either limit alone is enough to warn.
    let f = assess(
        &facts("1", 16 * GIB, 100 * GIB, 524_288, 128),
        &m,
        m.default_cell(),
        THREE_NODES,
    );
    assert_eq!(ids(&f), ["host-inotify-low"]);
}

#[test]
fn kind_0_11_on_cgroup_v2_warns_and_names_the_newer_kind_cell() {
    let m = shipped();
    let f = assess(
        &facts("2", 16 * GIB, 100 * GIB, 524_288, 512),
        &m,
        m.default_cell(),
        THREE_NODES,
    );
    assert_eq!(ids(&f), ["host-cgroup-old-kind"]);
    assert!(!blocks(&f));
    assert!(f[0].fix.contains("--cell kind0.20-k8s1.21"), "{}", f[0].fix);
    // kind v0.11.1 with Kubernetes 1.20 has no newer-kind twin: the catalogue's fix stays.
    let cell_1_20 = m.cell("kind0.11-k8s1.20").unwrap();
    let f = assess(
        &facts("2", 16 * GIB, 100 * GIB, 524_288, 512),
        &m,
        cell_1_20,
        THREE_NODES,
    );
    assert_eq!(ids(&f), ["host-cgroup-old-kind"]);
    assert_eq!(f[0].fix, catalogue::HOST_CGROUP_V2_OLD_KIND.fix);
    // On cgroup v1 kind v0.11.1 is fine.
    let f = assess(
        &facts("1", 16 * GIB, 100 * GIB, 524_288, 512),
        &m,
        m.default_cell(),
        THREE_NODES,
    );
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn kubernetes_below_1_19_on_cgroup_v2_is_refused() {
    let m = with_k8s_1_18();
    let cell = m.cell("kind0.11-k8s1.18").unwrap();
    let f = assess(
        &facts("2", 16 * GIB, 100 * GIB, 8192, 128),
        &m,
        cell,
        THREE_NODES,
    );
    assert_eq!(ids(&f), ["host-cgroup-old-kubernetes", "host-inotify-low"]);
    assert_eq!(f[0].severity, Severity::Error);
    assert!(blocks(&f));
    assert!(f[0].observed.contains("v1.18.19"), "{}", f[0].observed);
    assert!(f[0].fix.contains("--cell kind0.20-k8s1.21"), "{}", f[0].fix);
    // The same cell on cgroup v1 is what it is for.
    let f = assess(
        &facts("1", 16 * GIB, 100 * GIB, 524_288, 512),
        &m,
        cell,
        THREE_NODES,
    );
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn memory_for_three_nodes_and_prometheus() {
    assert_eq!(THREE_NODES.memory_mib(), 1700 + 2 * 512 + 200);
    let m = shipped();
    let cell = m.cell("kind0.20-k8s1.27").unwrap();
    let f = assess(
        &facts("2", 2 * GIB, 100 * GIB, 524_288, 512),
        &m,
        cell,
        THREE_NODES,
    );
    assert_eq!(ids(&f), ["host-docker-memory-low"]);
    assert!(
        f[0].observed.contains("2.0 GiB") && f[0].observed.contains("3 nodes"),
        "{}",
        f[0].observed
    );
    assert!(f[0].fix.contains("2.9 GiB"), "{}", f[0].fix);
    // A single-node config needs less.
    let one = Needs {
        control_planes: 1,
        workers: 0,
    };
    assert!(assess(&facts("2", 2 * GIB, 100 * GIB, 524_288, 512), &m, cell, one).is_empty());
}

#[test]
fn low_disk_rootless_and_snap_are_noted() {
    let m = shipped();
    let cell = m.cell("kind0.20-k8s1.27").unwrap();
    let f = assess(
        &facts("2", 16 * GIB, 2 * GIB, 524_288, 512),
        &m,
        cell,
        THREE_NODES,
    );
    assert_eq!(ids(&f), ["host-disk-low"]);
    assert!(f[0].evidence[0].contains("/var/lib/docker"), "{f:?}");
    assert!(f[0].fix.contains("docker system prune"));

    let mut h = facts("2", 16 * GIB, 100 * GIB, 524_288, 512);
    let d = h.docker.as_mut().unwrap();
    d.security_options = vec![
        "name=seccomp,profile=builtin".into(),
        "name=rootless".into(),
    ];
    d.docker_root_dir = "/var/snap/docker/common/var-lib-docker".into();
    let f = assess(&h, &m, cell, THREE_NODES);
    assert_eq!(ids(&f), ["host-docker-rootless", "host-docker-snap"]);
    assert!(!blocks(&f));
    assert!(f[1].fix.contains("TMPDIR"), "{}", f[1].fix);
}

#[test]
fn missing_facts_skip_their_checks() {
    let m = shipped();
    let none = HostFacts::default();
    assert!(assess(&none, &m, m.default_cell(), THREE_NODES).is_empty());
    let text = render(&[], &["inotify limits not checked: x".into()]);
    assert_eq!(text, "note: inotify limits not checked: x\n");
}

#[test]
fn gather_reads_the_injected_proc_root() {
    // Docker may or may not run here; the inotify fact comes from the fake tree either way.
    let dir = proc_tree("8192", "128");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let facts = rt.block_on(gather(dir.path(), Duration::from_secs(20)));
    assert_eq!(
        facts.inotify,
        Some(Inotify {
            max_user_watches: 8192,
            max_user_instances: 128
        })
    );
}

#[test]
fn versions() {
    assert_eq!(parse_version("v1.21.1"), Some((1, 21, 1)));
    assert_eq!(parse_version("v0.20.0"), Some((0, 20, 0)));
    assert_eq!(parse_version("v1.27"), Some((1, 27, 0)));
    assert_eq!(parse_version("latest"), None);
    let m = shipped();
    assert_eq!(
        cgroup_v2_twin(&m, m.default_cell()).map(|c| c.name.as_str()),
        Some("kind0.20-k8s1.21")
    );
    assert_eq!(
        suggested_cell(&m, m.cell("kind0.11-k8s1.19").unwrap()).map(|c| c.name.as_str()),
        Some("kind0.20-k8s1.21")
    );
}

#[test]
fn rootless_docker_that_kind_refuses_is_refused_here() {
    let m = shipped();
    let cell = m.cell("kind0.20-k8s1.27").unwrap();
    let rootless = |cgroup: &str, driver: &str, limits: Option<bool>| {
        let mut h = facts(cgroup, 16 * GIB, 100 * GIB, 524_288, 512);
        let d = h.docker.as_mut().unwrap();
        d.security_options = vec![
            "name=seccomp,profile=builtin".into(),
            "name=rootless".into(),
        ];
        d.cgroup_driver = driver.into();
        (d.memory_limit, d.pids_limit, d.cpu_shares) = (limits, limits, limits);
        assess(&h, &m, cell, THREE_NODES)
    };
    // cgroup v1: kind's validateProvider refuses rootless providers.
    let f = rootless("1", "cgroupfs", Some(true));
    assert_eq!(ids(&f), ["host-rootless-unsupported"]);
    assert!(blocks(&f));
    assert!(f[0].observed.contains("cgroup-v1"), "{}", f[0].observed);
    assert!(f[0].fix.contains("Delegate=yes"), "{}", f[0].fix);
    // cgroup v2 without delegated controllers, or with driver "none" (limits meaningless).
    assert_eq!(
        ids(&rootless("2", "systemd", Some(false))),
        ["host-rootless-unsupported"]
    );
    assert_eq!(
        ids(&rootless("2", "none", Some(true))),
        ["host-rootless-unsupported"]
    );
    // cgroup v2 with delegation: supported, only noted.
    let f = rootless("2", "systemd", Some(true));
    assert_eq!(ids(&f), ["host-docker-rootless"]);
    assert!(!blocks(&f));
    // kind decodes the limits into plain bools: missing ones are false, so refused.
    assert_eq!(
        ids(&rootless("2", "systemd", None)),
        ["host-rootless-unsupported"]
    );
    // kind's Cgroup2 is `CgroupVersion == "2"`: an engine that does not say is refused too.
    let f = rootless("", "cgroupfs", Some(true));
    assert_eq!(ids(&f), ["host-rootless-unsupported"]);
    assert!(
        f[0].observed.contains("does not report cgroup v2"),
        "{}",
        f[0].observed
    );
    // The JSON field names are Docker's.
    let d = DockerInfo::parse(r#"{"MemoryLimit": true, "PidsLimit": false, "CPUShares": true}"#)
        .unwrap();
    assert_eq!(
        (d.memory_limit, d.pids_limit, d.cpu_shares),
        (Some(true), Some(false), Some(true))
    );
}
