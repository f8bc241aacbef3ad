//! kubectl as a second client of the cluster twin (issue 19 item 8): what nobody here wrote
//! drives the twin the way a person would, with kubectl's defaults, and the harness's
//! `cargo xtask check` runs through `kubectl proxy`. Two twins: 1.27 with the data path (the
//! whole scenario), 1.21 without (what kubectl needs there).
//!
//! kubectl is `E2E_KUBECTL`, else the first `kubectl` on PATH (as `cargo xtask test` resolves
//! it); without one these tests fail, and `cargo xtask test` lists them as skipped (an error
//! with `CI=true`; `.ci/run` installs Debian's kubernetes-client). kubectl runs with a
//! temporary HOME and cache directory: `~/.kube` is never read or written.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;
use testkit::twin::{Profile, Twin, TwinOptions};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn kubectl_bin() -> PathBuf {
    if std::env::var_os("E2E_KUBECTL").is_some_and(|v| !v.is_empty()) {
        return testkit::required_input("E2E_KUBECTL", "a kubectl binary");
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no kubectl: set E2E_KUBECTL or put kubectl on PATH (Debian: apt-get install \
                 kubernetes-client); `cargo xtask test` lists this test as skipped instead"
            )
        })
}

/// kubectl against one twin, with its own HOME and cache.
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
    /// The client's minor version (google-cloud-sdk's kubectl picks one per server version).
    minor: u32,
}

impl Kubectl {
    fn new(twin: &Twin) -> Kubectl {
        let mut k = Kubectl {
            bin: kubectl_bin(),
            kubeconfig: twin.kubeconfig_path(),
            home: tempfile::tempdir().unwrap(),
            minor: 0,
        };
        let version: Value =
            serde_json::from_str(&k.ok(&["version", "--client", "-o", "json"])).unwrap();
        let minor = version["clientVersion"]["minor"]
            .as_str()
            .unwrap_or_default();
        k.minor = minor
            .trim_end_matches('+')
            .parse()
            .unwrap_or_else(|_| panic!("kubectl version: {version}"));
        eprintln!(
            "{}: {}",
            k.bin.display(),
            version["clientVersion"]["gitVersion"]
        );
        k
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.home.path())
            .env("KUBECACHEDIR", self.home.path().join("cache"))
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.cmd(args).output().expect("kubectl runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        eprintln!(
            "$ kubectl {}\n{}{}",
            args.join(" "),
            if stdout.len() > 2000 {
                format!("{}…\n", &stdout[..2000])
            } else {
                stdout.clone()
            },
            stderr
        );
        (out.status.success(), stdout, stderr)
    }

    /// Runs and requires success; stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "kubectl {} failed: {stderr}", args.join(" "));
        stdout
    }

    /// Runs and requires failure; stderr.
    fn fails(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(!ok, "kubectl {} succeeded: {stdout}", args.join(" "));
        stderr
    }
}

/// `kubectl proxy` on a free port; killed (and reaped) on drop, so on every exit path.
struct Proxy {
    child: Child,
    port: u16,
}

