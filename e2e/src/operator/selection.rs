//! Which ServiceMonitors a Prometheus selects, as prometheus-operator v0.48.1 decides it
//! (prometheus-operator/prometheus-operator pkg/prometheus/operator.go@v0.48.1
//! `selectServiceMonitors`):
//!
//! - `serviceMonitorSelector` goes through `metav1.LabelSelectorAsSelector`
//!   (kubernetes/apimachinery pkg/apis/meta/v1/helpers.go, as v0.48.1 vendors it): unset (nil) selects
//!   nothing, `{}` selects every ServiceMonitor;
//! - `serviceMonitorNamespaceSelector` unset means the Prometheus's own namespace only; set, it
//!   is matched against the labels of each namespace (`{}`: every namespace).
//!
//! Objects are plain JSON (as a kube `DynamicObject` or the twin's store holds them): a
//! handful of fields are read, no CRD type crate is needed. Label matching is kube-rs's
//! [`kube::core::Selector`] (kube-rs/kube kube-core/src/labels.rs@5.0.0: `TryFrom<LabelSelector>`
//! and `SelectorExt::matches`), which has the apimachinery semantics for `matchLabels` and the
//! four `matchExpressions` operators. Only the nil-versus-`{}` distinction is this module's:
//! kube's `Selector` has no "nothing", so an unset selector is handled before it is built.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// A label set (`metadata.labels`).
pub type Labels = BTreeMap<String, String>;

/// The labels of every namespace, by name.
pub type NamespaceLabels = BTreeMap<String, Labels>;

/// Why a Prometheus does not select a ServiceMonitor; each says it in one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSelected {
    /// `serviceMonitorSelector` is unset.
    SelectorUnset,
    /// `serviceMonitorSelector` does not match the ServiceMonitor's labels.
    SelectorMismatch {
        /// The selector as written.
        selector: Value,
        /// The ServiceMonitor's labels.
        labels: Labels,
    },
    /// `serviceMonitorNamespaceSelector` is unset and the ServiceMonitor is in another namespace.
    OtherNamespace {
        /// The Prometheus's namespace, the only one searched.
        own: String,
        /// The ServiceMonitor's namespace.
        namespace: String,
    },
    /// `serviceMonitorNamespaceSelector` does not match the ServiceMonitor's namespace.
    NamespaceMismatch {
        /// The selector as written.
        selector: Value,
        /// The ServiceMonitor's namespace.
        namespace: String,
        /// That namespace's labels.
        labels: Labels,
    },
    /// A selector `LabelSelectorAsSelector` refuses: the operator then selects nothing.
    Invalid {
        /// `serviceMonitorSelector` or `serviceMonitorNamespaceSelector`.
        field: &'static str,
        /// The selector as written.
        selector: Value,
        /// Why it is refused.
        why: String,
    },
}

impl fmt::Display for NotSelected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = |l: &Labels| serde_json::to_string(l).unwrap_or_default();
        match self {
            NotSelected::SelectorUnset => {
                f.write_str("serviceMonitorSelector is not set, which selects no ServiceMonitor")
            }
            NotSelected::SelectorMismatch { selector, labels } => write!(
                f,
                "serviceMonitorSelector {selector} does not match the ServiceMonitor's labels {}",
                json(labels)
            ),
            NotSelected::OtherNamespace { own, namespace } => write!(
                f,
                "serviceMonitorNamespaceSelector is not set, so only the Prometheus's own \
                 namespace {own} is searched, not {namespace}"
            ),
            NotSelected::NamespaceMismatch {
                selector,
                namespace,
                labels,
            } => write!(
                f,
                "serviceMonitorNamespaceSelector {selector} does not match namespace \
                 {namespace}'s labels {}",
                json(labels)
            ),
            NotSelected::Invalid {
                field,
                selector,
                why,
            } => write!(
                f,
                "{field} {selector} is not a valid label selector ({why}), so the operator \
                 selects no ServiceMonitor"
            ),
        }
    }
}

