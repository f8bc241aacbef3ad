//! `cargo xtask bench build`: what building costs a user, measured in fresh target directories
//! in one run, and whether any dependency is built twice across the three builds a developer
//! runs ([`BUILDS`]: xtask, the tests, the twin).
//!
//! 1. A cold `cargo build -p xtask` in an empty target directory (A).
//! 2. A copy of A (B, checked fresh): the build of `cargo xtask test` after that build
//!    (`cargo test --workspace --no-run`, what nextest builds), then the twin's build.
//! 3. In A, against a twin started from B's binary: the first `cargo xtask e2e --kubeconfig
//!    <twin>` after step 1, then a rerun on a new twin; the first run's extra compile is the
//!    difference, and the units it compiled are counted from A's fingerprints (a dependency unit
//!    B does not have was built with other settings).
//! 4. Every unit cargo reported in these builds, by crate: a dependency with more than one
//!    artifact was built more than once.
//!
//! `--features-only` is the quick form a tidy test runs: the feature sets cargo resolves for
//! the three builds (`cargo tree`), compared without building anything.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Target: the first e2e compiles at most this long after `cargo build -p xtask`.
const TARGET_FIRST_E2E_COMPILE: Duration = Duration::from_secs(30);

/// One build a developer runs, as cargo args, and its `cargo tree` equivalent (the same packages
/// and dependency kinds, hence the same feature resolution).
pub struct Build {
    /// What it is, for reports.
    pub what: &'static str,
    /// `cargo …` arguments that build it.
    pub build: &'static [&'static str],
    /// `cargo tree …` arguments that resolve it.
    pub tree: &'static [&'static str],
}

/// The builds that must share every dependency: `cargo xtask` (any subcommand), the tests
/// (`cargo xtask test`, the assert phase before it moved in-process), `cargo xtask twin`.
pub const BUILDS: [Build; 3] = [
    Build {
        what: "xtask",
        build: &["build", "-p", "xtask"],
        tree: &["-p", "xtask", "-e", "normal,build"],
    },
    Build {
        what: "tests",
        build: &["test", "--workspace", "--no-run"],
        tree: &["--workspace", "-e", "normal,build,dev"],
    },
    Build {
        what: "twin",
        build: &["build", "-p", "testkit", "--bin", "twin"],
        tree: &["-p", "testkit", "-e", "normal,build"],
    },
];

#[derive(clap::Args)]
pub struct Args {
    /// Only compare the feature sets cargo resolves for the three builds (`cargo tree`, a few
    /// seconds; builds nothing).
    #[arg(long)]
    features_only: bool,
    /// Skip the first-e2e measurement (it needs Docker, E2E_PROMETHEUS_IMAGE and the operator
    /// bundle); it is then reported as not measured, and not as passed.
    #[arg(long)]
    no_e2e: bool,
    /// The prometheus-operator v0.48.1 bundle.yaml for the e2e runs (default:
    /// E2E_OPERATOR_BUNDLE).
    #[arg(long, value_name = "PATH")]
    operator_bundle: Option<PathBuf>,
    /// Keep the fresh target directories (under target/bench-build/) instead of removing them.
    #[arg(long)]
    keep: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.features_only {
        let diffs = feature_differences()?;
        for line in &diffs {
            println!("{line}");
        }
        let ok = diffs.is_empty();
        println!(
            "{} every dependency resolves to one feature set across {}",
            if ok { "PASS" } else { "FAIL" },
            BUILDS.map(|b| b.what).join(", ")
        );
        if !ok {
            println!("{FIX}");
        }
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    measure(args)
}

/// What to do when a dependency is built twice.
pub const FIX: &str = "fix: run `cargo hakari generate && cargo hakari manage-deps` \
    (cargo install cargo-hakari --locked) and commit workspace-hack/Cargo.toml; docs/architecture.md, \
    \"One build of each dependency\"";

// -------------------------------------------------------------------------------------------
// Feature sets (cargo tree)
// -------------------------------------------------------------------------------------------

/// A registry dependency as `cargo tree` names it: `name vX.Y.Z`, with `(proc-macro)` kept.
type CrateId = String;

/// Parses `cargo tree --prefix none -f '{p} {f}'` output into each external crate's feature sets
/// (more than one when the same build compiles it twice, e.g. for host and target). Workspace
/// members (a `(/path)` source) are left out.
pub fn tree_features(text: &str) -> BTreeMap<CrateId, BTreeSet<String>> {
    let mut out: BTreeMap<CrateId, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim().trim_end_matches("(*)").trim_end();
        let mut tokens = line.split_whitespace();
        let (Some(name), Some(version)) = (tokens.next(), tokens.next()) else {
            continue;
        };
        let mut id = format!("{name} {version}");
        let mut features = String::new();
        let mut local = false;
        for t in tokens {
            if t.starts_with("(/") {
                local = true;
            } else if t == "(proc-macro)" {
                id.push_str(" (proc-macro)");
            } else if !t.starts_with('(') {
                features = t.to_string();
            }
        }
        if !local {
            out.entry(id).or_default().insert(features);
        }
    }
    out
}

