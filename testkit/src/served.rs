//! A pod of the cluster twin that really answers, behind a Service, for tests of the twin's
//! service proxy without Docker: a host-network pod on a Ready node (its IP is the node's
//! loopback InternalIP) whose port is an in-process HTTP server, and a Service selecting it.
//! The twin's own controllers give the pod its status and the Service its Endpoints.

use crate::twin::Twin;
use serde_json::json;
use std::time::{Duration, Instant};

/// The served pod; its server stops when this is dropped.
pub struct ServedPod {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name (`<service>-0`).
    pub pod: String,
    /// The Service selecting it, with one port named `web`.
    pub service: String,
    /// `<node ip>:<port>`, where the proxy dials.
    pub addr: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ServedPod {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ServedPod {
    /// Starts a server answering 200 `body` on every path, and creates pod `<service>-0`
    /// (host network, on the first Ready node, container port `web`) and Service `service`
    /// (port `web` → `web`) in `namespace`; returns once the Endpoints list the pod as ready.
    /// Panics when the twin does not get there within 30 s (test helper).
    pub async fn start(twin: &Twin, namespace: &str, service: &str, body: &'static str) -> Self {
        let c = twin.cluster();
        let deadline = Instant::now() + Duration::from_secs(30);
        let ip = loop {
            let ready = c.objects("", "Node").into_iter().find(|n| {
                n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            if let Some(ip) = ready
                .as_ref()
                .and_then(crate::twin::controllers::nodes::internal_ip)
            {
                break (ready.unwrap()["metadata"]["name"].clone(), ip);
            }
            assert!(Instant::now() < deadline, "no Ready node in the twin");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (node, ip) = ip;
        let listener = tokio::net::TcpListener::bind((ip.as_str(), 0))
            .await
            .expect("binding on the node's loopback IP");
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().fallback(move || async move { body });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let pod = format!("{service}-0");
        c.put(
            "",
            "Pod",
            json!({"metadata": {"name": pod, "namespace": namespace, "labels": {"app": service}},
                   "spec": {"nodeName": node, "hostNetwork": true, "containers": [
                       {"name": "web", "image": "served", "ports": [{"name": "web", "containerPort": port, "protocol": "TCP"}]}]}}),
        );
        c.put(
            "",
            "Service",
            json!({"metadata": {"name": service, "namespace": namespace},
                   "spec": {"selector": {"app": service},
                            "ports": [{"name": "web", "port": 80, "targetPort": "web", "protocol": "TCP"}]}}),
        );
        loop {
            let listed = c
                .get("", "Endpoints", namespace, service)
                .is_some_and(|ep| {
                    ep["subsets"].as_array().into_iter().flatten().any(|s| {
                        s["addresses"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|a| a["targetRef"]["name"] == pod.as_str())
                    })
                });
            if listed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Endpoints {namespace}/{service} never listed {pod}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ServedPod {
            namespace: namespace.to_string(),
            pod,
            service: service.to_string(),
            addr: format!("{ip}:{port}"),
            server,
        }
    }
}
