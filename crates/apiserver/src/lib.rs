//! The Kubernetes API server of wharf.
//!
//! An HTTPS server (rustls) that speaks the Kubernetes REST API over the
//! [`store`] crate: authentication, one generic registry for every resource
//! with a strategy per kind, discovery, server-side tables, and a watch cache
//! that serves reads and watches from memory.

pub mod alloc;
pub mod apply;
pub mod authn;
pub mod bootstrap;
pub mod bootstrap_token;
pub mod cache;
pub mod certificates;
pub mod combine;
pub mod convert;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod handler;
pub mod negotiate;
pub mod openapi;
pub mod patch;
pub mod pki;
pub mod podproxy;
pub mod protobuf;
pub mod registry;
pub mod resources;
pub mod route;
pub mod satoken;
pub mod schema;
pub mod selector;
pub mod server;
pub mod stamp;
pub mod strategy;
pub mod subresource;
pub mod table;
pub mod yaml;
