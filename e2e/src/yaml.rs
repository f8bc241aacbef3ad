//! YAML in and out, in one place: serde-saphyr (the parser kube already brings; serde_yaml is
//! unmaintained) into serde_json values, whose maps keep the document's key order.

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use serde_json::Value;

/// A YAML mapping; keys are strings and keep their order.
pub type Mapping = serde_json::Map<String, Value>;

/// A YAML text that does not parse; the message shows the line and column. Boxed: the parser's
/// error is large, and it travels inside other errors.
pub type Error = Box<serde_saphyr::Error>;

/// One YAML document.
///
/// # Errors
/// The text is not YAML, or not the shape `T` wants.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_saphyr::from_str(text).map_err(Box::new)
}

/// Every document of a multi-document text (`---` separated), empty ones skipped.
///
/// # Errors
/// A document is not YAML.
pub fn documents(text: &str) -> Result<Vec<Value>, Error> {
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(text).map_err(Box::new)?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// `value` as a YAML document.
///
/// # Panics
/// Never for the values this crate writes (maps with string keys, sequences, scalars).
pub fn to_string<T: Serialize>(value: &T) -> String {
    serde_saphyr::to_string(value).expect("a JSON-shaped value serialises to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_key_order_and_skip_empty_ones() {
        let docs =
            documents("---\nb: 1\na: [x, {z: 2, y: 3}]\n---\n# only a comment\n---\nkind: X\n")
                .unwrap();
        assert_eq!(docs.len(), 2);
        let keys: Vec<&String> = docs[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["b", "a"]);
        let inner: Vec<&String> = docs[0]["a"][1].as_object().unwrap().keys().collect();
        assert_eq!(inner, ["z", "y"]);
        assert_eq!(docs[1]["kind"], "X");
    }

    #[test]
    fn written_yaml_reads_back_the_same_in_the_same_order() {
        let value: Value = from_str(
            "job_name: serviceMonitor/kube-system/cadvisor/0\nhonor_labels: false\nregex: Node;(.*)\nreplacement: ${1}\nshard: $(SHARD)\nn: '1'\ne: ''\n",
        )
        .unwrap();
        let text = to_string(&value);
        let back: Value = from_str(&text).unwrap();
        assert_eq!(back, value);
        assert_eq!(
            back.as_object().unwrap().keys().collect::<Vec<_>>(),
            value.as_object().unwrap().keys().collect::<Vec<_>>()
        );
        assert_eq!(back["n"], "1");
    }

    #[test]
    fn plain_yes_no_y_n_on_off_are_booleans_as_the_api_server_reads_them() {
        // kubectl and the API server read YAML with sigs.k8s.io/yaml over gopkg.in/yaml.v2, a
        // YAML 1.1 parser: `y`, `yes`, `on` are true. Written strings are quoted, so they stay strings.
        let v: Value = from_str("a: y\nb: on\nc: 'y'\n").unwrap();
        assert_eq!(v["a"], true);
        assert_eq!(v["b"], true);
        assert_eq!(v["c"], "y");
        let back: Value = from_str(&to_string(&serde_json::json!({"label": "y"}))).unwrap();
        assert_eq!(back["label"], "y");
    }

    #[test]
    fn a_broken_document_says_where() {
        let err = documents("a: 1\n---\nb: [1,\n").unwrap_err().to_string();
        assert!(err.contains("line"), "{err}");
    }
}
