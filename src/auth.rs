//! Credentials for one node: a static token read from its file, or HS256
//! tokens minted from a shared secret and reused until shortly before they
//! expire. Files others can read are refused.

use crate::config::{AuthConfig, AuthHeader, ExpUnit};
use crate::error::{Error, ErrorKind, Result};
use crate::fs::read_secret_file;
use crate::lock::lock;
use crate::secret::Secret;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) struct Credentials {
    config: AuthConfig,
    header: AuthHeader,
    minted: Mutex<Option<MintedToken>>,
    /// Every token and secret this process has used, so messages can be scrubbed.
    known_secrets: Mutex<Vec<Secret>>,
}

struct MintedToken {
    token: Secret,
    refresh_at: Instant,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    iat: u64,
    exp: u64,
}

impl Credentials {
    pub(crate) fn new(config: AuthConfig, header: AuthHeader) -> Self {
        Credentials {
            config,
            header,
            minted: Mutex::new(None),
            known_secrets: Mutex::new(Vec::new()),
        }
    }

    /// The header to send: its name and value.
    pub(crate) fn header(&self) -> Result<(&'static str, String)> {
        let jwt = match &self.config {
            AuthConfig::Token { file } => {
                let token = read_secret_file("token_file", file)?;
                self.remember(&token);
                token
            }
            AuthConfig::Secret { .. } => self.minted_token()?,
        };
        Ok(match self.header {
            AuthHeader::XExalateJwt => ("X-Exalate-Jwt", jwt.as_str().to_string()),
            AuthHeader::Bearer => ("Authorization", format!("Bearer {}", jwt.as_str())),
        })
    }

    /// Whether a rejected token can be replaced by minting a new one.
    pub(crate) fn can_mint(&self) -> bool {
        matches!(self.config, AuthConfig::Secret { .. })
    }

    /// Drops the minted token so the next request mints a fresh one.
    pub(crate) fn forget_minted(&self) {
        *lock(&self.minted) = None;
    }

    /// Why a 401 may have happened, when we can tell without a secret.
    pub(crate) fn rejection_hint(&self) -> String {
        match &self.config {
            AuthConfig::Token { file } => match read_secret_file("token_file", file)
                .ok()
                .and_then(|t| unverified_exp(t.as_str()))
            {
                Some(exp) if exp < SystemTime::now() => format!(
                    "the token in token_file {} expired {} s ago; issue a new one",
                    file.display(),
                    SystemTime::now().duration_since(exp).unwrap_or_default().as_secs()
                ),
                _ => format!("check the token in token_file {}", file.display()),
            },
            AuthConfig::Secret { file, .. } => format!(
                "check jwt_secret_file {}, jwt_issuer, jwt_user and jwt_exp_unit against the node's connection",
                file.display()
            ),
        }
    }

    /// The secret and every token sent (the last 16), for scrubbing messages.
    pub(crate) fn known_secrets(&self) -> Vec<Secret> {
        lock(&self.known_secrets).clone()
    }

    fn remember(&self, secret: &Secret) {
        let mut known = lock(&self.known_secrets);
        if !known.iter().any(|k| k == secret) {
            // Bounded: old minted tokens are expired and need no scrubbing forever.
            if known.len() >= 16 {
                // Entry 0 is usually the secret itself: drop the oldest token.
                let oldest = usize::from(known.len() > 1);
                known.remove(oldest);
            }
            known.push(secret.clone());
        }
    }

    fn minted_token(&self) -> Result<Secret> {
        let AuthConfig::Secret {
            file,
            issuer,
            user,
            ttl,
            exp_unit,
        } = &self.config
        else {
            unreachable!("minted_token is only called for secrets")
        };
        let mut minted = lock(&self.minted);
        if let Some(m) = minted.as_ref() {
            if Instant::now() < m.refresh_at {
                return Ok(m.token.clone());
            }
        }
        let secret = read_secret_file("jwt_secret_file", file)?;
        self.remember(&secret);
        let token = mint(
            secret.as_str(),
            issuer,
            user.as_deref(),
            *ttl,
            *exp_unit,
            SystemTime::now(),
        )?;
        self.remember(&token);
        // Renew a quarter of the lifetime (at most 15 s) before expiry, so a
        // token never expires in flight.
        let margin = (*ttl / 4).min(Duration::from_secs(15));
        *minted = Some(MintedToken {
            token: token.clone(),
            refresh_at: Instant::now() + *ttl - margin,
        });
        Ok(token)
    }
}

