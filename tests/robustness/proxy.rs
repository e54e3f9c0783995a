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

/// A loopback port that accepts connections and never answers.
fn silent_proxy() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    url
}

/// Issue 21, kept as tests: proxies that answer garbage, ask for
/// credentials (407), never answer, or echo the request (and so its token)
/// back: each item fails with one clear line within its timeout, none
/// carrying a token, for http (absolute form) and https (CONNECT) nodes.
#[test]
fn garbage_407_silent_and_echoing_proxies_fail_clearly() {
    let env = Env::new("proxy-hostile");
    let garbage = CannedServer::start(b"\x00\xffnot http at all\r\n\r\n".to_vec());
    let auth = CannedServer::http(
        "407 Proxy Authentication Required",
        &[("Proxy-Authenticate", "Basic realm=\"proxy\"")],
        b"<html><title>407 Proxy Authentication Required</title></html>",
    );
    let echo = CannedServer::answering(|head| http_response("200 OK", &[], head.as_bytes()));
    let proxies = [
        ("garbage", garbage.url()),
        ("auth", auth.url()),
        ("silent", silent_proxy()),
        ("echo", echo.url()),
    ];
    let secret = env.dir.join("demo.secret");
    let mut config = "[defaults]\ncache_ttl = 0\ntimeout = 2\n".to_string();
    for (name, proxy) in &proxies {
        for (scheme, url) in [
            ("http", env.node.url()),
            ("https", "https://127.0.0.1:9".to_string()),
        ] {
            config.push_str(&format!(
                "[nodes.{name}_{scheme}]\nurl = \"{url}\"\njwt_secret_file = \"{}\"\nproxy = \"{proxy}\"\n",
                secret.display()
            ));
        }
    }
    env.write_config(&config);
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    for (name, _) in &proxies {
        for scheme in ["http", "https"] {
            let key = format!("exalate.queue.count[{name}_{scheme},AllContent,syncrequests]");
            let (reply, took) = agent.timed_get(&key);
            let message = match reply {
                Reply::NotSupported(m) => m,
                Reply::Value(v) => panic!("{key}: a value through a hostile proxy: {v}"),
            };
            println!("{name} proxy, {scheme}: {message} ({took:?})");
            assert!(
                message.starts_with(&format!("node '{name}_{scheme}', relation 'AllContent'")),
                "{message}"
            );
            assert!(
                message.ends_with('.') && !message.contains('\n'),
                "{message}"
            );
            assert!(
                jwt_shaped(&message).is_none(),
                "{name}, {scheme}: a token in {message}"
            );
            assert!(!message.contains(SECRET));
            assert!(took < std::time::Duration::from_secs(3), "{key}: {took:?}");
        }
    }
    // The echoing proxy did get a token: it is in no message.
    assert!(echo.heads().iter().any(|h| jwt_shaped(h).is_some()));
    agent.assert_serving();
}

/// Issue 25's whole-step deadlines, for the items: peers that send a byte
/// every half second and never finish. A proxy trickling its answer to
/// CONNECT (https node) or to an absolute-form request (http node), and,
/// without a proxy, a node trickling its head, its body or its TLS
/// handshake. Each item fails at its timeout (2 s) and says so; a timeout
/// per read would never trip (the CONNECT answer hung for good).
#[test]
fn trickling_proxies_and_nodes_end_at_the_item_timeout() {
    use std::time::Duration;
    let env = Env::new("proxy-trickle");
    let every = Duration::from_millis(500);
    let proxy = Trickle::proxy(every);
    let head = Trickle::start(b"HTTP/1.1 200 OK\r\nX-Trickle: ", b'a', every);
    let body = Trickle::start(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[\"",
        b'a',
        every,
    );
    let tls = Trickle::tls(every);
    let secret = env.dir.join("demo.secret");
    let proxied = format!("proxy = \"http://{}\"", proxy.addr);
    let nodes = [
        (
            "absolute",
            "http://127.0.0.1:9".to_string(),
            proxied.as_str(),
        ),
        ("head", format!("http://{}", head.addr), ""),
        ("body", format!("http://{}", body.addr), ""),
        ("tls", format!("https://{}", tls.addr), ""),
        (
            "connect",
            "https://127.0.0.1:9".to_string(),
            proxied.as_str(),
        ),
    ];
    let mut config = "[defaults]\ncache_ttl = 0\ntimeout = 2\n".to_string();
    for (name, url, extra) in &nodes {
        config.push_str(&format!(
            "[nodes.{name}]\nurl = \"{url}\"\njwt_secret_file = \"{}\"\n{extra}\n",
            secret.display()
        ));
    }
    env.write_config(&config);
    // A listener each: one that hung would not hold up the others.
    let agent = env.start_agent(AgentOptions {
        start_agents: nodes.len() as u32,
        ..AgentOptions::default()
    });
    for (name, _, _) in &nodes {
        let key = format!("exalate.queue.count[{name},AllContent,syncrequests]");
        let (reply, took) = agent.timed_get(&key);
        println!("{name}: {reply:?} ({took:?})");
        let message = reply.error();
        assert!(message.contains("timeout after 2 s"), "{name}: {message}");
        // The item's 2 s and the agent's round trip; under 3 x the
        // timeout, with room for a busy machine.
        assert!(took < Duration::from_secs(6), "{name}: {took:?}");
    }
    agent.assert_serving();
}
