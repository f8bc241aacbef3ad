//! The main job and the doctor against the cluster twin (testkit), started in-process:
//! `cargo xtask e2e --kubeconfig <twin>` runs phases 3–8 unchanged — the real v0.48.1 bundle
//! (`E2E_OPERATOR_BUNDLE`), `manifests/prometheus/`, the ServiceMonitor of the cell's variant,
//! the workloads, the assert phase's checks in-process through the pod proxy, `junit.xml`,
//! artifacts and `summary.md` — for each profile and both variants; the default (kind) path
//! with a stand-in `kind` whose `create cluster` starts a twin (the `twin` binary); and
//! `cargo xtask doctor` on a healthy twin and on twins broken on purpose.
//! Needs Docker, `E2E_OPERATOR_BUNDLE` and `E2E_PROMETHEUS_IMAGE` (or the upstream image).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::twin::{Profile, Twin, TwinOptions};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn bundle() -> String {
    testkit::operator_bundle_path().display().to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// xtask with a clean environment: its own work dir, no kubeconfig in reach.
fn xtask(work: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(XTASK);
    cmd.args(args)
        .env("E2E_WORK_DIR", work)
        .env_remove("KUBECONFIG");
    cmd.current_dir(e2e::workspace_root()).stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("xtask runs");
    eprintln!(
        "--- stdout\n{}--- stderr\n{}---",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn main_job(profile: Profile, cell: &str) {
    main_job_on(TwinOptions::new(profile), cell, "120s");
}

/// `cargo xtask e2e --kubeconfig <twin> --cell CELL --timeout TIMEOUT` must pass; returns
/// `summary.md`.
fn main_job_on(opts: TwinOptions, cell: &str, timeout: &str) -> String {
    let profile = opts.profile;
    let rt = runtime();
    let twin = rt.block_on(Twin::start(opts)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let kc = twin.kubeconfig_path();
    let out = run(&mut xtask(
        work.path(),
        &[
            "e2e",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--cell",
            cell,
            "--operator-bundle",
            &bundle(),
            "--timeout",
            timeout,
        ],
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{profile} {cell}: {err}");
    for phase in [
        "[3/8] operator ok",
        "[4/8] prometheus ok",
        "[5/8] servicemonitor ok",
        "[6/8] workloads ok",
        "[7/8] assert ok",
    ] {
        assert!(err.contains(phase), "no `{phase}`: {err}");
    }
    let run_dir = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().join("summary.md").exists())
        .expect("a run dir with summary.md")
        .path();
    let summary = std::fs::read_to_string(run_dir.join("summary.md")).unwrap();
    assert!(
        summary.contains(": passed") && summary.contains("### Coverage"),
        "{summary}"
    );
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 4, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
    let coverage: Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("artifacts/coverage.json")).unwrap(),
    )
    .unwrap();
    // Per metric (the cell's default list), every container covered.
    let per_metric = coverage["metrics"].as_array().expect("metrics");
    let names: Vec<&str> = per_metric
        .iter()
        .map(|m| m["metric"].as_str().unwrap())
        .collect();
    assert_eq!(names, e2e::coverage::DEFAULT_METRICS, "{coverage}");
    for m in per_metric {
        assert_eq!(m["missing"], json!([]), "{coverage}");
        assert!(m["containers_covered"].as_u64().unwrap() > 0, "{coverage}");
    }
    let label = if cell.ends_with("honorlabels") {
        "namespace"
    } else {
        "exported_namespace"
    };
    assert!(coverage.to_string().contains(label), "{coverage}");
    // Ours: the twin's kubeconfig is never deleted by an --kubeconfig run.
    assert!(kc.exists());
    summary
}

#[test]
fn main_job_1_19_mission() {
    main_job(Profile::V1_19, "kind0.11-k8s1.21");
}
#[test]
fn main_job_1_19_honorlabels() {
    main_job(Profile::V1_19, "kind0.11-k8s1.21-honorlabels");
}
#[test]
fn main_job_1_21_mission() {
    main_job(Profile::V1_21, "kind0.11-k8s1.21");
}
#[test]
fn main_job_1_21_honorlabels() {
    main_job(Profile::V1_21, "kind0.11-k8s1.21-honorlabels");
}
#[test]
fn main_job_1_27_mission() {
    main_job(Profile::V1_27, "kind0.11-k8s1.21");
}
#[test]
fn main_job_1_27_honorlabels() {
    main_job(Profile::V1_27, "kind0.11-k8s1.21-honorlabels");
}

/// The scale of the upstream-timing run: upstream's delays and the harness's default
/// `--timeout` alike are divided by 10 (resync 18 s, config reload 9.1 s, timeout 30 s).
const UPSTREAM_SCALE: f64 = 0.1;

/// Each default wait of the main job against the worst case of the upstream delay it waits
/// out (unscaled): the defaults come from the code, so lowering one below upstream fails here.
#[test]
fn the_default_waits_outlast_upstreams_worst_delays() {
    use testkit::twin::{upstream, Timing};
    let up = Timing::upstream(1.0);
    assert_eq!(up.kubelet_resync, upstream::KUBELET_RESYNC);
    let timeout = e2e::lifecycle::run::DEFAULT_TIMEOUT;
    // Operator phase: the kubelet Service lists every node; a node the operator's start-up write
    // missed appears at the next 3-minute resync.
    assert!(
        timeout > up.kubelet_resync,
        "--timeout {timeout:?} < the operator's kubelet resync {:?}",
        up.kubelet_resync
    );
    // ServiceMonitor phase: the scrape job is loaded once the Secret reached the pod and the
    // reloader reloaded.
    assert!(
        timeout > up.config_reload,
        "--timeout {timeout:?} < Secret propagation + reload {:?}",
        up.config_reload
    );
    // Assert phase: the loaded job still has to discover its targets and scrape twice (a
    // container's first series, then a pod started meanwhile) within the coverage deadline.
    let scrape = e2e::install::scrape_interval().unwrap();
    let coverage = e2e::coverage::WaitOptions::for_scrape_interval(scrape).deadline;
    assert!(
        coverage > up.sd_refresh + scrape * 2,
        "coverage deadline {coverage:?} < discovery {:?} + two scrapes of {scrape:?}",
        up.sd_refresh
    );
}

/// The main job on the twin with upstream's delays and the default `--timeout`, both scaled by
/// [`UPSTREAM_SCALE`]: it passes, and the ServiceMonitor phase did wait out the reload.
#[test]
fn main_job_passes_on_upstreams_timings_scaled() {
    let mut opts = TwinOptions::new(Profile::V1_21);
    opts.timing = testkit::twin::Timing::upstream(UPSTREAM_SCALE);
    let reload = opts.timing.config_reload;
    let timeout = e2e::lifecycle::run::DEFAULT_TIMEOUT.mul_f64(UPSTREAM_SCALE);
    let summary = main_job_on(
        opts,
        "kind0.11-k8s1.21",
        &format!("{}ms", timeout.as_millis()),
    );
    let took = summary
        .lines()
        .find(|l| l.starts_with("| [5/8] servicemonitor | ok |"))
        .and_then(|l| l.rsplit('|').nth(1))
        .and_then(|d| d.trim().trim_end_matches('s').parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no servicemonitor timing in {summary}"));
    assert!(
        Duration::from_secs_f64(took) + Duration::from_millis(100) >= reload,
        "the ServiceMonitor phase took {took}s, less than the reload delay {reload:?}: {summary}"
    );
}

/// `--timeout` bounds each phase, not each step in it (issue 19): in the operator phase the
/// apply and the operator's Deployment (pods start after 4 s here) use part of it, and the wait
/// for the kubelet Service, whose Endpoints answer 503 throughout, gets only the rest; it fails
/// with the last error it saw.
#[test]
fn the_timeout_bounds_each_phase_not_each_wait_in_it() {
    let rt = runtime();
    let mut opts = TwinOptions::new(Profile::V1_21);
    opts.timing.pod_start = Duration::from_secs(4);
    let twin = rt.block_on(Twin::start(opts)).unwrap();
    twin.cluster().faults.inject(
        Some(axum::http::Method::GET),
        "/namespaces/kube-system/endpoints/kubelet",
        503,
        100_000,
    );
    let work = tempfile::tempdir().unwrap();
    let kc = twin.kubeconfig_path();
    let timeout = 10.0;
    let out = run(&mut xtask(
        work.path(),
        &[
            "e2e",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--operator-bundle",
            &bundle(),
            "--timeout",
            "10s",
        ],
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("[3/8] operator FAILED ("))
        .unwrap_or_else(|| panic!("the operator phase did not fail: {err}"));
    let took: f64 = line
        .trim_start_matches("[3/8] operator FAILED (")
        .trim_end_matches("s)")
        .parse()
        .unwrap();
    // The Deployment alone took about 4 s; a fresh 10 s for the next wait would end past 14 s.
    assert!(
        (timeout - 0.5..timeout + 2.5).contains(&took),
        "the phase took {took}s, its deadline was {timeout}s: {err}"
    );
    assert!(
        err.contains("kube-system/kubelet") && err.contains("503"),
        "the failure names the wait and its last error: {err}"
    );
}

/// A stand-in `kind` whose `create cluster` starts the `twin` binary and waits for its
/// kubeconfig; `delete cluster` stops it (SIGTERM: it removes its containers and kubeconfig).
const TWIN_KIND: &str = r#"#!/bin/sh
printf '%s\n' "$*" >> "$STANDIN_LOG"
case "$1" in version) echo "kind v0.11.1 go1.16.4 linux/amd64"; exit 0;; esac
case "$1 $2" in
  "create cluster")
    prev=; kc=
    for a in "$@"; do [ "$prev" = --kubeconfig ] && kc=$a; prev=$a; done
    "$TWIN_BIN" --profile "$TWIN_PROFILE" --kubeconfig-out "$kc" > "$STANDIN_LOG.twin" 2>&1 &
    echo $! > "$STANDIN_LOG.pid"
    i=0; while [ ! -s "$kc" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
    [ -s "$kc" ] || { echo "twin did not start" >&2; cat "$STANDIN_LOG.twin" >&2; exit 1; } ;;
  "get clusters") if [ -s "$STANDIN_LOG.pid" ] && kill -0 "$(cat "$STANDIN_LOG.pid")" 2>/dev/null; then echo "$STANDIN_NAME"; fi ;;
  "export logs") mkdir -p "$3" && cp "$STANDIN_LOG.twin" "$3/twin.log" ;;
  "delete cluster")
    if [ -s "$STANDIN_LOG.pid" ]; then
      pid=$(cat "$STANDIN_LOG.pid"); kill -TERM "$pid" 2>/dev/null
      i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
      : > "$STANDIN_LOG.pid"
    fi ;;
  *) echo "stand-in kind: unexpected '$*'" >&2; exit 2 ;;
