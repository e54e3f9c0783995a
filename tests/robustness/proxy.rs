//! Proxies through the running agent (issue 11): the agent's environment
//! (HTTP_PROXY & co.) is ignored; the `proxy` key sends http nodes'
//! requests in absolute form and https ones through CONNECT, to a real
//! (small) proxy in front of the fake node.

use crate::common::tls::{TestCa, TlsFront};
use crate::common::*;
use fake_exalate_node::FakeProxy;

/// An http node (the fake node) and an https one (TLS in front of it, its
/// CA in ca_file), with `defaults` lines.
fn write_nodes(env: &Env, tls: &TlsFront, ca_file: &std::path::Path, defaults: &str) {
    let secret = env.dir.join("demo.secret");
    let base = env.node.base_path().to_string();
    env.write_config(&format!(
        "[defaults]\ncache_ttl = 0\n{defaults}\n\
         [nodes.plain]\nurl = \"{}\"\njwt_secret_file = \"{}\"\n\
         [nodes.tls]\nurl = \"{}\"\njwt_secret_file = \"{}\"\nca_file = \"{}\"\n",
        env.node.url(),
        secret.display(),
        tls.url(&base),
        secret.display(),
        ca_file.display()
    ));
}

fn tls_front(env: &Env) -> (TlsFront, std::path::PathBuf) {
    let ca = TestCa::new("proxy");
    let front = TlsFront::start(ca.server_cert(&["127.0.0.1"], false), env.node.addr());
    let ca_file = env.dir.join("ca.pem");
    write_file(&ca_file, &ca.pem, 0o644);
    (front, ca_file)
}

const PLAIN: &str = "exalate.queue.count[plain,AllContent,syncrequests]";
const TLS: &str = "exalate.queue.count[tls,AllContent,syncrequests]";

#[test]
fn proxy_variables_in_the_agents_environment_are_ignored() {
    let env = Env::new("proxy-env");
    let proxy = FakeProxy::start().unwrap();
    let (tls, ca_file) = tls_front(&env);
    write_nodes(&env, &tls, &ca_file, "");
    let variables = [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ];
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        env: variables
            .iter()
            .map(|v| (v.to_string(), proxy.url()))
            .collect(),
        ..AgentOptions::default()
    });
    assert_eq!(agent.get(PLAIN), Reply::Value("3".into()));
    assert_eq!(agent.get(TLS), Reply::Value("3".into()));
    // Issue 11: ureq's defaults sent CONNECT to the proxy in HTTPS_PROXY.
    assert_eq!(proxy.request_lines(), Vec::<String>::new());
    assert_eq!(env.node.requests().len(), 2);
}

#[test]
fn the_proxy_key_sends_http_in_absolute_form_and_https_through_connect() {
    let env = Env::new("proxy-key");
    let proxy = FakeProxy::start().unwrap();
    let (tls, ca_file) = tls_front(&env);
    write_nodes(
        &env,
        &tls,
        &ca_file,
        &format!("proxy = \"{}\"", proxy.url()),
    );
    let closed = format!("proxy = \"http://127.0.0.1:{}\"\n", free_port());
    let config = std::fs::read_to_string(&env.config_path).unwrap();
    let down = config
        .split("[nodes.")
        .skip(1)
        .map(|table| format!("[nodes.{}{closed}", table.replacen("]", "_down]", 1)))
        .collect::<String>();
    env.write_config(&format!("{config}{down}"));
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    assert_eq!(agent.get(PLAIN), Reply::Value("3".into()));
    assert_eq!(agent.get(TLS), Reply::Value("3".into()));
    let lines = proxy.request_lines();
    let absolute = format!(
        "GET {}/rest/issuehub/2.4/relations/AllContent/",
        env.node.url()
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&absolute) && lines[0].ends_with("/syncrequests HTTP/1.1"),
        "{lines:?}"
    );
    assert_eq!(lines[1], format!("CONNECT {} HTTP/1.1", tls.addr));
    // Both arrived at the node, with their credentials.
    let requests = env.node.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.auth_ok && r.status == 200));

    // A node's own proxy beats [defaults]; one that is down is a
    // connection failure, never a direct request.
    for key in [
        "exalate.queue.count[plain_down,AllContent,syncrequests]",
        "exalate.queue.count[tls_down,AllContent,syncrequests]",
    ] {
        let message = agent.get(key).error().to_string();
        assert!(message.ends_with(": connection refused."), "{message}");
    }
    assert_eq!(env.node.requests().len(), 2);
    assert_eq!(proxy.request_lines().len(), 2);
}
