//! The TOML configuration: parsed strictly (unknown keys are errors) and
//! validated, with every error naming the file and line.

use crate::error::{quoted, Error, ErrorKind, Result};
use crate::fs;
use crate::timeout::{self, TIMEOUT_RANGE_SECS};
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
const DEFAULT_JWT_TTL: u64 = 60;
const DEFAULT_ISSUER: &str = "EXALATE";
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
    /// The node's credentials: its own, else its first relation's. They
    /// serve `exalate.node.ping` and any relation without its own.
    pub auth: AuthConfig,
    /// The header the token is sent in (with `auth`).
    pub auth_header: AuthHeader,
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
}

/// A node's customer monitor endpoint, `GET` answering `{"numErrors": N}`,
/// with its own credentials (never the node's JWT secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmonitorConfig {
    /// `cmonitor_url`: the endpoint as Exalate support gives it.
    pub url: String,
    /// How requests to it authenticate.
    pub auth: CmonitorAuth,
}

/// The customer monitor's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmonitorAuth {
    /// HTTP Basic: `cmonitor_user` and the password in `cmonitor_password_file`.
    Basic {
        /// `cmonitor_user`.
        user: String,
        /// `cmonitor_password_file`.
        password_file: PathBuf,
    },
    /// `Authorization: Bearer <token>`, the token in `cmonitor_token_file`.
    Bearer {
        /// `cmonitor_token_file`.
        token_file: PathBuf,
    },
}

/// The credentials of a relation: where its token comes from and the
/// header it is sent in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The token's source.
    pub auth: AuthConfig,
    /// The header it is sent in.
    pub header: AuthHeader,
}

impl NodeConfig {
    /// The credentials requests about `relation` use: the relation's own,
    /// else the node's.
    pub fn credential(&self, relation: &str) -> Credential {
        self.relation_auth
            .get(relation)
            .cloned()
            .unwrap_or_else(|| Credential {
                auth: self.auth.clone(),
                header: self.auth_header,
            })
    }

    /// The relation `exalate.node.ping` asks, with the node's credentials:
    /// the first relation using them; with none, a relation no node has
    /// (its 400 shows the node up and the credentials taken); without
    /// credentials of its own, the node's first relation.
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

/// A node's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// A JWT issued elsewhere, sent as is.
    Token {
        /// `token_file`.
        file: PathBuf,
    },
    /// A shared secret from which HS256 tokens are minted.
    Secret {
        /// `jwt_secret_file`.
        file: PathBuf,
        /// `jwt_issuer` (`iss`).
        issuer: String,
        /// `jwt_user` (`sub`), if set.
        user: Option<String>,
        /// `jwt_ttl`: how long a minted token is valid.
        ttl: Duration,
        /// `jwt_exp_unit`: the unit of `exp`.
        exp_unit: ExpUnit,
    },
}

/// The unit of a minted token's `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpUnit {
    /// Milliseconds since the epoch (`"ms"`, the default).
    Millis,
    /// Seconds since the epoch (`"s"`).
    Seconds,
}

/// The header a token is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthHeader {
    /// `X-Exalate-Jwt: <jwt>` (the default).
    XExalateJwt,
    /// `Authorization: Bearer <jwt>`
    Bearer,
}

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
}

/// An entry of `relations`: a name, or a table with the name and the
/// authentication keys it overrides.
struct RawRelation {
    name: Spanned<String>,
    auth: Option<RawAuth>,
}

/// The authentication keys, of a node or of a relation's table.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    token_file: Option<PathBuf>,
    jwt_secret_file: Option<PathBuf>,
    jwt_issuer: Option<Spanned<String>>,
    jwt_user: Option<Spanned<String>>,
    jwt_ttl: Option<Spanned<u64>>,
    jwt_exp_unit: Option<Spanned<String>>,
    auth_header: Option<Spanned<String>>,
}

impl RawAuth {
    /// The keys of `relation` over those of `node`: a relation naming its own
    /// `token_file` or `jwt_secret_file` takes none of the node's source and
    /// claims (only its `auth_header`); one naming neither takes the node's
    /// and overrides the keys it sets.
    fn over(&self, node: &RawAuth) -> RawAuth {
        let header = self.auth_header.clone().or(node.auth_header.clone());
        if self.token_file.is_some() || self.jwt_secret_file.is_some() {
            return RawAuth {
                auth_header: header,
                ..self.clone()
            };
        }
        RawAuth {
            token_file: node.token_file.clone(),
            jwt_secret_file: node.jwt_secret_file.clone(),
            jwt_issuer: self.jwt_issuer.clone().or(node.jwt_issuer.clone()),
            jwt_user: self.jwt_user.clone().or(node.jwt_user.clone()),
            jwt_ttl: self.jwt_ttl.clone().or(node.jwt_ttl.clone()),
            jwt_exp_unit: self.jwt_exp_unit.clone().or(node.jwt_exp_unit.clone()),
            auth_header: header,
        }
    }
}