/// Lines naming each crate whose feature sets differ within or across the builds, e.g.
/// `tokio v1.54.1: xtask [fs,…] tests [fs,…,test-util]`. Empty when every build agrees.
pub fn differences(per_build: &[(&str, BTreeMap<CrateId, BTreeSet<String>>)]) -> Vec<String> {
    let all: BTreeSet<&CrateId> = per_build.iter().flat_map(|(_, m)| m.keys()).collect();
    let mut out = Vec::new();
    for id in all {
        let sets: BTreeSet<&String> = per_build
            .iter()
            .filter_map(|(_, m)| m.get(id))
            .flatten()
            .collect();
        if sets.len() > 1 {
            let detail: Vec<String> = per_build
                .iter()
                .filter_map(|(what, m)| {
                    m.get(id).map(|s| {
                        let sets: Vec<String> = s.iter().map(|f| format!("[{f}]")).collect();
                        format!("{what} {}", sets.join(" "))
                    })
                })
                .collect();
            out.push(format!("{id}: {}", detail.join("; ")));
        }
    }
    out
}

/// Runs `cargo tree` for each of [`BUILDS`] and returns [`differences`].
///
/// # Errors
/// When cargo cannot resolve the workspace.
pub fn feature_differences() -> Result<Vec<String>> {
    let mut per_build = Vec::new();
    for b in &BUILDS {
        let out = crate::cargo::command()
            .current_dir(e2e::workspace_root())
            .args(["tree", "-q", "--prefix", "none", "-f", "{p} {f}"])
            .args(b.tree)
            .stderr(Stdio::inherit())
            .output()
            .context("running `cargo tree`")?;
        if !out.status.success() {
            bail!("`cargo tree {}` failed ({})", b.tree.join(" "), out.status);
        }
        per_build.push((b.what, tree_features(&String::from_utf8_lossy(&out.stdout))));
    }
    Ok(differences(&per_build))
}

// -------------------------------------------------------------------------------------------
// Real builds (cargo's JSON messages)
// -------------------------------------------------------------------------------------------

/// Every artifact file name cargo reported per unit (`package target kind`), external crates
/// only, with whether this invocation compiled it.
#[derive(Debug, Default)]
pub struct Units {
    /// unit → artifact file names (the name carries cargo's metadata hash: one per build of it).
    pub artifacts: BTreeMap<String, BTreeSet<String>>,
    /// Units compiled (not fresh) per invocation, in order.
    pub compiled: Vec<(String, usize)>,
}

impl Units {
    /// Adds one invocation's `--message-format json` output.
    pub fn add(&mut self, what: &str, json_lines: &str) {
        let mut compiled = 0;
        for line in json_lines.lines() {
            let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if m["reason"] != "compiler-artifact" {
                continue;
            }
            let id = m["package_id"].as_str().unwrap_or_default();
            if m["fresh"] == false {
                compiled += 1;
            }
            if id.starts_with("path+") {
                continue;
            }
            let package = id.rsplit('#').next().unwrap_or(id);
            let target = &m["target"];
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str())
                .collect();
            let unit = format!(
                "{package} {} ({})",
                target["name"].as_str().unwrap_or_default(),
                kinds.join(",")
            );
            // One file per build of the unit: the first artifact's name (with its hash).
            if let Some(file) = m["filenames"]
                .as_array()
                .and_then(|f| f.first())
                .and_then(|f| f.as_str())
            {
                let name = Path::new(file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                self.artifacts.entry(unit).or_default().insert(name);
            }
        }
        self.compiled.push((what.to_string(), compiled));
    }

