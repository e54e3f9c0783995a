//! Credentials: one concept ([`Credentials`] over a config
//! [`Credential`]) with its kinds, used by every API client alike: a
//! static 2.4 token, HS256 tokens minted from a connection's secret, HTTP
//! Basic, a bearer token, and a login's JWT. Each kind says how it is
//! sent, when it is renewed (a minted token before it expires, a login's
//! before its `exp` or after a 401) and what must be redacted (every
//! secret read and every token sent). Files are read at each use, with
//! the rules of every secret file.

mod jwt;

pub(crate) use jwt::mint;

use crate::config::{AuthHeader, Credential};
use crate::error::{Error, ErrorKind, Result};
use crate::fs::read_secret_file;
use crate::lock::lock;
use crate::secret::Secret;
use base64::Engine as _;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Tokens sent (minted, a login's, Basic encodings) remembered for
/// redaction; older ones have expired or were replaced.
const MAX_ISSUED: usize = 16;
/// Secrets read from files remembered for redaction (a file may change).
const MAX_READ: usize = 4;
/// A login's token is renewed this long before its `exp` at the most
/// (a quarter of its remaining life when that is shorter).
const LOGIN_RENEW_MARGIN: Duration = Duration::from_secs(60);

/// One credential in use: its kind from the config, the token it keeps
/// (minted or a login's), and what it has sent, for redaction.
pub(crate) struct Credentials {
    credential: Credential,
    /// The minted or login token in use, with when to renew it.
    kept: Mutex<Option<KeptToken>>,
    read: Mutex<Vec<Secret>>,
    issued: Mutex<Vec<Secret>>,
}

struct KeptToken {
    token: Secret,
    /// None: until the node rejects it.
    renew_at: Option<Instant>,
}

/// A login to make: the user and the password read from its file.
pub(crate) struct LoginRequest<'a> {
    /// The user (maybe empty).
    pub(crate) user: &'a str,
    /// The password.
    pub(crate) password: &'a Secret,
}

impl Credentials {
    pub(crate) fn new(credential: Credential) -> Self {
        Credentials {
            credential,
            kept: Mutex::new(None),
            read: Mutex::new(Vec::new()),
            issued: Mutex::new(Vec::new()),
        }
    }

    /// The header to send, for every kind but a login.
    pub(crate) fn header(&self) -> Result<(&'static str, Secret)> {
        self.header_with_login(|_| {
            Err(Error::new(
                ErrorKind::Internal,
                "a login's credentials used without a login",
            ))
        })
    }

