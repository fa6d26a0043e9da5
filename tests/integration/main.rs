//! Integration tests: the real broker on a random port, driven over HTTP like a browser and like
//! an app, on SQLite and on PostgreSQL.

// Test code: a failing unwrap is a failing test, and tests read the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

mod caches;
mod cli;
mod common;
mod connections;
mod database_tls;
mod demo_app;
mod dpop;
mod ehealth;
mod eid;
mod eidas;
mod eudiw;
mod fas;
mod flow;
mod hostile;
mod i18n;
mod metrics;
mod office;
mod outbox;
mod policy;
mod ratelimit;
mod replicas;
mod sessions;
mod spans;
