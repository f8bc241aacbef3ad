//! `cargo xtask capture`: what a replay needs from a cluster, read-only: every node's
//! `/metrics/cadvisor` through the API server's node proxy, `pods -A`, the ServiceMonitors that
//! scrape `/metrics/cadvisor`, the Prometheus objects, the operator's kubelet Service and
//! Endpoints, and a [`CaptureManifest`] (`capture.json`: when, cluster version, nodes, sha256 of
//! every file). Every file goes through [`crate::redact::redact`] before it is written.

use kube::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest's file name in a capture directory.
pub const MANIFEST_FILE: &str = "capture.json";

/// `capture.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureManifest {
    /// Layout version of the directory (1).
    pub format: u32,
    /// RFC 3339, UTC.
    pub captured_at: String,
    /// The API server's `gitVersion`.
    pub cluster_version: String,
    /// Every node, in the API server's order.
    pub nodes: Vec<CapturedNode>,
    /// Relative paths of the captured files.
    pub pods: String,
    /// The ServiceMonitors scraping `/metrics/cadvisor`, one file each.
    pub servicemonitors: Vec<String>,
    /// The Prometheus objects (a JSON list).
    pub prometheuses: String,
    /// The operator's kubelet Service, when it exists.
    pub kubelet_service: Option<String>,
    /// Its Endpoints, when they exist.
    pub kubelet_endpoints: Option<String>,
    /// sha256 (hex) of every file, by relative path.
    pub files: BTreeMap<String, String>,
}

/// One node: its cadvisor file, or why it could not be read through the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedNode {
    /// The Node's name.
    pub name: String,
    /// Its `/metrics/cadvisor` body, relative path.
    pub cadvisor: Option<String>,
    /// Why the body could not be read through the node proxy.
    pub error: Option<String>,
}

/// Why a capture failed. Nothing is left behind: the output directory is created only once
/// everything has been read, and removed again if writing fails.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// `--out` exists and is not empty, or cannot be created.
    #[error("--out {path}: {problem}")]
    OutDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The API server refused or did not answer a read.
    #[error("reading {what} from the cluster")]
    Api {
        /// What was being read.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// An answer of an unexpected shape.
    #[error("{what}: unexpected answer: {problem}")]
    Decode {
        /// What was being read.
        what: String,
        /// What did not match.
        problem: String,
    },
    /// A file could not be written (the directory is removed again).
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

async fn get(client: &Client, path: &str, what: &str) -> Result<String, CaptureError> {
    let req = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| CaptureError::Decode {
            what: what.to_string(),
            problem: e.to_string(),
        })?;
    client
        .request_text(req)
        .await
        .map_err(|source| CaptureError::Api {
            what: what.to_string(),
            source,
        })
}

async fn get_json(client: &Client, path: &str, what: &str) -> Result<Value, CaptureError> {
    let text = get(client, path, what).await?;
    serde_json::from_str(&text).map_err(|e| CaptureError::Decode {
        what: what.to_string(),
        problem: e.to_string(),
    })
}

