//! The TOML configuration: parsed strictly (unknown keys are errors) and
//! validated, with every error naming the file and line and quoting no
//! value (a value may be a secret pasted in the wrong place). A file per
//! part: the nodes here, `credentials`, `relations`, `urls`.

mod credentials;
mod relations;
mod urls;

pub use credentials::{AuthHeader, CmonitorConfig, Credential, ExpUnit, Keys};
pub(crate) use urls::valid_port;

use crate::error::{quoted, Error, ErrorKind, Result};
use crate::fs;
use crate::timeout::{self, TIMEOUT_RANGE_SECS};
use credentials::RawAuth;
use relations::RawRelation;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Where the config is read when `$EXALATE_ZABBIX_CONFIG` is not set.
pub(crate) const DEFAULT_PATH: &str = "/etc/zabbix/exalate_zabbix.toml";
/// The environment variable that names another config file.
pub(crate) const PATH_ENV: &str = "EXALATE_ZABBIX_CONFIG";
/// `cache_ttl` when not set, in seconds.
pub(crate) const DEFAULT_CACHE_TTL: u64 = 10;
/// `max_response_bytes` when not set.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// `cache_max_bytes` when not set.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 32 * 1024 * 1024;

/// The config path: `$EXALATE_ZABBIX_CONFIG`, else the default.
pub(crate) fn default_path() -> PathBuf {
    match std::env::var_os(PATH_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

/// A validated config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where it was read (named in messages).
    pub path: PathBuf,
    /// The `[nodes.NAME]` tables by name.
    pub nodes: BTreeMap<String, NodeConfig>,
}

/// One node, its `[defaults]` applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The table's name, as items name the node.
    pub name: String,
    /// Base URL without a trailing slash.
    pub url: String,
    /// The relations discovery lists.
    pub relations: Vec<String>,
    /// The node's issuehub 2.4 credentials: its own, else its first
    /// relation's. They serve `exalate.node.ping` and any relation without
    /// its own. None: the node is watched through the 4.0 API only.
    pub auth: Option<Credential>,
    /// Whether `auth` is the node's own (false: its first relation's).
    pub own_auth: bool,
    /// The relations written as a table with their own authentication.
    pub relation_auth: BTreeMap<String, Credential>,
    /// The config timeout; None: the agent's Timeout (see `timeout.rs`).
    pub timeout: Option<Duration>,
    /// How long a fetched queue is served from the cache.
    pub cache_ttl: Duration,
    /// What the node's cache may hold in one process; 0 keeps nothing.
    pub cache_max_bytes: u64,
    /// Larger answers are refused while reading.
    pub max_response_bytes: u64,
    /// Trusted CA certificates (PEM) in place of the system's.
    pub ca_file: Option<PathBuf>,
    /// An HTTP proxy, `http://host:port` (the `proxy` key); the
    /// environment's proxy variables are never used.
    pub proxy: Option<String>,
    /// The customer monitor endpoint (`cmonitor_url`), if Exalate support
    /// enabled one for this node.
    pub cmonitor: Option<CmonitorConfig>,
    /// The issuehub 4.0 API's credentials (`api_*`): a platform user's,
    /// never a connection's secret. None: no node totals or connections.
    pub api: Option<Credential>,
}

impl NodeConfig {
    /// The 2.4 credentials requests about `relation` use: the relation's
    /// own, else the node's.
    pub fn credential(&self, relation: &str) -> Option<&Credential> {
        self.relation_auth.get(relation).or(self.auth.as_ref())
    }

    /// The relation `exalate.node.ping` asks over issuehub 2.4, with the
    /// node's credentials: the first relation using them; with none, a
    /// relation no node has (its 400 shows the node up and the credentials
    /// taken); without credentials of its own, the node's first relation.
    pub fn ping_relation(&self) -> &str {
        if !self.own_auth {
            return self.relations.first().map_or(PING_RELATION, String::as_str);
        }
        self.relations
            .iter()
            .find(|r| !self.relation_auth.contains_key(*r))
            .map_or(PING_RELATION, String::as_str)
    }
}

