//! https through the running agent: a CA and server certificates made here,
//! a TLS terminator in front of the fake node. Trusted via `ca_file` works;
//! untrusted, expired and wrong-name certificates fail with a TLS message;
//! plain http still works.

use crate::common::tls::{TestCa, TlsFront};
use crate::common::*;

#[test]
fn certificates_are_verified_against_system_roots_and_ca_file() {
    let env = Env::new("tls");
    let ca = TestCa::new("trusted");
    let stranger = TestCa::new("stranger");
    let backend = env.node.addr();
    let ip = "127.0.0.1";
    let good = TlsFront::start(ca.server_cert(&[ip, "localhost"], false), backend);
    let untrusted = TlsFront::start(stranger.server_cert(&[ip], false), backend);
    let expired = TlsFront::start(ca.server_cert(&[ip], true), backend);
    let wrong_name = TlsFront::start(ca.server_cert(&["exalate.example.com"], false), backend);

    let ca_file = env.dir.join("ca.pem");
    write_file(&ca_file, &ca.pem, 0o644);
    let not_pem = env.dir.join("not-a-ca.pem");
    write_file(&not_pem, "this is not a certificate\n", 0o644);
    let secret = env.dir.join("demo.secret");
    let node = |name: &str, url: &str, ca: Option<&std::path::Path>| {
        let ca = ca
            .map(|p| format!("ca_file = \"{}\"\n", p.display()))
            .unwrap_or_default();
        format!(
            "[nodes.{name}]\nurl = \"{url}\"\njwt_secret_file = \"{}\"\n{ca}",
            secret.display()
        )
    };
    let base = env.node.base_path().to_string();
    env.write_config(
        &[
            "[defaults]\ntimeout = 2\ncache_ttl = 0\n".to_string(),
            node("trusted", &good.url(&base), Some(&ca_file)),
            node(
                "trusted_by_name",
                &format!("https://localhost:{}{base}", good.addr.port()),
                Some(&ca_file),
            ),
            node("no_ca_file", &good.url(&base), None),
            node("untrusted", &untrusted.url(&base), Some(&ca_file)),
            node("expired", &expired.url(&base), Some(&ca_file)),
            node("wrong_name", &wrong_name.url(&base), Some(&ca_file)),
            node("not_pem", &good.url(&base), Some(&not_pem)),
            node(
                "missing_ca",
                &good.url(&base),
                Some(&env.dir.join("missing.pem")),
            ),
            node("https_to_http", &format!("https://{backend}{base}"), None),
            node("plain", &env.node.url(), None),
        ]
        .concat(),
    );

    let agent = env.start_agent(AgentOptions {
        start_agents: 2,
        ..AgentOptions::default()
    });
    let count = |node: &str| {
        agent.get(&format!(
            "exalate.queue.count[{node},AllContent,syncrequests]"
        ))
    };
    let failure = |node: &str| count(node).error().to_string();
    let at = |node: &str| format!("node '{node}', relation 'AllContent', queue syncrequests: ");

    assert_eq!(count("trusted"), Reply::Value("3".into()));
    assert_eq!(count("trusted_by_name"), Reply::Value("3".into()));
    assert_eq!(count("plain"), Reply::Value("3".into()));
    assert_eq!(
        agent.get("exalate.node.ping[trusted]"),
        Reply::Value("1".into())
    );
    let stats = agent.get("exalate.relation.stats[trusted,AllContent]");
    assert!(
        stats.value().starts_with("{\"syncrequests\":3,"),
        "{stats:?}"
    );

    for (node, reason) in [
        ("no_ca_file", "invalid peer certificate: UnknownIssuer"),
        ("untrusted", "invalid peer certificate: UnknownIssuer"),
        ("expired", "invalid peer certificate: certificate expired"),
        (
            "wrong_name",
            "invalid peer certificate: certificate not valid for name",
        ),
    ] {
        let message = failure(node);
        assert!(
            message.starts_with(&format!("{}TLS failure: {reason}", at(node))),
            "{node}: {message}"
        );
        assert_eq!(
            agent.get(&format!("exalate.node.ping[{node}]")),
            Reply::Value("0".into())
        );
    }
    assert_eq!(
        failure("not_pem"),
        format!(
            "{}ca_file {}: no PEM certificate in it.",
            at("not_pem"),
            not_pem.display()
        )
    );
    assert_eq!(
        failure("missing_ca"),
        format!(
            "{}ca_file {}: cannot read: No such file or directory.",
            at("missing_ca"),
            env.dir.join("missing.pem").display()
        )
    );
    let message = failure("https_to_http");
    assert!(
        message.starts_with(&format!("{}TLS failure: ", at("https_to_http"))),
        "{message}"
    );
    // Nothing but the trusted nodes' requests went through to the node: a
    // failed handshake sends no request, so no token either.
    let through = env.node.requests().len();
    assert_eq!(through, 2 + 1 + 6 + 1, "{:?}", env.node.requests());
    agent.assert_serving();
}

/// A `ca_file` created after the first failure, and one replaced later, are
/// read by the running agent's processes without a restart.
#[test]
fn a_ca_file_that_appears_or_changes_later_is_read_without_a_restart() {
    let env = Env::new("tls-late-ca");
    let ca = TestCa::new("late");
    let stranger = TestCa::new("rotated");
    let front = TlsFront::start(ca.server_cert(&["127.0.0.1"], false), env.node.addr());
    let ca_file = env.dir.join("late.pem");
    env.write_config(&format!(
        "[defaults]\ntimeout = 2\ncache_ttl = 0\n[nodes.late]\nurl = \"{}\"\njwt_secret_file = \"{}\"\nca_file = \"{}\"\n",
        front.url(env.node.base_path()),
        env.dir.join("demo.secret").display(),
        ca_file.display()
    ));
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    let key = "exalate.queue.count[late,AllContent,syncrequests]";
    assert_eq!(
        agent.get(key).error(),
        format!(
            "node 'late', relation 'AllContent', queue syncrequests: ca_file {}: cannot read: No such file or directory.",
            ca_file.display()
        )
    );
    write_file(&ca_file, &ca.pem, 0o644);
    assert_eq!(
        agent.get(key),
        Reply::Value("3".into()),
        "the new CA file is read at once"
    );
    // Rotated to another CA: the front's certificate is no longer trusted,
    // once the file's change is seen (it is looked at once a second).
    write_file(&ca_file, &stranger.pem, 0o644);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let reply = agent.get(key);
        if let Reply::NotSupported(message) = &reply {
            assert!(
                message.contains("TLS failure: invalid peer certificate: UnknownIssuer"),
                "{message}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated CA file was never read: {reply:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    agent.assert_serving();
}
