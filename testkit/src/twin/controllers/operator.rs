//! prometheus-operator v0.48.1, emulated once its Deployment is available (FACTS.md,
//! TWIN-FACTS §7;
//! prometheus-operator/prometheus-operator pkg/prometheus/{operator,statefulset,promcfg}.go@v0.48.1,
//! prometheus-operator/prometheus-operator pkg/k8sutil/k8sutil.go@v0.48.1):
//! - with `--kubelet-service=<ns>/<name>`: that headless Service and its Endpoints (one address
//!   per node, first InternalIP, `targetRef` Node), rewritten every `Timing::kubelet_resync`;
//! - per Prometheus CR: rule ConfigMap, config Secret (gzip of the generated config with
//!   `kubernetes_sd_configs`, as the real operator writes it), TLS Secret, Service
//!   `prometheus-operated`, StatefulSet `prometheus-<name>`.

use super::nodes::internal_ip;
use super::objects::{owner_ref, template_hash};
use super::state::State;
use crate::twin::cluster::Cluster;
use base64::Engine;
use e2e::operator::scrape_config::{
    scrape_job, specs_from_servicemonitor, Discovery, ServiceMonitorSpec, Shard,
};
use e2e::operator::selection;
use e2e::operator::{KUBELET_LABELS, KUBELET_PORTS};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// The operator's Deployment if it is available, and its args.
pub fn running_operator(c: &Cluster) -> Option<Vec<String>> {
    c.objects("apps", "Deployment").into_iter().find_map(|d| {
        let container = d["spec"]["template"]["spec"]["containers"]
            .as_array()?
            .iter()
            .find(|c| {
                c["image"].as_str().is_some_and(|i| {
                    i.starts_with("quay.io/prometheus-operator/prometheus-operator:")
                })
            })?
            .clone();
        if d["status"]["availableReplicas"].as_i64().unwrap_or(0) < 1 {
            return None;
        }
        Some(
            container["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(String::from))
                .collect(),
        )
    })
}

fn sync_kubelet_service(c: &Cluster, ns: &str, name: &str) {
    let labels: serde_json::Map<String, Value> = KUBELET_LABELS
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let ports = KUBELET_PORTS;
    // Ports sent without protocol; the API server defaults them (TWIN-FACTS §7).
    c.put("", "Service", json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"type": "ClusterIP", "clusterIP": "None",
                 "ports": ports.iter().map(|(n, p)| json!({"name": n, "port": p})).collect::<Vec<_>>()},
    }));
    let addresses: Vec<Value> = c
        .objects("", "Node")
        .iter()
        .filter_map(|n| {
            let ip = internal_ip(n)?;
            Some(json!({"ip": ip, "targetRef": {"kind": "Node", "name": n["metadata"]["name"], "uid": n["metadata"]["uid"]}}))
        })
        .collect();
    let mut ep = json!({"metadata": {"name": name, "namespace": ns, "labels": labels}});
    if !addresses.is_empty() {
        ep["subsets"] = json!([{"addresses": addresses,
            "ports": ports.iter().map(|(n, p)| json!({"name": n, "port": p, "protocol": "TCP"})).collect::<Vec<_>>()}]);
    }
    c.put("", "Endpoints", ep);
}

/// The ServiceMonitors a Prometheus selects, in the order the operator writes their jobs. The
/// library's one model of prometheus-operator v0.48.1 decides it ([`e2e::operator::selection`]):
/// the owners chose one home for each upstream model, used by the library, the diagnosis and
/// the twin alike.
/// prometheus-operator/prometheus-operator pkg/prometheus/operator.go@v0.48.1 `selectServiceMonitors`
pub fn selected_service_monitors(c: &Cluster, prom: &Value) -> Vec<Value> {
    let namespaces = selection::namespace_labels(&c.objects("", "Namespace"));
    let sms = c.objects("monitoring.coreos.com", "ServiceMonitor");
    selection::selected_service_monitors(prom, &sms, &namespaces)
        .into_iter()
        .cloned()
        .collect()
}

/// One [`ServiceMonitorSpec`] per endpoint of a ServiceMonitor, read by the project's one parser
/// ([`specs_from_servicemonitor`]). One it refuses yields no job and a log line, as the
/// operator skips a ServiceMonitor it cannot use (prometheus-operator/prometheus-operator pkg/prometheus/operator.go@v0.48.1
/// selectServiceMonitors).
pub fn endpoint_specs(sm: &Value) -> Vec<ServiceMonitorSpec> {
    let parsed = serde_json::to_value(sm)
        .map_err(|e| e.to_string())
        .and_then(|v| specs_from_servicemonitor(&v).map_err(|e| e2e::errors::error_chain(&e)));
    parsed.unwrap_or_else(|e| {
        eprintln!(
            "twin: operator skipping servicemonitor {}/{}: {e}",
            sm["metadata"]["namespace"].as_str().unwrap_or_default(),
            sm["metadata"]["name"].as_str().unwrap_or_default()
        );
        Vec::new()
    })
}

