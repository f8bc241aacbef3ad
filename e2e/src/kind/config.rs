//! The kind config (`kind.x-k8s.io/v1alpha4`): checked before anything is created, so a typo is an
//! error here rather than a half-created cluster.

use crate::workdir::display_path;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What a valid kind config describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindConfigSummary {
    /// Nodes with `role: control-plane` (one when `nodes` is absent, as kind does).
    pub control_planes: usize,
    /// Nodes with `role: worker`.
    pub workers: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // fields exist to be recognised, not read
struct KindCluster {
    kind: String,
    api_version: String,
    name: Option<String>,
    #[serde(default)]
    nodes: Vec<KindNode>,
    networking: Option<crate::yaml::Value>,
    feature_gates: Option<BTreeMap<String, bool>>,
    runtime_config: Option<BTreeMap<String, String>>,
    kubeadm_config_patches: Option<Vec<String>>,
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    kubeadm_config_patches_json6902: Option<Vec<crate::yaml::Value>>,
    containerd_config_patches: Option<Vec<String>>,
    #[serde(rename = "containerdConfigPatchesJSON6902")]
    containerd_config_patches_json6902: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct KindNode {
    role: String,
    image: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    extra_mounts: Option<Vec<crate::yaml::Value>>,
    extra_port_mappings: Option<Vec<crate::yaml::Value>>,
    kubeadm_config_patches: Option<Vec<String>>,
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    kubeadm_config_patches_json6902: Option<Vec<crate::yaml::Value>>,
}

/// Why a kind config is refused, before anything is created; each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum KindConfigError {
    /// The file cannot be read.
    #[error("cannot read kind config {path}: pass a readable file with --kind-config")]
    Read {
        /// The file, as displayed.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not YAML, or a field kind's v1alpha4 Cluster does not have (the parser names its line).
    #[error(
        "{origin}: not a valid kind config (kind: Cluster, apiVersion: kind.x-k8s.io/v1alpha4, \
         fields name/nodes/networking/featureGates/runtimeConfig/kubeadmConfigPatches/\
         containerdConfigPatches): {parser}"
    )]
    Shape {
        /// The file.
        origin: String,
        /// The parser's message, with line and column.
        parser: crate::yaml::Error,
    },
    /// `kind:` is not `Cluster`.
    #[error("{origin}: `kind: {kind}` should be `kind: Cluster`")]
    Kind {
        /// The file.
        origin: String,
        /// What it says.
        kind: String,
    },
    /// `apiVersion:` is not `kind.x-k8s.io/v1alpha4`.
    #[error(
        "{origin}: `apiVersion: {api_version}` should be `apiVersion: kind.x-k8s.io/v1alpha4`"
    )]
    ApiVersion {
        /// The file.
        origin: String,
        /// What it says.
        api_version: String,
    },
    /// A node role other than control-plane or worker.
    #[error("{origin}: nodes[{index}].role `{role}` should be `control-plane` or `worker`")]
    Role {
        /// The file.
        origin: String,
        /// The node's index.
        index: usize,
        /// What it says.
        role: String,
    },
    /// A node image. The harness passes the cell's pinned image as `--image`, and kind's
    /// `--image` replaces every node's image (kubernetes-sigs/kind
    /// pkg/cluster/internal/create/create.go@v0.11.1 and @v0.20.0), so it would be ignored.
    #[error(
        "{origin}: nodes[{index}].image would be ignored: kind's --image, the matrix cell's pinned \
         node image, replaces every node's image; remove it (or pin another image in a cell of \
         fixtures/matrix.toml)"
    )]
    NodeImage {
        /// The file.
        origin: String,
        /// The node's index.
        index: usize,
    },
    /// Nodes, but none of them a control plane.
    #[error("{origin}: needs at least one node with `role: control-plane`")]
    NoControlPlane {
        /// The file.
        origin: String,
    },
}

