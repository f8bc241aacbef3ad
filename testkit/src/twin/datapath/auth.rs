//! What the twin's fixture kubelets allow: the kubelet's webhook authentication (TokenReview) and
//! authorization (SubjectAccessReview), decided from the twin's ServiceAccounts and RBAC.

use crate::kubelet::AuthDecision;
use crate::twin::cluster::Cluster;
use crate::twin::controllers::serviceaccounts::authenticate;
use std::sync::Weak;

/// The kubelet's webhook authn (TokenReview) and authz (SubjectAccessReview against RBAC):
/// `get` on `nodes/metrics` for the token's ServiceAccount (kubernetes/kubernetes pkg/kubelet/server/auth.go@v1.21.1,
/// kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac/rbac.go@v1.21.1).
pub(super) fn authorize(c: &Weak<Cluster>, token: Option<&str>) -> AuthDecision {
    let Some(c) = c.upgrade() else {
        return AuthDecision::Unauthorized;
    };
    if token.is_some_and(|t| c.is_apiserver_credential(t)) {
        return AuthDecision::Allow;
    }
    let Some((ns, sa)) = token.and_then(|t| authenticate(&c, t)) else {
        return AuthDecision::Unauthorized;
    };
    let user = format!("system:serviceaccount:{ns}:{sa}");
    let groups = [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".to_string(),
    ];
    let roles = c.objects("rbac.authorization.k8s.io", "ClusterRole");
    let allowed =
        c.objects("rbac.authorization.k8s.io", "ClusterRoleBinding")
            .iter()
            .any(|b| {
                let subject = b["subjects"].as_array().into_iter().flatten().any(|s| {
                    match s["kind"].as_str() {
                        Some("ServiceAccount") => {
                            s["name"] == sa.as_str() && s["namespace"] == ns.as_str()
                        }
                        Some("User") => s["name"] == user.as_str(),
                        Some("Group") => groups.iter().any(|g| s["name"] == g.as_str()),
                        _ => false,
                    }
                });
                subject
                    && b["roleRef"]["kind"] == "ClusterRole"
                    && roles
                        .iter()
                        .filter(|r| r["metadata"]["name"] == b["roleRef"]["name"])
                        .any(|r| {
                            r["rules"].as_array().into_iter().flatten().any(|rule| {
                                let has = |k: &str, want: &[&str]| {
                                    rule[k]
                                        .as_array()
                                        .into_iter()
                                        .flatten()
                                        .any(|v| want.iter().any(|w| v == *w))
                                };
                                has("apiGroups", &["", "*"])
                                    && has("resources", &["nodes/metrics", "*", "*/metrics"])
                                    && has("verbs", &["get", "*"])
                            })
                        })
            });
    if allowed {
        AuthDecision::Allow
    } else {
        AuthDecision::Forbidden(format!(
            "Forbidden (user={user}, verb=get, resource=nodes, subresource=metrics)"
        ))
    }
}
