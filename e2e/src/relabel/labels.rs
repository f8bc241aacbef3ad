//! Label sets as Prometheus keeps them, and label names as its discovery writes them.

use std::collections::BTreeMap;

/// A label set, sorted by name as Prometheus keeps it. Empty values are absent labels.
pub type Labels = BTreeMap<String, String>;

/// labels.Builder `Set`: an empty value deletes the label.
pub(crate) fn set(labels: &mut Labels, name: String, value: String) {
    if value.is_empty() {
        labels.remove(&name);
    } else {
        labels.insert(name, value);
    }
}

/// A Kubernetes label name as Prometheus's kubernetes_sd puts it in a label name: every
/// character outside `[a-zA-Z0-9_]` becomes `_` (prometheus/prometheus
/// util/strutil/strconv.go@v2.26.0 `SanitizeLabelName`).
pub fn sanitize_label_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