esac
"#;

fn twin_bin() -> PathBuf {
    // The twin binary of this workspace (built by `cargo build -p testkit --bin twin`).
    let path = e2e::workspace_root().join("target/debug/twin");
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(e2e::workspace_root())
            .args(["build", "-q", "-p", "testkit", "--bin", "twin"])
            .status()
            .unwrap();
        assert!(status.success(), "building the twin binary");
    }
    path
}

#[test]
fn the_default_kind_path_runs_end_to_end_on_a_twin_and_tears_it_down() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let kind = bin.join("kind");
    std::fs::write(&kind, TWIN_KIND).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kind, std::fs::Permissions::from_mode(0o755)).unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let log = tmp.path().join("kind.log");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = run(xtask(
        &work,
        &["e2e", "--operator-bundle", &bundle(), "--timeout", "120s"],
    )
    .env("PATH", path)
    .env("E2E_KIND_PLATFORM", "linux-amd64")
    .env("STANDIN_LOG", &log)
    .env("STANDIN_NAME", "pme2e-kind0-11-k8s1-21")
    .env("TWIN_BIN", twin_bin())
    .env("TWIN_PROFILE", "1.21"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for phase in e2e::lifecycle::plan::PhaseId::ALL {
        assert!(
            err.contains(&format!("{} ok", phase.label())),
            "no `{} ok`: {err}",
            phase.label()
        );
    }
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.lines().any(|l| l.starts_with("create cluster")),
        "{calls}"
    );
    assert!(
        calls.lines().last().unwrap().starts_with("delete cluster"),
        "{calls}"
    );
    let kc = work.join("pme2e-kind0-11-k8s1-21/kubeconfig");
    assert!(!kc.exists(), "the kubeconfig of the deleted twin is gone");
    let twin_log = std::fs::read_to_string(log.with_extension("log.twin")).unwrap();
    assert!(twin_log.contains("stopping the twin"), "{twin_log}");
}

