//! `cargo xtask e2e/down/ls` end to end, without a real cluster: stand-in `kind` and `docker`
//! executables (shell scripts first on PATH) record their arguments and fail on demand, and
//! `E2E_WORK_DIR` points every run at a temp dir so tests never meet real runs.
//!
//! The stand-in `kind create` writes a kubeconfig for https://127.0.0.1:1, so the first kube call
//! (waiting for nodes) fails deterministically: that is the "failure in a later phase".

mod common;

use common::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const GOLDEN: &str = "fixtures/golden/e2e-dry-run.txt";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Bad input: non-zero exit, the expected message, no kind create/delete, no run directory.
#[track_caller]
fn assert_rejected_cleanly(sb: &Sandbox, out: &Output, needles: &[&str]) {
    assert!(!out.status.success(), "expected failure");
    let err = stderr(out);
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    let calls = sb.kind_calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("create") || c.starts_with("delete")),
        "kind was asked to create or delete: {calls:?}"
    );
    assert!(
        !sb.kubeconfig().exists(),
        "a kubeconfig was left at {}",
        sb.kubeconfig().display()
    );
    assert!(
        !sb.run_dir().exists(),
        "a run directory was left at {}",
        sb.run_dir().display()
    );
}

// ---------------------------------------------------------------------------------------------
// --dry-run

#[test]
fn dry_run_of_the_default_cell_matches_the_golden_file() {
    // A Docker that is down proves the dry run needs none.
    let sb = Sandbox::new().env("STANDIN_DOCKER_DOWN", "1");
    let mut cmd = sb.command(&["e2e", "--dry-run"]);
    cmd.env_remove("E2E_WORK_DIR"); // paths show as target/e2e/…, as users see them
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let root = workspace_root().display().to_string();
    assert!(!text.contains(&root), "absolute path in the plan:\n{text}");
    assert!(
        sb.kind_calls().is_empty() && sb.docker_calls().is_empty(),
        "dry run ran kind or docker"
    );

    let golden = workspace_root().join(GOLDEN);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{GOLDEN}: {e}; create it with `UPDATE_GOLDEN=1 cargo test -p xtask --test cli golden`"
        )
    });
    assert!(
        text == expected,
        "`cargo xtask e2e --dry-run` differs from {GOLDEN}; if the change is intended, review it and run \
         `UPDATE_GOLDEN=1 cargo test -p xtask --test cli golden`\n--- got\n{text}"
    );
}

#[test]
fn dry_run_works_for_every_cell_and_touches_nothing() {
    let sb = Sandbox::new().env("STANDIN_DOCKER_DOWN", "1");
    let m = matrix();
    for cell in &m.cells {
        let out = sb.run(&["e2e", "--dry-run", "--cell", &cell.name]);
        assert!(out.status.success(), "{}: {}", cell.name, stderr(&out));
        let text = stdout(&out);
        // A cell with a stack applies it instead of the bundle and our ServiceMonitor.
        let applied = match &cell.stack {
            None => [
                cell.operator_bundle_sha256.clone(),
                cell.servicemonitor.manifest().to_string(),
            ],
            Some(stack) => [
                format!("the stack {}", stack.display()),
                "wait until each of".to_string(),
            ],
        };
        for needle in [
            cell.name.as_str(),
            cell.node_image.as_str(),
            cell.kind_sha256["linux-amd64"].as_str(),
            applied[0].as_str(),
            applied[1].as_str(),
            &cell.default_cluster_name(),
            &format!(
                "kind/releases/download/{}/kind-linux-amd64",
                cell.kind_version
            ),
        ] {
            assert!(
                text.contains(needle),
                "{}: plan lacks {needle:?}:\n{text}",
                cell.name
            );
        }
    }
    assert!(sb.kind_calls().is_empty() && sb.docker_calls().is_empty());
    assert_eq!(
        std::fs::read_dir(&sb.work).unwrap().count(),
        0,
        "dry run wrote into the work dir"
    );
}

