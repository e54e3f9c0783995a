//! Hostile item parameters through the running agent: every relation name
//! reaches the node as exactly one percent-encoded path segment (checked on
//! what the fake node received), or the item fails with a clear message.

use crate::common::*;

/// The encoding the module must use, written independently: every byte but
/// RFC 3986's unreserved alphanumerics, `-`, `_` and `~` is escaped (so `.`
/// and `..` stay names).
fn expected_segment(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A Zabbix key parameter for `name`: quoted, with `"` escaped.
fn quoted_param(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\\\""))
}

/// How the module shows a name in a message: control characters as spaces.
fn shown(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[test]
fn hostile_relation_names_become_one_encoded_segment() {
    let env = Env::new("params-names");
    env.write_config(&env.config(&["cache_ttl = 0"], &[]));
    let agent = env.start_agent(AgentOptions::default());
    let long_ok = "L".repeat(1000);
    let names: Vec<String> = [
        "a\"b",
        "it's",
        "\"quoted\"",
        "Zürich ✓ 日本語",
        "..",
        ".",
        "%2e%2e",
        "%2F",
        "a/b",
        "../../../../etc/passwd",
        "/",
        "a?b=c&d",
        "?",
        "a#b",
        "#",
        "a b",
        "a+b",
        "[x]",
        "a,b",
        "a;b",
        "a\\b",
        "tab\there",
        "ctrl\u{1}\u{1b}[31m",
        "del\u{7f}",
        "\u{202e}rtl",
        "%00",
        long_ok.as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let base = format!("{}/rest/issuehub/2.4/relations/", env.node.base_path());
    for name in &names {
        let key = format!(
            "exalate.queue.count[demo,{},syncrequests]",
            quoted_param(name)
        );
        env.node.clear_requests();
        let reply = agent.get(&key);
        let expected = format!(
            "node 'demo', relation {}, queue syncrequests: relation not found on the node (HTTP 400: {}).",
            quoted_short(name),
            excerpt_of_400(name),
        );
        assert_eq!(reply.error(), expected, "{name:?}");
        let requests = env.node.requests();
        assert_eq!(requests.len(), 1, "{name:?}: {requests:?}");
        let request = &requests[0];
        assert_eq!(request.relation.as_deref(), Some(name.as_str()));
        assert_eq!(
            request.raw_path,
            format!("{base}{}/syncevents/syncrequests", expected_segment(name)),
            "{name:?}"
        );
    }
    // Stats and get take the same path.
    env.node.clear_requests();
    agent.get("exalate.relation.stats[demo,\"../x?y#z\"]");
    agent.get("exalate.queue.get[demo,\"../x?y#z\",errorresponses]");
    let requests = env.node.requests();
    // Stats asks its six queues at once (all fail alike), get one.
    assert_eq!(requests.len(), 7);
    for r in &requests {
        assert_eq!(r.relation.as_deref(), Some("../x?y#z"));
        assert!(
            r.raw_path
                .starts_with(&format!("{base}%2E%2E%2Fx%3Fy%23z/")),
            "{r:?}"
        );
    }
    agent.assert_serving();
}

/// The module's excerpt of the node's 400 body: its first line, at most
/// 160 characters, control characters as spaces.
fn excerpt_of_400(name: &str) -> String {
    let body = format!(
        "Connection `{name}` not found. Seems like it was removed on the Destination side."
    );
    let line = body.trim().lines().next().unwrap_or("").trim().to_string();
    let mut short: String = line.chars().take(160).collect();
    if line.chars().count() > 160 {
        short.push('…');
    }
    shown(&short)
}

/// How the module quotes a name: at most 80 characters, control characters as spaces.
fn quoted_short(name: &str) -> String {
    let mut s: String = name.chars().take(80).collect();
    if name.chars().count() > 80 {
        s.push('…');
    }
    format!("'{}'", shown(&s))
}

#[test]
fn wrong_missing_and_oversized_parameters_get_clear_errors() {
    let env = Env::new("params-shape");
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    let usage_count = "use exalate.queue.count[<node>,<relation>,<queue>].";
    let ten_kb = "x".repeat(10 * 1024);
    let cases: Vec<(String, String)> = vec![
        (
            "exalate.queue.count".into(),
            format!("wrong number of parameters: exalate.queue.count takes 3, got 0: {usage_count}"),
        ),
        (
            "exalate.queue.count[]".into(),
            format!("wrong number of parameters: exalate.queue.count takes 3, got 0: {usage_count}"),
        ),
        (
            "exalate.queue.count[demo]".into(),
            format!("wrong number of parameters: exalate.queue.count takes 3, got 1: {usage_count}"),
        ),
        (
            "exalate.queue.count[demo,AllContent,syncrequests,extra]".into(),
            format!("wrong number of parameters: exalate.queue.count takes 3, got 4: {usage_count}"),
        ),
        (
            "exalate.relation.stats[demo]".into(),
            "wrong number of parameters: exalate.relation.stats takes 2, got 1: use exalate.relation.stats[<node>,<relation>].".into(),
        ),
        (
            "exalate.node.ping[demo,extra]".into(),
            "wrong number of parameters: exalate.node.ping takes 1, got 2: use exalate.node.ping[<node>].".into(),
        ),
        (
            "exalate.queue.count[demo,\"\",syncrequests]".into(),
            "node 'demo': relation name is empty.".into(),
        ),
        (
            format!("exalate.queue.count[demo,{ten_kb},syncrequests]"),
            "node 'demo': relation name longer than 1000 characters.".into(),
        ),
        (
            format!("exalate.queue.count[demo,AllContent,{ten_kb}]"),
            format!(
                "unknown queue '{}…'; valid queues: syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses.",
                "x".repeat(80)
            ),
        ),
        (
            format!("exalate.queue.count[{ten_kb},AllContent,syncrequests]"),
            format!("unknown node '{}…'; configured nodes: demo.", "x".repeat(80)),
        ),
        (
            "exalate.queue.count[\"de\\\"mo\",AllContent,syncrequests]".into(),
            "unknown node 'de\"mo'; configured nodes: demo.".into(),
        ),
        (
            "exalate.queue.count[demo,AllContent,\"sync\u{1}requests\"]".into(),
            "unknown queue 'sync requests'; valid queues: syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses.".into(),
        ),
        (
            "exalate.queue.count[demo,AllContent,../syncrequests]".into(),
            "unknown queue '../syncrequests'; valid queues: syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses.".into(),
        ),
        (
            "exalate.queue.count[,AllContent,\"Zürich\"]".into(),
            "unknown queue 'Zürich'; valid queues: syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses.".into(),
        ),
        // The agent itself refuses parameters where a key takes none.
        (
            "exalate.discovery[x]".into(),
            "Item does not allow parameters.".into(),
        ),
    ];
    env.node.clear_requests();
    for (key, expected) in &cases {
        assert_eq!(
            agent.get(key).error(),
            expected,
            "{}",
            &key[..key.len().min(60)]
        );
    }
    // None of these reached the node.
    assert!(env.node.requests().is_empty(), "{:?}", env.node.requests());
    // Quoted and unquoted forms of good parameters still work.
    assert_eq!(
        agent.get("exalate.queue.count[\"demo\",\"AllContent\",\"syncrequests\"]"),
        Reply::Value("3".into())
    );
    assert_eq!(
        agent.get("exalate.queue.count[,\"Jira Cloud/EU\",syncrequests]"),
        Reply::Value("1".into())
    );
    agent.assert_serving();
}
