//! Removes credentials from text before it is written to an artifact or a log.
//!
//! Artifacts (Prometheus config, targets, pod logs, object YAML) are uploaded by CI, so anything
//! that could authenticate goes: bearer tokens, `Authorization` headers, JWTs, values of
//! token/password/secret-like keys, kubeconfig key material and the `data` of Secrets. File
//! *paths* such as `bearer_token_file` are kept: they explain the setup and grant nothing.

use regex::{Captures, Regex};
use std::sync::LazyLock;

/// What a removed value is replaced with.
pub const REDACTED: &str = "<redacted>";

static AUTH_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    // Same line only (`[ \t]`): a YAML `authorization:` block (Prometheus's loaded config) has
    // nothing secret on its own line. `[` covers Go's header map printing.
    Regex::new(r#"(?i)(authorization"?[ \t]*[:=][ \t]*["\[]?)(?:(?:bearer|basic|token)[ \t]+)?[^\s",'}\]]+"#)
        .unwrap()
});
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(bearer)[ \t]+[A-Za-z0-9\-._~+/]{8,}=*").unwrap());
// Service-account tokens and OIDC id-tokens are JWTs: header.payload.signature, base64url.
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*").unwrap()
});
// `key: value`, `"key": "value"`, `key=value` where the key names a credential.
static SENSITIVE_KV: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<key>"?[A-Za-z0-9_.\-]*(?:token|password|passwd|secret|client-key-data|client_key_data|credentials|api[-_]?key|private[-_]?key)[A-Za-z0-9_\-]*"?)(?P<sep>[ \t]*[:=][ \t]*)(?P<val>"(?:[^"\\]|\\.)*"|'[^']*'|(?:[^\s,}\]{\["'][^\s,}\]]*)?)"#,
    )
    .unwrap()
});

// A container env entry in YAML whose name says credential: `- name: DB_PASSWORD` then `value: …`.
static ENV_YAML: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?im)^(?P<head>[ \t]*-?[ \t]*name:[ \t]*["']?[A-Za-z0-9_.\-]*(?:token|password|passwd|secret|credential|api[-_]?key|private[-_]?key)[A-Za-z0-9_.\-]*["']?[ \t]*\r?\n[ \t]*value:[ \t]*)(?P<val>\S.*)$"#,
    )
    .unwrap()
});

/// Whether an env var name says it holds a credential.
fn is_sensitive_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    [
        "token",
        "password",
        "passwd",
        "secret",
        "credential",
        "apikey",
        "api_key",
        "private_key",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Returns `text` with every credential replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let text = ENV_YAML.replace_all(text, |c: &Captures| format!("{}{REDACTED}", &c["head"]));
    let text = redact_secret_data_yaml(&text);
    let text = redact_secret_data_json(&text);
    let text = SENSITIVE_KV.replace_all(&text, replace_sensitive_kv);
    let text = AUTH_HEADER.replace_all(&text, |c: &Captures| format!("{}{REDACTED}", &c[1]));
    let text = BEARER.replace_all(&text, |c: &Captures| format!("{} {REDACTED}", &c[1]));
    JWT.replace_all(&text, REDACTED).into_owned()
}

fn replace_sensitive_kv(c: &Captures) -> String {
    let whole = c[0].to_string();
    let key = c["key"].trim_matches('"').to_ascii_lowercase();
    let val = &c["val"];
    // References and paths are not credentials: bearer_token_file, passwordFile, secretKeyRef,
    // tokenPath; nor are nested objects (`bearerTokenSecret:` followed by an indented block).
    let is_reference = ["file", "path", "ref", "name", "namespace", "key"]
        .iter()
        .any(|suffix| key.ends_with(suffix))
        && !key.ends_with("api-key")
        && !key.ends_with("api_key")
        && !key.ends_with("apikey")
        && !key.ends_with("private-key")
        && !key.ends_with("private_key")
        && !key.ends_with("privatekey");
    let unquoted = val.trim_matches(|ch| ch == '"' || ch == '\'');
    let nothing_to_hide = unquoted.is_empty()
        || unquoted == REDACTED
        || unquoted == "<secret>" // Prometheus already hides secrets this way
        || unquoted == "null"
        || unquoted == "true"
        || unquoted == "false";
    if is_reference || nothing_to_hide {
        return whole;
    }
    let quoted = if val.starts_with('"') {
        format!("\"{REDACTED}\"")
    } else if val.starts_with('\'') {
        format!("'{REDACTED}'")
    } else {
        REDACTED.to_string()
    };
    format!("{}{}{}", &c["key"], &c["sep"], quoted)
}

