//! YAML manifests: parsing (multi-document), the files under a directory, their sha256 digests
//! (printed by `--dry-run`), object identity and the order objects are applied in.

use anyhow::{bail, Context, Result};
use kube::core::GroupVersionKind;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Parses a multi-document YAML text into JSON objects, skipping empty documents (a leading
/// `---`, comments only). Every object must have `apiVersion`, `kind` and `metadata.name`.
///
/// # Errors
/// A document does not parse, or is not an object with `apiVersion`, `kind` and
/// `metadata.name` (the message names `origin`, and the line and column or the document's
/// number).
pub fn parse_documents(text: &str, origin: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    // The parser's message says the line and column of the mistake.
    let values =
        crate::yaml::documents(text).with_context(|| format!("{origin}: YAML does not parse"))?;
    for (i, value) in values.into_iter().enumerate() {
        let ident = ObjectIdent::of(&value).with_context(|| {
            format!(
                "{origin}: YAML document {} is not a Kubernetes object",
                i + 1
            )
        })?;
        if ident.name.is_empty() {
            bail!(
                "{origin}: YAML document {} ({}) has an empty metadata.name",
                i + 1,
                ident.kind
            );
        }
        docs.push(value);
    }
    Ok(docs)
}

/// Reads every `*.yaml`/`*.yml` file directly in `dir`, in file-name order.
///
/// # Errors
/// The directory cannot be listed, or a file is not valid (see [`read_manifest_file`]).
pub fn read_manifest_dir(dir: &Path) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for path in yaml_files(dir, false)? {
        docs.extend(read_manifest_file(&path)?);
    }
    Ok(docs)
}

/// The objects of one YAML file.
///
/// # Errors
/// The file cannot be read, or a document does not parse or is not a named object.
pub fn read_manifest_file(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read manifest {}", path.display()))?;
    parse_documents(&text, &path.display().to_string())
}

/// YAML files under `dir` (recursively if asked), sorted by path.
///
/// # Errors
/// The directory (or a subdirectory) cannot be listed.
pub fn yaml_files(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list manifest directory {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            if recursive {
                out.extend(yaml_files(&path, true)?);
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// sha256 of every YAML file under `dirs` of `root` (recursively), as (path relative to `root`,
/// hex digest), sorted by path.
///
/// # Errors
/// A file under `dirs` cannot be listed or read.
pub fn digests_under(root: &Path, dirs: &[&str]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for dir in dirs {
        for path in yaml_files(&root.join(dir), true)? {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, crate::pins::sha256_hex(&bytes)));
        }
    }
    out.sort();
    Ok(out)
}

/// apiVersion/kind/namespace/name of an object, for messages and API routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIdent {
    /// API group; empty for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// `metadata.namespace`, when set.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectIdent {
    /// Reads the identity of a manifest object.
    ///
    /// # Errors
    /// `apiVersion`, `kind` or `metadata.name` is missing.
    pub fn of(obj: &Value) -> Result<Self> {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .context("missing apiVersion")?;
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .context("missing kind")?;
        let meta = obj.get("metadata").context("missing metadata")?;
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .context("missing metadata.name")?;
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        Ok(ObjectIdent {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            namespace: meta
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            name: name.to_string(),
        })
    }

    /// Its group/version/kind, for discovery.
    pub fn gvk(&self) -> GroupVersionKind {
        GroupVersionKind::gvk(&self.group, &self.version, &self.kind)
    }
}

impl std::fmt::Display for ObjectIdent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Where an object goes in an apply sequence: CRDs, then Namespaces, then identities and RBAC
/// (so pods find their ServiceAccount), then everything else. Stable within a rank.
pub fn apply_rank(obj: &Value) -> u8 {
    match obj.get("kind").and_then(Value::as_str).unwrap_or_default() {
        "CustomResourceDefinition" => 0,
        "Namespace" => 1,
        "ServiceAccount" | "ClusterRole" | "Role" | "ClusterRoleBinding" | "RoleBinding"
        | "ConfigMap" | "Secret" => 2,
        _ => 3,
    }
}

/// `objs` in apply order (see [`apply_rank`]).
pub fn in_apply_order<'a>(objs: impl IntoIterator<Item = &'a Value>) -> Vec<&'a Value> {
    let mut out: Vec<&Value> = objs.into_iter().collect();
    out.sort_by_key(|o| apply_rank(o));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_parse_and_empty_ones_are_skipped() {
        let text = "---\n# comment only\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: a\n";
        let docs = parse_documents(text, "t.yaml").unwrap();
        assert_eq!(docs.len(), 2);
        let d = ObjectIdent::of(&docs[1]).unwrap();
        assert_eq!(
            (d.group.as_str(), d.version.as_str(), d.kind.as_str()),
            ("apps", "v1", "Deployment")
        );
        assert_eq!(d.to_string(), "Deployment a/d");
        let ns = ObjectIdent::of(&docs[0]).unwrap();
        assert_eq!((ns.group.as_str(), ns.version.as_str()), ("", "v1"));
        assert_eq!(ns.to_string(), "Namespace a");
    }

    #[test]
    fn non_objects_and_nameless_objects_are_rejected_with_origin() {
        let err =
            parse_documents("apiVersion: v1\nkind: Pod\nmetadata: {}\n", "x.yaml").unwrap_err();
        assert!(
            format!("{err:#}").contains("x.yaml: YAML document 1 is not a Kubernetes object"),
            "{err:#}"
        );
        assert!(format!("{err:#}").contains("metadata.name"), "{err:#}");
        let err = parse_documents("a: [1,\n", "y.yaml").unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("y.yaml: YAML does not parse") && msg.contains("line 1 column 4"),
            "{msg}"
        );
    }

    #[test]
    fn apply_order_puts_crds_then_namespaces_then_rbac_first_and_is_stable() {
        let objs = [
            json!({"kind": "Deployment", "metadata": {"name": "d"}}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "b"}}),
            json!({"kind": "CustomResourceDefinition", "metadata": {"name": "c1"}}),
            json!({"kind": "Service", "metadata": {"name": "s"}}),
            json!({"kind": "Namespace", "metadata": {"name": "n"}}),
            json!({"kind": "ServiceAccount", "metadata": {"name": "sa"}}),
            json!({"kind": "CustomResourceDefinition", "metadata": {"name": "c2"}}),
        ];
        let names: Vec<&str> = in_apply_order(&objs)
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["c1", "c2", "n", "b", "sa", "d", "s"]);
    }

    #[test]
    fn digests_cover_every_yaml_file_recursively_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("m/sub")).unwrap();
        std::fs::write(root.join("m/b.yaml"), "b").unwrap();
        std::fs::write(root.join("m/sub/a.yml"), "").unwrap();
        std::fs::write(root.join("m/notes.txt"), "ignored").unwrap();
        let digests = digests_under(root, &["m"]).unwrap();
        assert_eq!(
            digests,
            vec![
                (
                    "m/b.yaml".to_string(),
                    "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d".to_string()
                ),
                (
                    "m/sub/a.yml".to_string(),
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_string()
                ),
            ]
        );
        let err = digests_under(root, &["missing"]).unwrap_err();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
    }
}