/// Why `prometheus` does not select `service_monitor`; empty when it does. `namespaces` holds
/// every namespace's labels; one missing from it has none (an object cannot be in a namespace
/// that does not exist, so this only matters for partial lists).
pub fn why_not_selected(
    prometheus: &Value,
    service_monitor: &Value,
    namespaces: &NamespaceLabels,
) -> Vec<NotSelected> {
    let spec = &prometheus["spec"];
    let own = str_at(prometheus, "/metadata/namespace");
    let namespace = str_at(service_monitor, "/metadata/namespace");
    let mut why = Vec::new();
    match present(spec, "serviceMonitorSelector") {
        None => why.push(NotSelected::SelectorUnset),
        Some(selector) => {
            let labels = labels_of(service_monitor.pointer("/metadata/labels"));
            match selector_of(selector) {
                Err(e) => why.push(NotSelected::Invalid {
                    field: "serviceMonitorSelector",
                    selector: selector.clone(),
                    why: e,
                }),
                Ok(s) if !s.matches(&labels) => why.push(NotSelected::SelectorMismatch {
                    selector: selector.clone(),
                    labels,
                }),
                Ok(_) => {}
            }
        }
    }
    match present(spec, "serviceMonitorNamespaceSelector") {
        None if own != namespace => why.push(NotSelected::OtherNamespace {
            own: own.to_string(),
            namespace: namespace.to_string(),
        }),
        None => {}
        Some(selector) => {
            let labels = namespaces.get(namespace).cloned().unwrap_or_default();
            match selector_of(selector) {
                Err(e) => why.push(NotSelected::Invalid {
                    field: "serviceMonitorNamespaceSelector",
                    selector: selector.clone(),
                    why: e,
                }),
                Ok(s) if !s.matches(&labels) => why.push(NotSelected::NamespaceMismatch {
                    selector: selector.clone(),
                    namespace: namespace.to_string(),
                    labels,
                }),
                Ok(_) => {}
            }
        }
    }
    why
}

/// Whether `prometheus` selects `service_monitor` (see [`why_not_selected`]).
pub fn selects(prometheus: &Value, service_monitor: &Value, namespaces: &NamespaceLabels) -> bool {
    why_not_selected(prometheus, service_monitor, namespaces).is_empty()
}

/// The ServiceMonitors `prometheus` selects, in the order the operator writes their jobs:
/// sorted by `namespace/name` (promcfg.go@v0.48.1 `generateConfig` sorts the keys).
pub fn selected_service_monitors<'a>(
    prometheus: &Value,
    service_monitors: &'a [Value],
    namespaces: &NamespaceLabels,
) -> Vec<&'a Value> {
    let mut out: Vec<&Value> = service_monitors
        .iter()
        .filter(|sm| selects(prometheus, sm, namespaces))
        .collect();
    out.sort_by_key(|sm| {
        format!(
            "{}/{}",
            str_at(sm, "/metadata/namespace"),
            str_at(sm, "/metadata/name")
        )
    });
    out
}

/// The labels of each namespace object (JSON), by name.
pub fn namespace_labels<'a>(namespaces: impl IntoIterator<Item = &'a Value>) -> NamespaceLabels {
    namespaces
        .into_iter()
        .map(|n| {
            (
                str_at(n, "/metadata/name").to_string(),
                labels_of(n.pointer("/metadata/labels")),
            )
        })
        .collect()
}

/// A Kubernetes LabelSelector (JSON) against a label set: `{}` matches everything; a selector
/// the API would refuse (an unknown operator, `In` without values) matches nothing.
pub fn label_selector_matches(selector: &Value, labels: &Labels) -> bool {
    selector_of(selector).is_ok_and(|s| s.matches(labels))
}

/// `LabelSelectorAsSelector` for a set selector, through kube's typed conversion.
fn selector_of(selector: &Value) -> Result<Selector, String> {
    let typed: LabelSelector =
        serde_json::from_value(selector.clone()).map_err(|e| e.to_string())?;
    Selector::try_from(typed).map_err(|e| e.0)
}

