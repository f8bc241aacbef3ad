//! `cargo xtask test`: the README's test command. It obtains the tests' inputs first: the pinned
//! operator bundle always (else it stops), the optional upstream files of [`OPTIONAL_INPUTS`] when
//! present (else their tests are excluded and named as skipped; an error with `CI=true`).

mod bundle;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use xshell::{cmd, Shell};

#[derive(clap::Args)]
pub struct Args {
    /// nextest profile from `.config/nextest.toml`: `default` (unit + component), `ci` (JUnit XML,
    /// no fail-fast).
    #[arg(long, default_value = "default")]
    profile: String,
    /// A local copy of prometheus-operator v0.48.1's bundle.yaml (verified by sha256); default:
    /// `E2E_OPERATOR_BUNDLE`, else the verified cache `cargo xtask e2e` uses, else a download.
    #[arg(long, value_name = "PATH")]
    operator_bundle: Option<PathBuf>,
    /// Extra arguments passed to `cargo nextest run` (e.g. a test filter).
    #[arg(last = true)]
    rest: Vec<String>,
}

/// An upstream file only some machines have, and the tests that need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalInput {
    /// The environment variable holding its path.
    pub var: &'static str,
    /// nextest filterset of exactly the tests that need it.
    pub filter: &'static str,
    /// What it is, for the skip lines.
    pub what: &'static str,
    /// A program looked up on PATH when the variable is unset (the user's own kubectl is the one
    /// to test with); its path then reaches the tests in the variable.
    pub on_path: Option<&'static str>,
}

/// The one table of optional inputs (`.ci/run` exports every one of them from ../shared/upstream).
pub const OPTIONAL_INPUTS: &[OptionalInput] = &[
    OptionalInput {
        var: "E2E_CADVISOR_SAMPLE",
        filter: "binary_id(e2e::component) & test(=the_kubelet_1_21_sample_has_the_fixture_label_set_and_timestamps)",
        what: "a real kubelet 1.21 /metrics/cadvisor scrape, ../shared/upstream/kubelet-cadvisor-1.21-sample.txt",
        on_path: None,
    },
    OptionalInput {
        var: "E2E_FACTS_MD",
        filter: "binary_id(e2e) & test(=operator::scrape_config::tests::cadvisor_job_matches_facts_md_field_for_field_and_in_order)",
        what: "the shared facts about upstream, ../shared/upstream/FACTS.md",
        on_path: None,
    },
    OptionalInput {
        var: "E2E_CAPTURES_DIR",
        filter: "(binary_id(e2e::component) & (test(/^captures::/) | test(/^replay::replay_(kind|minikube|gke)_/))) | binary_id(xtask::replay)",
        what: "real kubelet captures with their pod lists, ../shared/upstream/captures",
        on_path: None,
    },
    // A skip rather than a pass when kubectl is missing: the test is listed by name, and CI
    // (which installs Debian's kubernetes-client when kubectl is missing) refuses the skip.
    OptionalInput {
        var: "E2E_KUBECTL",
        filter: "binary_id(xtask::kubectl) & test(/^kubectl_/)",
        what: "a kubectl binary (default: the first kubectl on PATH; Debian: apt-get install kubernetes-client)",
        on_path: Some("kubectl"),
    },
];

/// The input's value: its variable (`var`), else, for a program, the first match on `path`.
pub fn input_value(
    input: &OptionalInput,
    var: Option<std::ffi::OsString>,
    path: Option<std::ffi::OsString>,
) -> Option<std::ffi::OsString> {
    var.filter(|v| !v.is_empty()).or_else(|| {
        let name = input.on_path?;
        std::env::split_paths(&path.unwrap_or_default())
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
            .map(Into::into)
    })
}