/// Whether a ServiceMonitor has an endpoint scraping `/metrics/cadvisor`.
fn scrapes_cadvisor(sm: &Value) -> bool {
    sm["spec"]["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["path"] == "/metrics/cadvisor")
}

/// Makes a name safe as a file name (node and object names are DNS names already; this only
/// guards against anything odd).
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Reads everything, then writes `out` (which must not exist, or be an empty directory).
/// `kubelet_service` is the operator's `--kubelet-service` (`kube-system/kubelet`).
/// `progress` gets one line per node. A node whose kubelet cannot be reached through the proxy
/// is recorded with its error in the manifest (that is part of the problem), not fatal; so are
/// absent prometheus-operator CRDs (no ServiceMonitors) and an absent kubelet Service.
///
/// # Errors
/// `out` not empty, the API server refusing a list (RBAC: the error names the resource),
/// writing failing (the directory is removed again).
pub async fn capture(
    client: &Client,
    out: &Path,
    kubelet_service: (&str, &str),
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<CaptureManifest, CaptureError> {
    let out_dir_err = |problem: String| CaptureError::OutDir {
        path: out.to_path_buf(),
        problem,
    };
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .map_err(|e| out_dir_err(e.to_string()))?
            .next()
            .is_none();
        if !empty {
            return Err(out_dir_err(
                "exists and is not empty; give a new directory (a capture never overwrites one)"
                    .into(),
            ));
        }
    }
    let version = client
        .apiserver_version()
        .await
        .map_err(|source| CaptureError::Api {
            what: "the API server version (/version)".into(),
            source,
        })?;
    let nodes = get_json(client, "/api/v1/nodes", "nodes").await?;
    let pods = get_json(client, "/api/v1/pods", "pods (all namespaces)").await?;
    // Absent objects are part of the picture, not a failed capture: the operator's CRDs not
    // served (404), or an operator started without `--kubelet-service`.
    let optional = |r: Result<Value, CaptureError>| match r {
        Ok(v) => Ok(Some(v)),
        Err(CaptureError::Api {
            source: kube::Error::Api(s),
            ..
        }) if s.code == 404 => Ok(None),
        Err(e) => Err(e),
    };
    let empty = || serde_json::json!({"items": []});
    let sms = optional(
        get_json(
            client,
            "/apis/monitoring.coreos.com/v1/servicemonitors",
            "ServiceMonitors (monitoring.coreos.com/v1, all namespaces)",
        )
        .await,
    )?;
    if sms.is_none() {
        progress("monitoring.coreos.com/v1 is not served (no prometheus-operator CRDs): no ServiceMonitors or Prometheus objects");
    }
    let sms = sms.unwrap_or_else(empty);
    let proms = optional(
        get_json(
            client,
            "/apis/monitoring.coreos.com/v1/prometheuses",
            "Prometheus objects (monitoring.coreos.com/v1, all namespaces)",
        )
        .await,
    )?
    .unwrap_or_else(empty);
    let (svc_ns, svc_name) = kubelet_service;
    let service = optional(
        get_json(
            client,
            &format!("/api/v1/namespaces/{svc_ns}/services/{svc_name}"),
            &format!("Service {svc_ns}/{svc_name}"),
        )
        .await,
    )?;
    let endpoints = optional(
        get_json(
            client,
            &format!("/api/v1/namespaces/{svc_ns}/endpoints/{svc_name}"),
            &format!("Endpoints {svc_ns}/{svc_name}"),
        )
        .await,
    )?;

    // Files in memory first: the directory appears only when everything has been read.
    let mut files: Vec<(String, String)> = Vec::new();
    let mut captured_nodes = Vec::new();
    let names: Vec<String> = nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["metadata"]["name"].as_str().map(String::from))
        .collect();
    for (i, name) in names.iter().enumerate() {
        let what = format!("node {name}'s /metrics/cadvisor (node proxy)");
        let path = format!("/api/v1/nodes/{name}/proxy/metrics/cadvisor");
        match get(client, &path, &what).await {
            Ok(body) => {
                let rel = format!("nodes/{}.cadvisor.prom", file_safe(name));
                let rows = body
                    .lines()
                    .filter(|l| l.starts_with("container_cpu_usage_seconds_total"))
                    .count();
                progress(&format!(
                    "node {}/{}: {name}: {} bytes, {rows} container_cpu_usage_seconds_total rows",
                    i + 1,
                    names.len(),
                    body.len()
                ));
                files.push((rel.clone(), body));
                captured_nodes.push(CapturedNode {
                    name: name.clone(),
                    cadvisor: Some(rel),
                    error: None,
                });
            }
            Err(e) => {
                let error = crate::redact::redact(&crate::errors::error_chain(&e));
                progress(&format!(
                    "node {}/{}: {name}: FAILED: {error}",
                    i + 1,
                    names.len()
                ));
                captured_nodes.push(CapturedNode {
                    name: name.clone(),
                    cadvisor: None,
                    error: Some(error),
                });
            }
        }
    }
    let pretty = |v: &Value| serde_json::to_string_pretty(v).expect("JSON values serialise") + "\n";
    files.push(("pods.json".into(), pretty(&pods)));
    files.push(("nodes.json".into(), pretty(&nodes)));
    files.push(("prometheuses.json".into(), pretty(&proms)));
    let mut sm_files = Vec::new();
    for sm in sms["items"].as_array().into_iter().flatten() {
        if !scrapes_cadvisor(sm) {
            continue;
        }
        let mut sm = sm.clone();
        // A list's items carry no kind; replay (and kubectl apply) need it.
        sm["apiVersion"] = "monitoring.coreos.com/v1".into();
        sm["kind"] = "ServiceMonitor".into();
        if let Some(meta) = sm["metadata"].as_object_mut() {
            meta.remove("managedFields");
        }
        let rel = format!(
            "servicemonitors/{}_{}.yaml",
            file_safe(sm["metadata"]["namespace"].as_str().unwrap_or_default()),
            file_safe(sm["metadata"]["name"].as_str().unwrap_or_default())
        );
        let yaml = crate::yaml::to_string(&sm);
        files.push((rel.clone(), yaml));
        sm_files.push(rel);
    }
    let mut kubelet_service_file = None;
    if let Some(svc) = &service {
        files.push(("kubelet-service.json".into(), pretty(svc)));
        kubelet_service_file = Some("kubelet-service.json".to_string());
    }
    let mut kubelet_endpoints_file = None;
    if let Some(ep) = &endpoints {
        files.push(("kubelet-endpoints.json".into(), pretty(ep)));
        kubelet_endpoints_file = Some("kubelet-endpoints.json".to_string());
    }
    // Tokens and credential-named values go before anything touches the disk.
    for (_, text) in &mut files {
        *text = crate::redact::redact(text);
    }
    let manifest = CaptureManifest {
        format: 1,
        captured_at: k8s_openapi::jiff::Timestamp::now().to_string(),
        cluster_version: version.git_version,
        nodes: captured_nodes,
        pods: "pods.json".into(),
        servicemonitors: sm_files,
        prometheuses: "prometheuses.json".into(),
        kubelet_service: kubelet_service_file,
        kubelet_endpoints: kubelet_endpoints_file,
        files: files
            .iter()
            .map(|(rel, text)| (rel.clone(), crate::pins::sha256_hex(text.as_bytes())))
            .collect(),
    };
    let created = !out.exists();
    if let Err(e) = write_all(out, &files, &manifest) {
        if created {
            let _ = std::fs::remove_dir_all(out);
        } else {
            // The directory was empty before: empty it again.
            if let Ok(entries) = std::fs::read_dir(out) {
                for entry in entries.flatten() {
                    let p = entry.path();
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
        }
        return Err(e);
    }
    Ok(manifest)
}

fn write_all(
    out: &Path,
    files: &[(String, String)],
    manifest: &CaptureManifest,
) -> Result<(), CaptureError> {
    let write = |path: PathBuf, text: &str| -> Result<(), CaptureError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CaptureError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| CaptureError::Write { path, source })
    };
    for (rel, text) in files {
        write(out.join(rel), text)?;
    }
    let json = serde_json::to_string_pretty(manifest).expect("the manifest serialises") + "\n";
    write(out.join(MANIFEST_FILE), &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_servicemonitors_scraping_cadvisor_are_kept() {
        let yes = serde_json::json!({"spec": {"endpoints": [{"path": "/metrics"}, {"path": "/metrics/cadvisor"}]}});
        let no = serde_json::json!({"spec": {"endpoints": [{"path": "/metrics"}]}});
        assert!(scrapes_cadvisor(&yes));
        assert!(!scrapes_cadvisor(&no));
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_safe("kind-control-plane"), "kind-control-plane");
        assert_eq!(file_safe("../x/y"), ".._x_y");
    }

    #[test]
    fn manifest_round_trips() {
        let m = CaptureManifest {
            format: 1,
            captured_at: "2026-11-26T03:00:00Z".into(),
            cluster_version: "v1.21.1".into(),
            nodes: vec![CapturedNode {
                name: "n1".into(),
                cadvisor: Some("nodes/n1.cadvisor.prom".into()),
                error: None,
            }],
            pods: "pods.json".into(),
            servicemonitors: vec!["servicemonitors/kube-system_cadvisor.yaml".into()],
            prometheuses: "prometheuses.json".into(),
            kubelet_service: None,
            kubelet_endpoints: Some("kubelet-endpoints.json".into()),
            files: BTreeMap::from([("pods.json".into(), crate::pins::sha256_hex(b"{}"))]),
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<CaptureManifest>(&text).unwrap(), m);
    }
}