impl<'de> Deserialize<'de> for RawRelation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        /// A relation's table: its name and authentication keys.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            name: Spanned<String>,
            token_file: Option<PathBuf>,
            jwt_secret_file: Option<PathBuf>,
            jwt_issuer: Option<Spanned<String>>,
            jwt_user: Option<Spanned<String>>,
            jwt_ttl: Option<Spanned<u64>>,
            jwt_exp_unit: Option<Spanned<String>>,
            auth_header: Option<Spanned<String>>,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawRelation;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a relation name, or a table { name = \"...\", jwt_secret_file = \"...\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<RawRelation, E> {
                Ok(RawRelation {
                    name: Spanned::new(0..0, v.to_string()),
                    auth: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<RawRelation, A::Error> {
                let t = Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawRelation {
                    name: t.name,
                    auth: Some(RawAuth {
                        token_file: t.token_file,
                        jwt_secret_file: t.jwt_secret_file,
                        jwt_issuer: t.jwt_issuer,
                        jwt_user: t.jwt_user,
                        jwt_ttl: t.jwt_ttl,
                        jwt_exp_unit: t.jwt_exp_unit,
                        auth_header: t.auth_header,
                    }),
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl RawNode {
    /// The node's own authentication keys.
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
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| source.error(e.span(), e.message().trim()))?;
        let defaults = raw.defaults.unwrap_or_default();
        if raw.nodes.is_empty() {
            return Err(source.error(None, "no [nodes.NAME] table: configure at least one node"));
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
    let node = node.into_inner();
    if name.get_ref().is_empty() || name.get_ref().chars().any(|c| c.is_control() || c == ',') {
        return Err(source.error(
            Some(name.span()),
            "node names must be non-empty, without commas or control characters",
        ));
    }
    let url =
        validate_url(node.url.get_ref()).map_err(|m| errors.error(Some(node.url.span()), m))?;
    let node_auth = node.auth();
    let timeout = parse_timeout(&errors, node.timeout.as_ref().or(defaults.timeout.as_ref()))?;
    let max_response_bytes = parse_max_response_bytes(
        &errors,
        node.max_response_bytes
            .as_ref()
            .or(defaults.max_response_bytes.as_ref()),
    )?;
    let proxy = match node.proxy.as_ref().or(defaults.proxy.as_ref()) {
        None => None,
        Some(p) => Some(validate_proxy(p.get_ref()).map_err(|m| errors.error(Some(p.span()), m))?),
    };
    let cache_ttl = node
        .cache_ttl
        .or(defaults.cache_ttl)
        .unwrap_or(DEFAULT_CACHE_TTL);
    let cmonitor = parse_cmonitor(&errors, &node)?;
    let (relations, own) =
        validate_relations(node.relations).map_err(|(s, m)| errors.error(Some(s), m))?;
    let own_auth = node_auth.token_file.is_some() || node_auth.jwt_secret_file.is_some();
    let mut relation_auth = BTreeMap::new();
    for (name, (span, raw)) in &own {
        let relation = NodeErrors {
            source,
            name: errors.name,
            span: span.clone(),
        };
        let context = format!("relation {}: ", quoted(name));
        let credential = parse_credential(&relation, &context, &raw.over(&node_auth))?;
        relation_auth.insert(name.clone(), credential);
    }
    // The node's own credentials, else its first relation's: needed unless
    // every relation has its own.
    let node_credential = if own_auth
        || relations.is_empty()
        || relations.iter().any(|r| !own.contains_key(r))
    {
        let missing = (!own_auth).then(|| relations.iter().find(|r| !own.contains_key(*r)));
        match missing.flatten() {
            // No relation has its own either: the plain message.
            Some(_) if own.is_empty() => parse_credential(&errors, "", &node_auth)?,
            Some(r) => {
                return Err(errors.error(
                    None,
                    format!(
                        "no credentials for relation {}: set token_file or jwt_secret_file on the node, or write the relation as {{ name = {}, jwt_secret_file = \"...\" }}",
                        quoted(r),
                        toml_string(r)
                    ),
                ))
            }
            None => parse_credential(&errors, "", &node_auth)?,
        }
    } else {
        // Checked: the node's own keys alone, then the first relation's.
        check_auth_keys(&errors, &node_auth)?;
        relation_auth[&relations[0]].clone()
    };
    Ok(NodeConfig {
        name: name.into_inner(),
        url,
        relations,
        auth: node_credential.auth,
        auth_header: node_credential.header,
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
    })
}

/// `cmonitor_url` with exactly one of `cmonitor_user` +
/// `cmonitor_password_file` (Basic) and `cmonitor_token_file` (Bearer);
/// none of them without `cmonitor_url`.
fn parse_cmonitor(errors: &NodeErrors<'_>, node: &RawNode) -> Result<Option<CmonitorConfig>> {
    let user = node.cmonitor_user.as_ref();
    let password_file = node.cmonitor_password_file.as_ref();
    let token_file = node.cmonitor_token_file.as_ref();
    let Some(url) = &node.cmonitor_url else {
        let set = [
            ("cmonitor_user", user.map(Spanned::span)),
            ("cmonitor_password_file", password_file.map(Spanned::span)),
            ("cmonitor_token_file", token_file.map(Spanned::span)),
        ];
        return match set.into_iter().find(|(_, s)| s.is_some()) {
            Some((key, span)) => Err(errors.error(
                span,
                format!("{key} applies only with cmonitor_url, which is not set"),
            )),
            None => Ok(None),
        };
    };
    let checked = validate_url(url.get_ref()).map_err(|m| {
        let m = match m.split_once("; use ") {
            // Its own credential keys, not the node's.
            Some((m, _)) => format!("{m}; use cmonitor_user or cmonitor_token_file"),
            None => m,
        };
        errors.error(Some(url.span()), format!("cmonitor_{m}"))
    })?;
    let auth = match (user, password_file, token_file) {
        (Some(user), Some(file), None) => {
            let name = user.get_ref();
            if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
                return Err(errors.error(
                    Some(user.span()),
                    "cmonitor_user must be non-empty, without ':' or control characters".into(),
                ));
            }
            CmonitorAuth::Basic {
                user: name.clone(),
                password_file: file.get_ref().clone(),
            }
        }
        (None, None, Some(file)) => CmonitorAuth::Bearer {
            token_file: file.get_ref().clone(),
        },
        (Some(_), None, None) => {
            return Err(errors.error(
                user.map(Spanned::span),
                "cmonitor_user needs cmonitor_password_file (HTTP Basic)".into(),
            ))
        }
        (None, Some(file), None) => {
            return Err(errors.error(
                Some(file.span()),
                "cmonitor_password_file needs cmonitor_user (HTTP Basic)".into(),
            ))
        }
        (None, None, None) => {
            return Err(errors.error(
                Some(url.span()),
                "cmonitor_url needs credentials: cmonitor_user with cmonitor_password_file, or cmonitor_token_file".into(),
            ))
        }
        (_, _, Some(file)) => {
            return Err(errors.error(
                Some(file.span()),
                "set either cmonitor_user with cmonitor_password_file or cmonitor_token_file, not both".into(),
            ))
        }
    };
    Ok(Some(CmonitorConfig { url: checked, auth }))
}

/// One set of credentials (the node's, or a relation's over the node's):
/// exactly one of `token_file` and `jwt_secret_file`, the `jwt_*` keys only
/// with the latter. `context` starts each message ("relation 'R': ").
fn parse_credential(errors: &NodeErrors<'_>, context: &str, raw: &RawAuth) -> Result<Credential> {
    let error = |span: Option<Span>, msg: String| errors.error(span, format!("{context}{msg}"));
    let secret_only = secret_only_keys(raw);
    let auth = match (&raw.token_file, &raw.jwt_secret_file) {
        (Some(_), Some(_)) => {
            return Err(error(
                None,
                "set exactly one of token_file and jwt_secret_file, not both".into(),
            ))
        }
        (None, None) => {
            return Err(error(
                None,
                "no credentials: set token_file or jwt_secret_file".into(),
            ))
        }
        (Some(file), None) => {
            if let Some((key, s)) = secret_only.iter().find(|(_, s)| s.is_some()) {
                return Err(error(
                    s.clone(),
                    format!("{key} applies only with jwt_secret_file, but token_file is set"),
                ));
            }
            AuthConfig::Token { file: file.clone() }
        }
        (None, Some(file)) => parse_secret_auth(&error, raw, file.clone())?,
    };
    let header = parse_auth_header(&error, raw.auth_header.as_ref())?;
    Ok(Credential { auth, header })
}

/// The `jwt_*` keys set, with their spans.
fn secret_only_keys(raw: &RawAuth) -> [(&'static str, Option<Span>); 4] {
    [
        ("jwt_issuer", raw.jwt_issuer.as_ref().map(Spanned::span)),
        ("jwt_user", raw.jwt_user.as_ref().map(Spanned::span)),
        ("jwt_ttl", raw.jwt_ttl.as_ref().map(Spanned::span)),
        ("jwt_exp_unit", raw.jwt_exp_unit.as_ref().map(Spanned::span)),
    ]
}

/// A node without credentials of its own (every relation has them): a
/// `jwt_*` key of the node would apply to nothing (a relation with its own
/// source takes none of them), so it is an error; `auth_header`, which
/// every relation inherits, is checked.
fn check_auth_keys(errors: &NodeErrors<'_>, raw: &RawAuth) -> Result<()> {
    let error = |span: Option<Span>, msg: String| errors.error(span, msg);
    if let Some((key, s)) = secret_only_keys(raw).iter().find(|(_, s)| s.is_some()) {
        return Err(error(
            s.clone(),
            format!("{key} applies only with the node's jwt_secret_file, and every relation has its own credentials: set {key} in the relations' tables"),
        ));
    }
    parse_auth_header(&error, raw.auth_header.as_ref())?;
    Ok(())
}

/// A TOML basic string holding `s`, for a message that shows a fix.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `jwt_secret_file` and the keys of the tokens minted with it.
fn parse_secret_auth(
    error: &dyn Fn(Option<Span>, String) -> Error,
    node: &RawAuth,
    file: PathBuf,
) -> Result<AuthConfig> {
    let exp_unit = match node
        .jwt_exp_unit
        .as_ref()
        .map(|u| (u.get_ref().as_str(), u.span()))
    {
        None | Some(("ms", _)) => ExpUnit::Millis,
        Some(("s", _)) => ExpUnit::Seconds,
        Some((other, s)) => {
            return Err(error(
                Some(s),
                format!("jwt_exp_unit {} is not \"ms\" or \"s\"", quoted(other)),
            ))
        }
    };
    let ttl = match &node.jwt_ttl {
        None => DEFAULT_JWT_TTL,
        Some(t) if (10..=86_400).contains(t.get_ref()) => *t.get_ref(),
        Some(t) => {
            return Err(error(
                Some(t.span()),
                "jwt_ttl must be 10 to 86400 seconds".into(),
            ))
        }
    };
    Ok(AuthConfig::Secret {
        file,
        issuer: node
            .jwt_issuer
            .as_ref()
            .map_or(DEFAULT_ISSUER.to_string(), |i| i.get_ref().clone()),
        user: node.jwt_user.as_ref().map(|u| u.get_ref().clone()),
        ttl: Duration::from_secs(ttl),
        exp_unit,
    })
}

fn parse_auth_header(
    error: &dyn Fn(Option<Span>, String) -> Error,
    header: Option<&Spanned<String>>,
) -> Result<AuthHeader> {
    match header.map(|h| (h.get_ref(), h.span())) {
        None => Ok(AuthHeader::XExalateJwt),
        Some((h, _)) if h.eq_ignore_ascii_case("X-Exalate-Jwt") => Ok(AuthHeader::XExalateJwt),
        Some((h, _)) if h.eq_ignore_ascii_case("Authorization") => Ok(AuthHeader::Bearer),
        Some((h, s)) => Err(error(
            Some(s),
            format!(
                "auth_header {} is not \"X-Exalate-Jwt\" or \"Authorization\"",
                quoted(h)
            ),
        )),
    }
}

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

fn validate_url(url: &str) -> std::result::Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "url must start with http:// or https://".to_string())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        // Never echo the URL: the part before '@' is a credential.
        return Err(
            "url must not contain credentials (user:password@); use token_file or jwt_secret_file"
                .into(),
        );
    }
    if authority.is_empty() {
        return Err("url has no host".into());
    }
    if rest.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("url must be a plain base URL, without query, fragment or spaces".into());
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// A proxy is `http://host[:port]` (default port 80), nothing more: no
/// credentials (secrets stay out of the config), no path. An https:// proxy
/// would need its own TLS settings; none is offered.
fn validate_proxy(proxy: &str) -> std::result::Result<String, String> {
    let authority = proxy
        .strip_prefix("http://")
        .ok_or_else(|| {
            "proxy must start with http:// (e.g. \"http://proxy.example.com:3128\")".to_string()
        })?
        .trim_end_matches('/');
    if authority.contains('@') {
        // Never echo it: the part before '@' is a credential.
        return Err("proxy must not contain credentials (user:password@)".into());
    }
    let (host, port) = crate::proxy::split_authority(authority);
    let host_ok = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        });
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if !host_ok || !port_ok {
        return Err(format!(
            "proxy {} is not http://host or http://host:port",
            quoted(proxy)
        ));
    }
    Ok(format!("http://{authority}"))
}

/// The relations written as tables: name -> (the table's span, its keys).
type OwnAuth = BTreeMap<String, (Span, RawAuth)>;

/// Relation names become discovery rows and item keys: each must be
/// unique within its node (Zabbix rejects an LLD with duplicate rows),
/// non-empty and free of control characters. An error gives the name's span.
/// Also returns the relations that bring their own authentication.
fn validate_relations(
    relations: Vec<Spanned<RawRelation>>,
) -> std::result::Result<(Vec<String>, OwnAuth), (Span, String)> {
    let mut names: Vec<String> = Vec::with_capacity(relations.len());
    let mut own = BTreeMap::new();
    // A set for the duplicate check: linear in the number of relations.
    let mut seen: std::collections::HashSet<String> =
        std::collections::HashSet::with_capacity(relations.len());
    for relation in relations {
        let entry_span = relation.span();
        let relation = relation.into_inner();
        let span = match relation.auth {
            Some(_) => relation.name.span(),
            None => entry_span.clone(),
        };
        let name = relation.name.into_inner();
        if name.is_empty() {
            return Err((span, "relations: a relation name is empty".into()));
        }
        if name.chars().any(char::is_control) {
            return Err((
                span,
                format!(
                    "relations: {} holds a control character",
                    quoted(&name.escape_default().to_string())
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err((
                span,
                format!("relations: {} is listed twice", quoted(&name)),
            ));
        }
        if let Some(auth) = relation.auth {
            own.insert(name.clone(), (entry_span, auth));
        }
        names.push(name);
    }
    Ok((names, own))
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("/etc/x.toml"), text)
    }

    const GOOD: &str = r#"
[defaults]
timeout = 3
cache_ttl = 5
cache_max_bytes = 1048576

[nodes.prod]
url = "https://jira.example.com/jira/"
relations = ["AllContent", "Service Desk"]
jwt_secret_file = "/etc/zabbix/exalate/prod.secret"
jwt_user = "zabbix"
jwt_exp_unit = "s"
auth_header = "Authorization"

[nodes.test]
url = "http://127.0.0.1:8080"
token_file = "/t.jwt"
timeout = 7
cache_max_bytes = 0
"#;

    /// Issue 21: the duplicate check was quadratic (60,000 relations took
    /// 5.8 s, under the config lock). Six times the relations must cost
    /// about six times as long, not 36 (a ratio, with room for a busy machine).
    #[test]
    fn many_relations_parse_in_linear_time() {
        let config = |n: usize| {
            let names: Vec<String> = (0..n).map(|i| format!("\"relation-{i}\"")).collect();
            format!(
                "[nodes.n]\nurl = \"http://127.0.0.1:1\"\ntoken_file = \"/t\"\nrelations = [{}]\n",
                names.join(", ")
            )
        };
        let timed = |n: usize| {
            let text = config(n);
            (0..2)
                .map(|_| {
                    let started = std::time::Instant::now();
                    let parsed = parse(&text).unwrap();
                    assert_eq!(parsed.nodes["n"].relations.len(), n);
                    started.elapsed()
                })
                .min()
                .unwrap()
        };
        let small = timed(10_000);
        let large = timed(60_000);
        let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
        println!("10,000 relations: {small:?}; 60,000: {large:?}; ratio {ratio:.1}");
        assert!(
            ratio < 18.0,
            "10,000 relations: {small:?}; 60,000: {large:?}"
        );
    }

    #[test]
    fn a_config_file_over_the_size_limit_is_refused() {
        use crate::fs::MAX_CONFIG_BYTES;
        let dir = std::env::temp_dir().join(format!("exalate-config-size-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.toml");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        let e = Config::load(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(
            e.message(),
            format!(
                "config {}: larger than 16 MiB ({MAX_CONFIG_BYTES} bytes), the most a config file may be",
                path.display()
            )
        );
        // At the limit it is read (and then found not to be TOML text).
        file.set_len(MAX_CONFIG_BYTES).unwrap();
        assert!(!Config::load(&path)
            .unwrap_err()
            .message()
            .contains("larger than"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parses_the_contract_example() {
        let c = parse(GOOD).unwrap();
        let prod = c.node("prod").unwrap();
        assert_eq!(prod.url, "https://jira.example.com/jira");
        assert_eq!(prod.relations, ["AllContent", "Service Desk"]);
        assert_eq!(prod.auth_header, AuthHeader::Bearer);
        assert_eq!(prod.timeout, Some(Duration::from_secs(3)));
        assert_eq!(prod.cache_ttl, Duration::from_secs(5));
        assert_eq!(prod.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
        assert_eq!(prod.cache_max_bytes, 1 << 20);
        assert_eq!(c.node("test").unwrap().cache_max_bytes, 0);
        match &prod.auth {
            AuthConfig::Secret {
                issuer,
                user,
                ttl,
                exp_unit,
                ..
            } => {
                assert_eq!(issuer, "EXALATE");
                assert_eq!(user.as_deref(), Some("zabbix"));
                assert_eq!(*ttl, Duration::from_secs(60));
                assert_eq!(*exp_unit, ExpUnit::Seconds);
            }
            other => panic!("{other:?}"),
        }
        let test = c.node("test").unwrap();
        assert_eq!(test.timeout, Some(Duration::from_secs(7)));
        assert_eq!(test.auth_header, AuthHeader::XExalateJwt);
    }

    fn err(text: &str) -> String {
        let e = parse(text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        e.message().to_string()
    }

    #[test]
    fn unknown_key_names_path_and_line() {
        let m = err("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\ntmeout = 3\n");
        assert!(m.starts_with("config /etc/x.toml line 4: "), "{m}");
        assert!(m.contains("tmeout"), "{m}");
    }

    #[test]
    fn bad_toml_names_line() {
        let m = err("[nodes.a]\nurl = \n");
        assert!(m.starts_with("config /etc/x.toml line 2: "), "{m}");
    }

    #[test]
    fn wrong_type_names_line() {
        let m =
            err("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\nrelations = \"AllContent\"\n");
        assert!(m.starts_with("config /etc/x.toml line 4: "), "{m}");
    }

    #[test]
    fn auth_must_be_exactly_one() {
        assert!(err("[nodes.a]\nurl = \"http://x\"\n").contains("no credentials"));
        assert!(err(
            "[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\njwt_secret_file = \"/s\"\n"
        )
        .contains("exactly one"));
        assert!(
            err("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\njwt_user = \"u\"\n")
                .contains("line 4: node 'a': jwt_user applies only with jwt_secret_file")
        );
    }

    #[test]
    fn url_is_checked_without_echoing_credentials() {
        let m = err("[nodes.a]\nurl = \"https://bob:hunter2@x\"\ntoken_file = \"/t\"\n");
        assert!(m.contains("line 2") && m.contains("credentials"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
        assert!(
            err("[nodes.a]\nurl = \"jira.example.com\"\ntoken_file = \"/t\"\n")
                .contains("http:// or https://")
        );
    }

    #[test]
    fn values_are_range_checked() {
        assert!(err(
            "[defaults]\ntimeout = 0\n[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\n"
        )
        .contains("line 2: node 'a': timeout must be 1 to 30"));
        assert!(err(
            "[nodes.a]\nurl = \"http://x\"\njwt_secret_file = \"/t\"\njwt_exp_unit = \"us\"\n"
        )
        .contains("jwt_exp_unit 'us'"));
        assert!(err(
            "[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\nauth_header = \"Cookie\"\n"
        )
        .contains("auth_header 'Cookie'"));
        assert!(err("").contains("no [nodes.NAME]"));
    }

    #[test]
    fn relation_names_are_unique_non_empty_and_printable() {
        let node = |relations: &str| {
            format!(
                "[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\nrelations = [\n{relations}]\n"
            )
        };
        assert_eq!(
            err(&node("  \"A\",\n  \"B\",\n  \"A\",\n")),
            "config /etc/x.toml line 7: node 'a': relations: 'A' is listed twice"
        );
        assert_eq!(
            err(&node("\"A\", \"\"\n")),
            "config /etc/x.toml line 5: node 'a': relations: a relation name is empty"
        );
        assert_eq!(
            err(&node("\"A\",\n\"x\\u0000y\"\n")),
            "config /etc/x.toml line 6: node 'a': relations: 'x\\u{0}y' holds a control character"
        );
        assert!(err(&node("\"tab\\there\"")).contains("holds a control character"));
        // Names differing only in case or spaces are distinct relations.
        let ok = parse(&node("\"A\", \"a\", \"A \", \"Jira Cloud/EU\"")).unwrap();
        assert_eq!(ok.nodes["a"].relations, ["A", "a", "A ", "Jira Cloud/EU"]);
    }

    /// Issue 19: a relation written as a table brings its own credentials.
    #[test]
    fn a_relation_table_overrides_the_node_auth() {
        let c = parse(
            "[nodes.msp]\nurl = \"http://x\"\njwt_secret_file = \"/msp.secret\"\njwt_user = \"z\"\n\
             relations = [\"AllContent\", { name = \"Service Desk\", jwt_secret_file = \"/sd.secret\" },\n\
             { name = \"Claims\", jwt_exp_unit = \"s\", auth_header = \"Authorization\" },\n\
             { name = \"Static\", token_file = \"/t.jwt\" }]\n",
        )
        .unwrap();
        let n = &c.nodes["msp"];
        assert_eq!(
            n.relations,
            ["AllContent", "Service Desk", "Claims", "Static"]
        );
        assert!(n.own_auth);
        assert_eq!(n.ping_relation(), "AllContent");
        let secret = |r: &str| match n.credential(r).auth {
            AuthConfig::Secret {
                file,
                user,
                exp_unit,
                ..
            } => (file.display().to_string(), user, exp_unit),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            secret("AllContent"),
            ("/msp.secret".into(), Some("z".into()), ExpUnit::Millis)
        );
        assert_eq!(secret("not listed").0, "/msp.secret");
        // Its own secret: none of the node's claims.
        assert_eq!(
            secret("Service Desk"),
            ("/sd.secret".into(), None, ExpUnit::Millis)
        );
        // No source of its own: the node's, with the keys it overrides.
        assert_eq!(
            secret("Claims"),
            ("/msp.secret".into(), Some("z".into()), ExpUnit::Seconds)
        );
        assert_eq!(n.credential("Claims").header, AuthHeader::Bearer);
        assert_eq!(n.credential("Service Desk").header, AuthHeader::XExalateJwt);
        assert_eq!(
            n.credential("Static").auth,
            AuthConfig::Token {
                file: "/t.jwt".into()
            }
        );
    }

    #[test]
    fn the_node_auth_is_optional_when_every_relation_has_its_own() {
        let c = parse(
            "[nodes.a]\nurl = \"http://x\"\nauth_header = \"Authorization\"\n\
             relations = [{ name = \"R1\", jwt_secret_file = \"/r1\" }, { name = \"R2\", token_file = \"/r2\" }]\n",
        )
        .unwrap();
        let n = &c.nodes["a"];
        assert!(!n.own_auth);
        // ping: the first relation, with its credentials.
        assert_eq!(n.ping_relation(), "R1");
        assert_eq!(n.auth, n.credential("R1").auth);
        assert_eq!(n.credential("R2").header, AuthHeader::Bearer);
        // Every relation has its own, the node too: ping asks none of them.
        let c = parse(
            "[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\n\
             relations = [{ name = \"R1\", jwt_secret_file = \"/r1\" }]\n",
        )
        .unwrap();
        assert_eq!(c.nodes["a"].ping_relation(), PING_RELATION);
    }

    #[test]
    fn relation_auth_errors_name_the_relation_and_line() {
        let node = |lines: &str| format!("[nodes.a]\nurl = \"http://x\"\n{lines}\n");
        assert_eq!(
            err(&node("relations = [\"R1\",\n  { name = \"R2\", jwt_secret_file = \"/s\" }]")),
            "config /etc/x.toml line 1: node 'a': no credentials for relation 'R1': set token_file or \
             jwt_secret_file on the node, or write the relation as { name = \"R1\", jwt_secret_file = \"...\" }"
        );
        assert_eq!(
            err(&node("token_file = \"/t\"\nrelations = [\"R1\",\n  { name = \"R2\", jwt_secret_file = \"/s\", token_file = \"/t2\" }]")),
            "config /etc/x.toml line 5: node 'a': relation 'R2': set exactly one of token_file and jwt_secret_file, not both"
        );
        assert_eq!(
            err(&node("relations = [\n  { name = \"R2\", token_file = \"/t\",\n jwt_user = \"u\" }]")),
            "config /etc/x.toml line 5: node 'a': relation 'R2': jwt_user applies only with jwt_secret_file, but token_file is set"
        );
        assert_eq!(
            err(&node("relations = [\n  { name = \"R2\", jwt_secret_file = \"/s\",\n jwt_exp_unit = \"us\" }]")),
            "config /etc/x.toml line 5: node 'a': relation 'R2': jwt_exp_unit 'us' is not \"ms\" or \"s\""
        );
        assert_eq!(
            err(&node("relations = [\n  { name = \"R2\", jwt_secret_file = \"/s\", jwt_ttl = 1 }]")),
            "config /etc/x.toml line 4: node 'a': relation 'R2': jwt_ttl must be 10 to 86400 seconds"
        );
        assert_eq!(
            err(&node("relations = [\n  { name = \"R2\", jwt_secret_file = \"/s\", auth_header = \"Cookie\" }]")),
            "config /etc/x.toml line 4: node 'a': relation 'R2': auth_header 'Cookie' is not \"X-Exalate-Jwt\" or \"Authorization\""
        );
        // A key only a node has, a table without a name, a duplicate.
        let m = err(&node(
            "token_file = \"/t\"\nrelations = [\n  { name = \"R2\", timeout = 3 }]",
        ));
        assert!(
            m.starts_with("config /etc/x.toml line 5: ") && m.contains("unknown field `timeout`"),
            "{m}"
        );
        let m = err(&node(
            "token_file = \"/t\"\nrelations = [\n  { jwt_secret_file = \"/s\" }]",
        ));
        assert!(
            m.starts_with("config /etc/x.toml line 5: ") && m.contains("missing field `name`"),
            "{m}"
        );
        assert_eq!(
            err(&node("token_file = \"/t\"\nrelations = [\"R\",\n  { name = \"R\", jwt_secret_file = \"/s\" }]")),
            "config /etc/x.toml line 5: node 'a': relations: 'R' is listed twice"
        );
        let m = err(&node("token_file = \"/t\"\nrelations = [3]"));
        assert!(
            m.contains("line 4") && m.contains("a relation name, or a table"),
            "{m}"
        );
        // The node's own keys are checked even when every relation has its own:
        // a jwt_* key would apply to nothing.
        assert_eq!(
            err(&node("jwt_exp_unit = \"s\"\nrelations = [{ name = \"R\", token_file = \"/t\" }]")),
            "config /etc/x.toml line 3: node 'a': jwt_exp_unit applies only with the node's jwt_secret_file, \
             and every relation has its own credentials: set jwt_exp_unit in the relations' tables"
        );
        assert!(err(&node(
            "auth_header = \"Cookie\"\nrelations = [{ name = \"R\", token_file = \"/t\" }]"
        ))
        .contains("line 3: node 'a': relation 'R': auth_header 'Cookie'"));
        // Neither the node nor any relation.
        assert!(err(&node("")).contains("no credentials: set token_file or jwt_secret_file"));
    }

    #[test]
    fn proxy_from_defaults_or_the_node() {
        let c = parse(
            "[defaults]\nproxy = \"http://proxy.example.com:3128/\"\n\
             [nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\n\
             [nodes.b]\nurl = \"https://y\"\ntoken_file = \"/t\"\nproxy = \"http://10.0.0.1:8080\"\n",
        )
        .unwrap();
        assert_eq!(
            c.nodes["a"].proxy.as_deref(),
            Some("http://proxy.example.com:3128")
        );
        assert_eq!(c.nodes["b"].proxy.as_deref(), Some("http://10.0.0.1:8080"));
        assert_eq!(parse(GOOD).unwrap().nodes["prod"].proxy, None);
        let bad = |proxy: &str| {
            err(&format!(
                "[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\nproxy = \"{proxy}\"\n"
            ))
        };
        assert!(bad("proxy.example.com:3128")
            .contains("line 4: node 'a': proxy must start with http://"));
        assert!(bad("socks5://p:1080").contains("must start with http://"));
        let m = bad("http://bob:hunter2@p:3128");
        assert!(
            m.contains("must not contain credentials") && !m.contains("hunter2"),
            "{m}"
        );
        for v6 in ["http://[::1]", "http://[fd00::1]:3128"] {
            let c = parse(&format!(
                "[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\nproxy = \"{v6}\"\n"
            ))
            .unwrap();
            assert_eq!(c.nodes["a"].proxy.as_deref(), Some(v6));
        }
        assert!(bad("http://[::1]x").contains("is not http://host or http://host:port"));
        assert!(bad("http://p:99999").contains("is not http://host or http://host:port"));
        assert!(bad("http://p/path").contains("is not http://host"));
        assert!(bad("http://").contains("is not http://host"));
    }

    #[test]
    fn cmonitor_needs_exactly_one_kind_of_its_own_credentials() {
        let node =
            |keys: &str| format!("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\n{keys}");
        let url = "cmonitor_url = \"https://a.exalate.cloud/rest/issuehub/4.0/cmonitor/\"\n";
        let basic = parse(&node(&format!(
            "{url}cmonitor_user = \"monitor\"\ncmonitor_password_file = \"/p\"\n"
        )))
        .unwrap();
        assert_eq!(
            basic.nodes["a"].cmonitor,
            Some(CmonitorConfig {
                url: "https://a.exalate.cloud/rest/issuehub/4.0/cmonitor".into(),
                auth: CmonitorAuth::Basic {
                    user: "monitor".into(),
                    password_file: "/p".into()
                }
            })
        );
        let bearer = parse(&node(&format!("{url}cmonitor_token_file = \"/k\"\n"))).unwrap();
        assert_eq!(
            bearer.nodes["a"].cmonitor.as_ref().unwrap().auth,
            CmonitorAuth::Bearer {
                token_file: "/k".into()
            }
        );
        assert_eq!(parse(&node("")).unwrap().nodes["a"].cmonitor, None);
        assert_eq!(
            err(&node(url)),
            "config /etc/x.toml line 4: node 'a': cmonitor_url needs credentials: cmonitor_user with cmonitor_password_file, or cmonitor_token_file"
        );
        assert_eq!(
            err(&node(&format!("{url}cmonitor_user = \"m\"\n"))),
            "config /etc/x.toml line 5: node 'a': cmonitor_user needs cmonitor_password_file (HTTP Basic)"
        );
        assert_eq!(
            err(&node(&format!("{url}cmonitor_password_file = \"/p\"\n"))),
            "config /etc/x.toml line 5: node 'a': cmonitor_password_file needs cmonitor_user (HTTP Basic)"
        );
        assert_eq!(
            err(&node(&format!(
                "{url}cmonitor_user = \"m\"\ncmonitor_password_file = \"/p\"\ncmonitor_token_file = \"/k\"\n"
            ))),
            "config /etc/x.toml line 7: node 'a': set either cmonitor_user with cmonitor_password_file or cmonitor_token_file, not both"
        );
        assert_eq!(
            err(&node("cmonitor_token_file = \"/k\"\n")),
            "config /etc/x.toml line 4: node 'a': cmonitor_token_file applies only with cmonitor_url, which is not set"
        );
        assert!(err(&node(&format!(
            "{url}cmonitor_user = \"a:b\"\ncmonitor_password_file = \"/p\"\n"
        )))
        .contains("line 5: node 'a': cmonitor_user must be non-empty, without ':'"));
        let m = err(&node(
            "cmonitor_url = \"https://bob:hunter2@x/cmonitor\"\ncmonitor_token_file = \"/k\"\n",
        ));
        assert_eq!(
            m,
            "config /etc/x.toml line 4: node 'a': cmonitor_url must not contain credentials (user:password@); use cmonitor_user or cmonitor_token_file"
        );
        assert!(err(&node(
            "cmonitor_url = \"ftp://x/cmonitor\"\ncmonitor_token_file = \"/k\"\n"
        ))
        .contains("line 4: node 'a': cmonitor_url must start with http:// or https://"));
    }

    #[test]
    fn node_lookup() {
        let c = parse(GOOD).unwrap();
        let e = c.node("").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownNode);
        assert!(e.message().contains("prod, test"), "{e}");
        let e = c.node("staging").unwrap_err();
        assert_eq!(
            e.message(),
            "unknown node 'staging'; configured nodes: prod, test"
        );
        let one = parse("[nodes.only]\nurl = \"http://x\"\ntoken_file = \"/t\"\n").unwrap();
        assert_eq!(one.node("").unwrap().name, "only");
    }

    #[test]
    fn missing_file_says_so() {
        let e = Config::load(Path::new("/nonexistent/exalate.toml")).unwrap_err();
        assert_eq!(
            e.message(),
            "config /nonexistent/exalate.toml: cannot read: No such file or directory (create it, or set EXALATE_ZABBIX_CONFIG)"
        );
    }
}
