//! prometheus-operator v0.48.1, one home for everything the project models of it: the pinned
//! `bundle.yaml` ([`bundle`]), its installation ([`mod@install`]), the kubelet Service it keeps
//! ([`kubelet_service`]), the scrape job it generates for a ServiceMonitor ([`scrape_config`]),
//! which ServiceMonitors a Prometheus selects ([`selection`]), the StatefulSet it runs a
//! Prometheus in ([`statefulset`]) and the release an image names ([`image`]). The library,
//! `replay`, `diagnose` and the twin all use these.
//!
//! This file only names the parts; none of them imports it back.

pub mod bundle;
pub mod image;
pub mod install;
pub mod kubelet_service;
pub mod scrape_config;
pub mod selection;
pub mod statefulset;

pub use bundle::{load_bundle, Bundle, BundleSource};
pub use image::image_tag;
pub use install::{crd_established, install, wait_crd_established};
pub use kubelet_service::{
    kubelet_endpoints, kubelet_service_gaps, kubelet_service_of, wait_kubelet_service,
    wait_kubelet_service_at, KUBELET_LABELS, KUBELET_PORTS, KUBELET_PORT_NAME,
    KUBELET_SERVICE_NAME, KUBELET_SERVICE_NAMESPACE,
};
