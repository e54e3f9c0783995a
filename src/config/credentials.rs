//! Credentials in the config: one concept ([`Credential`]) with its kinds,
//! parsed from a node's keys: the issuehub 2.4 API's token or minted JWT
//! (per node or per relation), the customer monitor's Basic or Bearer, and
//! the issuehub 4.0 API's Basic, Bearer or login. Every wrong combination
//! is an error with its line; no message quotes a value.

use super::{NodeErrors, RawNode, Span};
use crate::error::quoted;
use crate::error::Error;
use crate::error::Result;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

const DEFAULT_JWT_TTL: u64 = 60;
const DEFAULT_ISSUER: &str = "EXALATE";

/// How requests authenticate: one concept, its kinds. Secrets stay in
/// their files (read at each use, so a changed one takes effect at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A JWT issued elsewhere (`token_file`), sent as is (issuehub 2.4).
    Token {
        /// `token_file`.
        file: PathBuf,
        /// The header it is sent in.
        header: AuthHeader,
    },
    /// HS256 tokens minted from a connection's shared secret (issuehub 2.4).
    MintedJwt {
        /// `jwt_secret_file`.
        file: PathBuf,
        /// `jwt_issuer` (`iss`).
        issuer: String,
        /// `jwt_user` (`user`), if set.
        user: Option<String>,
        /// `jwt_ttl`: how long a minted token is valid.
        ttl: Duration,
        /// `jwt_exp_unit`: the unit of `exp`.
        exp_unit: ExpUnit,
        /// The header it is sent in.
        header: AuthHeader,
    },
    /// HTTP Basic: a user and the password in a file.
    Basic {
        /// The user.
        user: String,
        /// The password's file.
        password_file: PathBuf,
        /// The keys it was written with (`cmonitor_*` or `api_*`).
        keys: Keys,
    },
    /// `Authorization: Bearer <token>`, the token in a file.
    Bearer {
        /// The token's file.
        token_file: PathBuf,
        /// The keys it was written with (`cmonitor_*` or `api_*`).
        keys: Keys,
    },
    /// A login (`POST /rest/issuehub/4.0/authenticate`) with a user and the
    /// password in a file; the JWT it returns is sent as `X-Exalate-Jwt`.
    Login {
        /// `api_user` (may be empty: a token as the password).
        user: String,
        /// `api_password_file`.
        password_file: PathBuf,
    },
}

/// Which keys a Basic or Bearer credential was written with, so messages
/// name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// `cmonitor_user`, `cmonitor_password_file`, `cmonitor_token_file`.
    Cmonitor,
    /// `api_user`, `api_password_file`, `api_token_file`.
    Api,
}

impl Keys {
    /// The user's key.
    pub fn user(self) -> &'static str {
        match self {
            Keys::Cmonitor => "cmonitor_user",
            Keys::Api => "api_user",
        }
    }

    /// The password file's key.
    pub fn password_file(self) -> &'static str {
        match self {
            Keys::Cmonitor => "cmonitor_password_file",
            Keys::Api => "api_password_file",
        }
    }

    /// The token file's key.
    pub fn token_file(self) -> &'static str {
        match self {
            Keys::Cmonitor => "cmonitor_token_file",
            Keys::Api => "api_token_file",
        }
    }
}

impl Credential {
    /// The file it reads, with its key (for messages and the check's
    /// read test).
    pub fn file(&self) -> (&'static str, &Path) {
        match self {
            Credential::Token { file, .. } => ("token_file", file),
            Credential::MintedJwt { file, .. } => ("jwt_secret_file", file),
            Credential::Basic {
                password_file,
                keys,
                ..
            } => (keys.password_file(), password_file),
            Credential::Bearer { token_file, keys } => (keys.token_file(), token_file),
            Credential::Login { password_file, .. } => ("api_password_file", password_file),
        }
    }
}

/// The unit of a minted token's `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpUnit {
    /// Milliseconds since the epoch (`"ms"`, the default).
    Millis,
    /// Seconds since the epoch (`"s"`).
    Seconds,
}

/// The header a 2.4 token is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthHeader {
    /// `X-Exalate-Jwt: <jwt>` (the default).
    XExalateJwt,
    /// `Authorization: Bearer <jwt>`
    Bearer,
}

