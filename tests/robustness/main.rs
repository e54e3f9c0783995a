//! Issue 6: the module never takes the agent down and never leaks a secret.
//! Everything here runs through the real `zabbix_agentd` (daemon, queried over
//! its TCP protocol) against the fake node: node faults, hostile item
//! parameters and config files, https, the token lifecycle, config reload
//! without restart, an injected panic, and (ignored, `make stress`) a soak
//! and a heap check.
//! Every output is collected and audited for secrets and tokens (`common::leaks`).

#[path = "../common/mod.rs"]
pub mod common;

mod config;
mod echo;
mod faults;
mod heap;
mod leaks;
mod params;
mod proxy;
mod reload;
mod soak;
mod tls;
mod tokens;
