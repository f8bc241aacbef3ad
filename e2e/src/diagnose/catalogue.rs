//! Every finding the diagnosis can produce: id, severity, the usual cause and the fix.
//!
//! The README section "Why are my pod metrics missing?" lists exactly these ids (a unit test
//! checks both directions), so the documentation cannot drift from the code.

use super::Severity;

/// One kind of finding. `cause` and `fix` are the defaults; a check may give a more precise text.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// Stable id, kebab-case (`kubelet-service-missing`).
    pub id: &'static str,
    /// Error (a broken link) or warning.
    pub severity: Severity,
    /// One line for the README: what the finding means.
    pub summary: &'static str,
    /// Why it usually happens.
    pub cause: &'static str,
    /// What to do.
    pub fix: &'static str,
}

macro_rules! kinds {
    ($($name:ident = $id:literal, $sev:ident, $summary:literal, $cause:literal, $fix:literal;)*) => {
        $(#[doc = $summary] pub const $name: Kind = Kind { id: $id, severity: Severity::$sev, summary: $summary, cause: $cause, fix: $fix };)*
        /// Host and cluster-creation findings first, then the chain in order.
        pub const ALL: &[Kind] = &[$($name),*];
    };
}

kinds! {
    // Host preflight (e2e::host) and `kind create` (diagnose::cluster_create): before the chain.
    HOST_CGROUP_V2_OLD_KUBERNETES = "host-cgroup-old-kubernetes", Error,
        "the cell's Kubernetes is older than 1.19 and Docker uses cgroup v2 (refused in preflight)",
        "Kubernetes supports cgroup v2 only from 1.19; an older kubelet never starts on a cgroup-v2 host (kind known-issues, \"Failure to Create Cluster with Cgroups v2\")",
        "run a cell with Kubernetes 1.19 or newer (`cargo xtask matrix`); Kubernetes below 1.19 needs a cgroup-v1 host";
    HOST_ROOTLESS_UNSUPPORTED = "host-rootless-unsupported", Error,
        "rootless Docker that kind refuses: a cgroup-v1 host, or no cgroup delegation (refused in preflight)",
        "kind runs on rootless Docker only with cgroup v2 and the memory, pids and CPU-shares controllers delegated to the user (kind `validateProvider`; kind docs, \"Running kind with Rootless Docker\")",
        "boot the host with cgroup v2 (`systemd.unified_cgroup_hierarchy=1`) and create /etc/systemd/system/user@.service.d/delegate.conf with `[Service]` `Delegate=yes`, then `sudo systemctl daemon-reload`; or use rootful Docker";
    HOST_CGROUP_V2_OLD_KIND = "host-cgroup-old-kind", Warning,
        "the cell's kind is older than v0.12.0 and Docker uses cgroup v2",
        "kind fixed a node-boot race on cgroup-v2 hosts only in v0.12.0, and older node images fail on newer kernels (kind issue 2731); such a cluster may not come up",
        "if the cluster does not come up, run the same Kubernetes minor on a newer kind: the cell named in the finding, e.g. `--cell kind0.20-k8s1.21`";
    HOST_DOCKER_MEMORY_LOW = "host-docker-memory-low", Warning,
        "Docker has less memory than three kind nodes and Prometheus need",
        "each kind node is a container sharing Docker's memory; a control plane needs about 1.7 GB (kubeadm's minimum), each worker about 0.5 GB, Prometheus 200 MiB; short of that, node components are OOM-killed",
        "give Docker more memory (Docker Desktop: Settings → Resources → Memory), or stop other containers";
    HOST_DISK_LOW = "host-disk-low", Warning,
        "little free space where Docker keeps its data",
        "node images, each node's containerd store and pulled images live in Docker's data directory; kind turns off the kubelet's disk eviction, so a full disk shows up as write failures",
        "free space: `docker system prune` and `docker image prune` (kind known-issues, \"Failing to properly start cluster\"), or move Docker's data-root to a larger disk";
    HOST_DOCKER_ROOTLESS = "host-docker-rootless", Warning,
        "Docker runs rootless",
        "kind supports rootless Docker from v0.11.0 only on cgroup-v2 hosts with cgroup delegation, and rootless restrictions apply to the nodes (kind docs, \"Running kind with Rootless Docker\")",
        "make sure the host runs cgroup v2 with `Delegate=yes` for user@.service and the iptables_nat/ip6tables_nat modules loaded, or use rootful Docker";
    HOST_DOCKER_SNAP = "host-docker-snap", Warning,
        "Docker is installed as a snap",
        "snap confinement keeps `docker` out of `$TMPDIR` and paths outside `$HOME`, which breaks kind commands that use temp directories (kind known-issues, \"Docker Installed With Snap\")",
        "set `TMPDIR` to a directory under `$HOME` when running kind, or install Docker from docker.com's packages";
    HOST_INOTIFY_LOW = "host-inotify-low", Warning,
        "the host's inotify limits are below what kind recommends for multi-node clusters",
        "inotify limits are not namespaced: every node's kubelet, containerd and pods share the host's `fs.inotify.max_user_watches`/`max_user_instances`; too few give \"too many open files\" (kind known-issues)",
        "sudo sysctl fs.inotify.max_user_watches=524288 && sudo sysctl fs.inotify.max_user_instances=512 (persist with `fs.inotify.max_user_watches = 524288` and `fs.inotify.max_user_instances = 512` in /etc/sysctl.conf)";
    CLUSTER_CREATE_FAILED = "cluster-create-failed", Error,
        "`kind create cluster` failed; the node logs name the cause when it is a known one",
        "kind could not create or boot the nodes; the finding quotes the log lines and names the cause",
        "follow the cause named in the finding; otherwise read the exported node logs (`kubelet.log`, `containerd.log`, `serial.log` per node under the run's `artifacts/kind-logs/`)";
    KUBELET_SERVICE_MISSING = "kubelet-service-missing", Error,
        "Service `kube-system/kubelet` does not exist",
        "prometheus-operator creates the kubelet Service and Endpoints only when started with `--kubelet-service=kube-system/kubelet`",
        "add `--kubelet-service=kube-system/kubelet` to the operator's args (the v0.48.1 bundle has it) and check that the operator pod is running";
    KUBELET_ENDPOINTS_MISSING_NODES = "kubelet-endpoints-missing-nodes", Error,
        "the kubelet Endpoints lack an address (or the `https-metrics` port) for some nodes",
        "the operator writes the kubelet Endpoints at start-up and then every 3 minutes; it does not watch nodes, so a new node appears up to 3 minutes later",
        "wait up to 3 minutes after a node joins; if it persists, read the operator's logs (it must be able to list nodes and update services/endpoints in kube-system)";
    SERVICEMONITOR_MISSING = "servicemonitor-missing", Error,
        "no ServiceMonitor scrapes `/metrics/cadvisor`",
        "the cadvisor ServiceMonitor was never applied, or the ServiceMonitor CRD is not installed",
        "install the operator bundle (CRDs first), then apply `manifests/servicemonitor-cadvisor.yaml`";
    SERVICEMONITOR_NOT_SELECTED = "servicemonitor-not-selected", Error,
        "no Prometheus selects the cadvisor ServiceMonitor",
        "a Prometheus selects a ServiceMonitor only when `serviceMonitorSelector` matches its labels (a missing selector selects nothing, `{}` selects all) and `serviceMonitorNamespaceSelector` matches its namespace (a missing one means the Prometheus's own namespace only)",
        "set `serviceMonitorSelector: {}` (or labels the ServiceMonitor has) and `serviceMonitorNamespaceSelector: {}` (or a selector matching kube-system) on the Prometheus";
    PROMETHEUS_UNREACHABLE = "prometheus-unreachable", Error,
        "the Prometheus HTTP API does not answer through the API server proxy",
        "the Prometheus pods are not ready (StatefulSet `prometheus-<name>`) or not reachable from the API server (its `error trying to reach service`), or the kubeconfig's user may not use the API server's proxy (403 on `pods/proxy` or `services/proxy`)",
        "check `kubectl -n <namespace> get statefulset,pods,endpoints` for the Prometheus and `kubectl get prometheuses -A` for the Prometheus objects doctor asks (`--prometheus NS/NAME` picks one); for a 403 grant the user `get` on `pods/proxy` there";
    NO_SCRAPE_JOB = "no-scrape-job", Error,
        "Prometheus's loaded configuration has no scrape job for the ServiceMonitor",
        "the operator has not reconciled the ServiceMonitor into the Prometheus config yet (operator not running, lacking RBAC, or rejecting the ServiceMonitor), or the config reloader has not reloaded Prometheus",
        "read the operator's logs for the ServiceMonitor, then check `/api/v1/status/config` again after the config reloader's next reload";
    TARGETS_NONE_DISCOVERED = "targets-none-discovered", Error,
        "the scrape job exists but discovered no endpoints at all",
        "Prometheus cannot list endpoints in kube-system (its service account lacks get/list/watch on endpoints, services or pods), or the ServiceMonitor's namespaceSelector does not include kube-system",
        "grant the Prometheus service account get/list/watch on nodes, nodes/metrics, services, endpoints and pods, and set the ServiceMonitor's `namespaceSelector.matchNames: [kube-system]`";
    TARGETS_ALL_DROPPED = "targets-all-dropped", Error,
        "every discovered endpoint was dropped by the job's relabeling",
        "the ServiceMonitor's `selector` does not match the kubelet Service's labels, or its endpoint `port` is not a port name the Service has (the operator's kubelet Service has `https-metrics`, `http-metrics`, `cadvisor`)",
        "use `selector.matchLabels: {app.kubernetes.io/name: kubelet}` and `port: https-metrics` in the ServiceMonitor";
    METRICS_SERVER_TARGET = "metrics-server-target", Error,
        "a target points at metrics-server",
        "metrics-server serves the resource-metrics API (`kubectl top`) to the API server; it exposes no `container_*` series to Prometheus",
        "scrape the kubelet's cAdvisor endpoint instead: `https://<node>:10250/metrics/cadvisor` through the operator's kubelet Service (`manifests/servicemonitor-cadvisor.yaml`)";
    TARGET_UNAUTHORIZED = "target-unauthorized", Error,
        "the kubelet answers 401 Unauthorized",
        "the scrape sends no bearer token or a wrong one",
        "set `bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token` on the ServiceMonitor endpoint and make sure the Prometheus pod mounts its service account token";
    TARGET_FORBIDDEN = "target-forbidden", Error,
        "the kubelet answers 403 Forbidden",
        "the token is valid but the Prometheus service account's RBAC lacks `nodes/metrics` (the kubelet authorizes `/metrics/cadvisor` as get on nodes/metrics via webhook)",
        "add `nodes/metrics` (verb get) to the ClusterRole bound to the Prometheus service account";
    TARGET_CONNECTION_REFUSED = "target-connection-refused", Error,
        "nothing listens on the scraped port",
        "the target's port is closed; the kubelet's read-only port 10255 and the standalone cAdvisor port 4194 are disabled on modern clusters (kubeadm and kind set `readOnlyPort: 0`, 4194 was removed in 1.12)",
        "scrape the kubelet's secure port: ServiceMonitor `port: https-metrics` (10250), `scheme: https`, `path: /metrics/cadvisor`, with the bearer token";
    TARGET_SCHEME_MISMATCH = "target-scheme-mismatch", Error,
        "plain HTTP spoken to an HTTPS port (or the reverse)",
        "the kubelet's port 10250 is HTTPS only; a plain-HTTP scrape is reset, answered 400 \"client sent an HTTP request to an HTTPS server\", or answered with TLS bytes (\"malformed HTTP response\")",
        "set `scheme: https` on the ServiceMonitor endpoint (with `tlsConfig.insecureSkipVerify: true` on kind, whose kubelet certificates are self-signed)";
    TARGET_TLS = "target-tls", Error,
        "the TLS handshake or certificate check fails",
        "the kubelet's serving certificate is self-signed (kind does not enable serverTLSBootstrap), so verification against the cluster CA fails",
        "set `tlsConfig.insecureSkipVerify: true` on the ServiceMonitor endpoint, or enable serverTLSBootstrap, approve the kubelet CSRs and set `tlsConfig.caFile`";
    TARGET_TIMEOUT = "target-timeout", Error,
        "scrapes time out or the node is unreachable",
        "the network between the Prometheus pod and the node's port 10250 drops packets (firewall, security group, NetworkPolicy) or the kubelet is overloaded",
        "allow traffic from the Prometheus pods to every node's port 10250 and check `curl -k https://<node>:10250/healthz` from inside the cluster";
    TARGET_DOWN = "target-down", Error,
        "a target is down for another reason",
        "the scrape failed; the last error says why (404 means a wrong `path`)",
        "fix what the last error names; the cadvisor endpoint is `path: /metrics/cadvisor` on `port: https-metrics`";
    TARGETS_NOT_SCRAPED_YET = "targets-not-scraped-yet", Info,
        "targets exist but have not been scraped yet",
        "Prometheus scrapes each new target within one scrape interval of discovering it",
        "wait one scrape interval and run the check again";
    ONLY_NODE_METRICS = "only-node-metrics", Error,
        "node-level metrics (`node_cpu_seconds_total`) are present but no `container_*` series",
        "the scraped endpoint is node-exporter, which exposes the node's metrics only, not per-container cAdvisor metrics",
        "add the cadvisor ServiceMonitor (`https://<node>:10250/metrics/cadvisor`); keep node-exporter for node metrics";
    NO_CONTAINER_METRICS = "no-container-metrics", Error,
        "targets are up but no `container_cpu_usage_seconds_total` series exist",
        "the scraped path is not the kubelet's cAdvisor endpoint (the kubelet's `/metrics` carries the kubelet's own metrics, cAdvisor's are under `/metrics/cadvisor`), or a metric relabeling drops the series",
        "set `path: /metrics/cadvisor` on the ServiceMonitor endpoint and check its `metricRelabelings`";
    METRIC_ABSENT = "metric-absent", Error,
        "a checked metric (e.g. `container_memory_working_set_bytes`) has no container series although `container_cpu_usage_seconds_total` has",
        "the kubelet's cAdvisor endpoint is scraped, so a `metricRelabelings` rule (a `keep` or `drop` on `__name__`) removes that metric, or the name given with `--metric` is not one the kubelet exposes",
        "list the metric in any `keep` rule of the ServiceMonitor's `metricRelabelings` (and in no `drop` rule), or correct the name: `curl -sk -H \"Authorization: Bearer $TOKEN\" https://<node>:10250/metrics/cadvisor | grep '^# TYPE container_'`";
    HONOR_LABELS_FALSE = "honor-labels-false", Warning,
        "the pods' namespaces are in `exported_namespace`; `namespace` is always `kube-system`",
        "with `honorLabels: false` (the default) the target's own `namespace=\"kube-system\"` (kubelet targets point at Nodes) wins and the series' namespace is renamed to `exported_namespace`",
        "set `honorLabels: true` on the ServiceMonitor endpoint (kube-prometheus does this for cAdvisor), or query and group by `exported_namespace`; queries and dashboards filtering on `namespace` otherwise see every container in kube-system";
    POD_NEWER_THAN_SCRAPE = "pod-newer-than-scrape", Info,
        "a pod started after its node's last scrape",
        "the pod's series appear at the next scrape of its node; this is not a failure yet",
        "wait one scrape interval and run the check again";
    PODS_MISSING = "pods-missing", Error,
        "running containers have no series of a checked metric although their node's target is up (the evidence names the metric)",
        "the container has used no CPU yet (cAdvisor omits zero counters), its node has no scrape target, or the series are relabeled away",
        "compare the missing containers' nodes with the targets' `node` labels; check `metricRelabelings` on the ServiceMonitor";
    // diagnose::relabel_drop, from the kubelet's own series (replay's captures).
    METRIC_RELABEL_DROPS = "metric-relabel-drops", Error,
        "a `metricRelabelings` rule of the ServiceMonitor removes running containers' series after the scrape",
        "the kubelet exposes the series, but a metric_relabel_configs rule the operator copied from `metricRelabelings` drops them (or strips their pod/container/namespace labels) before Prometheus stores them",
        "change or remove the `metricRelabelings` rule the finding quotes so it no longer matches the containers' series";
}

/// Looks a kind up by id (for tests and the README check).
pub fn by_id(id: &str) -> Option<&'static Kind> {
    ALL.iter().find(|k| k.id == id)
}

/// The README table (`cargo xtask doctor --list` prints it): one row per finding, in chain order.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| id | severity | what it means | fix |\n| --- | --- | --- | --- |\n");
    for k in ALL {
        let sev = match k.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        out.push_str(&format!(
            "| `{}` | {sev} | {} | {} |\n",
            k.id,
            k.summary,
            k.fix.replace('|', "\\|")
        ));
    }
    out
}