impl Proxy {
    fn start(k: &Kubectl) -> Proxy {
        let mut child = k
            .cmd(&["proxy", "--port=0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kubectl proxy starts");
        let stdout = child.stdout.take().unwrap();
        let mut proxy = Proxy { child, port: 0 };
        // "Starting to serve on 127.0.0.1:41235"
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        proxy.port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("kubectl proxy said {line:?}"));
        proxy
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn path(rel: &str) -> String {
    e2e::workspace_root().join(rel).display().to_string()
}

fn bundle() -> String {
    testkit::operator_bundle_path().display().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn kubectl_drives_the_main_job_on_1_27_with_its_defaults_and_xtask_check_runs_through_kubectl_proxy(
) {
    let rt = runtime();
    let twin = rt
        .block_on(Twin::start(TwinOptions::new(Profile::V1_27)))
        .unwrap();
    let k = Kubectl::new(&twin);
    let tmp = tempfile::tempdir().unwrap();

    for ns in ["pme2e-apps", "pme2e-batch"] {
        assert!(k
            .ok(&["create", "namespace", ns])
            .contains(&format!("namespace/{ns} created")));
    }
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "pme2e-apps",
        "--from-literal=a=b",
    ]);
    // Default validation: kubectl reads the OpenAPI documents, finds fieldValidation, and
    // leaves validation to the server (Strict).
    let applied = k.ok(&["apply", "--server-side", "-f", &bundle()]);
    assert!(
        applied.contains("deployment.apps/prometheus-operator serverside-applied"),
        "{applied}"
    );
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=60s",
    ]);
    k.ok(&[
        "rollout",
        "status",
        "deployment/prometheus-operator",
        "-n",
        "default",
        "--timeout=120s",
    ]);
    k.ok(&[
        "apply",
        "--server-side",
        "-f",
        &path("manifests/prometheus"),
    ]);
    k.ok(&[
        "rollout",
        "status",
        "statefulset/prometheus-e2e",
        "-n",
        "monitoring",
        "--timeout=120s",
    ]);
    k.ok(&[
        "apply",
        "--server-side",
        "-f",
        &path("manifests/servicemonitor-cadvisor.yaml"),
    ]);
    k.ok(&[
        "apply",
        "--server-side",
        "-f",
        &path("fixtures/workloads/10-apps.yaml"),
        "-f",
        &path("fixtures/workloads/20-batch.yaml"),
    ]);
    k.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "pme2e-apps",
        "--timeout=120s",
    ]);

    // Misspelt fields are refused by the server, naming the field, in both of kubectl's paths.
    let misspelt_apply = write(
        tmp.path(),
        "misspelt-deployment.yaml",
        &std::fs::read_to_string(path("fixtures/workloads/10-apps.yaml"))
            .unwrap()
            .replace(
                "terminationGracePeriodSeconds:",
                "terminationGracePeriodSecond:",
            ),
    );
    let err = k.fails(&["apply", "--server-side", "-f", &misspelt_apply]);
    assert!(
        err.contains("terminationGracePeriodSecond")
            && err.contains("field not declared in schema"),
        "{err}"
    );
    let misspelt_create = write(
        tmp.path(),
        "misspelt-configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: pme2e-apps\ndta:\n  a: b\n",
    );
    if k.minor >= 25 {
        // kubectl sends fieldValidation=Strict once the server advertises it.
        let err = k.fails(&["create", "-f", &misspelt_create]);
        assert!(
            err.contains(r#"strict decoding error: unknown field "dta""#),
            "{err}"
        );
    } else {
        // An older kubectl sends no fieldValidation: the server's default, Warn, drops the field
        // and says so. (Against a real 1.27 it would first validate on the client with the full
        // OpenAPI v2 schema, which the twin does not serve: docs/twin.md.)
        let (ok, _, stderr) = k.run(&["create", "-f", &misspelt_create]);
        assert!(ok && stderr.contains(r#"unknown field "dta""#), "{stderr}");
    }

    // Reading: JSON lists, the real Prometheus's log, Prometheus through the service proxy.
    let pods_json = k.ok(&["get", "pods", "-A", "-o", "json"]);
    let pods: Value = serde_json::from_str(&pods_json).unwrap();
    let prom = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == "prometheus-e2e-0")
        .expect("prometheus-e2e-0 listed");
    assert_eq!(prom["status"]["phase"], "Running");
    let cm: Value = serde_json::from_str(&k.ok(&[
        "get",
        "configmap",
        "settings",
        "-n",
        "pme2e-apps",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(cm["data"]["a"], "b");
    let log = k.ok(&[
        "logs",
        "-n",
        "monitoring",
        "prometheus-e2e-0",
        "-c",
        "prometheus",
    ]);
    assert!(
        log.contains("Server is ready to receive web requests"),
        "{log}"
    );
    let proxied = "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy";
    let buildinfo: Value = serde_json::from_str(&k.ok(&[
        "get",
        "--raw",
        &format!("{proxied}/api/v1/status/buildinfo"),
    ]))
    .unwrap();
    assert_eq!(buildinfo["status"], "success");

    // The harness's check, through kubectl proxy (no credentials of its own).
    let pods_file = write(tmp.path(), "pods.json", &pods_json);
    let proxy = Proxy::start(&k);
    let started = Instant::now();
    let out = Command::new(XTASK)
        .args([
            "check",
            "--prometheus",
            &format!("http://127.0.0.1:{}{proxied}", proxy.port),
            "--pods",
            &pods_file,
            "--deadline",
            "90s",
        ])
        .env_remove("KUBECONFIG")
        .env_remove("E2E_KUBECONFIG")
        .current_dir(e2e::workspace_root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!(
        "$ cargo xtask check (through kubectl proxy, {:?})\n{stdout}{stderr}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    drop(proxy);
}

#[test]
fn kubectl_on_1_21_creates_with_its_defaults_and_applies_with_validate_false() {
    let rt = runtime();
    let mut opts = TwinOptions::new(Profile::V1_21);
    opts.datapath = false;
    let twin = rt.block_on(Twin::start(opts)).unwrap();
    let k = Kubectl::new(&twin);
    // kubectl's typed clients (create namespace/configmap) send protobuf from 1.3x on.
    assert!(k
        .ok(&["create", "namespace", "pme2e-kubectl"])
        .contains("created"));
    k.ok(&[
        "create",
        "configmap",
        "c",
        "-n",
        "pme2e-kubectl",
        "--from-literal=a=b",
    ]);
    let cm: Value = serde_json::from_str(&k.ok(&[
        "get",
        "configmap",
        "c",
        "-n",
        "pme2e-kubectl",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(cm["data"]["a"], "b");
    // 1.21 has no server-side field validation, so kubectl validates on the client with the full
    // OpenAPI v2 schema, which the twin does not serve: docs/twin.md names --validate=false.
    // (kubectl 1.2x says "failed to download openapi … turn validation off with --validate=false";
    // 1.20 only "the server could not find the requested resource": the 404 of /openapi/v2.)
    let err = k.fails(&["apply", "--server-side", "-f", &bundle()]);
    assert!(
        err.contains("--validate=false") || err.contains("could not find the requested resource"),
        "{err}"
    );
    k.ok(&[
        "apply",
        "--server-side",
        "--validate=false",
        "-f",
        &bundle(),
    ]);
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=60s",
    ]);
    k.ok(&[
        "rollout",
        "status",
        "deployment/prometheus-operator",
        "-n",
        "default",
        "--timeout=120s",
    ]);
    let crds: Value = serde_json::from_str(&k.ok(&["get", "crd", "-o", "json"])).unwrap();
    assert_eq!(crds["items"].as_array().unwrap().len(), 8);
}