/// In YAML documents of `kind: Secret`, replaces every value under top-level `data:` and
/// `stringData:`. The keys stay (they say what the Secret holds).
fn redact_secret_data_yaml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, doc) in split_yaml_documents(text).into_iter().enumerate() {
        if i > 0 {
            out.push_str("---");
        }
        let is_secret = doc.lines().any(|l| l.trim_end() == "kind: Secret");
        if !is_secret {
            out.push_str(doc);
            continue;
        }
        let mut in_data = false;
        for line in doc.split_inclusive('\n') {
            let content = line.trim_end_matches(['\n', '\r']);
            let indented = content.starts_with(' ') || content.starts_with('\t');
            if !indented && !content.is_empty() {
                in_data = matches!(content.trim_end(), "data:" | "stringData:");
                out.push_str(line);
                continue;
            }
            if in_data {
                if let Some((key, _)) = content.split_once(':') {
                    out.push_str(key);
                    out.push_str(": ");
                    out.push_str(REDACTED);
                    out.push_str(&line[content.len()..]);
                    continue;
                }
            }
            out.push_str(line);
        }
    }
    out
}

/// Splits on `---` separator lines, keeping everything else byte for byte.
fn split_yaml_documents(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push(&text[start..pos]);
            start = pos + 3;
        }
        pos += line.len();
    }
    docs.push(&text[start..]);
    docs
}

/// For JSON text (e.g. a pod or object list): Secrets' `data`/`stringData` values and the values
/// of credential-named env vars are replaced.
/// Non-JSON text is returned unchanged.
fn redact_secret_data_json(text: &str) -> String {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('['))
        || !(text.contains("Secret") || text.contains("\"env\""))
    {
        return text.to_string();
    }
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_string();
    };
    if !redact_secrets_in_value(&mut value) {
        return text.to_string();
    }
    serde_json::to_string_pretty(&value).unwrap_or_else(|_| text.to_string())
}

