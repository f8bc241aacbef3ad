//! The kind config (`kind.x-k8s.io/v1alpha4`): checked before anything is created, so a typo is an
//! error here rather than a half-created cluster.

use crate::workdir::display_path;
use anyhow::{bail, ensure, Context, Result};
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

/// Parses a kind config and checks it is a `kind.x-k8s.io/v1alpha4` Cluster with only known
/// fields, at least one control-plane node, and no per-node image (the cell pins the image).
///
/// # Errors
/// Not YAML, another apiVersion or kind, an unknown field (with its line), an unknown role,
/// or a node `image` (the cell pins the image).
pub fn check_kind_config(text: &str, origin: &str) -> Result<KindConfigSummary> {
    let cfg: KindCluster = crate::yaml::from_str(text).with_context(|| {
        format!(
            "{origin}: not a valid kind config (kind: Cluster, apiVersion: kind.x-k8s.io/v1alpha4, \
             fields name/nodes/networking/featureGates/runtimeConfig/kubeadmConfigPatches/\
             containerdConfigPatches)"
        )
    })?;
    ensure!(
        cfg.kind == "Cluster",
        "{origin}: `kind: {}` should be `kind: Cluster`",
        cfg.kind
    );
    ensure!(
        cfg.api_version == "kind.x-k8s.io/v1alpha4",
        "{origin}: `apiVersion: {}` should be `apiVersion: kind.x-k8s.io/v1alpha4`",
        cfg.api_version
    );
    let mut summary = KindConfigSummary {
        control_planes: 0,
        workers: 0,
    };
    for (i, node) in cfg.nodes.iter().enumerate() {
        match node.role.as_str() {
            "control-plane" => summary.control_planes += 1,
            "worker" => summary.workers += 1,
            other => {
                bail!("{origin}: nodes[{i}].role `{other}` should be `control-plane` or `worker`")
            }
        }
        ensure!(
            node.image.is_none(),
            "{origin}: nodes[{i}].image would override the matrix cell's pinned node image; remove it"
        );
    }
    if cfg.nodes.is_empty() {
        // kind's default: a single control-plane node.
        summary.control_planes = 1;
    }
    ensure!(
        summary.control_planes > 0,
        "{origin}: needs at least one node with `role: control-plane`"
    );
    Ok(summary)
}

/// Reads and checks the kind config at `path`.
///
/// # Errors
/// The file cannot be read, or [`check_kind_config`] refuses it.
pub fn read_kind_config(path: &Path) -> Result<KindConfigSummary> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read kind config {}: pass a readable file with --kind-config",
            display_path(path)
        )
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
        let err = format!("{:#}", check_kind_config(text, "bad.yaml").unwrap_err());
        assert!(
            err.contains("bad.yaml") && err.contains("imagee") && err.contains("line 5"),
            "{err}"
        );
    }

    #[test]
    fn rejects_wrong_api_version_role_and_pinned_node_image() {
        let e = |t: &str| format!("{:#}", check_kind_config(t, "f").unwrap_err());
        assert!(e("kind: Cluster\napiVersion: kind.sigs.k8s.io/v1alpha3\n")
            .contains("kind.x-k8s.io/v1alpha4"));
        assert!(
            e("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: master\n")
                .contains("nodes[0].role")
        );
        assert!(
            e("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: worker\n")
                .contains("control-plane")
        );
        assert!(e("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  image: x\n")
            .contains("nodes[0].image"));
        assert!(e("kind: Pod\napiVersion: kind.x-k8s.io/v1alpha4\n").contains("kind: Cluster"));
        assert!(e("nodes: [").contains("not a valid kind config"));
    }
}