    /// The header to send; for a login, `log_in` is called when no token
    /// is kept or it is due for renewal, with the kept token's lock held:
    /// callers at the same time wait for that one login, never make their own.
    pub(crate) fn header_with_login(
        &self,
        log_in: impl FnOnce(&LoginRequest<'_>) -> Result<Secret>,
    ) -> Result<(&'static str, Secret)> {
        Ok(match &self.credential {
            Credential::Token { file, header } => {
                let token = self.read_file("token_file", file)?;
                jwt_header(*header, &token)
            }
            Credential::MintedJwt { header, .. } => jwt_header(*header, &self.minted()?),
            Credential::Basic {
                user,
                password_file,
                keys,
            } => {
                let password = self.read_file(keys.password_file(), password_file)?;
                let pair = Secret::new(format!("{user}:{}", password.as_str()));
                let encoded =
                    Secret::new(base64::engine::general_purpose::STANDARD.encode(pair.as_str()));
                self.issue(&encoded);
                let value = Secret::new(format!("Basic {}", encoded.as_str()));
                ("Authorization", value)
            }
            Credential::Bearer { token_file, keys } => {
                let token = self.read_file(keys.token_file(), token_file)?;
                (
                    "Authorization",
                    Secret::new(format!("Bearer {}", token.as_str())),
                )
            }
            Credential::Login {
                user,
                password_file,
            } => (
                "X-Exalate-Jwt",
                self.login_token(user, password_file, log_in)?,
            ),
        })
    }

    /// Whether a rejected token can be replaced (minted anew, or a new
    /// login): then a 401 is worth one more try.
    pub(crate) fn can_renew(&self) -> bool {
        matches!(
            self.credential,
            Credential::MintedJwt { .. } | Credential::Login { .. }
        )
    }

    /// After the node rejected the header `sent`: drops the kept token
    /// if `sent` carried it, so the next request mints or logs in afresh.
    /// A token another request renewed meanwhile stays: requests rejected
    /// together cause one new login, not one each.
    pub(crate) fn forget_token(&self, sent: &Secret) {
        let mut kept = lock(&self.kept);
        if kept
            .as_ref()
            .is_some_and(|k| sent.as_str().ends_with(k.token.as_str()))
        {
            *kept = None;
        }
    }

    /// What to check after a 401, naming keys and files, never content.
    pub(crate) fn rejection_hint(&self) -> String {
        match &self.credential {
            Credential::Token { file, .. } => match read_secret_file("token_file", file)
                .ok()
                .and_then(|t| jwt::unverified_exp(t.as_str()))
            {
                Some(exp) if exp < SystemTime::now() => format!(
                    "the token in token_file {} expired {} s ago; issue a new one",
                    file.display(),
                    SystemTime::now().duration_since(exp).unwrap_or_default().as_secs()
                ),
                _ => format!("check the token in token_file {}", file.display()),
            },
            Credential::MintedJwt { file, .. } => format!(
                "check jwt_secret_file {}, jwt_issuer, jwt_user and jwt_exp_unit against the node's connection",
                file.display()
            ),
            Credential::Basic {
                password_file,
                keys,
                ..
            } => format!(
                "check {} and the password in {} {}",
                keys.user(),
                keys.password_file(),
                password_file.display()
            ),
            Credential::Bearer { token_file, keys } => format!(
                "check the token in {} {}",
                keys.token_file(),
                token_file.display()
            ),
            Credential::Login { password_file, .. } => format!(
                "check api_user and the password in api_password_file {}",
                password_file.display()
            ),
        }
    }

    /// Every secret read and token sent (the last few), for redaction.
    pub(crate) fn known_secrets(&self) -> Vec<Secret> {
        let mut known = lock(&self.read).clone();
        known.extend(lock(&self.issued).iter().cloned());
        known
    }

    /// A secret file's content, remembered for redaction first.
    fn read_file(&self, key: &str, path: &std::path::Path) -> Result<Secret> {
        let secret = read_secret_file(key, path)?;
        remember(&self.read, &secret, MAX_READ);
        Ok(secret)
    }

    fn issue(&self, token: &Secret) {
        remember(&self.issued, token, MAX_ISSUED);
    }

    /// The minted token, minted anew shortly before it expires.
    fn minted(&self) -> Result<Secret> {
        let Credential::MintedJwt {
            file,
            issuer,
            user,
            ttl,
            exp_unit,
            ..
        } = &self.credential
        else {
            unreachable!("minted is only called for a minted JWT")
        };
        let mut kept = lock(&self.kept);
        if let Some(token) = fresh(&kept) {
            return Ok(token);
        }
        let secret = self.read_file("jwt_secret_file", file)?;
        let token = mint(
            secret.as_str(),
            issuer,
            user.as_deref(),
            *ttl,
            *exp_unit,
            SystemTime::now(),
        )?;
        self.issue(&token);
        // Renew a quarter of the lifetime (at most 15 s) before expiry, so a
        // token never expires in flight.
        let margin = (*ttl / 4).min(Duration::from_secs(15));
        *kept = Some(KeptToken {
            token: token.clone(),
            renew_at: Some(Instant::now() + *ttl - margin),
        });
        Ok(token)
    }

    /// The login's token: kept until shortly before its `exp` (read from
    /// its claims, seconds or milliseconds) or until forgotten after a 401.
    /// A token without `exp`, or whose `exp` has passed on arrival (the
    /// node's clock behind ours), is kept until the node rejects it.
    fn login_token(
        &self,
        user: &str,
        password_file: &std::path::Path,
        log_in: impl FnOnce(&LoginRequest<'_>) -> Result<Secret>,
    ) -> Result<Secret> {
        let mut kept = lock(&self.kept);
        if let Some(token) = fresh(&kept) {
            return Ok(token);
        }
        let password = self.read_file("api_password_file", password_file)?;
        let token = log_in(&LoginRequest {
            user,
            password: &password,
        })?;
        self.issue(&token);
        let renew_at = jwt::unverified_exp(token.as_str()).and_then(|exp| {
            let left = exp.duration_since(SystemTime::now()).ok()?;
            Some(Instant::now() + left - (left / 4).min(LOGIN_RENEW_MARGIN))
        });
        *kept = Some(KeptToken {
            token: token.clone(),
            renew_at,
        });
        Ok(token)
    }
}

/// The kept token while it need not be renewed.
fn fresh(kept: &Option<KeptToken>) -> Option<Secret> {
    let kept = kept.as_ref()?;
    match kept.renew_at {
        Some(at) if Instant::now() >= at => None,
        _ => Some(kept.token.clone()),
    }
}

/// A 2.4 token in the header the config names.
fn jwt_header(header: AuthHeader, token: &Secret) -> (&'static str, Secret) {
    match header {
        AuthHeader::XExalateJwt => ("X-Exalate-Jwt", token.clone()),
        AuthHeader::Bearer => (
            "Authorization",
            Secret::new(format!("Bearer {}", token.as_str())),
        ),
    }
}

/// Adds `secret` to `list` unless there, dropping the oldest past `max`.
fn remember(list: &Mutex<Vec<Secret>>, secret: &Secret, max: usize) {
    let mut list = lock(list);
    if !list.iter().any(|k| k == secret) {
        if list.len() >= max {
            list.remove(0);
        }
        list.push(secret.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ExpUnit, Keys};
    use crate::fs::tests::temp_file;

    fn minted(file: std::path::PathBuf, header: AuthHeader) -> Credentials {
        Credentials::new(Credential::MintedJwt {
            file,
            issuer: "EXALATE".into(),
            user: None,
            ttl: Duration::from_secs(60),
            exp_unit: ExpUnit::Millis,
            header,
        })
    }

    #[test]
    fn minted_token_is_reused_and_renewed_after_forget() {
        let file = temp_file("reuse.secret", "  topsecret\n", 0o600);
        let creds = minted(file, AuthHeader::Bearer);
        let (name, first) = creds.header().unwrap();
        assert_eq!(name, "Authorization");
        assert!(first.as_str().starts_with("Bearer ey"));
        assert_eq!(creds.header().unwrap().1, first);
        // iat has millisecond resolution: a new token differs once time moved on.
        let before = Instant::now();
        while before.elapsed() < Duration::from_millis(2) {}
        creds.forget_token(&Secret::new("Bearer an-older-token".into()));
        assert_eq!(creds.header().unwrap().1, first, "not the kept token");
        creds.forget_token(&first);
        assert_ne!(creds.header().unwrap().1, first);
        assert!(creds
            .known_secrets()
            .iter()
            .any(|s| s.as_str() == "topsecret"));
        jwt::tests::decode(first.as_str().trim_start_matches("Bearer "), "topsecret");
        assert!(creds.can_renew());
    }

    #[test]
    fn explains_an_expired_static_token() {
        let past = SystemTime::now() - Duration::from_secs(3600);
        let token = mint(
            "k",
            "EXALATE",
            None,
            Duration::from_secs(60),
            ExpUnit::Millis,
            past,
        )
        .unwrap();
        let file = temp_file("expired.jwt", token.as_str(), 0o600);
        let creds = Credentials::new(Credential::Token {
            file,
            header: AuthHeader::XExalateJwt,
        });
        let hint = creds.rejection_hint();
        assert!(hint.contains("expired 35"), "{hint}");
        assert!(!hint.contains(token.as_str()));
        assert!(!creds.can_renew());
    }

    #[test]
    fn basic_and_bearer_from_their_files_remembered_for_redaction() {
        let password_file = temp_file("pw", " open sesame\n", 0o640);
        let basic = Credentials::new(Credential::Basic {
            user: "Aladdin".into(),
            password_file,
            keys: Keys::Cmonitor,
        });
        let (name, value) = basic.header().unwrap();
        assert_eq!(
            (name, value.as_str()),
            ("Authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        let known = basic.known_secrets();
        let known = crate::secret::texts(&known);
        assert!(known.contains(&"open sesame"), "{known:?}");
        assert!(known.contains(&"QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        let token_file = temp_file("token", "tok-123\n", 0o600);
        let bearer = Credentials::new(Credential::Bearer {
            token_file,
            keys: Keys::Api,
        });
        assert_eq!(bearer.header().unwrap().1.as_str(), "Bearer tok-123");
        assert!(bearer
            .rejection_hint()
            .starts_with("check the token in api_token_file"));
        // The rules of every secret file: others must not read it.
        let open = temp_file("open", "x", 0o644);
        let e = Credentials::new(Credential::Bearer {
            token_file: open,
            keys: Keys::Cmonitor,
        })
        .header()
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().starts_with("cmonitor_token_file "), "{e}");
        assert!(
            e.message().contains("is readable by others (mode 0644)"),
            "{e}"
        );
    }

    /// One login serves until shortly before its `exp` (seconds or
    /// milliseconds), or until forgotten after a 401.
    #[test]
    fn a_login_is_kept_until_its_exp_or_a_rejection() {
        let password_file = temp_file("login.pw", "pa55\n", 0o600);
        let creds = Credentials::new(Credential::Login {
            user: "u".into(),
            password_file,
        });
        let logins = std::cell::Cell::new(0);
        let log_in = |ttl: Duration, unit: ExpUnit| {
            let logins = &logins;
            move |request: &LoginRequest<'_>| {
                assert_eq!((request.user, request.password.as_str()), ("u", "pa55"));
                logins.set(logins.get() + 1);
                mint("node-key", "n", None, ttl, unit, SystemTime::now())
            }
        };
        let hour = Duration::from_secs(3600);
        let (name, first) = creds
            .header_with_login(log_in(hour, ExpUnit::Seconds))
            .unwrap();
        assert_eq!(name, "X-Exalate-Jwt");
        for _ in 0..5 {
            let (_, again) = creds
                .header_with_login(log_in(hour, ExpUnit::Seconds))
                .unwrap();
            assert_eq!(again, first);
        }
        assert_eq!(logins.get(), 1);
        creds.forget_token(&first);
        creds
            .header_with_login(log_in(hour, ExpUnit::Millis))
            .unwrap();
        assert_eq!(logins.get(), 2);
        // An exp already past on arrival (the node's clock is behind ours):
        // kept until the node rejects it, not a login per request.
        let (_, kept) = creds
            .header_with_login(log_in(hour, ExpUnit::Millis))
            .unwrap();
        creds.forget_token(&kept);
        let past = creds
            .header_with_login(log_in(Duration::ZERO, ExpUnit::Millis))
            .unwrap();
        let (_, again) = creds
            .header_with_login(log_in(hour, ExpUnit::Millis))
            .unwrap();
        assert_eq!((logins.get(), &again), (3, &past.1));
        let known = creds.known_secrets();
        let known = crate::secret::texts(&known);
        assert!(known.contains(&"pa55") && known.contains(&first.as_str()));
        assert!(creds.can_renew());
        // Without a login function it is a bug, not a request.
        creds.forget_token(&again);
        assert_eq!(creds.header().unwrap_err().kind(), ErrorKind::Internal);
    }
}