/// The Prometheus configuration for a CR: the operator's global section and one job per
/// selected ServiceMonitor endpoint from the project's generator, with `discovery` per job.
pub fn prometheus_config(
    c: &Cluster,
    prom: &Value,
    discovery: &dyn Fn(&ServiceMonitorSpec) -> Discovery,
    shard: Shard,
    replica: &str,
) -> String {
    let spec = &prom["spec"];
    let interval = spec["scrapeInterval"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| format!("{}s", c.opts.timing.default_scrape_interval.as_secs()));
    let eval = spec["evaluationInterval"].as_str().unwrap_or("30s");
    let name = format!(
        "{}/{}",
        prom["metadata"]["namespace"].as_str().unwrap_or_default(),
        prom["metadata"]["name"].as_str().unwrap_or_default()
    );
    let jobs: Vec<e2e::yaml::Value> = selected_service_monitors(c, prom)
        .iter()
        .flat_map(endpoint_specs)
        .map(|s| scrape_job(&s, &discovery(&s), shard))
        .collect();
    let mut root = e2e::yaml::Mapping::new();
    let global: e2e::yaml::Value = serde_json::to_value(json!({
        "evaluation_interval": eval, "scrape_interval": interval,
        "external_labels": {"prometheus": name, "prometheus_replica": replica},
    }))
    .unwrap();
    root.insert("global".into(), global);
    root.insert(
        "rule_files".into(),
        serde_json::to_value(json!([format!(
            "/etc/prometheus/rules/prometheus-{}-rulefiles-0/*.yaml",
            prom["metadata"]["name"].as_str().unwrap_or_default()
        )]))
        .unwrap(),
    );
    root.insert("scrape_configs".into(), e2e::yaml::Value::Array(jobs));
    e2e::yaml::to_string(&e2e::yaml::Value::Object(root))
}

fn gzip_b64(text: &str) -> String {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(enc.finish().unwrap())
}

