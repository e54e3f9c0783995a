//! The real `zabbix_agentd` from Debian's package loads the module and
//! answers every item key: one-shot (`-t`, `-p`) and as a running daemon
//! queried over the agent protocol, against the fake Exalate node.

pub mod common;

use common::*;
use fake_exalate_node::NodeConfig;
use std::time::{Duration, Instant};

/// The demo relation's counts on the fake node, in QUEUES order.
fn demo_counts(relation: &str) -> [u64; 6] {
    NodeConfig::demo().relations[relation].counts
}

#[test]
fn every_key_answers_through_agent_test() {
    let env = TestEnv::new("agent-t-good");
    let mut all_output = String::new();
    for relation in ["AllContent", "Jira Cloud/EU"] {
        let counts = demo_counts(relation);
        for (queue, expected) in QUEUES.iter().zip(counts) {
            let out = env.agent_test(&format!("exalate.queue.count[demo,\"{relation}\",{queue}]"));
            assert_eq!(test_value(&out), ('u', expected.to_string()), "{out}");
            all_output.push_str(&out);
        }
    }
    // An empty node names the only one.
    let out = env.agent_test("exalate.queue.count[,AllContent,syncrequests]");
    assert_eq!(test_value(&out), ('u', "3".into()));

    let out = env.agent_test("exalate.queue.get[demo,AllContent,errorresponses]");
    let (kind, text) = test_value(&out);
    assert_eq!(kind, 't');
    let entries: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 2);
    assert!(entries[0]["errorReason"].is_string(), "{text}");

    let out = env.agent_test("exalate.queue.get[demo,AllContent,syncrequests]");
    let (_, text) = test_value(&out);
    let entries: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 3);
    assert!(entries[0]["replica"].is_object(), "{text}");
    assert!(!text.contains("encodedPayload"), "{text}");

    let out = env.agent_test("exalate.relation.stats[demo,AllContent]");
    let (kind, text) = test_value(&out);
    assert_eq!(kind, 't');
    let stats: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (queue, expected) in QUEUES.iter().zip(demo_counts("AllContent")) {
        assert_eq!(stats[queue], expected, "{text}");
    }
    let reasons = stats["error_reasons"].as_object().unwrap();
    let tallied: u64 = reasons.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(
        tallied,
        2 + 1,
        "errorresponses + bloberrorresponses: {text}"
    );
    assert_eq!(reasons["NO_ISSUE_TO_CONNECT_TO"], 1, "{text}");
    assert_eq!(reasons["CHECKSUM_MISMATCH"], 1, "{text}");

    let out = env.agent_test("exalate.discovery");
    let (kind, text) = test_value(&out);
    assert_eq!(kind, 't');
    let pairs: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        pairs,
        serde_json::json!([
            {"{#NODE}": "demo", "{#RELATION}": "AllContent", "{#CMONITOR}": "0", "{#API}": "0"},
            {"{#NODE}": "demo", "{#RELATION}": "Service Desk", "{#CMONITOR}": "0", "{#API}": "0"},
            {"{#NODE}": "demo", "{#RELATION}": "Jira Cloud/EU", "{#CMONITOR}": "0", "{#API}": "0"},
        ])
    );

    assert_eq!(
        test_value(&env.agent_test("exalate.node.ping[demo]")),
        ('u', "1".into())
    );
    assert_eq!(
        test_value(&env.agent_test("exalate.node.ping")),
        ('u', "1".into())
    );
    assert_eq!(
        test_value(&env.agent_test("exalate.module.version")),
        ('s', env!("CARGO_PKG_VERSION").into())
    );
    env.assert_no_secrets(&all_output);
}

/// `-t` of a failing item: the agent's "not supported" line and its reason.
fn agent_error(env: &TestEnv, key: &str) -> String {
    let out = env.agent_test(key);
    env.assert_no_secrets(&out);
    let (kind, value) = test_value(&out);
    assert_eq!(kind, 'm', "{out}");
    let reason = value
        .strip_prefix("ZBX_NOTSUPPORTED] [")
        .unwrap_or_else(|| panic!("not a failure: {out}"));
    reason.to_string()
}

