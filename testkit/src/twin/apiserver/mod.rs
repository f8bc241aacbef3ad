//! The twin's HTTPS front, as the API server answers: [`rest`] routes a request
//! (authentication, fault injection, the REST verbs) to [`discovery`], [`openapi`], [`watch`],
//! the proxies ([`proxy`] to Services, [`node_proxy`], [`pod_proxy`]), reading and writing
//! bodies through [`wire`] (JSON, YAML, protobuf), [`patch`] and [`apply`], checking writes with
//! [`validation`] and [`schema`], and answering errors through [`response`]. It stands above
//! storage and the controllers and below the data path and the wiring.

pub mod apply;
pub mod discovery;
pub mod node_proxy;
pub mod openapi;
pub mod patch;
pub mod pod_proxy;
pub mod proxy;
pub mod response;
pub mod rest;
pub mod schema;
pub mod validation;
pub mod watch;
pub mod wire;

pub use rest::router;