fn sync_prometheus(c: &Cluster, prom: &Value) {
    let name = prom["metadata"]["name"].as_str().unwrap_or_default();
    let ns = prom["metadata"]["namespace"].as_str().unwrap_or_default();
    let owner = owner_ref(prom, true);
    let managed = json!({"managed-by": "prometheus-operator"});
    c.put("", "ConfigMap", json!({
        "metadata": {"name": format!("prometheus-{name}-rulefiles-0"), "namespace": ns,
                     "labels": {"prometheus-name": name, "managed-by": "prometheus-operator"}, "ownerReferences": [owner]},
        "data": {},
    }));
    let spec = &prom["spec"];
    let all_nil = [
        "serviceMonitorSelector",
        "podMonitorSelector",
        "probeSelector",
    ]
    .iter()
    .all(|k| spec.get(*k).is_none_or(Value::is_null));
    let config = prometheus_config(
        c,
        prom,
        &|_| Discovery::Kubernetes,
        Shard::Placeholder,
        "$(POD_NAME)",
    );
    let (annotations, data) = if all_nil {
        (json!({"empty": "true"}), json!({}))
    } else {
        (
            json!({"generated": "true"}),
            json!({"prometheus.yaml.gz": gzip_b64(&config)}),
        )
    };
    c.put(
        "",
        "Secret",
        json!({
            "metadata": {"name": format!("prometheus-{name}"), "namespace": ns, "labels": managed,
                         "annotations": annotations, "ownerReferences": [owner]},
            "data": data,
        }),
    );
    c.put("", "Secret", json!({
        "metadata": {"name": format!("prometheus-{name}-tls-assets"), "namespace": ns, "labels": managed, "ownerReferences": [owner]},
        "data": {},
    }));
    let mut svc_owner = owner_ref(prom, false);
    svc_owner
        .as_object_mut()
        .unwrap()
        .remove("blockOwnerDeletion");
    c.put("", "Service", json!({
        "metadata": {"name": "prometheus-operated", "namespace": ns, "labels": {"operated-prometheus": "true"}, "ownerReferences": [svc_owner]},
        "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 9090, "targetPort": "web"}],
                 "selector": {"app.kubernetes.io/name": "prometheus"}},
    }));
    let version = spec["version"].as_str().unwrap_or("v2.26.0");
    let image = spec["image"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| format!("quay.io/prometheus/prometheus:{version}"));
    let pod_labels = json!({
        "app": "prometheus", "app.kubernetes.io/name": "prometheus", "app.kubernetes.io/version": version.trim_start_matches('v'),
        "app.kubernetes.io/managed-by": "prometheus-operator", "app.kubernetes.io/instance": name, "prometheus": name,
        "operator.prometheus.io/shard": "0", "operator.prometheus.io/name": name,
    });
    let mut labels = prom["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["operator.prometheus.io/shard"] = json!("0");
    labels["operator.prometheus.io/name"] = json!(name);
    let reloader = running_operator(c)
        .and_then(|args| {
            args.iter().find_map(|a| {
                a.strip_prefix("--prometheus-config-reloader=")
                    .map(String::from)
            })
        })
        .unwrap_or_else(|| "quay.io/prometheus-operator/prometheus-config-reloader:v0.48.1".into());
    let mut pod_spec = json!({
        "containers": [
            {"name": "prometheus", "image": image,
             "args": ["--web.console.templates=/etc/prometheus/consoles", "--web.console.libraries=/etc/prometheus/console_libraries",
                      "--config.file=/etc/prometheus/config_out/prometheus.env.yaml", "--storage.tsdb.path=/prometheus",
                      "--storage.tsdb.retention.time=24h", "--web.enable-lifecycle", "--storage.tsdb.no-lockfile", "--web.route-prefix=/"],
             "ports": [{"name": "web", "containerPort": 9090, "protocol": "TCP"}],
             "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}, "timeoutSeconds": 3, "periodSeconds": 5, "failureThreshold": 120},
             "volumeMounts": [{"name": "config-out", "mountPath": "/etc/prometheus/config_out", "readOnly": true},
                              {"name": "tls-assets", "mountPath": "/etc/prometheus/certs", "readOnly": true},
                              {"name": format!("prometheus-{name}-db"), "mountPath": "/prometheus"},
                              {"name": format!("prometheus-{name}-rulefiles-0"), "mountPath": format!("/etc/prometheus/rules/prometheus-{name}-rulefiles-0")}]},
            {"name": "config-reloader", "image": reloader, "command": ["/bin/prometheus-config-reloader"],
             "args": ["--listen-address=:8080", "--reload-url=http://localhost:9090/-/reload",
                      "--config-file=/etc/prometheus/config/prometheus.yaml.gz", "--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
                      format!("--watched-dir=/etc/prometheus/rules/prometheus-{name}-rulefiles-0")],
             "ports": [{"name": "reloader-web", "containerPort": 8080, "protocol": "TCP"}],
             "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, {"name": "SHARD", "value": "0"}],
             "resources": {"limits": {"cpu": "100m", "memory": "50Mi"}, "requests": {"cpu": "100m", "memory": "50Mi"}}},
        ],
        "serviceAccountName": spec["serviceAccountName"].as_str().unwrap_or("default"),
        "terminationGracePeriodSeconds": 600,
        "volumes": [{"name": "config", "secret": {"secretName": format!("prometheus-{name}")}},
                    {"name": "tls-assets", "secret": {"secretName": format!("prometheus-{name}-tls-assets")}},
                    {"name": "config-out", "emptyDir": {}},
                    {"name": format!("prometheus-{name}-rulefiles-0"), "configMap": {"name": format!("prometheus-{name}-rulefiles-0")}},
                    {"name": format!("prometheus-{name}-db"), "emptyDir": {}}],
    });
    for k in ["securityContext", "nodeSelector", "tolerations", "affinity"] {
        if let Some(v) = spec.get(k) {
            pod_spec[k] = v.clone();
        }
    }
    c.put("apps", "StatefulSet", json!({
        "metadata": {"name": format!("prometheus-{name}"), "namespace": ns, "labels": labels,
                     "annotations": {"prometheus-operator-input-hash": template_hash(spec)},
                     "ownerReferences": [owner]},
        "spec": {"replicas": spec["replicas"].as_i64().unwrap_or(1), "serviceName": "prometheus-operated",
                 "podManagementPolicy": "Parallel", "updateStrategy": {"type": "RollingUpdate"},
                 "selector": {"matchLabels": pod_labels},
                 "template": {"metadata": {"labels": pod_labels, "annotations": {"kubectl.kubernetes.io/default-container": "prometheus"}},
                              "spec": pod_spec}},
    }));
}

pub async fn reconcile(c: &Arc<Cluster>, st: &mut State) {
    let Some(args) = running_operator(c) else {
        return;
    };
    if let Some(svc) = args
        .iter()
        .find_map(|a| a.strip_prefix("--kubelet-service="))
    {
        let due = st
            .operator_kubelet_sync
            .is_none_or(|t| t.elapsed() >= c.opts.timing.kubelet_resync);
        if due {
            if let Some((ns, name)) = svc.split_once('/') {
                sync_kubelet_service(c, ns, name);
            }
            st.operator_kubelet_sync = Some(Instant::now());
        }
    }
    if c.registry
        .by_kind("monitoring.coreos.com", "Prometheus")
        .is_none()
    {
        return;
    }
    for prom in c.objects("monitoring.coreos.com", "Prometheus") {
        sync_prometheus(c, &prom);
    }
}
