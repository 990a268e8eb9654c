//! `manga-runtime`: the MangaAssist orchestrator, a latency-budgeted chat pipeline served
//! over WebSocket.
//!
//! Layout (each module's own docs say more):
//! - [`config`]: command line / environment / config-file settings and the readers of the
//!   stage budgets ([`sizing::LatencyBudgets`]);
//! - [`server`]: the HTTP side (`/healthz`, `/readyz`, `/metrics`, WebSocket `/v1/chat`),
//!   connection handling and graceful shutdown;
//! - [`protocol`]: the JSON frames exchanged on `/v1/chat`;
//! - [`pipeline`]: one module per stage, composed in [`pipeline::Pipeline::handle`];
//! - [`backends`]: the traits the pipeline depends on and their embedded implementations;
//! - [`domain`]: plain data types shared by all of the above;
//! - [`metrics`]: per-stage histograms and budget-miss counters, rendered as Prometheus text;
//! - [`emf`]: the same timings as CloudWatch Embedded Metric Format log lines (`MANGA_EMF`);
//! - [`logs`]: rate-limited warnings for the hot path ([`warn_limited!`]);
//! - [`data`]: the bundled catalog, FAQ and intent examples;
//! - [`app`]: wiring configuration and backends into a servable application.

pub mod app;
pub mod backends;
pub mod config;
pub mod data;
pub mod domain;
pub mod emf;
pub mod logs;
pub mod metrics;
pub mod pipeline;
pub mod protocol;
pub mod server;