#[test]
fn failing_items_say_exactly_why() {
    let env = TestEnv::new("agent-t-bad");
    let cases: [(&str, &str); 9] = [
        (
            "exalate.queue.count[demo,Gone,syncrequests]",
            "node 'demo', relation 'Gone', queue syncrequests: relation not found on the node (HTTP 400: Connection `Gone` not found. Seems like it was removed on the Destination side.).",
        ),
        (
            "exalate.queue.count[staging,AllContent,syncrequests]",
            "unknown node 'staging'; configured nodes: demo.",
        ),
        (
            "exalate.queue.count[demo,AllContent,errors]",
            "unknown queue 'errors'; valid queues: syncrequests, blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses.",
        ),
        (
            "exalate.queue.count[demo,AllContent]",
            "wrong number of parameters: exalate.queue.count takes 3, got 2: use exalate.queue.count[<node>,<relation>,<queue>].",
        ),
        (
            "exalate.relation.stats[demo,AllContent,syncrequests]",
            "wrong number of parameters: exalate.relation.stats takes 2, got 3: use exalate.relation.stats[<node>,<relation>].",
        ),
        (
            "exalate.queue.count[demo,,syncrequests]",
            "node 'demo': relation name is empty.",
        ),
        (
            "exalate.queue.count[demo,fault-status-500,syncrequests]",
            "node 'demo', relation 'fault-status-500', queue syncrequests: node error (HTTP 500: {\"message\":\"NullPointerException\"}).",
        ),
        (
            "exalate.queue.count[demo,fault-malformed,syncrequests]",
            "node 'demo', relation 'fault-malformed', queue syncrequests: malformed JSON: EOF while parsing a value at line 1 column 19.",
        ),
        (
            "exalate.queue.count[demo,fault-not-array,syncrequests]",
            "node 'demo', relation 'fault-not-array', queue syncrequests: unexpected JSON: invalid type: map, expected a JSON array of queue entries at line 1 column 2.",
        ),
    ];
    for (key, expected) in cases {
        assert_eq!(agent_error(&env, key), expected, "{key}");
    }
}

/// `exalate.node.errors` in every outcome (see `common::cmonitor`): the
/// count over Basic and Bearer, each failure's exact message, no secret in
/// any output; discovery says which nodes have the endpoint.
#[test]
fn node_errors_in_every_outcome() {
    let env = TestEnv::new("agent-t-node-errors");
    let nodes = cmonitor_config(&env);
    for (key, expected) in &nodes.cases {
        let out = env.agent_test(key);
        env.assert_no_secrets(&out);
        for secret in [CMONITOR_PASSWORD, CMONITOR_TOKEN, CMONITOR_BASIC] {
            assert!(!out.contains(secret), "{key}: {out}");
        }
        assert_eq!(&test_outcome(&out), expected, "{key}: {out}");
        if expected.is_ok() {
            assert_eq!(test_value(&out).0, 'u', "{out}");
        }
    }
    // The endpoint got its own credential, never the node's JWT.
    let basic = nodes.basic.requests();
    assert!(!basic.is_empty());
    for request in &basic {
        assert_eq!(request.header("X-Exalate-Jwt"), None);
    }
    assert!(basic.iter().any(|r| r.header("Authorization")
        == Some(format!("Basic {CMONITOR_BASIC}").as_str())
        && r.auth_ok));
    let (_, text) = test_value(&env.agent_test("exalate.discovery"));
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    let flag = |node: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["{#NODE}"] == node)
            .map(|r| r["{#CMONITOR}"].clone())
    };
    assert_eq!(flag("basic"), Some("1".into()), "{text}");
    assert_eq!(flag("none"), Some("0".into()), "{text}");
}