/// The relation `exalate.node.ping` asks when no listed relation uses the
/// node's credentials: any answer but 401/403 shows the node is up and
/// takes them.
pub(crate) const PING_RELATION: &str = "exalate-zabbix-ping";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    defaults: Option<RawLimits>,
    #[serde(default)]
    nodes: BTreeMap<Spanned<String>, Spanned<RawNode>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout: Option<Spanned<u64>>,
    cache_ttl: Option<u64>,
    cache_max_bytes: Option<u64>,
    max_response_bytes: Option<Spanned<u64>>,
    proxy: Option<Spanned<String>>,
}

// The 2.4 keys are listed here, in `RawAuth` and in a relation's table:
// serde's `flatten` supports neither `deny_unknown_fields` nor toml's
// spans, which every error's line needs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    url: Spanned<String>,
    #[serde(default)]
    relations: Vec<Spanned<RawRelation>>,
    token_file: Option<PathBuf>,
    jwt_secret_file: Option<PathBuf>,
    jwt_issuer: Option<Spanned<String>>,
    jwt_user: Option<Spanned<String>>,
    jwt_ttl: Option<Spanned<u64>>,
    jwt_exp_unit: Option<Spanned<String>>,
    auth_header: Option<Spanned<String>>,
    ca_file: Option<PathBuf>,
    // A node may override the [defaults].
    timeout: Option<Spanned<u64>>,
    cache_ttl: Option<u64>,
    cache_max_bytes: Option<u64>,
    max_response_bytes: Option<Spanned<u64>>,
    proxy: Option<Spanned<String>>,
    // The customer monitor endpoint and its own credentials.
    cmonitor_url: Option<Spanned<String>>,
    cmonitor_user: Option<Spanned<String>>,
    cmonitor_password_file: Option<Spanned<PathBuf>>,
    cmonitor_token_file: Option<Spanned<PathBuf>>,
    // The 4.0 API's credentials.
    api_user: Option<Spanned<String>>,
    api_password_file: Option<Spanned<PathBuf>>,
    api_token_file: Option<Spanned<PathBuf>>,
    api_login: Option<Spanned<bool>>,
}

impl RawNode {
    /// The node's own 2.4 authentication keys.
    fn auth(&self) -> RawAuth {
        RawAuth {
            token_file: self.token_file.clone(),
            jwt_secret_file: self.jwt_secret_file.clone(),
            jwt_issuer: self.jwt_issuer.clone(),
            jwt_user: self.jwt_user.clone(),
            jwt_ttl: self.jwt_ttl.clone(),
            jwt_exp_unit: self.jwt_exp_unit.clone(),
            auth_header: self.auth_header.clone(),
        }
    }
}

impl Config {
    /// Reads and validates the file at `path`.
    pub(crate) fn load(path: &Path) -> Result<Config> {
        let text = fs::read_config_text(path, PATH_ENV)?;
        Config::parse(path, &text)
    }