/// A temp dir whose `bin/kind` is [`TWIN_KIND`], and the environment it needs.
struct TwinKind {
    tmp: tempfile::TempDir,
}

impl TwinKind {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("bin")).unwrap();
        std::fs::create_dir(tmp.path().join("work")).unwrap();
        let kind = tmp.path().join("bin/kind");
        std::fs::write(&kind, TWIN_KIND).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kind, std::fs::Permissions::from_mode(0o755)).unwrap();
        TwinKind { tmp }
    }

    fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    fn run(&self, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.tmp.path().join("bin").display(),
            std::env::var("PATH").unwrap()
        );
        run(xtask(&self.work(), args)
            .env("PATH", path)
            .env("E2E_KIND_PLATFORM", "linux-amd64")
            .env("STANDIN_LOG", self.tmp.path().join("kind.log"))
            .env("STANDIN_NAME", "pme2e-kind0-11-k8s1-21")
            .env("TWIN_BIN", twin_bin())
            .env("TWIN_PROFILE", "1.21"))
    }

    fn run_dir(&self) -> PathBuf {
        self.work().join("pme2e-kind0-11-k8s1-21")
    }
}

impl Drop for TwinKind {
    fn drop(&mut self) {
        // Whatever happened, the twin started by the stand-in kind stops.
        let _ = self.run(&["down", "--name", "pme2e-kind0-11-k8s1-21"]);
    }
}

