//! `cargo xtask replay` as a user runs it: the answer and exit code of `check`, `--keep` until
//! Ctrl-C, Ctrl-C during the check, and a refused ServiceMonitor field; never a container left.
//! Needs Docker, `E2E_PROMETHEUS_IMAGE` and `E2E_CAPTURES_DIR` (the kind 1.27 capture).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn kind_capture() -> PathBuf {
    testkit::required_input(
        "E2E_CAPTURES_DIR",
        "the real kubelet captures (the `captures/` folder of ../shared/upstream)",
    )
    .join("kind-1.27-containerd")
}

fn mission_sm() -> PathBuf {
    e2e::workspace_root().join("manifests/servicemonitor-cadvisor.yaml")
}

fn replay_cmd(extra: &[&str], sm: &std::path::Path) -> Command {
    let c = kind_capture();
    let mut cmd = Command::new(XTASK);
    cmd.arg("replay")
        .arg("--cadvisor")
        .arg(format!(
            "kind-control-plane={}",
            c.join("cadvisor.prom").display()
        ))
        .arg("--pods")
        .arg(c.join("pods-all-namespaces.json"))
        .arg("--servicemonitor")
        .arg(sm)
        .args(extra)
        .env_remove("E2E_KUBECONFIG");
    cmd
}

/// Streams the child's stderr lines into a channel (and echoes them for the test log).
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("xtask: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(90))
            .unwrap_or_else(|e| panic!("no line containing {needle:?}: {e}"));
        if line.contains(needle) {
            return line;
        }
    }
}

fn run_id_of(line: &str) -> String {
    line.split("io.pod-metrics-e2e.run=")
        .nth(1)
        .expect("the line names the run label")
        .split(|c: char| c == ')' || c == ';' || c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

fn interrupt(child: &Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT failed");
}

fn containers(run_id: &str, running_only: bool) -> Vec<String> {
    let filter = format!("label=io.pod-metrics-e2e.run={run_id}");
    let mut args = vec!["ps", "-q", "--filter", &filter];
    if !running_only {
        args.insert(1, "-a");
    }
    let out = Command::new("docker").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn keep_leaves_prometheus_running_until_ctrl_c_then_removes_it() {
    let mut child = replay_cmd(
        &["--keep", "--metric", "container_cpu_usage_seconds_total"],
        &mission_sm(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let rx = stderr_lines(&mut child);
    let line = wait_for_line(&rx, "Ctrl-C removes it");
    let run_id = run_id_of(&line);
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .expect("the URL is printed");
    // Still there after the check: running, and answering.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(containers(&run_id, true).len(), 1, "{url}");
    let port = url.trim_start_matches("http://127.0.0.1:");
    assert!(
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok(),
        "{url}"
    );
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The check's exit code (all covered), not 130: Ctrl-C is how --keep ends.
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // Only the metric asked for.
    assert!(stdout.contains("covered: 1/1 metrics"), "{stdout}");
    assert!(
        stdout.contains(
            "covered: 23/23 pods, 27/27 containers have container_cpu_usage_seconds_total"
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("container_memory_working_set_bytes"),
        "{stdout}"
    );
    assert_eq!(containers(&run_id, false), Vec::<String>::new());
}

#[test]
fn ctrl_c_during_the_check_exits_130_and_removes_prometheus() {
    // A long deadline and a job whose selector matches no target: the check would wait.
    let dir = tempfile::tempdir().unwrap();
    let sm = dir.path().join("sm.yaml");
    let text = std::fs::read_to_string(mission_sm()).unwrap().replace(
        "app.kubernetes.io/name: kubelet",
        "app.kubernetes.io/name: not-the-kubelet",
    );
    std::fs::write(&sm, text).unwrap();
    let mut child = replay_cmd(&["--deadline", "5m"], &sm)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    let line = wait_for_line(&rx, "replaying ");
    let run_id = run_id_of(&line);
    assert_eq!(containers(&run_id, true).len(), 1);
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(containers(&run_id, false), Vec::<String>::new());
}

#[test]
fn the_answer_and_exit_code_are_checks_and_json_works() {
    let out = replay_cmd(&["--json"], &mission_sm()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // Both default metrics, each with every pod of the capture's pod list.
    let metrics = doc["coverage"]["metrics"].as_array().unwrap();
    let names: Vec<&str> = metrics
        .iter()
        .map(|m| m["metric"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes"
        ],
        "{doc:#}"
    );
    assert!(metrics.iter().all(|m| m["pods_covered"] == 23), "{doc:#}");
    assert_eq!(doc["diagnosis"]["verdict"], "healthy", "{doc:#}");
}

/// Replay of the mission's ServiceMonitor with `extra` added to its endpoint, with an image that
/// does not exist (had replay reached Docker, that would be the error): the exit code, stderr
/// and the file's path.
fn refused_servicemonitor(extra: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let sm = dir.path().join("sm.yaml");
    let text = std::fs::read_to_string(mission_sm()).unwrap().replace(
        "    path: /metrics/cadvisor\n",
        &format!("    path: /metrics/cadvisor\n{extra}"),
    );
    std::fs::write(&sm, text).unwrap();
    let out = replay_cmd(&[], &sm)
        .env(
            "E2E_PROMETHEUS_IMAGE",
            "localhost/pme2e-no-such-image:never",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("no-such-image"), "{stderr}");
    (out.status.code(), stderr, sm.display().to_string())
}

#[test]
fn an_unmodelled_servicemonitor_field_is_refused_by_name_before_anything_starts() {
    let (code, stderr, sm) = refused_servicemonitor("    proxyUrl: http://proxy:3128\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("spec.endpoints[0].proxyUrl") && stderr.contains(&sm),
        "{stderr}"
    );
}

#[test]
fn a_rule_prometheus_would_refuse_is_named_once_with_its_cause_once() {
    let (code, stderr, _) = refused_servicemonitor(
        "    metricRelabelings:\n    - sourceLabels: [namespace]\n      regex: \"(unclosed\"\n      action: drop\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("spec.endpoints[0].metricRelabelings[0]")
            && stderr.contains("fix the rule in the ServiceMonitor"),
        "{stderr}"
    );
    // The typed errors name their cause and also return it as `source`: said once, not per layer.
    assert_eq!(stderr.matches("unclosed group").count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("metricRelabelings[0]").count(),
        1,
        "{stderr}"
    );
}
