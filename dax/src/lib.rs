//! `mangactl-dax`: a client for Amazon DynamoDB Accelerator (DAX) clusters, speaking
//! DAX's own protocol (CBOR over TCP or TLS) and conformant with the official
//! Python client byte for byte on the operations it supports (dax/README.md lists
//! them and how that is tested).
//!
//! - [`client`]: discovery, routing, pools, retries, the operations;
//! - [`conn`]: one connection (handshake, authorisation, framing);
//! - [`codec`]: the messages; [`expr`]: expressions compiled to DAX's form;
//! - [`cbor`], [`number`]: the encodings underneath; [`auth`]: SigV4 for DAX;
//! - [`error`]: errors with DynamoDB's error kinds.

pub mod auth;
pub mod cbor;
pub mod client;
pub mod codec;
pub mod conn;
pub mod error;
pub mod expr;
pub mod number;
#[cfg(feature = "test-server")]
pub mod testserver;

pub use client::{DaxClient, DaxConfig};
pub use error::{DaxError, ErrorKind};