/// A stack shaped like kube-prometheus (operator in `monitoring`, Prometheus `k8s` with two
/// replicas, node-exporter on the host network, PodMonitor, an absent Alertmanager) applied by
/// `cargo xtask e2e --stack` to a new cluster and asserted in each replica; then, on the kept
/// cluster, `--kubeconfig --stack --no-workloads` applies nothing and asserts again, `cargo xtask
/// assert --stack` and `doctor` find each replica from the Prometheus object.
#[test]
fn a_kube_prometheus_shaped_stack_is_applied_asserted_per_replica_and_diagnosed() {
    let k = TwinKind::new();
    let stack = "fixtures/stacks/kube-prometheus";
    let out = k.run(&["e2e", "--stack", stack, "--keep", "--timeout", "120s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for phase in e2e::lifecycle::plan::PhaseId::ALL {
        assert!(
            err.contains(&format!("{} ok", phase.label())),
            "no `{} ok`: {err}",
            phase.label()
        );
    }
    for line in [
        "ok      monitoring/k8s: its replicas are running and ready — 2 of 2 ready: prometheus-k8s-0, prometheus-k8s-1",
        "ok      monitoring/prometheus-k8s-0: it loaded the cadvisor scrape job — serviceMonitor/monitoring/kubelet/1",
        "ok      monitoring/prometheus-k8s-1: it loaded the cadvisor scrape job — serviceMonitor/monitoring/kubelet/1",
        "ok      monitoring/prometheus-k8s-1: every running container has a series of each metric",
    ] {
        assert!(err.contains(line), "no `{line}`: {err}");
    }
    let junit = std::fs::read_to_string(k.run_dir().join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 7, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
    // The stack's own pods are covered too: node-exporter on each node, both Prometheus replicas.
    let coverage: Value = serde_json::from_str(
        &std::fs::read_to_string(
            k.run_dir()
                .join("artifacts/coverage/monitoring_prometheus-k8s-1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let cpu = &coverage["metrics"][0];
    assert_eq!(cpu["missing"], json!([]), "{coverage}");
    assert!(
        cpu["namespace_label"]
            .as_str()
            .unwrap()
            .contains("namespace"),
        "{coverage}"
    );
    let kc = k.run_dir().join("kubeconfig");
    assert!(kc.exists(), "--keep keeps the cluster");

    // The cluster runs the stack: nothing of it is applied, and no workloads either.
    let out = k.run(&[
        "e2e",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--stack",
        stack,
        "--no-workloads",
        "--prometheus",
        "monitoring/k8s",
        "--name",
        "pme2e-again",
        "--timeout",
        "60s",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("[6/8] workloads skipped (--no-workloads)")
            && err.contains("not ours to delete"),
        "{err}"
    );
    let dry = k.run(&[
        "e2e",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--stack",
        stack,
        "--dry-run",
    ]);
    assert!(
        String::from_utf8_lossy(&dry.stdout)
            .contains("nothing applied: the cluster runs the stack already"),
        "{}",
        String::from_utf8_lossy(&dry.stdout)
    );

    // The same checks alone, and the diagnosis, both finding the Prometheus from its object.
    let out = k.run(&[
        "assert",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--stack",
        stack,
        "--timeout",
        "60s",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("ok      ").count(), 7, "{err}");
    let out = k.run(&["doctor", "--kubeconfig", kc.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(json!({}));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{v:#} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked: Vec<&str> = v["prometheuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["prometheus"].as_str().unwrap())
        .collect();
    assert_eq!(
        asked,
        ["monitoring/prometheus-k8s-0", "monitoring/prometheus-k8s-1"],
        "{v:#}"
    );
}

/// A stack whose cadvisor ServiceMonitor lacks `bearerTokenFile`: the kubelets answer 401, the
/// run fails in the assert phase, and the diagnosis says `target-unauthorized`.
#[test]
fn a_stack_without_the_bearer_token_fails_and_the_diagnosis_says_target_unauthorized() {
    let k = TwinKind::new();
    let out = k.run(&[
        "e2e",
        "--stack",
        "fixtures/stacks/no-token.yaml",
        "--timeout",
        "40s",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("[5/8] servicemonitor ok") && err.contains("[7/8] assert FAILED"),
        "{err}"
    );
    assert!(
        err.contains("FAILED  metrics/prometheus-main-0: one healthy cadvisor target per node"),
        "{err}"
    );
    assert!(err.contains("401 Unauthorized"), "{err}");
    let diagnosis: Value = serde_json::from_str(
        &std::fs::read_to_string(k.run_dir().join("artifacts/diagnose.json")).unwrap(),
    )
    .unwrap();
    let ids: Vec<&str> = diagnosis["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["target-unauthorized"], "{diagnosis:#}");
    assert_eq!(
        diagnosis["findings"][0]["prometheus"],
        "metrics/prometheus-main-0"
    );
    let summary = std::fs::read_to_string(k.run_dir().join("summary.md")).unwrap();
    assert!(summary.contains("target-unauthorized"), "{summary}");
}

/// `cargo xtask doctor --json` until it reports `want` (or the deadline passes): the twin's
/// Prometheus needs a reload or a scrape before some breakages show.
fn doctor_until(kc: &Path, want: &str, exit: i32) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = xtask(
            Path::new("/nonexistent"),
            &["doctor", "--kubeconfig", kc.to_str().unwrap(), "--json"],
        )
        .output()
        .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or(json!({"stderr": String::from_utf8_lossy(&out.stderr)}));
        let ids: Vec<&str> = v["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["id"].as_str())
            .collect();
        let ok = if want.is_empty() {
            out.status.code() == Some(0) && !ids.iter().any(|i| *i != "honor-labels-false")
        } else {
            ids.contains(&want) && out.status.code() == Some(exit)
        };
        if ok {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "doctor never reported {want:?}: exit {:?}, {v:#}",
            out.status.code()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn doctor_finds_nothing_on_a_healthy_twin_and_each_breakage_on_purpose() {
    let rt = runtime();
    let twin = rt
        .block_on(Twin::start(TwinOptions::new(Profile::V1_21)))
        .unwrap();
    let kc = twin.kubeconfig_path();
    let c = twin.cluster().clone();
    let timeout = Duration::from_secs(120);
    rt.block_on(async {
        let client = e2e::k8s::client::kube_client(&kc).await.unwrap();
        let b = e2e::operator::Bundle::parse(&std::fs::read(bundle()).unwrap()).unwrap();
        e2e::operator::install(&client, &b, timeout).await.unwrap();
        e2e::operator::wait_kubelet_service(&client, timeout)
            .await
            .unwrap();
        e2e::install::apply_prometheus(&client, timeout)
            .await
            .unwrap();
        e2e::install::apply_servicemonitor(
            &client,
            e2e::matrix::ServiceMonitorVariant::Mission,
            timeout,
        )
        .await
        .unwrap();
        e2e::install::apply_workloads(&client, timeout)
            .await
            .unwrap();
    });
    doctor_until(&kc, "", 0);
    let mon = "monitoring.coreos.com";

    // Prometheus selector not matching.
    let prom = c.get(mon, "Prometheus", "monitoring", "e2e").unwrap();
    let mut broken = prom.clone();
    broken["spec"]["serviceMonitorSelector"] = json!({"matchLabels": {"team": "nobody"}});
    c.put(mon, "Prometheus", broken);
    doctor_until(&kc, "servicemonitor-not-selected", 1);
    c.put(mon, "Prometheus", prom);

    // Wrong port name: every endpoint dropped by the relabeling (after the reload).
    let sm = c
        .get(mon, "ServiceMonitor", "kube-system", "cadvisor")
        .unwrap();
    let mut broken = sm.clone();
    broken["spec"]["endpoints"][0]["port"] = json!("https-metric");
    c.put(mon, "ServiceMonitor", broken);
    doctor_until(&kc, "targets-all-dropped", 1);
    c.put(mon, "ServiceMonitor", sm.clone());
    doctor_until(&kc, "", 0);

    // ClusterRole without nodes/metrics: the kubelets answer 403.
    let rbac = "rbac.authorization.k8s.io";
    let role = c
        .get(rbac, "ClusterRole", "", "pod-metrics-e2e-prometheus")
        .unwrap();
    let mut broken = role.clone();
    for rule in broken["rules"].as_array_mut().unwrap() {
        if let Some(res) = rule["resources"].as_array_mut() {
            res.retain(|r| r != "nodes/metrics");
        }
    }
    c.put(rbac, "ClusterRole", broken);
    doctor_until(&kc, "target-forbidden", 1);
    c.put(rbac, "ClusterRole", role);
    doctor_until(&kc, "", 0);

    // ServiceMonitor deleted.
    c.delete_kind(mon, "ServiceMonitor", "kube-system", "cadvisor");
    doctor_until(&kc, "servicemonitor-missing", 1);
    c.put(mon, "ServiceMonitor", sm);

    // Operator without --kubelet-service: the kubelet Service is never (re)written.
    let op = c
        .get("apps", "Deployment", "default", "prometheus-operator")
        .unwrap();
    let mut broken = op.clone();
    let args = broken["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array_mut()
        .unwrap();
    args.retain(|a| !a.as_str().unwrap().starts_with("--kubelet-service"));
    c.put("apps", "Deployment", broken);
    c.delete_kind("", "Service", "kube-system", "kubelet");
    c.delete_kind("", "Endpoints", "kube-system", "kubelet");
    doctor_until(&kc, "kubelet-service-missing", 1);
    c.put("apps", "Deployment", op);
    doctor_until(&kc, "", 0);

    // No ServiceMonitor CRD at all: the API answers the plain-text 404 (defect 2).
    c.delete_kind(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "",
        "servicemonitors.monitoring.coreos.com",
    );
    doctor_until(&kc, "servicemonitor-missing", 1);
}

/// Ids of the containers carrying this twin's run label (only the ones this test started:
/// other tests and engineers run containers labelled `io.pod-metrics-e2e` at the same time).
fn containers_labelled(run: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={run}")])
        .output()
        .expect("docker ps");
    assert!(out.status.success(), "docker ps: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// `cargo xtask twin` is one process with the twin (exec, not a waiting parent): SIGTERM to the
/// wrapper's pid stops the twin, which removes its Prometheus container and the kubeconfig.
#[test]
fn sigterm_to_cargo_xtask_twin_leaves_no_container_and_no_kubeconfig() {
    let tmp = tempfile::tempdir().unwrap();
    let kc = tmp.path().join("twin.kubeconfig");
    let log = tmp.path().join("twin.log");
    let mut child = xtask(
        tmp.path(),
        &[
            "twin",
            "--profile",
            "1.21",
            "--kubeconfig-out",
            kc.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    let pid = child.id();
    let stop = |child: &mut std::process::Child| {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // The twin prints its kubeconfig and its containers' run label once its API answers (a
    // build of the twin binary may come first).
    let deadline = Instant::now() + Duration::from_secs(600);
    let run_label = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(label) = text
            .lines()
            .find_map(|l| l.strip_prefix("containers: label "))
        {
            break label.trim().to_string();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the twin exited ({status}) before it started:\n{text}");
        }
        if Instant::now() > deadline {
            stop(&mut child);
            panic!("the twin did not start within 600 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        run_label.starts_with(&format!("{}=twin-", testkit::RUN_LABEL)),
        "{run_label}"
    );
    assert!(kc.exists());

    // A Prometheus CR, so the twin runs a real Prometheus container.
    let installed = runtime().block_on(async {
        let timeout = Duration::from_secs(120);
        let client = e2e::k8s::client::kube_client(&kc).await?;
        let b = e2e::operator::Bundle::parse(&std::fs::read(bundle())?)?;
        e2e::operator::install(&client, &b, timeout).await?;
        e2e::install::apply_prometheus(&client, timeout).await?;
        anyhow::Ok(())
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while installed.is_ok() && containers_labelled(&run_label).is_empty() {
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let before = containers_labelled(&run_label);
    let status = stop(&mut child);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    installed.unwrap_or_else(|e| panic!("installing the operator and Prometheus: {e:#}\n{text}"));
    assert!(
        !before.is_empty(),
        "no container with {run_label} after the Prometheus CR was applied:\n{text}"
    );
    let status = status.unwrap_or_else(|| panic!("the twin ignored SIGTERM for 60 s:\n{text}"));
    assert!(
        text.contains("stopping the twin"),
        "exit {status}, no orderly stop:\n{text}"
    );
    let left = containers_labelled(&run_label);
    assert!(left.is_empty(), "containers left behind: {left:?}\n{text}");
    assert!(!kc.exists(), "the kubeconfig was left behind");
}
