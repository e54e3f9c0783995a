//! The TOML configuration: parsed strictly (unknown keys are errors) and
//! validated, with every error naming the file and line.

use crate::error::{quoted, Error, ErrorKind, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

pub const DEFAULT_PATH: &str = "/etc/zabbix/exalate_zabbix.toml";
pub const PATH_ENV: &str = "EXALATE_ZABBIX_CONFIG";
pub const DEFAULT_CACHE_TTL: u64 = 10;
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 32 * 1024 * 1024;
/// The largest config file read: a config of 100,000 relations is under
/// 4 MiB; a larger file is a mistake, and reading it would hold it in
/// memory (and the config lock) for nothing.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;
const DEFAULT_JWT_TTL: u64 = 60;
const DEFAULT_ISSUER: &str = "EXALATE";
/// The agent's own Timeout range; a longer request would block an agent process.
const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=30;

/// The config path: `$EXALATE_ZABBIX_CONFIG`, else the default.
pub fn default_path() -> PathBuf {
    match std::env::var_os(PATH_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub path: PathBuf,
    pub nodes: BTreeMap<String, NodeConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub name: String,
    /// Base URL without a trailing slash.
    pub url: String,
    pub relations: Vec<String>,
    pub auth: AuthConfig,
    pub auth_header: AuthHeader,
    /// None: the host's timeout (the agent's Timeout).
    pub timeout: Option<Duration>,
    pub cache_ttl: Duration,
    /// What the node's cache may hold in one process; 0 keeps nothing.
    pub cache_max_bytes: u64,
    pub max_response_bytes: u64,
    pub ca_file: Option<PathBuf>,
    /// An HTTP proxy, `http://host:port` (the `proxy` key); the
    /// environment's proxy variables are never used.
    pub proxy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// A JWT issued elsewhere, sent as is.
    Token { file: PathBuf },
    /// A shared secret from which HS256 tokens are minted.
    Secret {
        file: PathBuf,
        issuer: String,
        user: Option<String>,
        ttl: Duration,
        exp_unit: ExpUnit,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpUnit {
    Millis,
    Seconds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthHeader {
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
    relations: Vec<Spanned<String>>,
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
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = read_file_within(path, MAX_CONFIG_BYTES).and_then(|bytes| {
            String::from_utf8(bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        });
        let text = text.map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::FileTooLarge => format!(
                    "larger than {} MiB ({MAX_CONFIG_BYTES} bytes), the most a config file may be",
                    MAX_CONFIG_BYTES / (1024 * 1024)
                ),
                std::io::ErrorKind::InvalidData => "is not UTF-8 text".to_string(),
                std::io::ErrorKind::PermissionDenied => format!(
                    "cannot read: {} (the agent runs as user zabbix: chown root:zabbix and chmod 0640)",
                    io_reason(&e)
                ),
                std::io::ErrorKind::NotFound => format!(
                    "cannot read: {} (create it, or set {PATH_ENV})",
                    io_reason(&e)
                ),
                _ => format!("cannot read: {}", io_reason(&e)),
            };
            Error::new(
                ErrorKind::Config,
                format!("config {}: {why}", path.display()),
            )
        })?;
        Config::parse(path, &text)
    }

    /// Validates `text` as the config found at `path` (used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let at = |span: Option<std::ops::Range<usize>>, msg: &str| -> Error {
            let place = match span {
                Some(s) => format!(" line {}", line_of(text, s.start)),
                None => String::new(),
            };
            Error::new(
                ErrorKind::Config,
                format!("config {}{place}: {msg}", path.display()),
            )
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| at(e.span(), e.message().trim()))?;
        let defaults = raw.defaults.unwrap_or_default();
        if raw.nodes.is_empty() {
            return Err(at(
                None,
                "no [nodes.NAME] table: configure at least one node",
            ));
        }
        let mut nodes = BTreeMap::new();
        for (name, node) in raw.nodes {
            let span = node.span();
            let node = node.into_inner();
            let err = |s: Option<std::ops::Range<usize>>, msg: String| {
                at(
                    s.or(Some(span.clone())),
                    &format!("node {}: {msg}", quoted(name.get_ref())),
                )
            };
            if name.get_ref().is_empty()
                || name.get_ref().chars().any(|c| c.is_control() || c == ',')
            {
                return Err(at(
                    Some(name.span()),
                    "node names must be non-empty, without commas or control characters",
                ));
            }
            let url =
                validate_url(node.url.get_ref()).map_err(|m| err(Some(node.url.span()), m))?;

            let secret_only = [
                ("jwt_issuer", node.jwt_issuer.as_ref().map(Spanned::span)),
                ("jwt_user", node.jwt_user.as_ref().map(Spanned::span)),
                ("jwt_ttl", node.jwt_ttl.as_ref().map(Spanned::span)),
                (
                    "jwt_exp_unit",
                    node.jwt_exp_unit.as_ref().map(Spanned::span),
                ),
            ];
            let auth = match (node.token_file, node.jwt_secret_file) {
                (Some(_), Some(_)) => {
                    return Err(err(
                        None,
                        "set exactly one of token_file and jwt_secret_file, not both".into(),
                    ))
                }
                (None, None) => {
                    return Err(err(
                        None,
                        "no credentials: set token_file or jwt_secret_file".into(),
                    ))
                }
                (Some(file), None) => {
                    if let Some((key, s)) = secret_only.iter().find(|(_, s)| s.is_some()) {
                        return Err(err(
                            s.clone(),
                            format!(
                                "{key} applies only with jwt_secret_file, but token_file is set"
                            ),
                        ));
                    }
                    AuthConfig::Token { file }
                }
                (None, Some(file)) => {
                    let exp_unit = match node
                        .jwt_exp_unit
                        .as_ref()
                        .map(|u| (u.get_ref().as_str(), u.span()))
                    {
                        None | Some(("ms", _)) => ExpUnit::Millis,
                        Some(("s", _)) => ExpUnit::Seconds,
                        Some((other, s)) => {
                            return Err(err(
                                Some(s),
                                format!("jwt_exp_unit {} is not \"ms\" or \"s\"", quoted(other)),
                            ))
                        }
                    };
                    let ttl = match node.jwt_ttl {
                        None => DEFAULT_JWT_TTL,
                        Some(t) if (10..=86_400).contains(t.get_ref()) => *t.get_ref(),
                        Some(t) => {
                            return Err(err(
                                Some(t.span()),
                                "jwt_ttl must be 10 to 86400 seconds".into(),
                            ))
                        }
                    };
                    AuthConfig::Secret {
                        file,
                        issuer: node
                            .jwt_issuer
                            .map_or(DEFAULT_ISSUER.to_string(), Spanned::into_inner),
                        user: node.jwt_user.map(Spanned::into_inner),
                        ttl: Duration::from_secs(ttl),
                        exp_unit,
                    }
                }
            };
            let auth_header = match node.auth_header.as_ref().map(|h| (h.get_ref(), h.span())) {
                None => AuthHeader::XExalateJwt,
                Some((h, _)) if h.eq_ignore_ascii_case("X-Exalate-Jwt") => AuthHeader::XExalateJwt,
                Some((h, _)) if h.eq_ignore_ascii_case("Authorization") => AuthHeader::Bearer,
                Some((h, s)) => {
                    return Err(err(
                        Some(s),
                        format!(
                            "auth_header {} is not \"X-Exalate-Jwt\" or \"Authorization\"",
                            quoted(h)
                        ),
                    ))
                }
            };
            let timeout = match node.timeout.as_ref().or(defaults.timeout.as_ref()) {
                None => None,
                Some(t) if TIMEOUT_RANGE.contains(t.get_ref()) => {
                    Some(Duration::from_secs(*t.get_ref()))
                }
                Some(t) => {
                    return Err(err(
                        Some(t.span()),
                        "timeout must be 1 to 30 seconds".into(),
                    ))
                }
            };
            let max_response_bytes = match node
                .max_response_bytes
                .as_ref()
                .or(defaults.max_response_bytes.as_ref())
            {
                None => DEFAULT_MAX_RESPONSE_BYTES,
                Some(m) if *m.get_ref() >= 2 => *m.get_ref(),
                Some(m) => {
                    return Err(err(
                        Some(m.span()),
                        "max_response_bytes must be at least 2".into(),
                    ))
                }
            };
            let proxy = match node.proxy.as_ref().or(defaults.proxy.as_ref()) {
                None => None,
                Some(p) => Some(validate_proxy(p.get_ref()).map_err(|m| err(Some(p.span()), m))?),
            };
            let cache_ttl = node
                .cache_ttl
                .or(defaults.cache_ttl)
                .unwrap_or(DEFAULT_CACHE_TTL);
            let relations = validate_relations(node.relations).map_err(|(s, m)| err(Some(s), m))?;
            let name = name.into_inner();
            nodes.insert(
                name.clone(),
                NodeConfig {
                    name,
                    url,
                    relations,
                    auth,
                    auth_header,
                    timeout,
                    cache_ttl: Duration::from_secs(cache_ttl),
                    cache_max_bytes: node
                        .cache_max_bytes
                        .or(defaults.cache_max_bytes)
                        .unwrap_or(DEFAULT_CACHE_MAX_BYTES),
                    max_response_bytes,
                    ca_file: node.ca_file,
                    proxy,
                },
            );
        }
        Ok(Config {
            path: path.to_path_buf(),
            nodes,
        })
    }

    /// The node an item names; an empty name means the only node.
    pub fn node(&self, name: &str) -> Result<&NodeConfig> {
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

/// Relation names become discovery rows and item keys: each must be
/// unique within its node (Zabbix rejects an LLD with duplicate rows),
/// non-empty and free of control characters. An error gives the name's span.
fn validate_relations(
    relations: Vec<Spanned<String>>,
) -> std::result::Result<Vec<String>, (std::ops::Range<usize>, String)> {
    let mut names: Vec<String> = Vec::with_capacity(relations.len());
    // A set for the duplicate check: linear in the number of relations.
    let mut seen: std::collections::HashSet<String> =
        std::collections::HashSet::with_capacity(relations.len());
    for relation in relations {
        let span = relation.span();
        let name = relation.into_inner();
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
        names.push(name);
    }
    Ok(names)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Reads a whole file the module was pointed at (config, secret, token, CA),
/// refusing anything but a regular file: a FIFO or a device would block the
/// agent process or never end. Opened without blocking, checked on the open
/// file itself.
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    read_file_within(path, u64::MAX)
}

/// As [`read_file`], refusing a file of more than `max_bytes` (an error of
/// kind `FileTooLarge`) without reading more than that.
pub fn read_file_within(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let (file, meta) = open_file(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let too_large = || std::io::Error::new(std::io::ErrorKind::FileTooLarge, "file too large");
    if meta.len() > max_bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    // It may grow after the fstat: read one byte past the limit at most.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Opens `path` for reading without blocking (a FIFO's open would wait for
/// a writer) and gives the open file's own metadata (fstat): checks on it
/// hold for what is read, unlike a check of the path before opening.
pub fn open_file(path: &Path) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// An io::Error's reason without the "(os error N)" noise.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
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
