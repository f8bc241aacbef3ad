//! `cargo xtask test` end to end with a stand-in `cargo` first on PATH: which inputs it obtains,
//! which tests it excludes, and the skip summary it prints last. The real nextest is not run here
//! (a nested cargo would wait for the lock of the `cargo test` running this file).
//!
//! Needs `E2E_OPERATOR_BUNDLE` (the pinned v0.48.1 bundle.yaml), which `cargo xtask test` provides.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// Stands in for `cargo nextest`: records each call; `list` answers in nextest's JSON list format
/// (nextest-metadata `TestListSummary`: rust-suites → testcases → filter-match) with the tests
/// our filtersets name (it cannot evaluate filtersets: it keys on the test names in them);
/// `run` records E2E_OPERATOR_BUNDLE and E2E_KUBECTL and exits with $STANDIN_RUN_EXIT.
const STANDIN_CARGO: &str = r#"#!/bin/sh
printf '%s\n' "$*" >> "$STANDIN_LOG"
case "$1 $2" in
  "nextest --version") echo "cargo-nextest 0.9.143"; exit 0 ;;
  "nextest list")
    m='{"filter-match":{"status":"matches"}}'
    case "$*" in
      *captures::*) echo "{\"rust-suites\":{\"e2e::component\":{\"testcases\":{\"captures::kind_1_27_containerd_capture\":$m,\"captures::gke_1_9_docker_legacy_labels_capture\":$m}}}}" ;;
      *facts_md*) echo "{\"rust-suites\":{\"e2e\":{\"testcases\":{\"operator::scrape_config::tests::cadvisor_job_matches_facts_md_field_for_field_and_in_order\":$m}}}}" ;;
      *kubectl_*) echo "{\"rust-suites\":{\"xtask::kubectl\":{\"testcases\":{\"kubectl_on_1_21_creates_with_its_defaults_and_applies_with_validate_false\":$m}}}}" ;;
      *) echo '{"rust-suites":{}}' ;;
    esac
    exit 0 ;;
  "nextest run")
    printf 'E2E_OPERATOR_BUNDLE=%s\n' "$E2E_OPERATOR_BUNDLE" >> "$STANDIN_LOG"
    printf 'E2E_KUBECTL=%s\n' "$E2E_KUBECTL" >> "$STANDIN_LOG"
    echo "stand-in nextest: Summary 10 tests run: 10 passed"
    exit "${STANDIN_RUN_EXIT:-0}" ;;
esac
echo "stand-in cargo: unexpected '$*'" >&2
exit 2
"#;

