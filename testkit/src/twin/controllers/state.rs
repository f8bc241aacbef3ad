//! What the controllers remember between ticks: first-seen instants for the modelled delays and
//! the operator's last kubelet Service sync. Its own file, so each controller imports it
//! downward rather than from `controllers/mod.rs`, which runs them.

use std::collections::HashMap;
use std::time::Instant;

/// Per-controller memory between ticks.
#[derive(Default)]
pub struct State {
    pub seen: HashMap<String, Instant>,
    /// When the operator last rewrote the kubelet Service and Endpoints.
    pub operator_kubelet_sync: Option<Instant>,
}

impl State {
    /// When `id` was first seen (now, if never before).
    pub fn since(&mut self, id: &str) -> Instant {
        *self.seen.entry(id.to_string()).or_insert_with(Instant::now)
    }
}