/// Whether an input is usable: set, non-empty and existing. A set path that does not exist is an
/// error (a typo should not silently skip tests).
fn present(input: &OptionalInput, value: Option<std::ffi::OsString>) -> Result<bool> {
    match value {
        Some(v) if !v.is_empty() => {
            let path = PathBuf::from(v);
            if !path.exists() {
                bail!(
                    "{}={} does not exist; point it at {} or unset it (its tests are then skipped)",
                    input.var,
                    path.display(),
                    input.what
                );
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The missing inputs that fail a CI run: all of them, except those a CI without access to
/// ../shared declares in `E2E_ALLOW_MISSING` (comma-separated variable names). Outside CI, none.
pub fn refused_in_ci<'a>(
    ci: bool,
    missing: &[&'a OptionalInput],
    allowed: &str,
) -> Vec<&'a OptionalInput> {
    let allowed: Vec<&str> = allowed.split(',').map(str::trim).collect();
    missing
        .iter()
        .filter(|i| ci && !allowed.contains(&i.var))
        .copied()
        .collect()
}

/// Splits the user's nextest arguments into their filtersets (`-E X`, `--filterset X`,
/// `--filter-expr X`, with `=` or attached) and everything else, unchanged.
pub fn split_filtersets(rest: &[String]) -> (Vec<String>, Vec<String>) {
    let mut filters = Vec::new();
    let mut others = Vec::new();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            // Name filters and libtest flags (`--exact`, `--skip`): no filtersets here, but
            // they narrow the selection too, so `nextest list` gets them as well (see
            // [`names_and_libtest_args`]).
            others.push(arg.clone());
            others.extend(iter.by_ref().cloned());
            break;
        }
        if matches!(arg.as_str(), "-E" | "--filterset" | "--filter-expr") {
            if let Some(value) = iter.next() {
                filters.push(value.clone());
            }
        } else if let Some(v) = arg
            .strip_prefix("--filterset=")
            .or_else(|| arg.strip_prefix("--filter-expr="))
        {
            filters.push(v.to_string());
        } else if let Some(v) = arg.strip_prefix("-E").filter(|v| !v.is_empty()) {
            filters.push(v.strip_prefix('=').unwrap_or(v).to_string());
        } else {
            others.push(arg.clone());
        }
    }
    (filters, others)
}

/// The part of the user's nextest arguments from their `--` on: name filters (and libtest's
/// `--exact`, `--skip`, `--ignored`), which `cargo nextest list` accepts as `cargo nextest run`
/// does. Empty when there is no `--`.
pub fn names_and_libtest_args(others: &[String]) -> &[String] {
    others
        .iter()
        .position(|a| a == "--")
        .map_or(&[][..], |i| &others[i..])
}

/// The user's filtersets as one (nextest unions several `-E`), or `None` when there are none.
fn user_filter(filters: &[String]) -> Option<String> {
    match filters {
        [] => None,
        [one] => Some(format!("({one})")),
        many => Some(format!(
            "({})",
            many.iter()
                .map(|f| format!("({f})"))
                .collect::<Vec<_>>()
                .join(" | ")
        )),
    }
}

/// The single filterset of the run: the user's, minus the tests of every missing input.
pub fn run_filter(user: &[String], missing: &[&OptionalInput]) -> Option<String> {
    let user = user_filter(user);
    if missing.is_empty() {
        return user;
    }
    let excluded = missing
        .iter()
        .map(|i| format!("({})", i.filter))
        .collect::<Vec<_>>()
        .join(" | ");
    Some(match user {
        Some(u) => format!("{u} & not ({excluded})"),
        None => format!("not ({excluded})"),
    })
}

/// The filterset listing the tests one missing input excludes, within the user's selection.
pub fn skipped_filter(user: &[String], input: &OptionalInput) -> String {
    match user_filter(user) {
        Some(u) => format!("{u} & ({})", input.filter),
        None => format!("({})", input.filter),
    }
}

/// One skip line of the summary.
pub fn skip_line(test: &str, input: &OptionalInput) -> String {
    format!(
        "skipped (missing input): {test} — needs {} ({})",
        input.var, input.what
    )
}

/// Test names (`<binary id> <test name>`) from `cargo nextest list --message-format json`.
pub fn listed_tests(json: &str) -> Result<Vec<String>> {
    let value: serde_json::Value =
        serde_json::from_str(json).context("`cargo nextest list` did not print JSON")?;
    let mut out = Vec::new();
    let suites = value["rust-suites"]
        .as_object()
        .context("`cargo nextest list` JSON without rust-suites")?;
    for (binary, suite) in suites {
        for (name, case) in suite["testcases"].as_object().into_iter().flatten() {
            if case["filter-match"]["status"] == "matches" {
                out.push(format!("{binary} {name}"));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let sh = Shell::new()?;
    sh.change_dir(e2e::workspace_root());
    if cmd!(sh, "cargo nextest --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        bail!(
            "cargo-nextest is not installed; install it with `cargo install cargo-nextest --locked` \
             (or see https://nexte.st/docs/installation/), then run `cargo xtask test` again"
        );
    }

    // 1. The operator bundle, before anything runs.
    let given = args.operator_bundle.clone().or_else(|| {
        std::env::var_os("E2E_OPERATOR_BUNDLE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    // The bundle is 0.5 MB: a download still running after two minutes will not finish.
    const BUNDLE_DOWNLOAD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);
    let matrix = e2e::matrix::Matrix::load_default()?;
    let cell = matrix.default_cell();
    let cache = e2e::workdir::work_dir().join("cache");
    let runtime = tokio::runtime::Runtime::new()?;
    let (bundle, origin) = runtime.block_on(bundle::bundle_for_tests(
        cell,
        given.as_deref(),
        &cache,
        BUNDLE_DOWNLOAD_DEADLINE,
    ))?;
    eprintln!(
        "operator bundle: {} ({})",
        e2e::workdir::display_path(&bundle),
        match origin {
            bundle::BundleOrigin::Given => "given, sha256 verified",
            bundle::BundleOrigin::Cache => "verified cache",
            bundle::BundleOrigin::Downloaded => "downloaded and verified",
        }
    );

    // 2. Optional inputs: missing ones exclude their tests, or fail the run in CI.
    let mut missing = Vec::new();
    let mut found = Vec::new();
    for input in OPTIONAL_INPUTS {
        let value = input_value(input, std::env::var_os(input.var), std::env::var_os("PATH"));
        if present(input, value.clone())? {
            found.extend(value.map(|v| (input.var, v)));
        } else {
            missing.push(input);
        }
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let allowed = std::env::var("E2E_ALLOW_MISSING").unwrap_or_default();
    let refused = refused_in_ci(ci, &missing, &allowed);
    if !refused.is_empty() {
        bail!(
            "CI=true and these test inputs are missing (every test must run in CI): {}. Provide \
             them, or declare the absence with E2E_ALLOW_MISSING={} (their tests are then listed \
             as skipped)",
            refused
                .iter()
                .map(|i| format!("{} ({})", i.var, i.what))
                .collect::<Vec<_>>()
                .join("; "),
            refused.iter().map(|i| i.var).collect::<Vec<_>>().join(",")
        );
    }
    let profile = &args.profile;
    let (user_filters, others) = split_filtersets(&args.rest);
    let mut skipped = Vec::new();
    for input in &missing {
        let filter = skipped_filter(&user_filters, input);
        // The user's name filters too, or the skip list names tests they did not select.
        let names = names_and_libtest_args(&others);
        let out = crate::cargo::scrub(&mut std::process::Command::from(cmd!(
            sh,
            "cargo nextest list --workspace --profile {profile} --message-format json -E {filter} {names...}"
        )))
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running `cargo nextest list`")?;
        if !out.status.success() {
            bail!("`cargo nextest list -E '{filter}'` failed ({})", out.status);
        }
        for test in listed_tests(&String::from_utf8_lossy(&out.stdout))? {
            skipped.push(skip_line(&test, input));
        }
    }
    for line in &skipped {
        eprintln!("{line}");
    }

    // 3. The run, with the verified bundle in the environment.
    let filter_args: Vec<String> = run_filter(&user_filters, &missing)
        .map(|f| vec!["-E".to_string(), f])
        .unwrap_or_default();
    // Run through std so nextest's exit code (and its live output) reach the caller unchanged.
    // Scrubbed, so the test build is the one `cargo build -p xtask` from a shell shares.
    let mut command = std::process::Command::from(cmd!(
        sh,
        "cargo nextest run --workspace --profile {profile} {filter_args...} {others...}"
    ));
    crate::cargo::scrub(&mut command);
    command.env("E2E_OPERATOR_BUNDLE", &bundle);
    command.envs(found);
    let status = command.status()?;
    // Last lines of the output: what did not run, by name.
    for line in &skipped {
        eprintln!("{line}");
    }
    Ok(exit_code(status))
}

/// Maps a child's exit status to ours (a signal counts as failure).
pub fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_input_is_named_once_and_its_filter_names_its_tests() {
        let mut vars: Vec<_> = OPTIONAL_INPUTS.iter().map(|i| i.var).collect();
        vars.sort();
        vars.dedup();
        assert_eq!(vars.len(), OPTIONAL_INPUTS.len());
        for input in OPTIONAL_INPUTS {
            assert!(input.var.starts_with("E2E_"), "{input:?}");
            assert!(input.filter.contains("test("), "{input:?}");
            assert!(!input.what.is_empty());
        }
        // The bundle is not optional: it is always obtained.
        assert!(!vars.contains(&"E2E_OPERATOR_BUNDLE"));
    }

    #[test]
    fn user_filtersets_are_taken_out_in_every_spelling_and_the_rest_kept_in_order() {
        let (filters, others) = split_filtersets(&strings(&[
            "-E",
            "test(a)",
            "--no-fail-fast",
            "--filterset=test(b)",
            "-Etest(c)",
            "--filter-expr",
            "test(d)",
            "name_filter",
            "--",
            "-E",
            "binary-arg",
        ]));
        assert_eq!(filters, ["test(a)", "test(b)", "test(c)", "test(d)"]);
        assert_eq!(
            others,
            ["--no-fail-fast", "name_filter", "--", "-E", "binary-arg"]
        );
    }

    #[test]
    fn name_filters_after_the_double_dash_reach_the_listing() {
        let (_, others) = split_filtersets(&strings(&[
            "-E",
            "package(e2e)",
            "--no-fail-fast",
            "--",
            "replay",
            "--exact",
        ]));
        assert_eq!(
            names_and_libtest_args(&others),
            strings(&["--", "replay", "--exact"])
        );
        let (_, none) = split_filtersets(&strings(&["-E", "package(e2e)", "--no-capture"]));
        assert!(names_and_libtest_args(&none).is_empty());
    }

    #[test]
    fn missing_inputs_are_excluded_within_the_users_selection() {
        let [a, b, _] = [
            &OPTIONAL_INPUTS[0],
            &OPTIONAL_INPUTS[1],
            &OPTIONAL_INPUTS[2],
        ];
        assert_eq!(run_filter(&[], &[]), None);
        assert_eq!(
            run_filter(&strings(&["test(x)"]), &[]).as_deref(),
            Some("(test(x))")
        );
        assert_eq!(run_filter(&[], &[a]), Some(format!("not (({}))", a.filter)));
        // Several user filtersets are a union (as nextest treats them), then intersected.
        assert_eq!(
            run_filter(&strings(&["test(x)", "test(y)"]), &[a, b]),
            Some(format!(
                "((test(x)) | (test(y))) & not (({}) | ({}))",
                a.filter, b.filter
            ))
        );
        assert_eq!(skipped_filter(&[], a), format!("({})", a.filter));
        assert_eq!(
            skipped_filter(&strings(&["package(e2e)"]), a),
            format!("(package(e2e)) & ({})", a.filter)
        );
    }

    #[test]
    fn ci_refuses_every_missing_input_it_does_not_declare() {
        let [a, b, c] = [
            &OPTIONAL_INPUTS[0],
            &OPTIONAL_INPUTS[1],
            &OPTIONAL_INPUTS[2],
        ];
        assert!(refused_in_ci(false, &[a, b, c], "").is_empty());
        assert_eq!(refused_in_ci(true, &[a, b, c], ""), [a, b, c]);
        assert_eq!(
            refused_in_ci(true, &[a, b, c], &format!("{}, {}", a.var, c.var)),
            [b]
        );
        assert!(refused_in_ci(true, &[], "").is_empty());
    }

    #[test]
    fn a_set_input_path_that_does_not_exist_is_an_error_naming_it() {
        let input = &OPTIONAL_INPUTS[2];
        assert!(!present(input, None).unwrap());
        assert!(!present(input, Some("".into())).unwrap());
        let dir = tempfile::tempdir().unwrap();
        assert!(present(input, Some(dir.path().into())).unwrap());
        let err = present(input, Some(dir.path().join("nope").into())).unwrap_err();
        assert!(
            err.to_string().contains("E2E_CAPTURES_DIR=") && err.to_string().contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn kubectl_is_the_variable_else_the_first_on_path_and_files_only_else_missing() {
        let kubectl = OPTIONAL_INPUTS
            .iter()
            .find(|i| i.var == "E2E_KUBECTL")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(a.join("kubectl")).unwrap(); // a directory is not a program
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("kubectl"), "").unwrap();
        let path = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(
            input_value(kubectl, None, Some(path.clone())),
            Some(b.join("kubectl").into())
        );
        assert_eq!(
            input_value(kubectl, Some("/opt/kubectl".into()), Some(path.clone())),
            Some("/opt/kubectl".into())
        );
        assert_eq!(input_value(kubectl, None, Some(a.into_os_string())), None);
        // Files are never looked up on PATH.
        assert_eq!(input_value(&OPTIONAL_INPUTS[0], None, Some(path)), None);
    }

    #[test]
    fn skip_lines_name_the_test_the_variable_and_what_it_is() {
        let json = r#"{"rust-suites":{
            "e2e::component":{"testcases":{
                "captures::kind_1_27_containerd_capture":{"filter-match":{"status":"matches"}},
                "captures::other":{"filter-match":{"status":"mismatch","reason":"expression"}}}},
            "e2e":{"testcases":{}}}}"#;
        let tests = listed_tests(json).unwrap();
        assert_eq!(
            tests,
            ["e2e::component captures::kind_1_27_containerd_capture"]
        );
        assert_eq!(
            skip_line(&tests[0], &OPTIONAL_INPUTS[2]),
            "skipped (missing input): e2e::component captures::kind_1_27_containerd_capture — \
             needs E2E_CAPTURES_DIR (real kubelet captures with their pod lists, ../shared/upstream/captures)"
        );
        assert!(listed_tests("not json").is_err());
    }
}
