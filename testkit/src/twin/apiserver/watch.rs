//! Watch: a chunked `application/json` stream of one JSON event per line (TWIN-FACTS §5).
//! Without a resourceVersion (or with "0") existing objects come first as synthetic ADDED
//! events; with one, only later changes; one older than the kept history gets the 410 Expired
//! ERROR line, then EOF. The stream ends after `timeoutSeconds`.

use crate::twin::cluster::Cluster;
use crate::twin::selector;
use crate::twin::storage::registry::as_version;
use crate::twin::storage::registry::ResourceType;
use crate::twin::storage::store::{key, Event};
use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

fn line(kind: &str, obj: Value) -> Bytes {
    let mut s = json!({"type": kind, "object": obj}).to_string();
    s.push('\n');
    Bytes::from(s)
}

pub fn serve(c: Arc<Cluster>, rt: ResourceType, ns: &str, q: &HashMap<String, String>) -> Response {
    let (labels, fields) = selector::from_query(q);
    let ns = ns.to_string();
    let k = key(&rt);
    // Subscribe before reading the store, so nothing between snapshot and stream is lost.
    let mut live = c.store.subscribe();
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800u64);
    let wanted = move |e: &Event| {
        e.key == k
            && (ns.is_empty() || e.namespace == ns)
            && labels.matches_labels(&e.object)
            && fields.matches_fields(&e.object)
    };
    let mut first: Vec<Bytes> = Vec::new();
    let mut last = 0u64;
    match q.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => {
            let (items, rv) = c.store.list(&key(&rt), None);
            for o in items {
                let ev = Event {
                    rv,
                    key: key(&rt),
                    namespace: o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    kind: "ADDED",
                    object: o,
                };
                if wanted(&ev) {
                    first.push(line("ADDED", as_version(ev.object, &rt)));
                }
            }
            last = rv;
        }
        Some(rv) => {
            let rv: u64 = rv.parse().unwrap_or(0);
            match c.store.events_since(rv) {
                Ok(evs) => {
                    for ev in evs {
                        last = last.max(ev.rv);
                        if wanted(&ev) {
                            first.push(line(ev.kind, as_version(ev.object, &rt)));
                        }
                    }
                    last = last.max(rv);
                }
                Err(oldest) => {
                    let err = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": format!("too old resource version: {rv} ({})", oldest - 1), "reason": "Expired", "code": 410});
                    return chunked(Body::from(line("ERROR", err)));
                }
            }
        }
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1024);
    tokio::spawn(async move {
        for b in first {
            if tx.send(Ok(b)).await.is_err() {
                return;
            }
        }
        let end = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(end);
        loop {
            tokio::select! {
                _ = &mut end => return,
                _ = tx.closed() => return,
                ev = live.recv() => match ev {
                    Ok(ev) if ev.rv > last && wanted(&ev) => {
                        last = ev.rv;
                        if tx.send(Ok(line(ev.kind, as_version(ev.object, &rt)))).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    // Lagged or closed: end the stream; clients re-watch from their last RV.
                    Err(_) => return,
                }
            }
        }
    });
    chunked(Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ))
}

fn chunked(body: Body) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
