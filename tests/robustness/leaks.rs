//! The leak audit itself: it must catch a secret, a token, a token's
//! signature and a JWT nobody registered, and it must not cry wolf.

use crate::common::*;

#[test]
fn the_audit_catches_every_kind_of_leak() {
    let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJFWEFMQVRFIiwiZXhwIjoxfQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";
    let mut c = Collector::default();
    c.add_secret(SECRET);
    c.add_secret(token);
    c.collect(
        "clean value",
        "node 'demo', relation 'AllContent': timeout after 1 s.",
    );
    c.collect("agent log", " 123:20250101:000000.000 Sending back [3]");
    assert!(c.leaks().is_empty(), "{:?}", c.leaks());

    c.collect("message with the secret", &format!("bad {SECRET} here"));
    c.collect("value with a token", &format!("[{{\"t\":\"{token}\"}}]"));
    c.collect(
        "log with a signature",
        " 1:x Sending back [c2lnbmF0dXJlLW9mLXRoZS10b2tlbg]",
    );
    c.collect(
        "an unregistered JWT",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiemFiYml4In0.abc",
    );
    let leaks = c.leaks();
    let sources: Vec<&str> = leaks.iter().map(|l| l.split(':').next().unwrap()).collect();
    for source in [
        "message with the secret",
        "value with a token",
        "log with a signature",
        "an unregistered JWT",
    ] {
        assert!(sources.contains(&source), "{source} not caught: {leaks:?}");
    }
    assert!(!sources.contains(&"clean value"));
    // The report names where, never what.
    let report = leaks.join("\n");
    assert!(!report.contains(SECRET));
    assert!(!report.contains("c2lnbmF0dXJl"));
}

#[test]
fn jwt_shapes() {
    assert_eq!(jwt_shaped("x eyJhbGciOiJIUzI1NiJ9abc y"), Some(2));
    assert_eq!(jwt_shaped("eyJ short"), None);
    assert_eq!(jwt_shaped("{\"syncEventId\":4}"), None);
}

/// Everything the other tests of this binary collected so far, audited once
/// more (each test's `Env` also audits when it ends; the last one to end
/// covers them all). Fails if the collector was bypassed: an agent test that
/// ran must have left its values and log here.
#[test]
fn everything_collected_so_far_is_free_of_secrets() {
    let env = Env::new("leaks-self");
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    assert_eq!(
        agent.get("exalate.queue.count[demo,AllContent,syncrequests]"),
        Reply::Value("3".into())
    );
    drop(agent);
    let (texts, bytes) = collected();
    assert!(texts >= 2, "the value and the agent log: {texts}");
    assert!(bytes > 100);
    audit();
}
