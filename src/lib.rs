//! exalate_zabbix: monitors Exalate sync queues over the issuehub 2.4 REST API.
//!
//! The safe core (`config`, `fs`, `auth`, `api`, `secret`, `http`,
//! `proxy`, `queue`, `timeout`, `monitor`, `error`, `lock`, `panic`) knows nothing of
//! Zabbix or C. `items`, the item table, maps the item keys onto it, shared
//! by both agents. Three thin front ends adapt it:
//! `agentd`, the loadable-module ABI of `zabbix_agentd`; `agent2`, the
//! plugin protocol of `zabbix_agent2` (the `zabbix-agent2-plugin-exalate`
//! executable); and `capi`, the C API declared in
//! `include/exalate_zabbix.h`. Every function C calls goes through
//! `boundary` (`ffi_fn!`). A fourth, `check`, is `exalate-zabbix check`:
//! the whole configuration checked in one run (the `exalate-zabbix`
//! executable).

// Unsafe code only where it is marked (`#[allow(unsafe_code)]`), and
// `#[no_mangle]` (which this lint also refuses) only through `ffi_fn!`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

// The modules the front ends, tests, benches and fuzz targets name are
// public (each exposes only what they use); the rest of the core is
// private, its few public types re-exported here.
pub mod agent2;
pub mod agentd;
mod api;
mod auth;
mod boundary;
pub mod capi;
pub mod check;
pub mod config;
mod error;
mod fs;
mod http;
pub mod items;
mod lock;
mod monitor;
mod panic;
mod proxy;
pub mod queue;
mod secret;
mod timeout;

pub use error::{Error, ErrorKind, Result};
pub use monitor::Monitor;

/// The library's version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