#[test]
fn dry_run_shows_the_flags_effects() {
    let sb = Sandbox::new();
    let kc = sb.write("existing.kubeconfig", "x");
    let out = sb.run(&["e2e", "--dry-run", "--kubeconfig", kc.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.contains("kind create") && !text.contains("kind delete"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "cargo xtask assert --kubeconfig {} ",
            kc.display()
        )),
        "{text}"
    );

    let out = sb.run(&["e2e", "--dry-run", "--keep", "--name", "pme2e-mine"]);
    let text = stdout(&out);
    assert!(
        text.contains("--name pme2e-mine") && !text.contains("kind delete"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Lifecycle wiring

#[test]
fn a_later_failure_exports_logs_then_deletes_the_cluster() {
    let sb = Sandbox::new();
    let out = sb.run(&["e2e", "--timeout", "3s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let name = default_name();
    let kubeconfig = sb.kubeconfig().display().to_string();
    let artifacts = sb.run_dir().join("artifacts");
    let m = matrix();
    let config = workspace_root().join(&m.default_cell().kind_config);
    let image = &m.default_cell().node_image;
    assert_eq!(
        sb.kind_calls(),
        vec![
            "version".to_string(),
            "get clusters".to_string(),
            format!(
                "create cluster --name {name} --config {} --image {image} --kubeconfig {kubeconfig} --wait 120s --retain",
                config.display()
            ),
            format!("export logs {} --name {name}", artifacts.join("kind-logs").display()),
            format!("delete cluster --name {name} --kubeconfig {kubeconfig}"),
        ]
    );
    // kind never falls back to ~/.kube/config (`kind version`, the first call, reads no kubeconfig).
    let seen = sb.kind_kubeconfigs();
    assert!(
        seen.len() == 5 && seen[1..].iter().all(|k| *k == kubeconfig),
        "{seen:?}"
    );
    let err = stderr(&out);
    assert!(err.contains("[2/8] cluster FAILED"), "{err}");
    assert!(
        err.contains(&format!("artifacts: {}", artifacts.display())),
        "{err}"
    );
    assert!(artifacts.join("kind-logs/standin.log").exists());
    assert!(
        !sb.kubeconfig().exists(),
        "kubeconfig of a deleted cluster left behind"
    );
    let summary = std::fs::read_to_string(sb.run_dir().join("summary.md")).unwrap();
    assert!(
        summary.contains("FAILED") && summary.contains("| [1/8] preflight | ok |"),
        "{summary}"
    );
    assert!(summary.contains("| [2/8] cluster | failed |"), "{summary}");
    assert!(sb
        .docker_calls()
        .iter()
        .any(|c| c.starts_with("docker info")));
}

#[test]
fn keep_and_keep_on_failure_never_delete() {
    for flag in ["--keep", "--keep-on-failure"] {
        let sb = Sandbox::new();
        let out = sb.run(&["e2e", "--timeout", "3s", flag]);
        assert_eq!(out.status.code(), Some(1), "{flag}");
        let calls = sb.kind_calls();
        assert!(
            calls.iter().any(|c| c.starts_with("create cluster")),
            "{flag}: {calls:?}"
        );
        assert!(
            calls.iter().any(|c| c.starts_with("export logs")),
            "{flag}: {calls:?}"
        );
        assert!(
            !calls.iter().any(|c| c.starts_with("delete")),
            "{flag}: {calls:?}"
        );
        assert!(
            sb.kubeconfig().exists(),
            "{flag}: the kept cluster's kubeconfig is gone"
        );
        let err = stderr(&out);
        assert!(
            err.contains(&format!("export KUBECONFIG={}", sb.kubeconfig().display())),
            "{flag}: {err}"
        );
    }
}

#[test]
fn an_external_kubeconfig_is_never_created_or_deleted() {
    let sb = Sandbox::new();
    // Its current context names no cluster, so building the client (phase 2) fails.
    let kc_text = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts:\n- name: c\n  context: {cluster: gone, user: u}\n\
                   current-context: c\nusers:\n- name: u\n  user: {}\n";
    let kc = sb.write("real-cluster.kubeconfig", kc_text);
    let out = sb.run(&[
        "e2e",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--timeout",
        "3s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        sb.kind_calls().is_empty(),
        "kind was called: {:?}",
        sb.kind_calls()
    );
    assert!(
        sb.docker_calls().is_empty(),
        "docker was called: {:?}",
        sb.docker_calls()
    );
    assert_eq!(
        std::fs::read_to_string(&kc).unwrap(),
        kc_text,
        "the given kubeconfig was modified"
    );
    let err = stderr(&out);
    assert!(
        err.contains("[2/8] cluster FAILED") && err.contains("not ours to delete"),
        "{err}"
    );
}

#[test]
fn reuse_uses_an_existing_cluster_and_never_deletes_it() {
    let name = default_name();
    let sb = Sandbox::new().env("STANDIN_CLUSTERS", &format!("kind {name}"));
    let out = sb.run(&["e2e", "--reuse", "--timeout", "3s"]);
    assert_eq!(out.status.code(), Some(1));
    let calls = sb.kind_calls();
    assert!(
        calls.contains(&format!("get kubeconfig --name {name}")),
        "{calls:?}"
    );
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("create") || c.starts_with("delete")),
        "{calls:?}"
    );
    assert!(sb.kubeconfig().exists());
}

#[test]
fn an_existing_cluster_without_reuse_is_refused_in_preflight() {
    let name = default_name();
    let sb = Sandbox::new().env("STANDIN_CLUSTERS", &name);
    let out = sb.run(&["e2e"]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &[
            "already exists",
            "--reuse",
            &format!("cargo xtask down --name {name}"),
        ],
    );
}

#[test]
fn a_failing_kind_create_still_deletes_what_it_left() {
    // With --retain a failed create leaves node containers: the run created them, so it deletes them.
    let sb = Sandbox::new().env("STANDIN_KIND_FAIL", "create");
    let out = sb.run(&["e2e", "--timeout", "3s"]);
    assert_eq!(out.status.code(), Some(1));
    let calls = sb.kind_calls();
    assert!(
        calls.last().unwrap().starts_with("delete cluster"),
        "{calls:?}"
    );
    assert!(
        stderr(&out).contains("failing 'create cluster"),
        "{}",
        stderr(&out)
    );
}

/// Starts `xtask e2e <args>` with a `kind create` that hangs, sends SIGINT once create runs (to
/// xtask alone, or to its whole process group as a terminal's Ctrl-C does) and waits for the exit.
fn interrupt_during_create(
    sb: &Sandbox,
    args: &[&str],
    whole_group: bool,
) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt;
    let mut child = sb
        .command(args)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sb
        .kind_calls()
        .iter()
        .any(|c| c.starts_with("create cluster"))
    {
        assert!(Instant::now() < deadline, "kind create never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The shell builtin `kill`: no procps needed. `-PID` is the process group.
    let target = if whole_group {
        format!("-{}", child.id())
    } else {
        child.id().to_string()
    };
    let status = Command::new("/bin/sh")
        .args(["-c", &format!("kill -INT {target}")])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "xtask did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn ctrl_c_during_create_deletes_the_cluster_and_exits_130() {
    for whole_group in [false, true] {
        let sb = Sandbox::new().env("STANDIN_CREATE_SLEEP", "30");
        let (code, err) = interrupt_during_create(&sb, &["e2e"], whole_group);
        assert_eq!(code, Some(130), "whole_group={whole_group}: {err}");
        let calls = sb.kind_calls();
        let delete = format!("delete cluster --name {}", default_name());
        assert!(
            calls.last().unwrap().starts_with(&delete),
            "whole_group={whole_group}: {calls:?}"
        );
        assert!(
            !calls.iter().any(|c| c.starts_with("export logs")),
            "{calls:?}"
        );
        assert!(err.contains("interrupted (Ctrl-C)"), "{err}");
        assert!(!sb.kubeconfig().exists());
    }
}

#[test]
fn ctrl_c_with_keep_keeps_the_cluster() {
    let sb = Sandbox::new().env("STANDIN_CREATE_SLEEP", "30");
    let (code, err) = interrupt_during_create(&sb, &["e2e", "--keep"], true);
    assert_eq!(code, Some(130), "{err}");
    assert!(
        !sb.kind_calls().iter().any(|c| c.starts_with("delete")),
        "{:?}",
        sb.kind_calls()
    );
    assert!(err.contains("export KUBECONFIG="), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Bad inputs: a clear error, a non-zero exit, nothing created and nothing left.

#[test]
fn unknown_cell() {
    let sb = Sandbox::new();
    let out = sb.run(&["e2e", "--cell", "no-such-cell"]);
    assert_rejected_cleanly(&sb, &out, &["no-such-cell", &matrix().default_cell().name]);
    assert!(sb.kind_calls().is_empty());
}

#[test]
fn unreadable_kind_config() {
    let sb = Sandbox::new();
    let missing = sb.root.join("missing.yaml");
    let out = sb.run(&["e2e", "--kind-config", missing.to_str().unwrap()]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &[
            "cannot read kind config",
            "missing.yaml",
            "preflight failed",
        ],
    );
    assert!(sb.docker_calls().is_empty() && sb.kind_calls().is_empty());
}

#[test]
fn malformed_kind_config() {
    let sb = Sandbox::new();
    let bad = sb.write(
        "bad.yaml",
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n  labelz: {}\n",
    );
    let out = sb.run(&["e2e", "--kind-config", bad.to_str().unwrap()]);
    assert_rejected_cleanly(&sb, &out, &["bad.yaml", "labelz", "line 6"]);
    assert!(sb.kind_calls().is_empty());
}

#[test]
fn docker_not_running() {
    let sb = Sandbox::new().env("STANDIN_DOCKER_DOWN", "1");
    let out = sb.run(&["e2e"]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &[
            "Docker is not running",
            "Cannot connect to the Docker daemon",
        ],
    );
    assert_eq!(sb.docker_calls().len(), 1);
    assert!(sb.kind_calls().is_empty());
}

#[test]
fn kind_missing_and_not_downloadable() {
    let m = matrix();
    let cell = m.default_cell();
    let sb = Sandbox::with(false).env("E2E_KIND_URL", "http://127.0.0.1:1/kind-linux-amd64");
    let out = sb.run(&["e2e"]);
    let sha = &cell.kind_sha256["linux-amd64"];
    assert_rejected_cleanly(
        &sb,
        &out,
        &[
            "kind v0.11.1 is not available",
            "http://127.0.0.1:1/kind-linux-amd64",
            sha,
            "sha256sum -c",
            "tools/kind-v0.11.1",
        ],
    );
    assert!(!sb.work.join("tools").exists());
}

#[test]
fn kind_of_another_version_on_path_is_not_used() {
    let sb = Sandbox::new()
        .env("STANDIN_KIND_VERSION", "v0.20.0")
        .env("E2E_KIND_URL", "http://127.0.0.1:1/kind-linux-amd64");
    let out = sb.run(&["e2e"]);
    assert_rejected_cleanly(&sb, &out, &["reports `kind v0.20.0", "not v0.11.1"]);
    assert_eq!(sb.kind_calls(), vec!["version"]);
}

#[test]
fn checksum_mismatch_of_a_download_is_refused_and_nothing_kept() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/kind-linux-amd64", listener.local_addr().unwrap());
    let body = b"#!/bin/sh\necho not kind\n";
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let mut request = Vec::new();
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
    });
    let sb = Sandbox::with(false).env("E2E_KIND_URL", &url);
    let out = sb.run(&["e2e"]);
    server.join().unwrap();
    let actual = e2e::pins::sha256_hex(body);
    let m = matrix();
    let expected = &m.default_cell().kind_sha256["linux-amd64"];
    assert_rejected_cleanly(
        &sb,
        &out,
        &[
            "refusing the kind binary downloaded from",
            &url,
            &actual,
            expected,
        ],
    );
    assert!(
        !sb.work.join("tools/kind-v0.11.1").exists()
            && !sb.work.join("tools/kind-v0.11.1.part").exists()
    );
}

#[test]
fn checksum_mismatch_of_a_cached_binary_deletes_it() {
    let sb = Sandbox::with(false).env("E2E_KIND_URL", "http://127.0.0.1:1/kind-linux-amd64");
    let cached = sb.work.join("tools/kind-v0.11.1");
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    write_script(&cached, "#!/bin/sh\necho tampered\n");
    let out = sb.run(&["e2e"]);
    let m = matrix();
    let expected = &m.default_cell().kind_sha256["linux-amd64"];
    assert_rejected_cleanly(
        &sb,
        &out,
        &["is not kind v0.11.1", expected, "the file was deleted"],
    );
    assert!(!cached.exists(), "the mismatching binary was kept");
}

#[test]
fn names_without_the_prefix_are_refused() {
    let sb = Sandbox::new();
    let out = sb.run(&["e2e", "--name", "production"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not start with `pme2e-`"),
        "{}",
        stderr(&out)
    );
    assert!(sb.kind_calls().is_empty() && std::fs::read_dir(&sb.work).unwrap().count() == 0);
}

#[test]
fn unreadable_operator_bundle() {
    let sb = Sandbox::new();
    let out = sb.run(&["e2e", "--operator-bundle", "/nonexistent/bundle.yaml"]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &["--operator-bundle", "/nonexistent/bundle.yaml"],
    );
}

#[test]
fn a_zero_duration_is_refused_under_the_flag_that_gave_it() {
    let sb = Sandbox::new();
    for (args, flag, other) in [
        (
            &["e2e", "--dry-run", "--timeout", "0s"][..],
            "--timeout",
            "--deadline",
        ),
        (
            &[
                "check",
                "--prometheus",
                "http://127.0.0.1:9",
                "--pods",
                "p.json",
                "--deadline",
                "0",
            ][..],
            "--deadline",
            "--timeout",
        ),
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(flag) && err.contains("must be more than 0s"),
            "{err}"
        );
        assert!(!err.contains(other), "{err}");
    }
}

#[test]
fn help_names_the_command_users_type() {
    let out = Sandbox::new().run(&["--help"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Usage: cargo xtask <COMMAND>"),
        "{}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// down and ls

#[test]
fn down_deletes_only_harness_clusters() {
    let sb = Sandbox::new().env("STANDIN_CLUSTERS", "kind pme2e-old");
    let out = sb.run(&["down", "--name", "kind"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refusing to delete `kind`"),
        "{}",
        stderr(&out)
    );
    assert!(sb.kind_calls().is_empty());

    let out = sb.run(&["down", "--name", "pme2e-old"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let kubeconfig = sb.work.join("pme2e-old/kubeconfig");
    assert_eq!(
        sb.kind_calls(),
        vec![
            "get clusters".to_string(),
            format!(
                "delete cluster --name pme2e-old --kubeconfig {}",
                kubeconfig.display()
            )
        ]
    );
    assert!(
        !sb.work.join("pme2e-old").exists(),
        "down left the run directory kind's kubeconfig lock created"
    );

    let out = sb.run(&["down", "--name", "pme2e-absent"]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("nothing to delete"));
    assert!(!sb.kind_calls().iter().any(|c| c.contains("pme2e-absent")));
}

#[test]
fn ls_lists_harness_clusters_only() {
    let sb = Sandbox::new().env("STANDIN_CLUSTERS", "kind pme2e-a other pme2e-b");
    std::fs::create_dir_all(sb.work.join("pme2e-a")).unwrap();
    std::fs::write(sb.work.join("pme2e-a/kubeconfig"), "x").unwrap();
    let out = sb.run(&["ls"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0],
        format!(
            "pme2e-a\tKUBECONFIG={}",
            sb.work.join("pme2e-a/kubeconfig").display()
        )
    );
    assert_eq!(lines[1], "pme2e-b");
}

#[test]
fn a_platform_without_a_pinned_kind_needs_kind_on_path() {
    // The right version on PATH is enough…
    let sb = Sandbox::new().env("E2E_KIND_PLATFORM", "plan9-amd64");
    let out = sb.run(&["e2e", "--timeout", "3s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(sb
        .kind_calls()
        .iter()
        .any(|c| c.starts_with("create cluster")));
    // …anything else is refused before anything is created, saying both why and what to do.
    let sb = Sandbox::new()
        .env("E2E_KIND_PLATFORM", "plan9-amd64")
        .env("STANDIN_KIND_VERSION", "v0.20.0");
    let out = sb.run(&["e2e"]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &[
            "this machine is plan9-amd64",
            "put kind v0.11.1 on PATH",
            "reports `kind v0.20.0",
        ],
    );
    // The dry run still shows the plan, and says the binary is not pinned.
    let out = sb.run(&["e2e", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("sha256 NOT PINNED"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn down_and_ls_without_any_kind_say_how_to_get_one() {
    let sb = Sandbox::with(false);
    for args in [&["down", "--name", "pme2e-x"][..], &["ls"][..]] {
        let out = sb.run(args);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("no `kind` on PATH"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn an_operator_bundle_with_the_wrong_sha256_is_refused_in_preflight() {
    let sb = Sandbox::new();
    let bundle = sb.write("bundle.yaml", "---\nkind: NotTheBundle\n");
    let out = sb.run(&["e2e", "--operator-bundle", bundle.to_str().unwrap()]);
    let m = matrix();
    assert_rejected_cleanly(
        &sb,
        &out,
        &[
            "preflight failed",
            "bundle.yaml",
            &m.default_cell().operator_bundle_sha256,
        ],
    );
    assert!(bundle.exists(), "a user's file must never be deleted");
}

// ---------------------------------------------------------------------------------------------
// The whole lifecycle, success included, against the cluster twin (testkit, in-process, with its
// data path): every object applied is really stored and reconciled, the operator's objects come
// from its v0.48.1 emulation, and the assert phase's checks run in-process against the twin's real
// Prometheus. Needs the real operator bundle (E2E_OPERATOR_BUNDLE), which phase 3 verifies and
// applies, and Docker.

/// A running twin and the runtime serving it; both stop when dropped.
struct TwinHandle {
    twin: Option<testkit::twin::Twin>,
    rt: tokio::runtime::Runtime,
}

impl TwinHandle {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let twin = rt
            .block_on(testkit::twin::Twin::start(testkit::twin::TwinOptions::new(
                testkit::twin::Profile::V1_21,
            )))
            .expect("starting the twin");
        TwinHandle {
            twin: Some(twin),
            rt,
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.twin.as_ref().unwrap().kubeconfig_path()
    }
}

impl Drop for TwinHandle {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        self.twin.take();
    }
}

/// A sandbox whose kind writes the twin's kubeconfig.
fn full_lifecycle_sandbox() -> (Sandbox, String, TwinHandle) {
    let bundle = std::env::var("E2E_OPERATOR_BUNDLE").unwrap_or_else(|_| {
        panic!(
            "E2E_OPERATOR_BUNDLE is not set: point it at prometheus-operator v0.48.1's bundle.yaml \
             (sha256 2e0642d4…) to run the whole lifecycle against the cluster twin"
        )
    });
    let twin = TwinHandle::start();
    let sb = Sandbox::new().env("STANDIN_KUBECONFIG", twin.kubeconfig().to_str().unwrap());
    (sb, bundle, twin)
}

/// The JUnit report of a run: every test case, and how many failed.
fn junit(sb: &Sandbox) -> (String, usize, usize) {
    let xml = std::fs::read_to_string(sb.run_dir().join("junit.xml")).expect("junit.xml");
    let count = |tag: &str| xml.matches(tag).count();
    (xml.clone(), count("<testcase "), count("<failure "))
}

#[test]
fn the_whole_lifecycle_passes_and_deletes_the_cluster() {
    let (sb, bundle, _twin) = full_lifecycle_sandbox();
    let out = sb.run(&["e2e", "--operator-bundle", &bundle, "--timeout", "90s"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for phase in e2e::lifecycle::plan::PhaseId::ALL {
        assert!(
            err.contains(&format!("{} ok", phase.label())),
            "no `{} ok`:\n{err}",
            phase.label()
        );
    }
    // A line per check, in-process: nothing compiled or spawned while the cluster waits.
    for check in [
        "ok      monitoring/e2e: its replicas are running and ready",
        "ok      monitoring/prometheus-e2e-0: it loaded the cadvisor scrape job — serviceMonitor/kube-system/cadvisor/0",
        "ok      monitoring/prometheus-e2e-0: one healthy cadvisor target per node — 3 nodes",
        "ok      monitoring/prometheus-e2e-0: every running container has a series of each metric",
    ] {
        assert!(err.contains(check), "no `{check}`:\n{err}");
    }
    let name = default_name();
    let calls = sb.kind_calls();
    assert!(calls[2].starts_with("create cluster"), "{calls:?}");
    assert_eq!(
        calls.last().unwrap(),
        &format!(
            "delete cluster --name {name} --kubeconfig {}",
            sb.kubeconfig().display()
        )
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("export logs")),
        "logs exported on success: {calls:?}"
    );
    assert!(
        !sb.kubeconfig().exists(),
        "kubeconfig of a deleted cluster left behind"
    );
    let (xml, cases, failures) = junit(&sb);
    assert_eq!((cases, failures), (4, 0), "{xml}");
    let summary = std::fs::read_to_string(sb.run_dir().join("summary.md")).unwrap();
    assert!(
        summary.contains(": passed") && summary.contains("| [7/8] assert | ok |"),
        "{summary}"
    );
    for metric in e2e::coverage::DEFAULT_METRICS {
        assert!(
            summary.contains(&format!("| `{metric}` |")) && !summary.contains("**no**"),
            "{metric}: {summary}"
        );
    }
    let coverage = std::fs::read_to_string(sb.run_dir().join("artifacts/coverage.json")).unwrap();
    assert!(
        coverage.contains(r#""prometheus": "monitoring/prometheus-e2e-0""#),
        "{coverage}"
    );
    assert!(!sb.run_dir().join("artifacts/diagnose.json").exists());
}

#[test]
fn e2e_metric_overrides_the_cells_list_for_the_assert_phase() {
    let (sb, bundle, _twin) = full_lifecycle_sandbox();
    let out = sb.run(&[
        "e2e",
        "--operator-bundle",
        &bundle,
        "--timeout",
        "90s",
        "--metric",
        "container_memory_working_set_bytes",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let coverage: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sb.run_dir().join("artifacts/coverage.json")).unwrap(),
    )
    .unwrap();
    let metrics: Vec<&str> = coverage["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["metric"].as_str().unwrap())
        .collect();
    assert_eq!(
        metrics,
        ["container_memory_working_set_bytes"],
        "{coverage}"
    );
}

#[test]
fn dry_run_shows_the_metrics_of_the_cell_or_of_metric_flags() {
    let sb = Sandbox::new();
    let out = sb.run(&["e2e", "--dry-run", "--metric", "container_fs_usage_bytes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("every running container has a series of each metric (exported_namespace label): container_fs_usage_bytes\n"),
        "{text}"
    );
}

#[test]
fn a_bad_metric_name_is_refused_naming_the_flag_and_the_rule() {
    let sb = Sandbox::new();
    for cmd in [
        vec!["e2e", "--dry-run", "--metric", "container-cpu"],
        vec![
            "doctor",
            "--kubeconfig",
            "/nonexistent",
            "--metric",
            "container-cpu",
        ],
        vec![
            "check",
            "--prometheus",
            "http://127.0.0.1:9",
            "--pods",
            "/nonexistent",
            "--metric",
            "container-cpu",
        ],
        vec![
            "assert",
            "--kubeconfig",
            "/nonexistent",
            "--metric",
            "container-cpu",
        ],
    ] {
        let out = sb.run(&cmd);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(err.contains("--metric <NAME>"), "{cmd:?}: {err}");
        assert!(
            err.contains("invalid metric name \"container-cpu\"")
                && err.contains("[a-zA-Z_:][a-zA-Z0-9_:]*"),
            "{cmd:?}: {err}"
        );
    }
    assert!(sb.kind_calls().is_empty(), "nothing ran for a refused flag");
}

#[test]
fn a_failing_assert_collects_artifacts_diagnoses_then_deletes() {
    let (sb, bundle, _twin) = full_lifecycle_sandbox();
    // The fixture kubelets serve no container_fs_usage_bytes: the coverage check cannot pass.
    let out = sb.run(&[
        "e2e",
        "--operator-bundle",
        &bundle,
        "--timeout",
        "30s",
        "--metric",
        "container_fs_usage_bytes",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("[6/8] workloads ok") && err.contains("[7/8] assert FAILED"),
        "{err}"
    );
    assert!(
        err.contains("FAILED  monitoring/prometheus-e2e-0: every running container has a series of each metric"),
        "{err}"
    );
    let calls = sb.kind_calls();
    let n = calls.len();
    assert!(
        calls[n - 2].starts_with("export logs") && calls[n - 1].starts_with("delete cluster"),
        "{calls:?}"
    );
    let (xml, cases, failures) = junit(&sb);
    assert_eq!((cases, failures), (4, 1), "{xml}");
    let diagnosis = std::fs::read_to_string(sb.run_dir().join("artifacts/diagnose.json")).unwrap();
    assert!(
        diagnosis.contains(r#""id": "metric-absent""#),
        "{diagnosis}"
    );
    let summary = std::fs::read_to_string(sb.run_dir().join("summary.md")).unwrap();
    assert!(
        summary.contains("FAILED") && summary.contains("| [7/8] assert | failed |"),
        "{summary}"
    );
    assert!(summary.contains("### Coverage"), "{summary}");
}

#[test]
fn an_external_kubeconfig_runs_phases_3_to_8_and_touches_no_kind() {
    let (sb, bundle, twin) = full_lifecycle_sandbox();
    let kc = sb.write(
        "real-cluster.kubeconfig",
        &std::fs::read_to_string(twin.kubeconfig()).unwrap(),
    );
    let out = sb.run(&[
        "e2e",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--operator-bundle",
        &bundle,
        "--timeout",
        "90s",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("[7/8] assert ok") && err.contains("not ours to delete"),
        "{err}"
    );
    assert!(sb.kind_calls().is_empty() && sb.docker_calls().is_empty());
    assert!(kc.exists());

    // `cargo xtask assert` reruns exactly the checks against the same cluster, into its own dir.
    let dir = sb.root.join("rerun");
    let out = sb.run(&[
        "assert",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--timeout",
        "60s",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("ok      ").count(), 4, "{err}");
    assert!(
        err.contains(&format!("outputs: {}", dir.display())),
        "{err}"
    );
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
    assert!(dir.join("coverage.json").exists());
}

#[test]
fn a_reused_cluster_survives_a_passing_run() {
    let (sb, bundle, _twin) = full_lifecycle_sandbox();
    let sb = sb.env("STANDIN_CLUSTERS", &default_name());
    let out = sb.run(&[
        "e2e",
        "--reuse",
        "--operator-bundle",
        &bundle,
        "--timeout",
        "90s",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let calls = sb.kind_calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("create") || c.starts_with("delete")),
        "{calls:?}"
    );
    assert!(
        err.contains("reused, not deleted") && err.contains("export KUBECONFIG="),
        "{err}"
    );
    assert!(sb.kubeconfig().exists());
}

// ---------------------------------------------------------------------------------------------
// --stack: bad input is refused in preflight, naming the document and the fix, with nothing
// created (no kind call that creates, no run directory, no kubeconfig).

/// The kube-prometheus-shaped fixture with `f` applied to its text, as one file in the sandbox.
fn stack_file(sb: &Sandbox, name: &str, f: impl Fn(String) -> String) -> PathBuf {
    let dir = workspace_root().join("fixtures/stacks/kube-prometheus");
    let mut text = String::new();
    for path in e2e::k8s::manifests::yaml_files(&dir, true).unwrap() {
        text.push_str("---\n");
        text.push_str(&std::fs::read_to_string(path).unwrap());
    }
    sb.write(name, &f(text))
}

#[test]
fn a_stack_without_a_prometheus_is_refused_in_preflight() {
    let sb = Sandbox::new();
    let path = stack_file(&sb, "s.yaml", |t| {
        t.replace("kind: Prometheus\n", "kind: Alertmanager\n")
    });
    let out = sb.run(&["e2e", "--stack", path.to_str().unwrap()]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &[
            "preflight failed; nothing was created",
            "has no Prometheus object (monitoring.coreos.com/v1 kind Prometheus)",
        ],
    );
}

#[test]
fn a_stack_without_a_cadvisor_servicemonitor_is_refused_in_preflight() {
    let sb = Sandbox::new();
    let path = stack_file(&sb, "s.yaml", |t| {
        t.replace("path: /metrics/cadvisor", "path: /metrics/resource")
    });
    let out = sb.run(&["e2e", "--stack", path.to_str().unwrap()]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &[
            "has no ServiceMonitor scraping /metrics/cadvisor (its ServiceMonitors: monitoring/kube-state-metrics, monitoring/kubelet,",
            "path: /metrics/cadvisor",
        ],
    );
}

#[test]
fn a_document_that_is_not_kubernetes_yaml_is_named_by_file_and_number() {
    let sb = Sandbox::new();
    let path = sb.write(
        "s.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nthis is: [not closed\n",
    );
    let out = sb.run(&["e2e", "--stack", path.to_str().unwrap()]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &[&format!(
            "{}, document 2 (from line 5): not YAML",
            path.display()
        )],
    );
    let path = sb.write("t.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: c}\n");
    let out = sb.run(&["e2e", "--stack", path.to_str().unwrap()]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &[&format!(
            "{}, document 2: not a Kubernetes object (missing apiVersion)",
            path.display()
        )],
    );
}

#[test]
fn a_custom_resource_without_its_crd_is_refused_in_preflight() {
    let sb = Sandbox::new();
    // The PodMonitor's CRD removed: a new kind cluster serves no custom resources.
    let path = stack_file(&sb, "s.yaml", |t| {
        t.split("\n---\n")
            .filter(|d| !d.contains("name: podmonitors.monitoring.coreos.com"))
            .collect::<Vec<_>>()
            .join("\n---\n")
    });
    let out = sb.run(&["e2e", "--stack", path.to_str().unwrap()]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &[
            "PodMonitor monitoring/example-app is a custom resource of monitoring.coreos.com/v1",
            "(a new kind cluster serves no custom resources)",
            "add its CRD to the stack",
        ],
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}, document ", path.display())),
        "{err}"
    );
}

#[test]
fn a_stack_from_stdin_is_read_once_and_its_documents_named() {
    let sb = Sandbox::new();
    let mut child = sb
        .command(&["e2e", "--stack", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n- a list\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_rejected_cleanly(
        &sb,
        &out,
        &["-, document 2: not a Kubernetes object (a YAML sequence"],
    );
}

#[test]
fn a_kustomization_is_refused_with_the_command_that_builds_it() {
    let sb = Sandbox::new();
    let dir = sb.root.join("overlay");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: monitoring\nresources: [base]\n",
    )
    .unwrap();
    let out = sb.run(&["e2e", "--stack", dir.to_str().unwrap()]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &[
            "this is a kustomization",
            &format!(
                "kustomize build {} | cargo xtask e2e --stack -",
                dir.display()
            ),
        ],
    );
}

#[test]
fn stack_flags_that_contradict_each_other_are_refused() {
    let sb = Sandbox::new();
    let stack = workspace_root().join("fixtures/stacks/kube-prometheus");
    let out = sb.run(&[
        "e2e",
        "--stack",
        stack.to_str().unwrap(),
        "--prometheus",
        "monitoring/main",
    ]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &["--prometheus monitoring/main: the stack has no Prometheus monitoring/main; it has monitoring/k8s"],
    );
    let bundle = sb.write("bundle.yaml", "x");
    let out = sb.run(&[
        "e2e",
        "--stack",
        stack.to_str().unwrap(),
        "--operator-bundle",
        bundle.to_str().unwrap(),
    ]);
    assert_rejected_cleanly(
        &sb,
        &out,
        &["--operator-bundle and --stack exclude each other"],
    );
    let out = sb.run(&["e2e", "--prometheus", "monitoring/k8s"]);
    assert_rejected_cleanly(&sb, &out, &["--prometheus needs --stack"]);
    let out = sb.run(&[
        "e2e",
        "--stack",
        stack.to_str().unwrap(),
        "--prometheus",
        "k8s",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("expected NAMESPACE/NAME"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dry_run_of_a_stack_lists_its_objects_in_apply_order() {
    let sb = Sandbox::new();
    let stack = workspace_root().join("fixtures/stacks/kube-prometheus");
    let out = sb.run(&["e2e", "--dry-run", "--stack", stack.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?}:\n{text}"))
    };
    assert!(
        at("    Namespace monitoring")
            < at("    CustomResourceDefinition alertmanagers.monitoring.coreos.com")
    );
    assert!(
        at("CustomResourceDefinitions is Established")
            < at("    ServiceAccount monitoring/prometheus-operator")
    );
    assert!(at("    ClusterRole prometheus-k8s") < at("    DaemonSet monitoring/node-exporter"));
    assert!(at("    Role kube-system/prometheus-k8s") < at("    Prometheus monitoring/k8s"));
    at("wait for StatefulSet monitoring/prometheus-k8s to have 2 ready replica(s)");
    at("read fixtures/stacks/kube-prometheus/setup/0namespace-namespace.yaml  sha256 ");
    assert!(!text.contains("bundle.yaml"), "{text}");
    assert!(
        sb.kind_calls().iter().all(|c| !c.starts_with("create")),
        "touches nothing"
    );
}
