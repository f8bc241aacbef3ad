//! ServiceAccounts: the service-account controller creates `default` in every namespace
//! (kubernetes/kubernetes pkg/controller/serviceaccount/serviceaccounts_controller.go@v1.21.1);
//! up to 1.23 the token
//! controller also writes a `<sa>-token-<suffix>` Secret (profile rule). Every ServiceAccount
//! has a bearer token the twin's kubelets authenticate (TokenReview stand-in).

use crate::twin::cluster::Cluster;
use serde_json::json;
use std::sync::Arc;

/// The token of a ServiceAccount (deterministic per uid, so it survives restarts of nothing).
pub fn token_of(c: &Cluster, sa: &serde_json::Value) -> String {
    format!(
        "twin-sa.{}.{}",
        sa["metadata"]["uid"].as_str().unwrap_or_default(),
        &c.admin_token[11..]
    )
}

/// `(namespace, name)` of the ServiceAccount a token belongs to.
pub fn authenticate(c: &Cluster, token: &str) -> Option<(String, String)> {
    c.objects("", "ServiceAccount").into_iter().find_map(|sa| {
        (token_of(c, &sa) == token).then(|| {
            (
                sa["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                sa["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
    })
}

pub fn reconcile(c: &Arc<Cluster>) {
    let sas = c.objects("", "ServiceAccount");
    for ns in c.objects("", "Namespace") {
        let n = ns["metadata"]["name"].as_str().unwrap_or_default();
        if !sas
            .iter()
            .any(|s| s["metadata"]["namespace"] == n && s["metadata"]["name"] == "default")
        {
            c.put(
                "",
                "ServiceAccount",
                json!({"metadata": {"name": "default", "namespace": n}}),
            );
        }
    }
    if !c.profile.service_account_token_secrets() {
        return;
    }
    let secrets = c.objects("", "Secret");
    for sa in c.objects("", "ServiceAccount") {
        let (n, ns) = (
            sa["metadata"]["name"].as_str().unwrap_or_default(),
            sa["metadata"]["namespace"].as_str().unwrap_or_default(),
        );
        if sa["secrets"].as_array().is_some_and(|a| !a.is_empty()) {
            continue;
        }
        let secret_name = format!("{n}-token-{}", c.random_suffix());
        if secrets.iter().any(|s| {
            s["metadata"]["annotations"]["kubernetes.io/service-account.uid"]
                == sa["metadata"]["uid"]
        }) {
            continue;
        }
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let secret = json!({
            "metadata": {"name": secret_name, "namespace": ns,
                         "annotations": {"kubernetes.io/service-account.name": n, "kubernetes.io/service-account.uid": sa["metadata"]["uid"]}},
            "type": "kubernetes.io/service-account-token",
            "data": {"token": b64(&token_of(c, &sa)), "namespace": b64(ns)},
        });
        c.put("", "Secret", secret);
        let mut sa2 = sa.clone();
        sa2["secrets"] = json!([{"name": secret_name}]);
        c.put("", "ServiceAccount", sa2);
    }
}