/// Exalate's own API (issuehub 4.0) in every outcome (see `common::api`):
/// each kind of credentials, each failure's exact message, no password,
/// token, Basic header or login JWT in any output; totals are never asked
/// without `limit=0`; discovery says which nodes have API credentials and
/// lists a node without relations.
#[test]
fn node_api_in_every_outcome() {
    let env = TestEnv::new("agent-t-node-api");
    let nodes = api_config(&env);
    let mut wrong = Vec::new();
    for (key, expected) in &nodes.cases {
        let out = env.agent_test(key);
        env.assert_no_secrets(&out);
        for secret in [API_PASSWORD, API_TOKEN] {
            assert!(!out.contains(secret), "{key}: {out}");
        }
        for token in tokens_of(&nodes.node) {
            assert!(!out.contains(&token), "{key}: {out}");
        }
        if &test_outcome(&out) != expected {
            wrong.push(format!(
                "{key}: got {:?}, expected {expected:?}",
                test_outcome(&out)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let requests = nodes.requests();
    let totals: Vec<_> = requests
        .iter()
        .filter(|r| r.raw_path.contains("/4.0/sync"))
        .collect();
    assert!(totals.len() >= 8, "{}", totals.len());
    for request in totals {
        assert!(
            request.raw_path.ends_with("?limit=0"),
            "{}",
            request.raw_path
        );
    }
    // Each kind sent what it is: Basic, Bearer, the login's JWT.
    let sent = |header: &str, prefix: &str| {
        nodes
            .node
            .requests()
            .iter()
            .any(|r| r.auth_ok && r.header(header).is_some_and(|v| v.starts_with(prefix)))
    };
    assert!(sent("Authorization", "Basic ") && sent("Authorization", "Bearer "));
    assert!(sent("X-Exalate-Jwt", "eyJ"));
    assert!(nodes.body_only.login_count() >= 1);
    let (_, text) = test_value(&env.agent_test("exalate.discovery"));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let row = |node: &str| rows.iter().find(|r| r["{#NODE}"] == node).cloned();
    assert_eq!(
        row("basic"),
        Some(
            serde_json::json!({"{#NODE}": "basic", "{#RELATION}": "", "{#CMONITOR}": "0", "{#API}": "1"})
        )
    );
    assert_eq!(row("relations").unwrap()["{#API}"], "0");
}

/// One login serves every item of an agent process until shortly before
/// the token's `exp`; then one new login. Through the running agent (one
/// listener, so one process answers every item).
#[test]
fn one_login_per_agent_process_renewed_before_expiry() {
    use fake_exalate_node::FakeNode;
    let env = TestEnv::new("agent-api-login");
    add_api_secrets();
    write_file(&env.dir.join("api.password"), API_PASSWORD, 0o640);
    let node = FakeNode::start(
        NodeConfig::default().with_api(test_api().with_login_ttl(Duration::from_secs(4))),
    )
    .unwrap();
    env.write_config(&format!(
        "[nodes.cloud]\nurl = \"{}\"\n{}",
        node.url(),
        api_keys(&env.dir, "login")
    ));
    let agent = env.start_agent(AgentOptions::agentd(1));
    let started = Instant::now();
    for _ in 0..10 {
        for key in [
            "exalate.node.queue[cloud,outgoing]",
            "exalate.node.queue[cloud,incoming]",
            "exalate.node.connections[cloud]",
        ] {
            assert!(matches!(agent.get(key), Reply::Value(_)), "{key}");
        }
    }
    // 30 items, one login (unless the items took as long as the token lives).
    if started.elapsed() < Duration::from_secs(2) {
        assert_eq!(node.login_count(), 1);
    }
    // A 4 s token is renewed a quarter of its life before it expires: by
    // then the next item logs in again, once.
    let deadline = Instant::now() + Duration::from_secs(15);
    while node.login_count() < 2 && Instant::now() < deadline {
        assert_eq!(
            agent.get("exalate.node.queue[cloud,outgoing]"),
            Reply::Value("1500".into())
        );
    }
    assert_eq!(node.login_count(), 2, "no renewal within 15 s");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "renewed too early"
    );
    // A rejected token (the node restarted) gets one new login, not a failure.
    assert!(node.revoke_logins());
    assert_eq!(
        agent.get("exalate.node.queue[cloud,incoming]"),
        Reply::Value("420".into())
    );
    assert_eq!(node.login_count(), 3);
    env.assert_no_secrets(&agent.log());
}

#[test]
fn credentials_and_connection_failures() {
    let env = TestEnv::new("agent-t-auth");
    // Wrong secret: the node rejects the token (after one fresh mint).
    write_file(&env.dir.join("demo.secret"), "not-the-secret", 0o600);
    let reason = agent_error(&env, "exalate.queue.count[demo,AllContent,syncrequests]");
    assert!(reason.starts_with("node 'demo', relation 'AllContent', queue syncrequests: credentials rejected (HTTP 401): check jwt_secret_file"), "{reason}");
    assert!(!reason.contains("not-the-secret"));
    assert_eq!(
        test_value(&env.agent_test("exalate.node.ping[demo]")),
        ('u', "0".into())
    );

    // A world-readable secret is refused before any request.
    write_file(&env.dir.join("demo.secret"), SECRET, 0o644);
    let reason = agent_error(&env, "exalate.queue.count[demo,AllContent,syncrequests]");
    assert!(
        reason.contains("demo.secret: is readable by others (mode 0644); run: chmod o-rwx"),
        "{reason}"
    );
    write_file(&env.dir.join("demo.secret"), SECRET, 0o600);

    // The node expects X-Exalate-Jwt; Authorization is not seen: 403.
    env.write_config(&env.node_section("demo", &["auth_header = \"Authorization\""]));
    let reason = agent_error(&env, "exalate.queue.count[demo,AllContent,syncrequests]");
    assert!(reason.contains("not authenticated (HTTP 403)"), "{reason}");

    // Nothing listens: connection refused.
    let closed = free_port();
    env.write_config(&format!(
        "[nodes.down]\nurl = \"http://127.0.0.1:{closed}\"\njwt_secret_file = \"{}\"\n",
        env.dir.join("demo.secret").display()
    ));
    assert_eq!(
        agent_error(&env, "exalate.queue.count[down,AllContent,syncrequests]"),
        "node 'down', relation 'AllContent', queue syncrequests: connection refused."
    );
    assert_eq!(
        test_value(&env.agent_test("exalate.node.ping[down]")),
        ('u', "0".into())
    );
}

#[test]
fn a_hung_node_times_out_within_the_configured_timeout() {
    let env = TestEnv::new("agent-t-hang");
    env.write_config(&format!(
        "[defaults]\ntimeout = 1\n{}",
        env.node_section("demo", &[])
    ));
    for relation in ["fault-hang", "fault-headers-stall", "fault-slow-body"] {
        let started = Instant::now();
        let reason = agent_error(&env, &format!("exalate.relation.stats[demo,{relation}]"));
        let took = started.elapsed();
        // All six queues timed out alike: no queue is named.
        assert_eq!(
            reason,
            format!("node 'demo', relation '{relation}': timeout after 1 s.")
        );
        // 1 s timeout, plus the agent's own start and stop.
        assert!(
            took < Duration::from_millis(2500),
            "{relation} took {took:?}"
        );
    }
}

#[test]
fn broken_config_never_stops_the_agent() {
    let env = TestEnv::new("agent-t-config");
    env.write_config(
        "[nodes.demo]\nurl = \"http://127.0.0.1:1\"\ntoken_file = \"/t\"\ntmeout = 3\n",
    );
    let reason = agent_error(&env, "exalate.queue.count[demo,AllContent,syncrequests]");
    assert!(
        reason.starts_with(&format!(
            "config {} line 4: unknown field `tmeout`",
            env.config_path.display()
        )),
        "{reason}"
    );
    let reason = agent_error(&env, "exalate.discovery");
    assert!(reason.contains("line 4"), "{reason}");
    // The version needs no config.
    assert_eq!(test_value(&env.agent_test("exalate.module.version")).0, 's');

    std::fs::remove_file(&env.config_path).unwrap();
    let reason = agent_error(&env, "exalate.node.ping[demo]");
    assert_eq!(
        reason,
        format!(
            "config {}: cannot read: No such file or directory (create it, or set EXALATE_ZABBIX_CONFIG).",
            env.config_path.display()
        )
    );
    // And the daemon starts and serves its own items.
    let agent = AgentDaemon::start(&env.dir, &env.config_path, 1);
    assert_eq!(agent.get("agent.ping"), Reply::Value("1".into()));
    assert!(agent
        .get("exalate.discovery")
        .error()
        .contains("cannot read"));
}

#[test]
fn discovery_refuses_duplicate_empty_or_control_character_names() {
    let env = TestEnv::new("agent-t-names");
    let config = |relations: &str| {
        format!(
            "[nodes.demo]\nurl = \"{}\"\njwt_secret_file = \"{}\"\nrelations = [\n{relations}]\n",
            env.node.url(),
            env.dir.join("demo.secret").display()
        )
    };
    let path = env.config_path.display();
    // Issue 11: ["A","B","A","","x\u0000y"] gave five discovery rows.
    let cases = [
        (
            "  \"A\",\n  \"B\",\n  \"A\",\n  \"\",\n  \"x\\u0000y\",\n",
            format!("config {path} line 7: node 'demo': relations: 'A' is listed twice."),
        ),
        (
            "  \"A\",\n  \"\",\n",
            format!("config {path} line 6: node 'demo': relations: a relation name is empty."),
        ),
        (
            "  \"A\",\n  \"x\\u0000y\",\n",
            format!(
                "config {path} line 6: node 'demo': relations: 'x\\u{{0}}y' holds a control character."
            ),
        ),
    ];
    for (relations, expected) in cases {
        env.write_config(&config(relations));
        assert_eq!(agent_error(&env, "exalate.discovery"), expected);
    }
    env.write_config(&config("\"A\", \"a\", \"B\""));
    let (kind, rows) = test_value(&env.agent_test("exalate.discovery"));
    assert_eq!(kind, 't');
    assert_eq!(
        rows,
        r#"[{"{#API}":"0","{#CMONITOR}":"0","{#NODE}":"demo","{#RELATION}":"A"},{"{#API}":"0","{#CMONITOR}":"0","{#NODE}":"demo","{#RELATION}":"a"},{"{#API}":"0","{#CMONITOR}":"0","{#NODE}":"demo","{#RELATION}":"B"}]"#
    );
}

#[test]
fn print_all_items_shows_real_values() {
    let env = TestEnv::new("agent-p");
    let conf = agent_config(&env.dir, free_port(), 1);
    let out = std::process::Command::new(AGENTD)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .env("EXALATE_ZABBIX_CONFIG", &env.config_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "exalate.queue.count[,AllContent,syncrequests]",
        "exalate.relation.stats[,AllContent]",
        "exalate.queue.get[,AllContent,errorresponses]",
        "exalate.node.ping[]",
        "exalate.discovery",
        "exalate.module.version",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line} missing from -p:\n{text}"
        );
    }
    let count_line = text
        .lines()
        .find(|l| l.starts_with("exalate.queue.count["))
        .unwrap();
    assert_eq!(test_value(count_line), ('u', "3".into()));
    let ping_line = text
        .lines()
        .find(|l| l.starts_with("exalate.node.ping["))
        .unwrap();
    assert_eq!(test_value(ping_line), ('u', "1".into()));
    env.assert_no_secrets(&text);
}

#[test]
fn daemon_serves_concurrent_clients_over_tcp() {
    let env = TestEnv::new("agent-daemon");
    let mut agent = AgentDaemon::start(&env.dir, &env.config_path, 3);
    let counts = demo_counts("AllContent");
    std::thread::scope(|s| {
        for t in 0..8 {
            let agent = &agent;
            s.spawn(move || {
                for i in 0..24 {
                    let q = (t + i) % 6;
                    let reply = agent.get(&format!(
                        "exalate.queue.count[demo,AllContent,{}]",
                        QUEUES[q]
                    ));
                    assert_eq!(reply, Reply::Value(counts[q].to_string()));
                    if i % 6 == 0 {
                        let reply = agent.get("exalate.queue.count[demo,Gone,syncrequests]");
                        assert!(reply
                            .error()
                            .contains("relation not found on the node (HTTP 400"));
                        assert_eq!(agent.get("agent.ping"), Reply::Value("1".into()));
                    }
                }
            });
        }
    });
    let stats: serde_json::Value = serde_json::from_str(
        agent
            .get("exalate.relation.stats[demo,\"Jira Cloud/EU\"]")
            .value(),
    )
    .unwrap();
    assert_eq!(stats["syncrequests"], 1);
    // A relation name with a slash went over the wire as one encoded segment.
    let raw: Vec<String> = env
        .node
        .requests()
        .into_iter()
        .filter(|r| r.relation.as_deref() == Some("Jira Cloud/EU"))
        .map(|r| r.raw_path)
        .collect();
    assert!(!raw.is_empty());
    assert!(
        raw.iter()
            .all(|p| p.starts_with("/jira/rest/issuehub/2.4/relations/Jira%20Cloud%2FEU/")),
        "{raw:?}"
    );
    assert!(agent.is_running());
    assert_eq!(
        agent.process_ids().len(),
        1 + 3 + 1,
        "parent, 3 listeners, collector"
    );
    env.assert_no_secrets(&agent.log());
}

/// Issue 19: each relation's items succeed with its own secret through the
/// real agent; a wrong secret fails that relation's items only, naming it.
#[test]
fn per_relation_secrets_through_the_agent() {
    let env = TestEnv::with_relation_secrets("agent-relation-secrets");
    let mut all_output = String::new();
    for relation in ["AllContent", "Service Desk", "Jira Cloud/EU"] {
        for (queue, expected) in QUEUES.iter().zip(demo_counts(relation)) {
            let out = env.agent_test(&format!("exalate.queue.count[demo,\"{relation}\",{queue}]"));
            assert_eq!(test_value(&out), ('u', expected.to_string()), "{out}");
            all_output.push_str(&out);
        }
    }
    let out = env.agent_test("exalate.node.ping[demo]");
    assert_eq!(test_value(&out), ('u', "1".into()), "{out}");
    let out = env.agent_test("exalate.discovery");
    let rows: serde_json::Value = serde_json::from_str(&test_value(&out).1).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3, "{out}");

    // The EU relation's file holds the Service Desk secret: only EU fails.
    write_file(&env.dir.join("eu.secret"), SD_SECRET, 0o600);
    let out = env.agent_test("exalate.relation.stats[demo,\"Jira Cloud/EU\"]");
    let (kind, message) = test_value(&out);
    assert_eq!(kind, 'm', "{out}");
    assert!(
        message.contains("node 'demo', relation 'Jira Cloud/EU': credentials rejected (HTTP 401)")
            && message.contains(&format!(
                "jwt_secret_file {}",
                env.dir.join("eu.secret").display()
            )),
        "{message}"
    );
    all_output.push_str(&out);
    for relation in ["AllContent", "Service Desk"] {
        let out = env.agent_test(&format!(
            "exalate.queue.count[demo,\"{relation}\",syncrequests]"
        ));
        assert_eq!(test_value(&out).0, 'u', "{out}");
    }

    // No node secret: every relation has its own, ping uses the first's.
    write_file(&env.dir.join("eu.secret"), EU_SECRET, 0o600);
    env.write_config(&env.relation_secrets_section("demo", false));
    let out = env.agent_test("exalate.queue.count[demo,\"Jira Cloud/EU\",errorresponses]");
    assert_eq!(test_value(&out), ('u', "1".into()), "{out}");
    let out = env.agent_test("exalate.node.ping[demo]");
    assert_eq!(test_value(&out), ('u', "1".into()), "{out}");
    env.assert_no_secrets(&all_output);
}
