//! The composite action (`action.yml`) run as GitHub runs it, without GitHub: its `run:` steps in
//! order, each with `bash --noprofile --norc -eo pipefail`, its `env:` evaluated from the inputs
//! (defaults from the file) and earlier steps' `$GITHUB_OUTPUT`, with a stand-in xtask whose
//! `e2e` records its arguments and writes the files the harness writes (`matrix` is the real
//! one). Steps that `uses:` another action (caches, the upload) are not run here.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// `e2e` writes what the harness writes under `$E2E_WORK_DIR/<name>/` and exits with
/// `$STANDIN_EXIT`; `matrix` is the real xtask.
const STANDIN_XTASK: &str = r###"#!/bin/bash
if [ "$1" = matrix ]; then exec "$REAL_XTASK" "$@"; fi
printf '%s\n' "$@" > "$STANDIN_LOG"
prev=; name=
for a in "$@"; do [ "$prev" = --name ] && name=$a; prev=$a; done
dir=$E2E_WORK_DIR/$name
mkdir -p "$dir/artifacts"
echo "## stand-in summary" > "$dir/summary.md"
echo '{"metrics":[]}' > "$dir/artifacts/coverage.json"
echo "kubeconfig" > "$dir/kubeconfig"
if [ "$STANDIN_EXIT" != 0 ]; then echo '{"findings":[]}' > "$dir/artifacts/diagnose.json"; fi
exit "$STANDIN_EXIT"
"###;