    /// Units built more than once (more than one artifact).
    pub fn built_twice(&self) -> Vec<(&String, &BTreeSet<String>)> {
        self.artifacts.iter().filter(|(_, f)| f.len() > 1).collect()
    }
}

/// `cargo <args> --message-format json-render-diagnostics` with `CARGO_TARGET_DIR=dir`; its time
/// and messages. Progress and errors go to the terminal.
fn cargo_json(dir: &Path, args: &[&str]) -> Result<(Duration, String)> {
    let t = Instant::now();
    let out = crate::cargo::command()
        .current_dir(e2e::workspace_root())
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .env("CARGO_TARGET_DIR", dir)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running `cargo {}`", args.join(" ")))?;
    if !out.status.success() {
        bail!("`cargo {}` failed ({})", args.join(" "), out.status);
    }
    Ok((
        t.elapsed(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// The unit fingerprints of a target directory (`debug/.fingerprint/<unit>-<hash>`).
fn fingerprints(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("debug/.fingerprint"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Fingerprints of the workspace's own crates (`<name>-<hash>`), which every build may compile.
fn is_workspace_unit(fingerprint: &str) -> bool {
    let name = fingerprint
        .rsplit_once('-')
        .map_or(fingerprint, |(name, _)| name);
    matches!(name, "xtask" | "e2e" | "testkit" | "workspace-hack")
}

/// A twin in the foreground of a child process, stopped (SIGTERM: it removes its containers)
/// when dropped.
struct TwinProcess {
    child: std::process::Child,
    kubeconfig: PathBuf,
}

impl TwinProcess {
    fn start(bin: &Path, scratch: &Path, n: usize) -> Result<Self> {
        let kubeconfig = scratch.join(format!("twin-{n}.kubeconfig"));
        let log = scratch.join(format!("twin-{n}.log"));
        let child = Command::new(bin)
            .args(["--profile", "1.21", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting the twin {}", bin.display()))?;
        let mut twin = TwinProcess { child, kubeconfig };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !twin.kubeconfig.exists() {
            if twin.child.try_wait()?.is_some() || Instant::now() > deadline {
                bail!(
                    "the twin did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(twin)
    }
}

impl Drop for TwinProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// `cargo xtask e2e --kubeconfig <twin>` with `CARGO_TARGET_DIR=dir`; its wall time.
fn e2e_on_twin(dir: &Path, twin: &TwinProcess, bundle: &Path, work: &Path) -> Result<Duration> {
    let t = Instant::now();
    let status = crate::cargo::command()
        .current_dir(e2e::workspace_root())
        .args(["xtask", "e2e", "--kubeconfig"])
        .arg(&twin.kubeconfig)
        .arg("--operator-bundle")
        .arg(bundle)
        .args(["--timeout", "180s"])
        .env("CARGO_TARGET_DIR", dir)
        .env("E2E_WORK_DIR", work)
        .stdin(Stdio::null())
        .status()
        .context("running `cargo xtask e2e`")?;
    if !status.success() {
        bail!("`cargo xtask e2e --kubeconfig <twin>` failed ({status})");
    }
    Ok(t.elapsed())
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn measure(args: Args) -> Result<ExitCode> {
    let root = e2e::workspace_root().join("target/bench-build");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let base = root.join(stamp.to_string());
    let (a, b, scratch) = (base.join("a"), base.join("b"), base.join("scratch"));
    std::fs::create_dir_all(&scratch)?;
    let bundle = args.operator_bundle.clone().or_else(|| {
        std::env::var_os("E2E_OPERATOR_BUNDLE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if !args.no_e2e && bundle.is_none() {
        bail!(
            "the first-e2e measurement needs the prometheus-operator v0.48.1 bundle.yaml: pass \
             --operator-bundle PATH or set E2E_OPERATOR_BUNDLE (or skip it with --no-e2e)"
        );
    }
    let result = measure_in(&args, &a, &b, &scratch, bundle.as_deref());
    if args.keep {
        eprintln!("kept {}", base.display());
    } else {
        let _ = std::fs::remove_dir_all(&base);
    }
    result
}

fn measure_in(
    args: &Args,
    a: &Path,
    b: &Path,
    scratch: &Path,
    bundle: Option<&Path>,
) -> Result<ExitCode> {
    let mut units = Units::default();
    eprintln!("1. cold `cargo build -p xtask` in {}", a.display());
    let (cold, json) = cargo_json(a, BUILDS[0].build)?;
    units.add("xtask (cold)", &json);

    eprintln!("2. a copy of it, then the tests' and the twin's builds");
    let status = Command::new("cp").arg("-a").arg(a).arg(b).status()?;
    if !status.success() {
        bail!("cp -a {} {} failed", a.display(), b.display());
    }
    let (_, json) = cargo_json(b, BUILDS[0].build)?;
    units.add("xtask (copy, must be fresh)", &json);
    let (tests, json) = cargo_json(b, BUILDS[1].build)?;
    units.add("tests", &json);
    let (twin, json) = cargo_json(b, BUILDS[2].build)?;
    units.add("twin", &json);

    let first_e2e = if args.no_e2e {
        None
    } else {
        eprintln!("3. the first `cargo xtask e2e --kubeconfig <twin>` after step 1, then a rerun");
        let bundle = bundle.expect("checked");
        let twin_bin = b.join("debug/twin");
        let before = fingerprints(a);
        let first = {
            let twin = TwinProcess::start(&twin_bin, scratch, 1)?;
            e2e_on_twin(a, &twin, bundle, &scratch.join("work-1"))?
        };
        let after = fingerprints(a);
        let rerun = {
            let twin = TwinProcess::start(&twin_bin, scratch, 2)?;
            e2e_on_twin(a, &twin, bundle, &scratch.join("work-2"))?
        };
        let compiled: Vec<&String> = after.difference(&before).collect();
        // A unit the e2e compiled that neither the tests' nor the twin's build has (same
        // fingerprint name = same unit) is a dependency built with other settings.
        let in_b = fingerprints(b);
        let others: Vec<String> = compiled
            .iter()
            .filter(|f| !in_b.contains(f.as_str()) && !is_workspace_unit(f))
            .map(|f| f.to_string())
            .collect();
        Some((first, rerun, compiled.len(), others))
    };

    println!();
    println!("cold `cargo build -p xtask`                {}", secs(cold));
    println!(
        "`cargo xtask test`'s build after it         {}  (cargo test --workspace --no-run)",
        secs(tests)
    );
    println!("`cargo xtask twin`'s build after both      {}", secs(twin));
    for (what, n) in &units.compiled {
        println!("  units compiled by {what}: {n}");
    }
    let mut verdicts = Vec::new();
    match &first_e2e {
        Some((first, rerun, new_units, others)) => {
            let (first, rerun) = (*first, *rerun);
            let extra = first.saturating_sub(rerun);
            println!(
                "first `cargo xtask e2e --kubeconfig <twin>` {}, rerun {}: extra compile ≈ {} ({new_units} units compiled)",
                secs(first),
                secs(rerun),
                secs(extra)
            );
            let margin = TARGET_FIRST_E2E_COMPILE.as_secs_f64() - extra.as_secs_f64();
            verdicts.push((
                extra <= TARGET_FIRST_E2E_COMPILE,
                format!(
                    "the first e2e adds ≤ 30 s of compile after `cargo build -p xtask` ({}; margin {margin:+.1} s)",
                    secs(extra)
                ),
            ));
            for unit in others {
                println!("  built by the first e2e only: {unit}");
            }
        }
        None => println!("first e2e: not measured (--no-e2e)"),
    }
    let e2e_only = first_e2e.as_ref().map_or(0, |(.., others)| others.len());
    let twice = units.built_twice();
    for (unit, files) in &twice {
        println!(
            "  built {}×: {unit}: {}",
            files.len(),
            files.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    verdicts.push((
        twice.is_empty() && e2e_only == 0,
        format!(
            "no dependency built twice across xtask, the tests and the twin ({} of {} units; {e2e_only} built by the first e2e only)",
            twice.len(),
            units.artifacts.len()
        ),
    ));
    let copy_fresh = units
        .compiled
        .iter()
        .find(|(w, _)| w.starts_with("xtask (copy"))
        .is_some_and(|(_, n)| *n == 0);
    if !copy_fresh {
        println!(
            "note: the copied target directory was not fresh; step 2's times include that rebuild"
        );
    }
    println!();
    for (ok, what) in &verdicts {
        println!("{} {what}", if *ok { "PASS" } else { "FAIL" });
    }
    if !twice.is_empty() {
        println!("{FIX}");
    }
    Ok(if verdicts.iter().all(|(ok, _)| *ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TREE_XTASK: &str = "xtask v0.1.0 (/w/xtask) \n\
        tokio v1.54.1 fs,macros,rt \n\
        tokio v1.54.1 fs,macros,rt (*)\n\
        serde_derive v1.0.228 (proc-macro) default\n\
        e2e v0.1.0 (/w/e2e) \n\
        log v0.4.35 std\n";
    const TREE_TESTS: &str = "e2e v0.1.0 (/w/e2e) \n\
        tokio v1.54.1 fs,macros,rt,test-util \n\
        serde_derive v1.0.228 (proc-macro) default\n\
        either v1.19.0 std\n\
        either v1.19.0 std,use_std\n\
        log v0.4.35 std\n\
        strsim v0.11.1 \n";

    #[test]
    fn cargo_tree_lines_become_feature_sets_without_workspace_members() {
        let m = tree_features(TREE_XTASK);
        assert_eq!(
            m.keys().collect::<Vec<_>>(),
            [
                "log v0.4.35",
                "serde_derive v1.0.228 (proc-macro)",
                "tokio v1.54.1"
            ]
        );
        assert_eq!(m["tokio v1.54.1"].len(), 1, "(*) repeats are one set");
        let t = tree_features(TREE_TESTS);
        assert_eq!(t["strsim v0.11.1"], BTreeSet::from([String::new()]));
        assert_eq!(t["either v1.19.0"].len(), 2);
    }

    #[test]
    fn differences_name_each_crate_built_with_other_features_and_where() {
        let d = differences(&[
            ("xtask", tree_features(TREE_XTASK)),
            ("tests", tree_features(TREE_TESTS)),
        ]);
        assert_eq!(
            d,
            [
                "either v1.19.0: tests [std] [std,use_std]",
                "tokio v1.54.1: xtask [fs,macros,rt]; tests [fs,macros,rt,test-util]",
            ]
        );
        assert!(differences(&[
            ("xtask", tree_features(TREE_XTASK)),
            ("twin", tree_features(TREE_XTASK))
        ])
        .is_empty());
    }

    #[test]
    fn workspace_units_are_told_from_dependencies_by_fingerprint_name() {
        assert!(is_workspace_unit("workspace-hack-0e0590ae60f797cc"));
        assert!(is_workspace_unit("e2e-0e0590ae60f797cc"));
        assert!(!is_workspace_unit("hyper-util-0e0590ae60f797cc"));
    }

    #[test]
    fn units_with_two_artifacts_are_built_twice_and_fresh_ones_not_counted_as_compiled() {
        let msg = |pkg: &str, file: &str, fresh: bool| {
            serde_json::json!({
                "reason": "compiler-artifact",
                "package_id": pkg,
                "target": {"name": "strsim", "kind": ["lib"]},
                "filenames": [file],
                "fresh": fresh,
            })
            .to_string()
        };
        let reg = "registry+https://github.com/rust-lang/crates.io-index#strsim@0.11.1";
        let mut units = Units::default();
        units.add(
            "xtask",
            &[
                msg(reg, "/a/debug/deps/libstrsim-aaaa.rlib", false),
                msg(
                    "path+file:///w/e2e#0.1.0",
                    "/a/debug/deps/libe2e-1.rlib",
                    false,
                ),
                r#"{"reason":"build-finished","success":true}"#.to_string(),
            ]
            .join("\n"),
        );
        units.add(
            "tests",
            &msg(reg, "/b/debug/deps/libstrsim-aaaa.rlib", true),
        );
        assert!(units.built_twice().is_empty(), "same file name, other dir");
        assert_eq!(
            units.compiled,
            [("xtask".to_string(), 2), ("tests".to_string(), 0)]
        );
        units.add(
            "twin",
            &msg(reg, "/b/debug/deps/libstrsim-bbbb.rlib", false),
        );
        let twice = units.built_twice();
        assert_eq!(twice.len(), 1);
        assert_eq!(twice[0].0, "strsim@0.11.1 strsim (lib)");
    }
}