/// Parses a kind config and checks it is a `kind.x-k8s.io/v1alpha4` Cluster with only known
/// fields, at least one control-plane node, and no per-node image (`--image`, the cell's pinned
/// image, replaces it).
///
/// # Errors
/// [`KindConfigError`]: not YAML, another apiVersion or kind, an unknown field (with its line),
/// an unknown role, or a node `image` (kind's `--image` would replace it).
pub fn check_kind_config(text: &str, origin: &str) -> Result<KindConfigSummary, KindConfigError> {
    let origin_s = || origin.to_string();
    let cfg: KindCluster =
        crate::yaml::from_str(text).map_err(|parser| KindConfigError::Shape {
            origin: origin_s(),
            parser,
        })?;
    if cfg.kind != "Cluster" {
        return Err(KindConfigError::Kind {
            origin: origin_s(),
            kind: cfg.kind,
        });
    }
    if cfg.api_version != "kind.x-k8s.io/v1alpha4" {
        return Err(KindConfigError::ApiVersion {
            origin: origin_s(),
            api_version: cfg.api_version,
        });
    }
    let mut summary = KindConfigSummary {
        control_planes: 0,
        workers: 0,
    };
    for (index, node) in cfg.nodes.iter().enumerate() {
        match node.role.as_str() {
            "control-plane" => summary.control_planes += 1,
            "worker" => summary.workers += 1,
            other => {
                return Err(KindConfigError::Role {
                    origin: origin_s(),
                    index,
                    role: other.to_string(),
                })
            }
        }
        if node.image.is_some() {
            return Err(KindConfigError::NodeImage {
                origin: origin_s(),
                index,
            });
        }
    }
    if cfg.nodes.is_empty() {
        // kind's default: a single control-plane node.
        summary.control_planes = 1;
    }
    if summary.control_planes == 0 {
        return Err(KindConfigError::NoControlPlane { origin: origin_s() });
    }
    Ok(summary)
}

/// Reads and checks the kind config at `path`.
///
/// # Errors
/// [`KindConfigError::Read`], or as [`check_kind_config`].
pub fn read_kind_config(path: &Path) -> Result<KindConfigSummary, KindConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| KindConfigError::Read {
        path: display_path(path),
        source,
    })?;
    check_kind_config(&text, &display_path(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_harness_config_shape() {
        let text = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n- role: worker\n";
        assert_eq!(
            check_kind_config(text, "c.yaml").unwrap(),
            KindConfigSummary {
                control_planes: 1,
                workers: 2
            }
        );
        let empty = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n";
        assert_eq!(
            check_kind_config(empty, "c.yaml").unwrap().control_planes,
            1
        );
    }

    #[test]
    fn every_cell_config_is_one_control_plane_and_two_workers() {
        let m = crate::matrix::Matrix::load_default().unwrap();
        for cell in &m.cells {
            let summary = read_kind_config(&crate::workspace_root().join(&cell.kind_config))
                .unwrap_or_else(|e| panic!("{}: {e:#}", cell.name));
            assert_eq!(
                summary,
                KindConfigSummary {
                    control_planes: 1,
                    workers: 2
                },
                "{}",
                cell.name
            );
        }
    }

    #[test]
    fn rejects_unknown_fields_with_origin_and_line() {
        let text = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: worker\n  imagee: x\n";
        let err = check_kind_config(text, "bad.yaml").unwrap_err();
        let KindConfigError::Shape { origin, parser } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(origin, "bad.yaml");
        let parser = parser.to_string();
        assert!(
            parser.contains("imagee") && parser.contains("line 5"),
            "{parser}"
        );
    }

    #[test]
    fn rejects_wrong_api_version_role_and_pinned_node_image() {
        let e = |t: &str| check_kind_config(t, "f").unwrap_err();
        assert!(matches!(
            e("kind: Cluster\napiVersion: kind.sigs.k8s.io/v1alpha3\n"),
            KindConfigError::ApiVersion { api_version, .. } if api_version == "kind.sigs.k8s.io/v1alpha3"
        ));
        assert!(matches!(
            e("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: master\n"),
            KindConfigError::Role { index: 0, role, .. } if role == "master"
        ));
        assert!(matches!(
            e("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: worker\n"),
            KindConfigError::NoControlPlane { .. }
        ));
        assert!(matches!(
            e("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  image: x\n"),
            KindConfigError::NodeImage { index: 0, .. }
        ));
        assert!(matches!(
            e("kind: Pod\napiVersion: kind.x-k8s.io/v1alpha4\n"),
            KindConfigError::Kind { kind, .. } if kind == "Pod"
        ));
        assert!(matches!(e("nodes: ["), KindConfigError::Shape { .. }));
        // The messages still name the file and the fix.
        assert!(e("nodes: [")
            .to_string()
            .starts_with("f: not a valid kind config"));
    }
}