/// A field that is present and not `null` (Go's nil pointer).
fn present<'a>(spec: &'a Value, field: &str) -> Option<&'a Value> {
    spec.get(field).filter(|v| !v.is_null())
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn labels_of(v: Option<&Value>) -> Labels {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sm(ns: &str, name: &str, labels: Value) -> Value {
        json!({"metadata": {"namespace": ns, "name": name, "labels": labels}})
    }

    fn prom(ns: &str, spec: Value) -> Value {
        json!({"metadata": {"namespace": ns, "name": "k8s"}, "spec": spec})
    }

    fn nss() -> NamespaceLabels {
        namespace_labels(&[
            json!({"metadata": {"name": "kube-system", "labels": {"team": "infra"}}}),
            json!({"metadata": {"name": "apps", "labels": {"team": "apps"}}}),
        ])
    }

    #[test]
    fn nil_selects_nothing_and_empty_selects_everything() {
        let all = [sm("monitoring", "a", json!({"x": "1"}))];
        let nil = prom("monitoring", json!({}));
        assert_eq!(
            why_not_selected(&nil, &all[0], &nss()),
            [NotSelected::SelectorUnset]
        );
        // `null` is Go's nil too.
        let null = prom("monitoring", json!({"serviceMonitorSelector": null}));
        assert!(selected_service_monitors(&null, &all, &nss()).is_empty());
        let empty = prom("monitoring", json!({"serviceMonitorSelector": {}}));
        assert_eq!(selected_service_monitors(&empty, &all, &nss()), [&all[0]]);
    }

    #[test]
    fn nil_namespace_selector_is_the_own_namespace_and_a_set_one_matches_namespace_labels() {
        let all = [
            sm("kube-system", "cadvisor", json!({})),
            sm("apps", "web", json!({})),
            sm("monitoring", "self", json!({})),
        ];
        let own = prom("monitoring", json!({"serviceMonitorSelector": {}}));
        assert_eq!(selected_service_monitors(&own, &all, &nss()), [&all[2]]);
        assert_eq!(
            why_not_selected(&own, &all[0], &nss())[0].to_string(),
            "serviceMonitorNamespaceSelector is not set, so only the Prometheus's own namespace \
             monitoring is searched, not kube-system"
        );
        let every = prom(
            "monitoring",
            json!({"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {}}),
        );
        // Sorted by namespace/name, as the operator writes the jobs.
        assert_eq!(
            selected_service_monitors(&every, &all, &nss()),
            [&all[1], &all[0], &all[2]]
        );
        let infra = prom(
            "monitoring",
            json!({"serviceMonitorSelector": {},
                   "serviceMonitorNamespaceSelector": {"matchLabels": {"team": "infra"}}}),
        );
        assert_eq!(selected_service_monitors(&infra, &all, &nss()), [&all[0]]);
    }

    #[test]
    fn label_selectors_have_the_apimachinery_operators() {
        let l: Labels = [("a", "1"), ("b", "2")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let m = |s: Value| label_selector_matches(&s, &l);
        assert!(m(json!({})));
        assert!(m(json!({"matchLabels": {"a": "1"}})));
        assert!(!m(json!({"matchLabels": {"a": "2"}})));
        assert!(m(
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["0", "1"]}]})
        ));
        assert!(!m(
            json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]})
        ));
        assert!(m(
            json!({"matchExpressions": [{"key": "c", "operator": "NotIn", "values": ["1"]}]})
        ));
        assert!(m(
            json!({"matchExpressions": [{"key": "b", "operator": "Exists"}]})
        ));
        assert!(m(
            json!({"matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]})
        ));
        assert!(!m(
            json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})
        ));
    }

    #[test]
    fn an_invalid_selector_selects_nothing_and_says_why() {
        let p = prom(
            "monitoring",
            json!({"serviceMonitorSelector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}),
        );
        let why = why_not_selected(&p, &sm("monitoring", "x", json!({"a": "1"})), &nss());
        assert!(
            matches!(
                &why[..],
                [NotSelected::Invalid {
                    field: "serviceMonitorSelector",
                    ..
                }]
            ),
            "{why:?}"
        );
        assert!(why[0].to_string().contains("not a valid label selector"));
    }
}
