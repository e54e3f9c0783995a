//! JWTs: minting Exalate's HS256 connection tokens from a shared secret,
//! and reading a token's `exp` without verifying it (to renew a login's
//! token in time, or to explain a 401).

use crate::config::ExpUnit;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    iat: u64,
    exp: u64,
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

/// The `exp` of a token, read without verifying it. Values above 10^11
/// are taken as milliseconds (Exalate's connection tokens; its login
/// tokens have been seen in seconds).
pub(crate) fn unverified_exp(token: &str) -> Option<SystemTime> {
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
pub(crate) mod tests {
    use super::*;

    pub(crate) fn decode(token: &str, secret: &str) -> serde_json::Value {
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
    fn exp_in_seconds_or_milliseconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for unit in [ExpUnit::Seconds, ExpUnit::Millis] {
            let token = mint("k", "I", None, Duration::from_secs(90), unit, now).unwrap();
            assert_eq!(
                unverified_exp(token.as_str()),
                Some(now + Duration::from_secs(90))
            );
        }
        assert_eq!(unverified_exp("not.a.jwt"), None);
    }
}
