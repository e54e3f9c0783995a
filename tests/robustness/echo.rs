//! A node (or a proxy in front of it) that echoes the credentials it got
//! in its error bodies: no message may carry a token, a fragment of one or
//! the shared secret, whatever form the echo takes (issue 11).

use crate::common::*;

/// The token a request head carries.
fn token_of(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-exalate-jwt")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default()
}

/// A node answering every request with an error body quoting its token;
/// the relation name picks the status and the form of the echo.
fn echo_node() -> CannedServer {
    CannedServer::answering(|head| {
        let path = head.split_whitespace().nth(1).unwrap_or("");
        let token = token_of(head);
        let (status, body) = if path.contains("/echo-400/") {
            ("400 Bad Request", format!("bad token: {token}"))
        } else if path.contains("/echo-json/") {
            (
                "500 Internal Server Error",
                serde_json::json!({ "message": format!("JWT {token} rejected for secret {SECRET}") })
                    .to_string(),
            )
        } else if path.contains("/echo-fragment/") {
            // A node that quotes a slice of the token, and its signature alone.
            let signature = token.rsplit('.').next().unwrap_or("");
            (
                "418 I'm a teapot",
                format!(
                    "token {}... has bad signature {signature}",
                    &token[20.min(token.len())..token.len().min(120)]
                ),
            )
        } else {
            (
                "502 Bad Gateway",
                format!("<html><head><title>proxy: upstream refused {token}</title></head></html>"),
            )
        };
        http_response(status, &[], body.as_bytes())
    })
}

/// Fails when `text` holds 12 consecutive characters of `secret`.
fn assert_no_fragment(text: &str, secret: &str) {
    const WINDOW: usize = 12;
    for start in 0..=secret.len().saturating_sub(WINDOW) {
        let window = &secret[start..(start + WINDOW).min(secret.len())];
        assert!(
            !text.contains(window),
            "12 characters of a secret at byte {start} of it are in: {}",
            text.replace(window, "<FRAGMENT>")
        );
    }
}

#[test]
fn tokens_echoed_by_the_node_never_reach_a_message() {
    let env = Env::new("echo-tokens");
    let echo = echo_node();
    env.write_config(&format!(
        "[defaults]\ncache_ttl = 0\n[nodes.demo]\nurl = \"{}\"\njwt_secret_file = \"{}\"\n",
        echo.url(),
        env.dir.join("demo.secret").display()
    ));
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    let cases = [
        (
            "echo-400",
            "relation not found on the node (HTTP 400: bad token: ***).",
        ),
        (
            "echo-json",
            "node error (HTTP 500: {\"message\":\"JWT *** rejected for secret ***\"}).",
        ),
        (
            "echo-fragment",
            "unexpected HTTP status 418: token *** has bad signature ***.",
        ),
        (
            "echo-html",
            "node error (HTTP 502: proxy: upstream refused ***).",
        ),
    ];
    for (relation, expected) in cases {
        let message = agent
            .get(&format!(
                "exalate.queue.count[demo,{relation},syncrequests]"
            ))
            .error()
            .to_string();
        for token in echo.heads().iter().map(|h| token_of(h)) {
            add_secret(&token);
            assert!(token.starts_with("eyJ") && token.len() > 100, "{token}");
            assert_no_fragment(&message, &token);
        }
        assert_no_fragment(&message, SECRET);
        assert_eq!(
            message,
            format!("node 'demo', relation '{relation}', queue syncrequests: {expected}")
        );
    }
}

/// A node whose error queues give, as the `errorReason` of every entry, a
/// long text ending with the token it got: longer than the 200 bytes a
/// reason is cut to, with the token across the cut (issue 21).
fn echo_reason_node() -> CannedServer {
    CannedServer::answering(|head| {
        let path = head.split_whitespace().nth(1).unwrap_or("");
        let token = token_of(head);
        let body = if path.ends_with("errorresponses") {
            let reason = format!("{} rejected token {token}", "x".repeat(60));
            serde_json::json!([{ "id": 1, "errorReason": reason, "blobErrorReason": reason }])
                .to_string()
        } else {
            "[]".to_string()
        };
        http_response(
            "200 OK",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    })
}

#[test]
fn a_token_echoed_in_a_long_error_reason_never_reaches_a_value() {
    let env = Env::new("echo-reason");
    let echo = echo_reason_node();
    env.write_config(&format!(
        "[defaults]\ncache_ttl = 0\n[nodes.demo]\nurl = \"{}\"\njwt_secret_file = \"{}\"\n",
        echo.url(),
        env.dir.join("demo.secret").display()
    ));
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    let keys = [
        "exalate.relation.stats[demo,AllContent]",
        "exalate.queue.get[demo,AllContent,errorresponses]",
        "exalate.queue.get[demo,AllContent,bloberrorresponses]",
    ];
    for key in keys {
        let value = match agent.get(key) {
            Reply::Value(v) => v,
            other => panic!("{key}: {other:?}"),
        };
        let tokens: Vec<String> = echo.heads().iter().map(|h| token_of(h)).collect();
        assert!(!tokens.is_empty());
        for token in tokens {
            add_secret(&token);
            assert!(token.starts_with("eyJ") && token.len() > 100, "{token}");
            assert_no_fragment(&value, &token);
        }
        assert!(value.contains("rejected token ***"), "{key}: {value}");
    }
}
