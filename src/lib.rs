//! exalate_zabbix: monitors Exalate sync queues over the issuehub 2.4 REST API.
//!
//! The safe core (`config`, `auth`, `secret`, `http`, `proxy`, `queue`,
//! `monitor`, `error`) knows nothing of Zabbix or C. `items` maps the item
//! keys onto it, shared by both agents. Three thin front ends adapt it:
//! `agentd`, the loadable-module ABI of `zabbix_agentd`; `agent2`, the
//! plugin protocol of `zabbix_agent2` (the `zabbix-agent2-plugin-exalate`
//! executable); and `capi`, the C API declared in
//! `include/exalate_zabbix.h`. Every function C calls goes through
//! `boundary` (`ffi_fn!`).

// Unsafe code only where it is marked (`#[allow(unsafe_code)]`), and
// `#[no_mangle]` (which this lint also refuses) only through `ffi_fn!`.
#![deny(unsafe_code)]

pub mod agent2;
pub mod agentd;
pub mod auth;
mod boundary;
pub mod capi;
pub mod config;
pub mod error;
mod fs;
pub mod http;
pub mod items;
mod lock;
pub mod monitor;
mod panic;
pub mod proxy;
pub mod queue;
pub mod secret;
mod timeout;

pub use error::{Error, ErrorKind, Result};
pub use monitor::Monitor;

/// The library's version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