    /// Validates `text` as the config found at `path` (used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let source = Source { path, text };
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| source.error(e.span(), &without_values(e.message().trim())))?;
        let defaults = raw.defaults.unwrap_or_default();
        if raw.nodes.is_empty() {
            return Err(source.error(None, NO_NODE));
        }
        let mut nodes = BTreeMap::new();
        for (name, node) in raw.nodes {
            let node = parse_node(&source, name, node, &defaults)?;
            nodes.insert(node.name.clone(), node);
        }
        Ok(Config {
            path: path.to_path_buf(),
            nodes,
        })
    }

    /// The node an item names; an empty name means the only node.
    pub(crate) fn node(&self, name: &str) -> Result<&NodeConfig> {
        if name.is_empty() {
            if self.nodes.len() == 1 {
                return Ok(self.nodes.values().next().expect("one node"));
            }
            return Err(Error::new(
                ErrorKind::UnknownNode,
                format!(
                    "no node named, and {} nodes are configured ({}): name one",
                    self.nodes.len(),
                    self.node_names()
                ),
            ));
        }
        self.nodes.get(name).ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownNode,
                format!(
                    "unknown node {}; configured nodes: {}",
                    quoted(name),
                    self.node_names()
                ),
            )
        })
    }

    fn node_names(&self) -> String {
        self.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The message of a config without a node (the shipped example, before
/// the admin fills it in).
pub(crate) const NO_NODE: &str = "no [nodes.NAME] table: configure at least one node";

/// A TOML or serde message without the values it quotes (`invalid type:
/// string "hunter2", expected u64`): the key and the line say where, the
/// expected type says what. Field names (in backticks) stay.
fn without_values(message: &str) -> String {
    const VALUES: [(&str, char); 5] = [
        ("string \"", '"'),
        ("integer `", '`'),
        ("floating point `", '`'),
        ("character `", '`'),
        ("boolean `", '`'),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    'scan: while !rest.is_empty() {
        for (marker, close) in VALUES {
            if let Some(after) = rest.strip_prefix(marker) {
                // The kind's word stays, the value goes (escapes skipped).
                out.push_str(marker.trim_end_matches(['"', '`']).trim_end());
                let mut chars = after.char_indices();
                let mut end = after.len();
                while let Some((i, c)) = chars.next() {
                    if c == '\\' {
                        chars.next();
                    } else if c == close {
                        end = i + c.len_utf8();
                        break;
                    }
                }
                rest = &after[end..];
                continue 'scan;
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The config's text and where it was found, for messages that name the
/// file and the line.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

type Span = std::ops::Range<usize>;

impl Source<'_> {
    /// A config error at `span` (its line named, when known).
    fn error(&self, span: Option<Span>, msg: &str) -> Error {
        let place = match span {
            Some(s) => format!(" line {}", line_of(self.text, s.start)),
            None => String::new(),
        };
        Error::new(
            ErrorKind::Config,
            format!("config {}{place}: {msg}", self.path.display()),
        )
    }
}

/// Errors about one node: "node 'n': ...", at the node's table unless a
/// value's own span is given.
struct NodeErrors<'a> {
    source: &'a Source<'a>,
    name: &'a str,
    span: Span,
}

impl NodeErrors<'_> {
    fn error(&self, span: Option<Span>, msg: String) -> Error {
        self.source.error(
            span.or(Some(self.span.clone())),
            &format!("node {}: {msg}", quoted(self.name)),
        )
    }
}

/// One `[nodes.NAME]` table, validated, with the `[defaults]` it does not
/// override. Checked in a fixed order, so the first error is always the same.
fn parse_node(
    source: &Source<'_>,
    name: Spanned<String>,
    node: Spanned<RawNode>,
    defaults: &RawLimits,
) -> Result<NodeConfig> {
    let errors = NodeErrors {
        source,
        name: name.get_ref(),
        span: node.span(),
    };
    let mut node = node.into_inner();
    if name.get_ref().is_empty() || name.get_ref().chars().any(|c| c.is_control() || c == ',') {
        return Err(source.error(
            Some(name.span()),
            "node names must be non-empty, without commas or control characters",
        ));
    }
    let url = urls::validate_url(
        "url",
        node.url.get_ref(),
        "token_file, jwt_secret_file or the api_* keys",
    )
    .map_err(|m| errors.error(Some(node.url.span()), m))?;
    let timeout = parse_timeout(&errors, node.timeout.as_ref().or(defaults.timeout.as_ref()))?;
    let max_response_bytes = parse_max_response_bytes(
        &errors,
        node.max_response_bytes
            .as_ref()
            .or(defaults.max_response_bytes.as_ref()),
    )?;
    let proxy = match node.proxy.as_ref().or(defaults.proxy.as_ref()) {
        None => None,
        Some(p) => {
            Some(urls::validate_proxy(p.get_ref()).map_err(|m| errors.error(Some(p.span()), m))?)
        }
    };
    let cache_ttl = node
        .cache_ttl
        .or(defaults.cache_ttl)
        .unwrap_or(DEFAULT_CACHE_TTL);
    let cmonitor = credentials::parse_cmonitor(&errors, &node)?;
    let api = credentials::parse_api(&errors, &node)?;
    let raw_relations = std::mem::take(&mut node.relations);
    let (auth, own_auth, relations, relation_auth) =
        parse_relation_auth(&errors, &node.auth(), raw_relations, &api)?;
    Ok(NodeConfig {
        name: name.into_inner(),
        url,
        relations,
        auth,
        own_auth,
        relation_auth,
        timeout,
        cache_ttl: Duration::from_secs(cache_ttl),
        cache_max_bytes: node
            .cache_max_bytes
            .or(defaults.cache_max_bytes)
            .unwrap_or(DEFAULT_CACHE_MAX_BYTES),
        max_response_bytes,
        ca_file: node.ca_file,
        proxy,
        cmonitor,
        api,
    })
}

/// The node's 2.4 credentials (None where it has none), whether they are
/// its own, its relations and those with credentials of their own.
type RelationAuth = (
    Option<Credential>,
    bool,
    Vec<String>,
    BTreeMap<String, Credential>,
);

/// The relations and their 2.4 credentials: each relation's own, or the
/// node's. A node needs relations with their credentials, or 4.0 API
/// credentials, or both; a node with 2.4 credentials and no relations is
/// watched by `exalate.node.ping`.
fn parse_relation_auth(
    errors: &NodeErrors<'_>,
    node_auth: &RawAuth,
    raw_relations: Vec<Spanned<RawRelation>>,
    api: &Option<Credential>,
) -> Result<RelationAuth> {
    let (relations, own) =
        relations::validate_relations(raw_relations).map_err(|(s, m)| errors.error(Some(s), m))?;
    let own_auth = node_auth.has_source();
    let mut relation_auth = BTreeMap::new();
    for (name, (span, raw)) in &own {
        let relation = NodeErrors {
            source: errors.source,
            name: errors.name,
            span: span.clone(),
        };
        let context = format!("relation {}: ", quoted(name));
        let credential = credentials::parse_credential(&relation, &context, &raw.over(node_auth))?;
        relation_auth.insert(name.clone(), credential);
    }
    let without_own = relations.iter().find(|r| !own.contains_key(*r));
    let auth = match (own_auth, without_own, relations.first()) {
        (true, _, _) => Some(credentials::parse_credential(errors, "", node_auth)?),
        // No relation has its own either: the plain message.
        (false, Some(_), _) if own.is_empty() => {
            Some(credentials::parse_credential(errors, "", node_auth)?)
        }
        (false, Some(r), _) => {
            return Err(errors.error(None, credentials::no_relation_credentials(r)))
        }
        // Every relation has its own: the first serves the node.
        (false, None, Some(first)) => {
            credentials::check_unused_auth_keys(
                errors,
                node_auth,
                "and every relation has its own credentials: set it in the relations' tables",
            )?;
            Some(relation_auth[first].clone())
        }
        (false, None, None) if api.is_some() => {
            credentials::check_unused_auth_keys(
                errors,
                node_auth,
                "which is not set (the node has no relations)",
            )?;
            None
        }
        (false, None, None) => return Err(errors.error(None, NO_CREDENTIALS.into())),
    };
    Ok((auth, own_auth, relations, relation_auth))
}

/// A node with neither kind of credentials.
const NO_CREDENTIALS: &str = "no credentials: set token_file or jwt_secret_file (issuehub 2.4, \
    with relations), or api_user with api_password_file, or api_token_file (issuehub 4.0, the whole node)";

/// The node's config timeout (see [`crate::timeout`]).
fn parse_timeout(
    errors: &NodeErrors<'_>,
    timeout: Option<&Spanned<u64>>,
) -> Result<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if TIMEOUT_RANGE_SECS.contains(t.get_ref()) => {
            Ok(Some(Duration::from_secs(*t.get_ref())))
        }
        Some(t) => Err(errors.error(Some(t.span()), timeout::OUT_OF_RANGE.into())),
    }
}

fn parse_max_response_bytes(errors: &NodeErrors<'_>, max: Option<&Spanned<u64>>) -> Result<u64> {
    match max {
        None => Ok(DEFAULT_MAX_RESPONSE_BYTES),
        Some(m) if *m.get_ref() >= 2 => Ok(*m.get_ref()),
        Some(m) => Err(errors.error(
            Some(m.span()),
            "max_response_bytes must be at least 2".into(),
        )),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests;