struct Sandbox {
    tmp: tempfile::TempDir,
    outputs: BTreeMap<String, BTreeMap<String, String>>,
    /// Every step's stdout and stderr, in order.
    log: String,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["workspace", "runner-temp", "bin"] {
            std::fs::create_dir(tmp.path().join(d)).unwrap();
        }
        let xtask = tmp.path().join("bin/xtask");
        std::fs::write(&xtask, STANDIN_XTASK).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&xtask, std::fs::Permissions::from_mode(0o755)).unwrap();
        Sandbox {
            tmp,
            outputs: BTreeMap::new(),
            log: String::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Evaluates the only two expression forms the action's `env:` may use.
    fn eval(&self, expr: &str, inputs: &BTreeMap<String, String>) -> String {
        let inner = expr
            .strip_prefix("${{")
            .and_then(|e| e.strip_suffix("}}"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("env value {expr:?} is not one expression"));
        if let Some(name) = inner.strip_prefix("inputs.") {
            return inputs
                .get(name)
                .unwrap_or_else(|| panic!("unknown input {name}"))
                .clone();
        }
        let rest = inner.strip_prefix("steps.").unwrap_or_else(|| {
            panic!("env expression {inner:?}: only inputs.X and steps.ID.outputs.X")
        });
        let (id, key) = rest.split_once(".outputs.").expect("steps.ID.outputs.KEY");
        self.outputs
            .get(id)
            .and_then(|o| o.get(key))
            .cloned()
            .unwrap_or_default()
    }

    /// Runs the action's `run:` steps in order until one fails; returns (step name, exit code)
    /// of each step run.
    fn run_action(&mut self, given: &[(&str, &str)], exit: i32) -> Vec<(String, i32)> {
        let action: Value = e2e::yaml::from_str(
            &std::fs::read_to_string(e2e::workspace_root().join("action.yml")).unwrap(),
        )
        .unwrap();
        let mut inputs: BTreeMap<String, String> = action["inputs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["default"].as_str().unwrap().to_string()))
            .collect();
        for (k, v) in given {
            assert!(inputs.contains_key(*k), "no input {k}");
            inputs.insert(k.to_string(), v.to_string());
        }
        let mut ran = Vec::new();
        for step in action["runs"]["steps"].as_array().unwrap() {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            let name = step["name"].as_str().unwrap().to_string();
            // Steps for building xtask need Rust and a network: the tests pass `xtask`.
            if step["if"].as_str() == Some("${{ inputs.xtask == '' }}") {
                assert!(!inputs["xtask"].is_empty(), "the test passes xtask");
                continue;
            }
            let output = self.path(&format!("output-{}", ran.len()));
            std::fs::write(&output, "").unwrap();
            let mut cmd = Command::new("bash");
            cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap())
                .env("HOME", self.path("runner-temp"))
                .env("GITHUB_OUTPUT", &output)
                .env("GITHUB_STEP_SUMMARY", self.path("step-summary.md"))
                .env("GITHUB_WORKSPACE", self.path("workspace"))
                .env("GITHUB_ACTION_PATH", e2e::workspace_root())
                .env("RUNNER_TEMP", self.path("runner-temp"))
                .env("RUNNER_OS", "Linux")
                .env("RUNNER_ARCH", "X64")
                .env("REAL_XTASK", XTASK)
                .env("STANDIN_LOG", self.path("xtask-args"))
                .env("STANDIN_EXIT", exit.to_string());
            for (k, v) in step["env"].as_object().into_iter().flatten() {
                cmd.env(k, self.eval(v.as_str().unwrap(), &inputs));
            }
            let if_ = step["if"].as_str().unwrap_or("");
            // The summary step's condition: a summary was written.
            if if_.contains("steps.run.outputs.summary != ''")
                && self
                    .eval("${{ steps.run.outputs.summary }}", &inputs)
                    .is_empty()
            {
                continue;
            }
            let out = cmd.output().unwrap();
            let code = out.status.code().unwrap_or(-1);
            let text = format!(
                "--- {name}: exit {code}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("{text}");
            self.log.push_str(&text);
            let id = step["id"].as_str().unwrap_or(&name).to_string();
            let parsed = std::fs::read_to_string(&output)
                .unwrap()
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            self.outputs.insert(id, parsed);
            ran.push((name, code));
            // Every later step without always() is skipped after a failure; the test stops.
            if code != 0 && !if_.contains("always()") {
                break;
            }
        }
        ran
    }

    fn out(&self, step: &str, key: &str) -> &str {
        self.outputs[step].get(key).map_or("", String::as_str)
    }
}

fn prebuilt(sb: &Sandbox) -> String {
    sb.path("bin/xtask").display().to_string()
}

#[test]
fn a_failing_run_maps_every_input_to_its_flag_and_reports_the_files_and_exit_code() {
    let mut sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("workspace/deploy")).unwrap();
    std::fs::write(sb.path("workspace/deploy/stack.yaml"), "kind: List\n").unwrap();
    let xtask = prebuilt(&sb);
    let ran = sb.run_action(
        &[
            ("stack", "deploy/stack.yaml"),
            ("cell", "kind0.20-k8s1.27"),
            (
                "metrics",
                "container_cpu_usage_seconds_total, container_memory_rss\ncontainer_fs_usage_bytes",
            ),
            ("timeout", "5m"),
            ("keep-on-failure", "true"),
            ("prometheus", "monitoring/k8s"),
            ("xtask", &xtask),
        ],
        1,
    );
    let args = std::fs::read_to_string(sb.path("xtask-args")).unwrap();
    let stack = sb.path("workspace/deploy/stack.yaml");
    let expected = [
        "e2e",
        "--cell",
        "kind0.20-k8s1.27",
        "--name",
        "pme2e-kind0-20-k8s1-27",
        "--stack",
        stack.to_str().unwrap(),
        "--prometheus",
        "monitoring/k8s",
        "--timeout",
        "5m",
        "--keep-on-failure",
        "--metric",
        "container_cpu_usage_seconds_total",
        "--metric",
        "container_memory_rss",
        "--metric",
        "container_fs_usage_bytes",
    ];
    assert_eq!(args.lines().collect::<Vec<_>>(), expected);
    // The run step never fails by itself; the last step fails with the harness's code.
    assert_eq!(
        ran.iter().find(|(n, _)| n == "cargo xtask e2e").unwrap().1,
        0
    );
    assert_eq!(ran.last().unwrap(), &("Result".to_string(), 1));
    assert_eq!(sb.out("run", "result"), "failed");
    assert_eq!(sb.out("run", "exit-code"), "1");
    let dir = sb.path("runner-temp/pod-metrics-e2e/pme2e-kind0-20-k8s1-27");
    for (key, file) in [
        ("summary", "summary.md"),
        ("coverage", "artifacts/coverage.json"),
        ("diagnose", "artifacts/diagnose.json"),
        ("kubeconfig", "kubeconfig"),
    ] {
        assert_eq!(
            Path::new(sb.out("run", key)),
            dir.join(file),
            "output {key}"
        );
    }
    assert_eq!(sb.out("run", "junit"), "", "no junit.xml written: empty");
    let summary = std::fs::read_to_string(sb.path("step-summary.md")).unwrap();
    assert!(summary.contains("stand-in summary"), "{summary}");
    // The cache keys are the cell's pins.
    let cell = e2e::matrix::Matrix::load_default().unwrap();
    let cell = cell.cell("kind0.20-k8s1.27").unwrap();
    assert_eq!(
        sb.out("cell", "kind-key"),
        format!("pme2e-kind-linux-amd64-{}", cell.kind_sha256["linux-amd64"])
    );
    assert_eq!(
        sb.out("cell", "bundle-key"),
        format!("pme2e-bundle-{}", cell.operator_bundle_sha256)
    );
}

#[test]
fn a_passing_run_with_defaults_uses_the_default_cell_and_exits_0() {
    let mut sb = Sandbox::new();
    let xtask = prebuilt(&sb);
    let ran = sb.run_action(&[("xtask", &xtask)], 0);
    let args = std::fs::read_to_string(sb.path("xtask-args")).unwrap();
    let default = e2e::matrix::Matrix::load_default().unwrap();
    let default = default.default_cell();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "e2e",
            "--cell",
            default.name.as_str(),
            "--name",
            default.default_cluster_name().as_str(),
            "--timeout",
            "300s"
        ]
    );
    assert_eq!(ran.last().unwrap(), &("Result".to_string(), 0));
    assert_eq!(sb.out("run", "result"), "passed");
    assert_eq!(sb.out("run", "diagnose"), "");
    assert_eq!(
        sb.out("run", "kubeconfig"),
        "",
        "no kept cluster after a pass"
    );
}

#[test]
fn bad_inputs_stop_the_action_before_anything_runs_naming_the_input() {
    for (given, needle) in [
        (
            vec![("keep-on-failure", "yes")],
            "input keep-on-failure: expected true or false, got 'yes'",
        ),
        (vec![("stack", "-")], "input stack: '-' (stdin)"),
        (
            vec![("stack", "nope/stack.yaml")],
            "nope/stack.yaml does not exist",
        ),
        (
            vec![("upload-artifacts", "sometimes")],
            "input upload-artifacts",
        ),
        (vec![("retention-days", "0")], "input retention-days"),
    ] {
        let mut sb = Sandbox::new();
        let xtask = prebuilt(&sb);
        let mut given = given.clone();
        given.push(("xtask", &xtask));
        let ran = sb.run_action(&given, 0);
        assert_eq!(ran, [("Inputs".to_string(), 1)], "{given:?}");
        assert!(!sb.path("xtask-args").exists(), "xtask ran for {given:?}");
        assert!(
            sb.log.contains("::error title=pod-metrics-e2e::") && sb.log.contains(needle),
            "{needle}: {}",
            sb.log
        );
    }
}
