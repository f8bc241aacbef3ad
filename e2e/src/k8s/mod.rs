//! Talking to a Kubernetes API server, whatever is on it: a client from an explicit kubeconfig
//! ([`client`]), YAML manifests and their identities and digests ([`manifests`]), server-side
//! apply ([`apply`]) and waiting for a state ([`wait`]).
//!
//! Named `k8s` rather than `kube` so the `kube` crate keeps its name everywhere in this crate.

pub mod apply;
pub mod client;
pub mod manifests;
pub mod wait;
