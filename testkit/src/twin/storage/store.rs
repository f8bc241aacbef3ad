//! The twin's object store: every object as a `serde_json::Value`, one resourceVersion counter
//! for the whole store (etcd's revision), uid and creationTimestamp on create, `generation`
//! bumped when anything outside `metadata`/`status` changes, and a history of watch events.

use super::registry::ResourceType;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// `(group, plural)`: objects are stored once per resource, whatever version they are read in.
pub type ResourceKey = (String, String);

/// One watch event as it goes on the wire (§5): `ADDED`, `MODIFIED`, `DELETED`.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub key: ResourceKey,
    pub namespace: String,
    pub kind: &'static str,
    pub object: Value,
}

/// Why a write was refused; [`crate::twin::apiserver::response`] turns it into the API server's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    NotFound,
    AlreadyExists,
    /// Stale `metadata.resourceVersion` on update (TWIN-FACTS §2c).
    Conflict,
}

/// How many events the store keeps for watches that resume from a resourceVersion; older
/// ones answer `410 Expired` like the watch cache (TWIN-FACTS §5).
const HISTORY: usize = 20_000;

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<ResourceKey, BTreeMap<(String, String), Value>>,
    history: VecDeque<Event>,
}

/// The store; cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Event>,
    uid_seed: u64,
}

pub fn key(rt: &ResourceType) -> ResourceKey {
    (rt.group.clone(), rt.plural.clone())
}

/// RFC 3339 with seconds, as `metav1.Time` serialises.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Store {
    pub fn new(uid_seed: u64) -> Self {
        let (events, _) = broadcast::channel(65_536);
        Store {
            inner: Mutex::new(Inner::default()),
            events,
            uid_seed,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The current resourceVersion (a list's `metadata.resourceVersion`).
    pub fn revision(&self) -> u64 {
        self.inner.lock().unwrap().rv
    }

    fn new_uid(&self, rv: u64) -> String {
        let h = format!(
            "{:016x}{:016x}",
            self.uid_seed ^ rv.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            rv.wrapping_mul(0xff51_afd7_ed55_8ccd) ^ self.uid_seed.rotate_left(17)
        );
        format!(
            "{}-{}-4{}-8{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    pub fn get(&self, key: &ResourceKey, ns: &str, name: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap();
        inner
            .objects
            .get(key)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .cloned()
    }

    /// Every object of a resource (in `ns` when given), sorted by namespace and name, and the
    /// revision the list is a snapshot of.
    pub fn list(&self, key: &ResourceKey, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.inner.lock().unwrap();
        let items = inner
            .objects
            .get(key)
            .map(|m| {
                m.iter()
                    .filter(|((n, _), _)| ns.is_none_or(|want| want == n))
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default();
        (items, inner.rv)
    }

    /// Events after `rv` (for a watch resuming there), or `Err(oldest)` when they are gone.
    pub fn events_since(&self, rv: u64) -> Result<Vec<Event>, u64> {
        let inner = self.inner.lock().unwrap();
        let oldest = inner.history.front().map(|e| e.rv).unwrap_or(inner.rv + 1);
        if rv + 1 < oldest && inner.history.len() >= HISTORY {
            return Err(oldest);
        }
        Ok(inner
            .history
            .iter()
            .filter(|e| e.rv > rv)
            .cloned()
            .collect())
    }

    fn record(&self, inner: &mut Inner, ev: Event) {
        inner.history.push_back(ev.clone());
        if inner.history.len() > HISTORY {
            inner.history.pop_front();
        }
        // No receivers is fine: nobody watches.
        let _ = self.events.send(ev);
    }

    /// Stores a new object: uid, creationTimestamp, resourceVersion, generation 1.
    pub fn create(&self, key: &ResourceKey, ns: &str, mut obj: Value) -> Result<Value, StoreError> {
        let mut inner = self.inner.lock().unwrap();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let id = (ns.to_string(), name);
        if inner.objects.get(key).is_some_and(|m| m.contains_key(&id)) {
            return Err(StoreError::AlreadyExists);
        }
        inner.rv += 1;
        let rv = inner.rv;
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        meta.insert("uid".into(), json!(self.new_uid(rv)));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        if !ns.is_empty() {
            meta.insert("namespace".into(), json!(ns));
        }
        inner
            .objects
            .entry(key.clone())
            .or_default()
            .insert(id, obj.clone());
        self.record(
            &mut inner,
            Event {
                rv,
                key: key.clone(),
                namespace: ns.to_string(),
                kind: "ADDED",
                object: obj.clone(),
            },
        );
        Ok(obj)
    }

    /// Replaces an object. `check_rv`: refuse a stale `metadata.resourceVersion` (PUT semantics).
    /// `status_only`: keep everything but `status` from the stored object (the `/status`
    /// subresource); otherwise the stored `status` is kept (the main resource ignores it).
    /// Unchanged content writes nothing and keeps the resourceVersion, like the API server.
    pub fn update(
        &self,
        key: &ResourceKey,
        ns: &str,
        mut obj: Value,
        check_rv: bool,
        status_only: bool,
    ) -> Result<Value, StoreError> {
        let mut inner = self.inner.lock().unwrap();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let id = (ns.to_string(), name);
        let Some(old) = inner.objects.get(key).and_then(|m| m.get(&id)).cloned() else {
            return Err(StoreError::NotFound);
        };
        if check_rv {
            if let Some(rv) = obj["metadata"]["resourceVersion"].as_str() {
                if !rv.is_empty() && Some(rv) != old["metadata"]["resourceVersion"].as_str() {
                    return Err(StoreError::Conflict);
                }
            }
        }
        if status_only {
            let status = obj.get("status").cloned();
            obj = old.clone();
            match status {
                Some(s) => obj["status"] = s,
                None => {
                    obj.as_object_mut().unwrap().remove("status");
                }
            }
        } else if let Some(s) = old.get("status") {
            obj["status"] = s.clone();
        }
        // Server-owned metadata always comes from the stored object.
        for f in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
            if let Some(v) = old["metadata"].get(f) {
                obj["metadata"][f] = v.clone();
            }
        }
        if !ns.is_empty() {
            obj["metadata"]["namespace"] = json!(ns);
        }
        if obj == old {
            return Ok(old);
        }
        if spec_of(&obj) != spec_of(&old) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            obj["metadata"]["generation"] = json!(g + 1);
        }
        inner.rv += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        inner.objects.get_mut(key).unwrap().insert(id, obj.clone());
        self.record(
            &mut inner,
            Event {
                rv,
                key: key.clone(),
                namespace: ns.to_string(),
                kind: "MODIFIED",
                object: obj.clone(),
            },
        );
        Ok(obj)
    }

    /// Removes an object (no finalizers, no graceful deletion: gone at once).
    pub fn delete(&self, key: &ResourceKey, ns: &str, name: &str) -> Result<Value, StoreError> {
        let mut inner = self.inner.lock().unwrap();
        let id = (ns.to_string(), name.to_string());
        let Some(mut old) = inner.objects.get_mut(key).and_then(|m| m.remove(&id)) else {
            return Err(StoreError::NotFound);
        };
        inner.rv += 1;
        let rv = inner.rv;
        old["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(
            &mut inner,
            Event {
                rv,
                key: key.clone(),
                namespace: ns.to_string(),
                kind: "DELETED",
                object: old.clone(),
            },
        );
        Ok(old)
    }
}

/// Everything but `metadata` and `status`: what a change of bumps `generation`.
fn spec_of(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}