/// Mints an HS256 JWT with claims iss, user (if any), iat and exp in `unit`.
pub(crate) fn mint(
    secret: &str,
    issuer: &str,
    user: Option<&str>,
    ttl: Duration,
    unit: ExpUnit,
    now: SystemTime,
) -> Result<Secret> {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (iat, exp) = match unit {
        ExpUnit::Millis => (
            since_epoch.as_millis() as u64,
            (since_epoch + ttl).as_millis() as u64,
        ),
        ExpUnit::Seconds => (since_epoch.as_secs(), (since_epoch + ttl).as_secs()),
    };
    let claims = Claims {
        iss: issuer.to_string(),
        user: user.map(str::to_string),
        iat,
        exp,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map(Secret::new)
    .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot mint a token: {e}")))
}

/// The `exp` of a token, read without verifying it: only to explain a 401.
/// Values above 10^11 are taken as milliseconds (Exalate's tokens).
fn unverified_exp(token: &str) -> Option<SystemTime> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let mut validation = Validation::new(header.alg);
    validation.insecure_disable_signature_validation();
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    #[derive(Deserialize)]
    struct Exp {
        exp: u64,
    }
    let data =
        jsonwebtoken::decode::<Exp>(token, &DecodingKey::from_secret(&[]), &validation).ok()?;
    let exp = data.claims.exp;
    let since_epoch = if exp > 100_000_000_000 {
        Duration::from_millis(exp)
    } else {
        Duration::from_secs(exp)
    };
    UNIX_EPOCH.checked_add(since_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::tests::temp_file;

    fn decode(token: &str, secret: &str) -> serde_json::Value {
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(
            token,
            &DecodingKey::from_secret(secret.as_bytes()),
            &v,
        )
        .unwrap()
        .claims
    }

    #[test]
    fn mints_claims_in_the_configured_unit() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ms = mint(
            "s3cret",
            "EXALATE",
            Some("zabbix"),
            Duration::from_secs(60),
            ExpUnit::Millis,
            now,
        )
        .unwrap();
        let claims = decode(ms.as_str(), "s3cret");
        assert_eq!(claims["iss"], "EXALATE");
        assert_eq!(claims["user"], "zabbix");
        assert_eq!(claims["iat"], 1_700_000_000_000u64);
        assert_eq!(claims["exp"], 1_700_000_060_000u64);
        let s = mint(
            "s3cret",
            "X",
            None,
            Duration::from_secs(60),
            ExpUnit::Seconds,
            now,
        )
        .unwrap();
        let claims = decode(s.as_str(), "s3cret");
        assert_eq!(claims["exp"], 1_700_000_060u64);
        assert!(claims.get("user").is_none());
    }

    #[test]
    fn minted_token_is_reused_and_renewed_after_forget() {
        let file = temp_file("reuse.secret", "  topsecret\n", 0o600);
        let creds = Credentials::new(
            AuthConfig::Secret {
                file,
                issuer: "EXALATE".into(),
                user: None,
                ttl: Duration::from_secs(60),
                exp_unit: ExpUnit::Millis,
            },
            AuthHeader::Bearer,
        );
        let (name, first) = creds.header().unwrap();
        assert_eq!(name, "Authorization");
        assert!(first.starts_with("Bearer ey"));
        assert_eq!(creds.header().unwrap().1, first);
        // iat has millisecond resolution: a new token differs once time moved on.
        let before = Instant::now();
        while before.elapsed() < Duration::from_millis(2) {}
        creds.forget_minted();
        assert_ne!(creds.header().unwrap().1, first);
        assert!(creds
            .known_secrets()
            .iter()
            .any(|s| s.as_str() == "topsecret"));
        decode(first.trim_start_matches("Bearer "), "topsecret");
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
        let creds = Credentials::new(AuthConfig::Token { file }, AuthHeader::XExalateJwt);
        let hint = creds.rejection_hint();
        assert!(hint.contains("expired 35"), "{hint}");
        assert!(!hint.contains(token.as_str()));
        assert!(!creds.can_mint());
    }
}