/// The 2.4 authentication keys, of a node or of a relation's table.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) token_file: Option<PathBuf>,
    pub(super) jwt_secret_file: Option<PathBuf>,
    pub(super) jwt_issuer: Option<Spanned<String>>,
    pub(super) jwt_user: Option<Spanned<String>>,
    pub(super) jwt_ttl: Option<Spanned<u64>>,
    pub(super) jwt_exp_unit: Option<Spanned<String>>,
    pub(super) auth_header: Option<Spanned<String>>,
}

impl RawAuth {
    /// The keys of `relation` over those of `node`: a relation naming its own
    /// `token_file` or `jwt_secret_file` takes none of the node's source and
    /// claims (only its `auth_header`); one naming neither takes the node's
    /// and overrides the keys it sets.
    pub(super) fn over(&self, node: &RawAuth) -> RawAuth {
        let header = self.auth_header.clone().or(node.auth_header.clone());
        if self.has_source() {
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

    /// Whether a token's source (`token_file` or `jwt_secret_file`) is set.
    pub(super) fn has_source(&self) -> bool {
        self.token_file.is_some() || self.jwt_secret_file.is_some()
    }

    /// The `jwt_*` keys set, with their spans.
    fn secret_only_keys(&self) -> [(&'static str, Option<Span>); 4] {
        [
            ("jwt_issuer", self.jwt_issuer.as_ref().map(Spanned::span)),
            ("jwt_user", self.jwt_user.as_ref().map(Spanned::span)),
            ("jwt_ttl", self.jwt_ttl.as_ref().map(Spanned::span)),
            (
                "jwt_exp_unit",
                self.jwt_exp_unit.as_ref().map(Spanned::span),
            ),
        ]
    }
}

/// One set of 2.4 credentials (the node's, or a relation's over the
/// node's): exactly one of `token_file` and `jwt_secret_file`, the `jwt_*`
/// keys only with the latter. `context` starts each message ("relation 'R': ").
pub(super) fn parse_credential(
    errors: &NodeErrors<'_>,
    context: &str,
    raw: &RawAuth,
) -> Result<Credential> {
    let error = |span: Option<Span>, msg: String| errors.error(span, format!("{context}{msg}"));
    let header = || parse_auth_header(&error, raw.auth_header.as_ref());
    match (&raw.token_file, &raw.jwt_secret_file) {
        (Some(_), Some(_)) => Err(error(
            None,
            "set exactly one of token_file and jwt_secret_file, not both".into(),
        )),
        (None, None) => Err(error(
            None,
            "no credentials: set token_file or jwt_secret_file".into(),
        )),
        (Some(file), None) => {
            if let Some((key, s)) = raw.secret_only_keys().iter().find(|(_, s)| s.is_some()) {
                return Err(error(
                    s.clone(),
                    format!("{key} applies only with jwt_secret_file, but token_file is set"),
                ));
            }
            Ok(Credential::Token {
                file: file.clone(),
                header: header()?,
            })
        }
        (None, Some(file)) => parse_minted_jwt(&error, raw, file.clone(), header()?),
    }
}

/// A node without 2.4 credentials of its own: a `jwt_*` key of the node
/// would apply to nothing, so it is an error (`why` says why nothing);
/// `auth_header`, which every relation inherits, is checked.
pub(super) fn check_unused_auth_keys(
    errors: &NodeErrors<'_>,
    raw: &RawAuth,
    why: &str,
) -> Result<()> {
    if let Some((key, s)) = raw.secret_only_keys().iter().find(|(_, s)| s.is_some()) {
        return Err(errors.error(
            s.clone(),
            format!("{key} applies only with the node's jwt_secret_file, {why}"),
        ));
    }
    parse_auth_header(&|s, m| errors.error(s, m), raw.auth_header.as_ref())?;
    Ok(())
}

/// `jwt_secret_file` and the keys of the tokens minted with it.
fn parse_minted_jwt(
    error: &dyn Fn(Option<Span>, String) -> Error,
    raw: &RawAuth,
    file: PathBuf,
    header: AuthHeader,
) -> Result<Credential> {
    let exp_unit = match raw
        .jwt_exp_unit
        .as_ref()
        .map(|u| (u.get_ref().as_str(), u.span()))
    {
        None | Some(("ms", _)) => ExpUnit::Millis,
        Some(("s", _)) => ExpUnit::Seconds,
        Some((_, s)) => return Err(error(Some(s), "jwt_exp_unit is not \"ms\" or \"s\"".into())),
    };
    let ttl = match &raw.jwt_ttl {
        None => DEFAULT_JWT_TTL,
        Some(t) if (10..=86_400).contains(t.get_ref()) => *t.get_ref(),
        Some(t) => {
            return Err(error(
                Some(t.span()),
                "jwt_ttl must be 10 to 86400 seconds".into(),
            ))
        }
    };
    Ok(Credential::MintedJwt {
        file,
        issuer: raw
            .jwt_issuer
            .as_ref()
            .map_or(DEFAULT_ISSUER.to_string(), |i| i.get_ref().clone()),
        user: raw.jwt_user.as_ref().map(|u| u.get_ref().clone()),
        ttl: Duration::from_secs(ttl),
        exp_unit,
        header,
    })
}

/// `auth_header` names a header, never holds a token: the message says
/// what it expected and quotes nothing (a pasted token would be a secret).
fn parse_auth_header(
    error: &dyn Fn(Option<Span>, String) -> Error,
    header: Option<&Spanned<String>>,
) -> Result<AuthHeader> {
    match header.map(|h| (h.get_ref(), h.span())) {
        None => Ok(AuthHeader::XExalateJwt),
        Some((h, _)) if h.eq_ignore_ascii_case("X-Exalate-Jwt") => Ok(AuthHeader::XExalateJwt),
        Some((h, _)) if h.eq_ignore_ascii_case("Authorization") => Ok(AuthHeader::Bearer),
        Some((h, s)) => {
            let hint = if h.contains([':', ' ']) {
                " (the header's name only: the token goes in token_file)"
            } else {
                ""
            };
            Err(error(
                Some(s),
                format!("auth_header is not \"X-Exalate-Jwt\" or \"Authorization\"{hint}"),
            ))
        }
    }
}

/// A user with a password file, or a token file: the keys of the customer
/// monitor and of the 4.0 API.
enum UserOrToken {
    User(Spanned<String>, PathBuf),
    Token(PathBuf),
}

/// Exactly one of `user` + `password_file` and `token_file` (None when
/// none is set). `anchor` is the span of what needs them.
fn parse_user_or_token(
    errors: &NodeErrors<'_>,
    keys: Keys,
    user: Option<&Spanned<String>>,
    password_file: Option<&Spanned<PathBuf>>,
    token_file: Option<&Spanned<PathBuf>>,
) -> Result<Option<UserOrToken>> {
    match (user, password_file, token_file) {
        (None, None, None) => Ok(None),
        (Some(user), Some(file), None) => Ok(Some(UserOrToken::User(
            user.clone(),
            file.get_ref().clone(),
        ))),
        (None, None, Some(file)) => Ok(Some(UserOrToken::Token(file.get_ref().clone()))),
        (Some(user), None, None) => Err(errors.error(
            Some(user.span()),
            format!(
                "{} needs {} (HTTP Basic)",
                keys.user(),
                keys.password_file()
            ),
        )),
        (None, Some(file), None) => Err(errors.error(
            Some(file.span()),
            format!(
                "{} needs {} (HTTP Basic)",
                keys.password_file(),
                keys.user()
            ),
        )),
        (_, _, Some(file)) => Err(errors.error(
            Some(file.span()),
            format!(
                "set either {} with {} or {}, not both",
                keys.user(),
                keys.password_file(),
                keys.token_file()
            ),
        )),
    }
}

/// An HTTP Basic user: non-empty, without ':' or control characters.
fn check_basic_user(errors: &NodeErrors<'_>, keys: Keys, user: &Spanned<String>) -> Result<()> {
    let name = user.get_ref();
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
        return Err(errors.error(
            Some(user.span()),
            format!(
                "{} must be non-empty, without ':' or control characters",
                keys.user()
            ),
        ));
    }
    Ok(())
}

/// A node's customer monitor endpoint, `GET` answering `{"numErrors": N}`,
/// with its own credentials (never the node's JWT secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmonitorConfig {
    /// `cmonitor_url`: the endpoint as Exalate support gives it.
    pub url: String,
    /// How requests to it authenticate: Basic or Bearer.
    pub auth: Credential,
}

/// `cmonitor_url` with exactly one of `cmonitor_user` +
/// `cmonitor_password_file` (Basic) and `cmonitor_token_file` (Bearer);
/// none of them without `cmonitor_url`.
pub(super) fn parse_cmonitor(
    errors: &NodeErrors<'_>,
    node: &RawNode,
) -> Result<Option<CmonitorConfig>> {
    let keys = Keys::Cmonitor;
    let user = node.cmonitor_user.as_ref();
    let given = parse_user_or_token(
        errors,
        keys,
        user,
        node.cmonitor_password_file.as_ref(),
        node.cmonitor_token_file.as_ref(),
    );
    let Some(url) = &node.cmonitor_url else {
        let set = [
            (keys.user(), user.map(Spanned::span)),
            (
                keys.password_file(),
                node.cmonitor_password_file.as_ref().map(Spanned::span),
            ),
            (
                keys.token_file(),
                node.cmonitor_token_file.as_ref().map(Spanned::span),
            ),
        ];
        return match set.into_iter().find(|(_, s)| s.is_some()) {
            Some((key, span)) => Err(errors.error(
                span,
                format!("{key} applies only with cmonitor_url, which is not set"),
            )),
            None => Ok(None),
        };
    };
    let checked = super::urls::validate_url(
        "cmonitor_url",
        url.get_ref(),
        "cmonitor_user or cmonitor_token_file",
    )
    .map_err(|m| errors.error(Some(url.span()), m))?;
    let auth = match given? {
        Some(UserOrToken::User(user, password_file)) => {
            check_basic_user(errors, keys, &user)?;
            Credential::Basic {
                user: user.into_inner(),
                password_file,
                keys,
            }
        }
        Some(UserOrToken::Token(token_file)) => Credential::Bearer { token_file, keys },
        None => {
            return Err(errors.error(
                Some(url.span()),
                "cmonitor_url needs credentials: cmonitor_user with cmonitor_password_file, or cmonitor_token_file".into(),
            ))
        }
    };
    Ok(Some(CmonitorConfig { url: checked, auth }))
}

/// The 4.0 API's credentials: `api_user` + `api_password_file` (Basic, or
/// with `api_login = true` a login) or `api_token_file` (Bearer); None
/// when no `api_*` key is set.
pub(super) fn parse_api(errors: &NodeErrors<'_>, node: &RawNode) -> Result<Option<Credential>> {
    let keys = Keys::Api;
    let given = parse_user_or_token(
        errors,
        keys,
        node.api_user.as_ref(),
        node.api_password_file.as_ref(),
        node.api_token_file.as_ref(),
    )?;
    let login = node.api_login.as_ref();
    Ok(match (given, login.map(|l| *l.get_ref())) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(errors.error(
                login.map(Spanned::span),
                "api_login applies only with api_user and api_password_file".into(),
            ))
        }
        (Some(UserOrToken::Token(_)), Some(_)) => return Err(errors.error(
            login.map(Spanned::span),
            "api_login applies only with api_user and api_password_file, not with api_token_file"
                .into(),
        )),
        (Some(UserOrToken::Token(token_file)), None) => {
            Some(Credential::Bearer { token_file, keys })
        }
        (Some(UserOrToken::User(user, password_file)), Some(true)) => {
            // A login may send an empty user (a token as the password).
            if user.get_ref().chars().any(char::is_control) {
                return Err(errors.error(
                    Some(user.span()),
                    "api_user must be without control characters".into(),
                ));
            }
            Some(Credential::Login {
                user: user.into_inner(),
                password_file,
            })
        }
        (Some(UserOrToken::User(user, password_file)), _) => {
            check_basic_user(errors, keys, &user)?;
            Some(Credential::Basic {
                user: user.into_inner(),
                password_file,
                keys,
            })
        }
    })
}

/// Why a relation has no credentials, with the fix written out.
pub(super) fn no_relation_credentials(relation: &str) -> String {
    format!(
        "no credentials for relation {}: set token_file or jwt_secret_file on the node, or write the relation as {{ name = {}, jwt_secret_file = \"...\" }}",
        quoted(relation),
        serde_json::to_string(relation).unwrap_or_default()
    )
}
