//! The StatefulSet prometheus-operator v0.48.1 keeps for a Prometheus object: its name and the
//! port the server listens on (prometheus-operator/prometheus-operator
//! pkg/prometheus/statefulset.go@v0.48.1 `prometheusNameByShard`, `makeStatefulSetSpec`).

/// The port named `web` of the `prometheus` container.
pub const WEB_PORT: u16 = 9090;

/// The StatefulSet of shard 0 of Prometheus `name`: `prometheus-<name>` (later shards add
/// `-shard-<n>`).
pub fn statefulset_name(name: &str) -> String {
    format!("prometheus-{name}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn shard_zero_is_prometheus_dash_name() {
        assert_eq!(super::statefulset_name("k8s"), "prometheus-k8s");
    }
}