/// Returns whether anything changed.
fn redact_secrets_in_value(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut changed = false;
            if map.get("kind").and_then(Value::as_str) == Some("Secret") {
                for field in ["data", "stringData"] {
                    if let Some(Value::Object(data)) = map.get_mut(field) {
                        for v in data.values_mut() {
                            *v = Value::String(REDACTED.to_string());
                            changed = true;
                        }
                    }
                }
            }
            // A container env entry: {"name": "DB_PASSWORD", "value": "…"}.
            let sensitive_env = map
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(is_sensitive_name);
            if sensitive_env {
                if let Some(v @ Value::String(_)) = map.get_mut("value") {
                    if v.as_str() != Some(REDACTED) {
                        *v = Value::String(REDACTED.to_string());
                        changed = true;
                    }
                }
            }
            for v in map.values_mut() {
                changed |= redact_secrets_in_value(v);
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, v| redact_secrets_in_value(v) | acc),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6IkFCQyJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.c2lnbmF0dXJlLWJ5dGVz";

    #[test]
    fn authorization_headers_lose_their_value() {
        let out = redact(
            "GET /metrics HTTP/1.1\r\nAuthorization: Bearer abcdef0123456789\r\nAccept: */*",
        );
        assert!(out.contains("Authorization: <redacted>"), "{out}");
        assert!(!out.contains("abcdef0123456789"), "{out}");
        assert!(out.contains("Accept: */*"));

        let out = redact(r#"{"headers":{"authorization":"Basic dXNlcjpwYXNz"}}"#);
        assert!(!out.contains("dXNlcjpwYXNz"), "{out}");
    }

    #[test]
    fn pod_json_with_secret_volumes_stays_valid_json() {
        let pod = r#"{"spec":{"volumes":[{"name":"kube-api-access","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}}]}},{"name":"certs","secret":{"secretName":"prometheus-e2e-tls","defaultMode":420}}]}}"#;
        let out = redact(pod);
        assert_eq!(out, pod);
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }

    #[test]
    fn go_header_maps_lose_the_token() {
        let out =
            redact("request headers map[Accept:[*/*] Authorization:[Bearer abcdef0123456789]]");
        assert!(!out.contains("abcdef0123456789"), "{out}");
        assert!(out.contains("Accept:[*/*]"), "{out}");
    }

    #[test]
    fn prometheus_authorization_blocks_keep_their_shape() {
        // How Prometheus >= 2.26 prints a job's bearer_token_file in /api/v1/status/config.
        let config = "  authorization:\n    type: Bearer\n    credentials_file: /var/run/secrets/kubernetes.io/serviceaccount/token\n  tls_config:\n    insecure_skip_verify: true\n";
        assert_eq!(redact(config), config);
        let inline = "  authorization:\n    type: Bearer\n    credentials: plain-secret-value\n";
        let out = redact(inline);
        assert!(
            !out.contains("plain-secret-value") && out.contains("type: Bearer"),
            "{out}"
        );
    }

    #[test]
    fn bearer_tokens_in_free_text_are_removed() {
        let out = redact("curl -H 'x: Bearer s3cr3t-t0ken-value' https://10.0.0.1:10250");
        assert!(!out.contains("s3cr3t-t0ken-value"), "{out}");
        assert!(out.contains("Bearer <redacted>"), "{out}");
    }

    #[test]
    fn jwts_anywhere_are_removed() {
        let out = redact(&format!("level=debug msg=\"using {TOKEN} for auth\""));
        assert!(!out.contains("c2lnbmF0dXJlLWJ5dGVz"), "{out}");
        assert!(out.contains("<redacted>"));
    }

    #[test]
    fn credential_keys_are_redacted_but_file_paths_kept() {
        let config = "\
  bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
  bearer_token: plain-token-value
  basic_auth:
    username: admin
    password: hunter2
  tls_config:
    insecure_skip_verify: true
";
        let out = redact(config);
        assert!(
            out.contains("bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token"),
            "{out}"
        );
        assert!(out.contains("bearer_token: <redacted>"), "{out}");
        assert!(out.contains("password: <redacted>"), "{out}");
        assert!(out.contains("username: admin"));
        assert!(out.contains("insecure_skip_verify: true"));
        assert!(!out.contains("hunter2") && !out.contains("plain-token-value"));
    }

    #[test]
    fn prometheus_secret_placeholders_and_nested_blocks_are_left_alone() {
        let text =
            "  password: <secret>\n  bearerTokenSecret:\n    name: sa-token\n    key: token\n";
        assert_eq!(redact(text), text);
    }

    #[test]
    fn json_credential_values_keep_their_quotes() {
        let out = redact(
            r#"{"bearerTokenFile":"/var/run/x/token","token":"abc.def","client-key-data":"LS0tLS1CRUdJTg=="}"#,
        );
        assert_eq!(
            out,
            r#"{"bearerTokenFile":"/var/run/x/token","token":"<redacted>","client-key-data":"<redacted>"}"#
        );
    }

    #[test]
    fn kubeconfig_key_material_is_removed() {
        let kubeconfig = "users:\n- name: kind\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZS0VZ\n    token: abcdef\n";
        let out = redact(kubeconfig);
        assert!(
            !out.contains("S0VZS0VZ") && !out.contains("abcdef"),
            "{out}"
        );
        assert!(out.contains("client-key-data: <redacted>"));
    }

    #[test]
    fn secret_data_in_yaml_is_removed_and_keys_kept() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\ndata:\n  config: visible\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  ca.crt: Q0FDRVJU\n  namespace: a3ViZS1zeXN0ZW0=\nstringData:\n  extra: plain\ntype: Opaque\n";
        let out = redact(yaml);
        assert!(out.contains("config: visible"), "{out}");
        assert!(out.contains("  ca.crt: <redacted>\n"), "{out}");
        assert!(out.contains("  namespace: <redacted>\n"), "{out}");
        assert!(out.contains("  extra: <redacted>\n"), "{out}");
        assert!(out.contains("type: Opaque"));
        assert!(!out.contains("Q0FDRVJU") && !out.contains("a3ViZS1zeXN0ZW0="));
        assert_eq!(out.matches("---").count(), 1);
    }

    #[test]
    fn secret_data_in_json_lists_is_removed() {
        let json = r#"{"kind":"List","items":[{"kind":"Secret","metadata":{"name":"s"},"data":{"ca.crt":"Q0FDRVJU"}},{"kind":"ConfigMap","data":{"a":"visible"}}]}"#;
        let out = redact(json);
        assert!(!out.contains("Q0FDRVJU"), "{out}");
        assert!(out.contains("visible"));
        assert!(out.contains("ca.crt"));
    }

    #[test]
    fn credential_env_values_are_removed_in_json_and_yaml() {
        let json = r#"{"items":[{"kind":"Pod","spec":{"containers":[{"name":"app","env":[
            {"name":"DB_PASSWORD","value":"hunter2"},{"name":"LOG_LEVEL","value":"debug"},
            {"name":"api-key","value":"k-123"},{"name":"FROM_SECRET","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]}]}}]}"#;
        let out = redact(json);
        assert!(!out.contains("hunter2") && !out.contains("k-123"), "{out}");
        assert!(
            out.contains("debug") && out.contains("secretKeyRef"),
            "{out}"
        );
        serde_json::from_str::<serde_json::Value>(&out).expect("still JSON");

        let yaml = "    env:\n    - name: DB_PASSWORD\n      value: hunter2\n    - name: LOG_LEVEL\n      value: debug\n";
        let out = redact(yaml);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(
            out.contains("- name: DB_PASSWORD\n      value: <redacted>\n"),
            "{out}"
        );
        assert!(out.contains("value: debug"), "{out}");
    }

    #[test]
    fn innocent_text_is_unchanged() {
        let text =
            "level=info ts=2021 caller=main.go msg=\"Server is ready to receive web requests.\"\n\
                    container_cpu_usage_seconds_total{container=\"app\",namespace=\"apps\"} 1.5\n";
        assert_eq!(redact(text), text);
    }
}
