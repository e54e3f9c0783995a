//! The token lifecycle through the running agent: minted tokens are reused
//! and refreshed before they expire; a 401 costs exactly one fresh mint and
//! one retry; an expired static token is explained.

use crate::common::*;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The claims of a token, read without verifying (the test knows the secret,
/// but only the timing matters here).
fn claims(token: &str) -> serde_json::Value {
    use jsonwebtoken::{DecodingKey, Validation};
    let mut v = Validation::new(jsonwebtoken::Algorithm::HS256);
    v.insecure_disable_signature_validation();
    v.validate_exp = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<serde_json::Value>(token, &DecodingKey::from_secret(&[]), &v)
        .unwrap()
        .claims
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// (token, status, when the node saw it in ms) of each request.
fn seen(env: &Env) -> Vec<(String, u16)> {
    env.node
        .requests()
        .into_iter()
        .map(|r| {
            (
                r.header("x-exalate-jwt").unwrap_or("").to_string(),
                r.status,
            )
        })
        .collect()
}

#[test]
fn a_minted_token_is_reused_then_refreshed_before_it_expires() {
    let env = Env::new("tokens-refresh");
    // jwt_ttl 10 s: renewed 2.5 s (a quarter) before it expires.
    env.write_config(&env.config(&["cache_ttl = 0"], &["jwt_ttl = 10"]));
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    let key = "exalate.queue.count[demo,AllContent,syncrequests]";
    assert_eq!(agent.get(key), Reply::Value("3".into()));
    let first = seen(&env)[0].0.clone();
    let first_claims = claims(&first);
    let (iat, exp) = (
        first_claims["iat"].as_u64().unwrap(),
        first_claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 10_000, "exp in ms, 10 s after iat");
    // Ask every 250 ms until the token changes (at most 12 s).
    let deadline = Instant::now() + Duration::from_secs(12);
    let second = loop {
        assert!(Instant::now() < deadline, "the token was never renewed");
        assert_eq!(agent.get(key), Reply::Value("3".into()));
        let tokens = seen(&env);
        if let Some((t, _)) = tokens.iter().find(|(t, _)| *t != first) {
            break t.clone();
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let renewed_at = now_ms();
    let second_iat = claims(&second)["iat"].as_u64().unwrap();
    assert!(
        second_iat < exp,
        "renewed {} ms after the first token expired",
        second_iat.saturating_sub(exp)
    );
    assert!(
        second_iat >= iat + 5_000,
        "renewed after {} ms: minted tokens must be reused",
        second_iat - iat
    );
    assert!(renewed_at <= exp + 1_000);
    let requests = seen(&env);
    // Several requests shared the first token (at most a few on a busy
    // machine, where each request of the suite's parallel agents is slow).
    assert!(requests.len() >= 5, "{} requests", requests.len());
    // Never more than two tokens, never a rejection.
    let mut distinct: Vec<&String> = requests.iter().map(|(t, _)| t).collect();
    distinct.dedup();
    assert_eq!(distinct.len(), 2);
    assert!(
        requests.iter().all(|(_, status)| *status == 200),
        "{requests:?}"
    );
}

#[test]
fn a_rejected_token_is_reminted_once_and_retried_once() {
    let env = Env::new("tokens-401");
    env.write_config(&env.config(&["cache_ttl = 0"], &[]));
    let secret_file = env.dir.join("demo.secret");
    let wrong = "a-wrong-shared-secret-0b7e";
    add_secret(wrong);
    write_file(&secret_file, wrong, 0o600);
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    let key = "exalate.queue.count[demo,AllContent,syncrequests]";

    // A wrong secret: the token is rejected, re-minted once, rejected again.
    let reply = agent.get(key);
    assert_eq!(
        reply.error(),
        format!(
            "node 'demo', relation 'AllContent', queue syncrequests: credentials rejected (HTTP 401): check jwt_secret_file {}, jwt_issuer, jwt_user and jwt_exp_unit against the node's connection.",
            secret_file.display()
        )
    );
    let first = seen(&env);
    assert_eq!(
        first.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [401, 401],
        "one retry, no more"
    );
    assert_ne!(first[0].0, first[1].0, "the retry carries a fresh token");

    // The secret is fixed: the cached token is rejected once, then a token
    // minted from the new secret is accepted, in the same item.
    write_file(&secret_file, SECRET, 0o600);
    assert_eq!(agent.get(key), Reply::Value("3".into()));
    let all = seen(&env);
    assert_eq!(
        all.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [401, 401, 401, 200]
    );
    assert_eq!(all[2].0, first[1].0, "the cached token was tried first");
    // And the good token is reused from then on.
    assert_eq!(agent.get(key), Reply::Value("3".into()));
    let all = seen(&env);
    assert_eq!(all.len(), 5);
    assert_eq!(all[4], all[3]);
}

#[test]
fn static_tokens_work_until_they_expire_and_then_say_so() {
    let env = Env::new("tokens-static");
    let mint = |exp_ms: u64| {
        #[derive(serde::Serialize)]
        struct Claims {
            iss: &'static str,
            exp: u64,
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &Claims {
                iss: "EXALATE",
                exp: exp_ms,
            },
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let valid = mint(now_ms() + 3_600_000);
    let expired = mint(now_ms() - 7_200_000);
    add_secret(&valid);
    add_secret(&expired);
    let valid_file = env.dir.join("valid.jwt");
    let expired_file = env.dir.join("expired.jwt");
    write_file(&valid_file, &format!("\n  {valid}  \n"), 0o640);
    write_file(&expired_file, &expired, 0o600);
    let url = env.node.url();
    env.write_config(&format!(
        "[defaults]\ncache_ttl = 0\n\
         [nodes.valid]\nurl = \"{url}\"\ntoken_file = \"{}\"\n\
         [nodes.expired]\nurl = \"{url}\"\ntoken_file = \"{}\"\n\
         [nodes.bearer]\nurl = \"{url}\"\ntoken_file = \"{}\"\nauth_header = \"Authorization\"\n",
        valid_file.display(),
        expired_file.display(),
        valid_file.display(),
    ));
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    assert_eq!(
        agent.get("exalate.queue.count[valid,AllContent,syncrequests]"),
        Reply::Value("3".into())
    );
    // Sent exactly as written (trimmed), never re-signed.
    assert_eq!(
        env.node.requests()[0].header("x-exalate-jwt"),
        Some(valid.as_str())
    );

    let message = agent
        .get("exalate.queue.count[expired,AllContent,syncrequests]")
        .error()
        .to_string();
    let prefix = format!(
        "node 'expired', relation 'AllContent', queue syncrequests: credentials rejected (HTTP 401): the token in token_file {} expired ",
        expired_file.display()
    );
    let rest = message
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{message}"));
    let (seconds, tail) = rest.split_once(' ').unwrap();
    let seconds: u64 = seconds.parse().unwrap();
    assert!((7_195..=7_260).contains(&seconds), "{message}");
    assert_eq!(tail, "s ago; issue a new one.");
    // A static token cannot be re-minted: one request, no retry.
    let expired_requests = env
        .node
        .requests()
        .iter()
        .filter(|r| r.header("x-exalate-jwt") == Some(expired.as_str()))
        .count();
    assert_eq!(expired_requests, 1);

    // The node expects X-Exalate-Jwt: a Bearer header is not seen (403).
    let message = agent
        .get("exalate.queue.count[bearer,AllContent,syncrequests]")
        .error()
        .to_string();
    assert!(
        message.ends_with("not authenticated (HTTP 403): the node saw no credentials; check auth_header (sent: Authorization)."),
        "{message}"
    );
    agent.assert_serving();
}