fn bundle() -> PathBuf {
    let Some(path) = std::env::var_os("E2E_OPERATOR_BUNDLE") else {
        panic!(
            "E2E_OPERATOR_BUNDLE is not set: these tests need prometheus-operator v0.48.1's \
             bundle.yaml. Run them with `cargo xtask test`, which provides it, or set \
             E2E_OPERATOR_BUNDLE to a copy of that file"
        )
    };
    PathBuf::from(path)
}

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let cargo = bin.join("cargo");
        std::fs::write(&cargo, STANDIN_CARGO).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Found on PATH, never run: `cargo xtask test` only hands its path to the tests.
        std::fs::write(bin.join("kubectl"), "#!/bin/sh\nexit 2\n").unwrap();
        std::fs::set_permissions(bin.join("kubectl"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        Sandbox { dir }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("cargo.log")
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// `cargo xtask test ARGS` with only the given E2E_* inputs (and CI) in the environment.
    fn run(&self, args: &[&str], env: &[(&str, &Path)], ci: bool) -> Output {
        // Only the stand-ins: the machine's own kubectl must not decide what is missing.
        let path = self.dir.path().join("bin");
        let mut cmd = Command::new(XTASK);
        cmd.arg("test")
            .args(args)
            .env("PATH", path)
            .env("STANDIN_LOG", self.log())
            .env("E2E_WORK_DIR", self.dir.path().join("work"))
            .env_remove("CI");
        for var in [
            "E2E_OPERATOR_BUNDLE",
            "E2E_CADVISOR_SAMPLE",
            "E2E_FACTS_MD",
            "E2E_CAPTURES_DIR",
            "E2E_KUBECTL",
            "E2E_ALLOW_MISSING",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        if ci {
            cmd.env("CI", "true");
        }
        cmd.output().unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn missing_inputs_exclude_their_tests_and_are_named_last() {
    let sb = Sandbox::new();
    let sample = sb.dir.path().join("sample.txt");
    std::fs::write(&sample, "x").unwrap();
    let bundle = bundle();
    let out = sb.run(
        &["--", "-E", "package(e2e)", "--no-fail-fast"],
        &[
            ("E2E_OPERATOR_BUNDLE", &bundle),
            ("E2E_CADVISOR_SAMPLE", &sample),
        ],
        false,
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let expected = [
        "skipped (missing input): e2e operator::scrape_config::tests::cadvisor_job_matches_facts_md_field_for_field_and_in_order — needs E2E_FACTS_MD (the shared facts about upstream, ../shared/upstream/FACTS.md)",
        "skipped (missing input): e2e::component captures::gke_1_9_docker_legacy_labels_capture — needs E2E_CAPTURES_DIR (real kubelet captures with their pod lists, ../shared/upstream/captures)",
        "skipped (missing input): e2e::component captures::kind_1_27_containerd_capture — needs E2E_CAPTURES_DIR (real kubelet captures with their pod lists, ../shared/upstream/captures)",
    ];
    assert_eq!(&lines[lines.len() - 3..], expected, "{err}");
    let calls = sb.calls();
    let run = calls
        .iter()
        .find(|c| c.starts_with("nextest run"))
        .expect("nextest ran");
    // One filterset: the user's, minus the tests of both missing inputs; other flags kept.
    assert!(
        run.starts_with("nextest run --workspace --profile default -E (package(e2e)) & not ("),
        "{run}"
    );
    assert!(
        run.contains("facts_md")
            && run.contains("captures::")
            && !run.contains("kubelet_1_21_sample"),
        "{run}"
    );
    assert!(run.ends_with("--no-fail-fast"), "{run}");
    assert!(
        calls.contains(&format!("E2E_OPERATOR_BUNDLE={}", bundle.display())),
        "{calls:?}"
    );
    // Listing came before running.
    let first_list = calls
        .iter()
        .position(|c| c.starts_with("nextest list"))
        .unwrap();
    let first_run = calls
        .iter()
        .position(|c| c.starts_with("nextest run"))
        .unwrap();
    assert!(first_list < first_run);
}

#[test]
fn with_every_input_nothing_is_excluded_and_nothing_reported_skipped() {
    let sb = Sandbox::new();
    let file = sb.dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let bundle = bundle();
    let out = sb.run(
        &["--operator-bundle", bundle.to_str().unwrap()],
        &[
            ("E2E_CADVISOR_SAMPLE", &file),
            ("E2E_FACTS_MD", &file),
            ("E2E_CAPTURES_DIR", sb.dir.path()),
        ],
        true,
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("skipped"), "{err}");
    let calls = sb.calls();
    assert!(
        calls.contains(&"nextest run --workspace --profile default".to_string()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("nextest list")),
        "{calls:?}"
    );
}

#[test]
fn ci_with_a_missing_input_fails_before_running_anything() {
    let sb = Sandbox::new();
    let bundle = bundle();
    let out = sb.run(&[], &[("E2E_OPERATOR_BUNDLE", &bundle)], true);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    for var in [
        "E2E_CADVISOR_SAMPLE",
        "E2E_FACTS_MD",
        "E2E_CAPTURES_DIR",
        "CI=true",
    ] {
        assert!(err.contains(var), "{var} not named: {err}");
    }
    assert!(
        !sb.calls()
            .iter()
            .any(|c| c.starts_with("nextest run") || c.starts_with("nextest list")),
        "{:?}",
        sb.calls()
    );
}

#[test]
fn a_wrong_operator_bundle_stops_before_running_anything() {
    let sb = Sandbox::new();
    let wrong = sb.dir.path().join("bundle.yaml");
    std::fs::write(
        &wrong,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n",
    )
    .unwrap();
    let out = sb.run(&["--operator-bundle", wrong.to_str().unwrap()], &[], false);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("not the pinned bundle.yaml"), "{err}");
    assert!(
        !sb.calls().iter().any(|c| c.starts_with("nextest run")),
        "{:?}",
        sb.calls()
    );
    // Nothing was written to the work dir's cache.
    assert!(!sb.dir.path().join("work").exists());
}

#[test]
fn ci_accepts_declared_absences_and_still_names_the_skipped_tests() {
    let sb = Sandbox::new();
    let bundle = bundle();
    let allow = Path::new("E2E_CADVISOR_SAMPLE,E2E_FACTS_MD,E2E_CAPTURES_DIR");
    let out = sb.run(
        &[],
        &[
            ("E2E_OPERATOR_BUNDLE", &bundle),
            ("E2E_ALLOW_MISSING", allow),
        ],
        true,
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("skipped (missing input): e2e::component captures::"),
        "{err}"
    );
    assert!(err.contains("needs E2E_FACTS_MD"), "{err}");
}

#[test]
fn the_users_name_filters_narrow_the_skip_listing_as_they_narrow_the_run() {
    let sb = Sandbox::new();
    let bundle = bundle();
    let out = sb.run(
        &["--", "--no-fail-fast", "--", "replay", "--exact"],
        &[("E2E_OPERATOR_BUNDLE", &bundle)],
        false,
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let calls = sb.calls();
    let lists: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("nextest list"))
        .collect();
    assert_eq!(lists.len(), 3, "one listing per missing input: {calls:?}");
    for list in lists {
        assert!(list.ends_with(" -- replay --exact"), "{list}");
        assert!(!list.contains("--no-fail-fast"), "{list}");
    }
    let run = calls.iter().find(|c| c.starts_with("nextest run")).unwrap();
    assert!(run.ends_with("--no-fail-fast -- replay --exact"), "{run}");
}

#[test]
fn kubectl_is_found_on_path_and_handed_to_the_tests_and_without_one_they_are_named_skipped() {
    let sb = Sandbox::new();
    let bundle = bundle();
    let file = sb.dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let inputs: [(&str, &Path); 4] = [
        ("E2E_OPERATOR_BUNDLE", &bundle),
        ("E2E_CADVISOR_SAMPLE", &file),
        ("E2E_FACTS_MD", &file),
        ("E2E_CAPTURES_DIR", sb.dir.path()),
    ];
    let out = sb.run(&[], &inputs, true);
    assert!(out.status.success(), "{}", stderr(&out));
    let kubectl = sb.dir.path().join("bin/kubectl");
    assert!(
        sb.calls()
            .contains(&format!("E2E_KUBECTL={}", kubectl.display())),
        "{:?}",
        sb.calls()
    );
    // No kubectl anywhere: listed as skipped, and CI refuses that unless declared.
    std::fs::remove_file(&kubectl).unwrap();
    let out = sb.run(&[], &inputs, false);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.lines().last().unwrap_or_default(),
        "skipped (missing input): xtask::kubectl kubectl_on_1_21_creates_with_its_defaults_and_applies_with_validate_false — needs E2E_KUBECTL (a kubectl binary (default: the first kubectl on PATH; Debian: apt-get install kubernetes-client))"
    );
    let out = sb.run(&[], &inputs, true);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("E2E_KUBECTL"),
        "{err}"
    );
}
