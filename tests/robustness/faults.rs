//! Faults from the node, through the running agent: each item fails with its
//! own message within the timeout plus one second, and the same agent answers
//! `agent.ping` right after. One test per fault.

use crate::common::*;
use std::time::Duration;

/// The node `timeout` of these tests.
const TIMEOUT: Duration = Duration::from_secs(1);
/// What the issue allows on top of it.
const MARGIN: Duration = Duration::from_secs(1);

fn on(node: &str, relation: &str, reason: &str) -> String {
    format!("{}.", prefix(node, relation, reason))
}

fn prefix(node: &str, relation: &str, reason: &str) -> String {
    format!("node '{node}', relation '{relation}', queue syncrequests: {reason}")
}

/// How a fault's message must read.
enum Expect {
    Exactly(String),
    OneOf(Vec<String>),
    StartsWith(String),
}

impl Expect {
    fn check(&self, key: &str, message: &str) {
        match self {
            Expect::Exactly(m) => assert_eq!(message, m, "{key}"),
            Expect::OneOf(ms) => assert!(ms.iter().any(|m| m == message), "{key}: {message}"),
            Expect::StartsWith(m) => assert!(message.starts_with(m.as_str()), "{key}: {message}"),
        }
    }
}

/// A connection the node (or a server) cut short.
fn closed(node: &str, relation: &str) -> Expect {
    Expect::OneOf(vec![
        on(
            node,
            relation,
            "the node closed the connection before the answer was complete",
        ),
        on(node, relation, "connection reset by the node"),
    ])
}

/// A fake node with its fault relations, servers that misbehave each in
/// their own way (nodes `down`, `redirector`, `deep`, `truncated`, `odd`,
/// `thief`), and an agent with the module.
struct Faults {
    env: Env,
    thief: CannedServer,
    redirector: CannedServer,
    _servers: [CannedServer; 3],
    agent: Agent,
    pids: Vec<u32>,
}

impl Faults {
    fn new(name: &str) -> Faults {
        let env = Env::new(&format!("faults-{name}"));
        // A 302 to another listener that must never see a request (it would carry the token).
        let thief = CannedServer::http("200 OK", &[], b"[]");
        let redirector = CannedServer::http(
            "307 Temporary Redirect",
            &[("Location", &format!("{}/steal", thief.url()))],
            b"",
        );
        // An entry holding 10,000 nested arrays: a recursive parser would overflow
        // the agent's stack and kill it.
        let deep_body = format!("[{{\"a\":{}{}}}]", "[".repeat(10_000), "]".repeat(10_000));
        let deep = CannedServer::http("200 OK", &[], deep_body.as_bytes());
        // Content-Length promises more than comes before the close.
        let truncated = CannedServer::start(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[{\"syncEventId\":1}".to_vec(),
        );
        // A 500 whose body is binary, multi-line and long.
        let mut odd = b"\x00\x01\xff\xfe<b>boom</b>\x1b[31m\r\nsecond line\n".to_vec();
        odd.extend(std::iter::repeat_n(b'x', 10_000));
        let odd500 = CannedServer::http("500 Internal Server Error", &[], &odd);
        let refused = format!("http://127.0.0.1:{}", free_port());

        let secret = env.dir.join("demo.secret");
        let plain = |name: &str, url: &str| {
            format!(
                "[nodes.{name}]\nurl = \"{url}\"\njwt_secret_file = \"{}\"\n",
                secret.display()
            )
        };
        env.write_config(&format!(
            "{}{}{}{}{}{}{}",
            env.config(
                &[
                    "timeout = 1",
                    "cache_ttl = 0",
                    "max_response_bytes = 1048576"
                ],
                &[]
            ),
            plain("down", &refused),
            plain("redirector", &redirector.url()),
            plain("deep", &deep.url()),
            plain("truncated", &truncated.url()),
            plain("odd", &odd500.url()),
            plain("thief", &thief.url()),
        ));
        let agent = env.start_agent(AgentOptions {
            start_agents: 1,
            ..AgentOptions::default()
        });
        let pids = agent.process_ids();
        Faults {
            env,
            thief,
            redirector,
            _servers: [deep, truncated, odd500],
            agent,
            pids,
        }
    }

    /// `key` fails as `expect` says, on one line, within the timeout plus
    /// one second; the agent goes on serving, every process the same.
    /// Returns the message.
    fn check(&mut self, key: &str, expect: Expect) -> String {
        let (reply, took) = self.agent.timed_get(key);
        let message = reply.error().to_string();
        expect.check(key, &message);
        assert!(
            !message.chars().any(char::is_control),
            "{key}: one line: {message:?}"
        );
        assert!(
            took < TIMEOUT + MARGIN,
            "{key} took {took:?}, over timeout + 1 s"
        );
        eprintln!("{:>6} ms  {key}", took.as_millis());
        self.agent.assert_serving();
        assert!(self.agent.is_running());
        assert_eq!(
            self.agent.process_ids(),
            self.pids,
            "an agent process died or was replaced"
        );
        message
    }

    /// `exalate.queue.count[demo,RELATION,syncrequests]` fails with `reason`.
    fn count(&mut self, relation: &str, reason: &str) {
        let key = format!("exalate.queue.count[demo,{relation},syncrequests]");
        self.check(&key, Expect::Exactly(on("demo", relation, reason)));
    }
}

/// A test per fault relation of the node whose count fails with `reason`.
macro_rules! count_fails {
    ($($test:ident: $relation:literal => $reason:expr;)*) => {$(
        #[test]
        fn $test() {
            Faults::new($relation).count($relation, $reason);
        }
    )*};
}

count_fails! {
    hang: "fault-hang" => "timeout after 1 s";
    headers_stall: "fault-headers-stall" => "timeout after 1 s";
    slow_body: "fault-slow-body" => "timeout after 1 s";
    status_400: "fault-status-400" => "relation not found on the node (HTTP 400: Bad Request: the request could not be understood by the server)";
    status_403: "fault-status-403" => "not authenticated (HTTP 403): the node saw no credentials; check auth_header (sent: X-Exalate-Jwt)";
    status_404: "fault-status-404" => "no issuehub 2.4 API at url (HTTP 404: 404 Not Found): check url (its base path, e.g. /jira)";
    status_500: "fault-status-500" => "node error (HTTP 500: {\"message\":\"NullPointerException\"})";
    status_502: "fault-status-502" => "node error (HTTP 502: 502 Bad Gateway)";
    status_503: "fault-status-503" => "node error (HTTP 503: 503 Service Unavailable)";
    redirect: "fault-redirect" => "unexpected redirect (HTTP 302); redirects are not followed: check url";
    malformed: "fault-malformed" => "malformed JSON: EOF while parsing a value at line 1 column 19";
    empty: "fault-empty" => "malformed JSON: EOF while parsing a value at line 1 column 0";
    not_array: "fault-not-array" => "unexpected JSON: invalid type: map, expected a JSON array of queue entries at line 1 column 2";
    wrong_type: "fault-wrong-type" => "unexpected JSON: invalid type: integer `1`, expected entry 0 to be a JSON object at line 1 column 3";
    deep_entry: "fault-deep" => "unexpected JSON: invalid type: sequence, expected entry 0 to be a JSON object at line 1 column 3";
    invalid_utf8: "fault-invalid-utf8" => "malformed JSON: the response is not valid UTF-8";
    huge: "fault-huge" => "response larger than max_response_bytes (1048576 bytes)";
    huge_chunked: "fault-huge-chunked" => "response larger than max_response_bytes (1048576 bytes)";
}

#[test]
fn status_401() {
    let mut f = Faults::new("status-401");
    let reason = format!(
        "credentials rejected (HTTP 401): check jwt_secret_file {}, jwt_issuer, jwt_user and jwt_exp_unit against the node's connection",
        f.env.dir.join("demo.secret").display()
    );
    f.count("fault-status-401", &reason);
}

#[test]
fn connection_refused() {
    Faults::new("refused").check(
        "exalate.queue.count[down,AllContent,syncrequests]",
        Expect::Exactly(on("down", "AllContent", "connection refused")),
    );
}

/// One deadline bounds every request of an item: stats and get too. Stats
/// asks six queues: failing alike, they name none.
#[test]
fn hang_bounds_stats() {
    Faults::new("hang-stats").check(
        "exalate.relation.stats[demo,fault-hang]",
        Expect::Exactly("node 'demo', relation 'fault-hang': timeout after 1 s.".into()),
    );
}

#[test]
fn hang_bounds_get() {
    Faults::new("hang-get").check(
        "exalate.queue.get[demo,fault-hang,syncrequests]",
        Expect::Exactly(on("demo", "fault-hang", "timeout after 1 s")),
    );
}

#[test]
fn reset() {
    Faults::new("reset").check(
        "exalate.queue.count[demo,fault-reset,syncrequests]",
        closed("demo", "fault-reset"),
    );
}

#[test]
fn drop_connection() {
    Faults::new("drop").check(
        "exalate.queue.count[demo,fault-drop,syncrequests]",
        closed("demo", "fault-drop"),
    );
}

#[test]
fn truncated_body() {
    Faults::new("truncated").check(
        "exalate.queue.count[truncated,AllContent,syncrequests]",
        closed("truncated", "AllContent"),
    );
}

/// The redirect is reported, not followed: the token never goes elsewhere.
#[test]
fn redirect_to_another_host_is_not_followed() {
    let mut f = Faults::new("redirector");
    f.check(
        "exalate.queue.count[redirector,AllContent,syncrequests]",
        Expect::Exactly(on(
            "redirector",
            "AllContent",
            "unexpected redirect (HTTP 307); redirects are not followed: check url",
        )),
    );
    assert_eq!(f.redirector.heads().len(), 1);
    assert!(
        f.redirector.heads()[0]
            .to_ascii_lowercase()
            .contains("x-exalate-jwt: "),
        "the redirector was asked with credentials"
    );
    assert!(f.thief.heads().is_empty(), "a redirect was followed");
    let stolen = f
        .env
        .node
        .requests()
        .iter()
        .filter(|r| r.raw_path.contains("steal"))
        .count();
    assert_eq!(stolen, 0);
}

/// 10,000 nested arrays: a recursion limit, not a stack overflow.
#[test]
fn deep_nesting_get() {
    Faults::new("deep-get").check(
        "exalate.queue.get[deep,AllContent,syncrequests]",
        Expect::StartsWith(prefix(
            "deep",
            "AllContent",
            "malformed JSON: recursion limit exceeded",
        )),
    );
}

#[test]
fn deep_nesting_count() {
    Faults::new("deep-count").check(
        "exalate.queue.count[deep,AllContent,syncrequests]",
        Expect::StartsWith(prefix(
            "deep",
            "AllContent",
            "malformed JSON: recursion limit exceeded",
        )),
    );
}

/// A binary, multi-line, long 500 body becomes one short, printable line.
#[test]
fn odd_500_body() {
    let odd_message = Faults::new("odd").check(
        "exalate.queue.count[odd,AllContent,syncrequests]",
        Expect::StartsWith(prefix("odd", "AllContent", "node error (HTTP 500: ")),
    );
    assert!(odd_message.contains("boom"), "{odd_message}");
    assert!(!odd_message.contains("500:  "), "trimmed: {odd_message}");
    assert!(odd_message.len() < 400, "{odd_message}");
}

/// Errors from counting and from stats read the same for a parse failure
/// (stats names no queue: all six failed alike).
#[test]
fn malformed_stats() {
    Faults::new("malformed-stats").check(
        "exalate.relation.stats[demo,fault-malformed]",
        Expect::Exactly(
            "node 'demo', relation 'fault-malformed': malformed JSON: EOF while parsing a value at line 1 column 19."
                .into(),
        ),
    );
}

/// A panic inside the module (test builds only) fails that one item with a
/// message; the same process goes on serving.
#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fault-injection"
)]
fn an_injected_panic_fails_one_item_and_the_agent_keeps_serving() {
    let env = Env::new("panic");
    let mut agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    let pids = agent.process_ids();
    for _ in 0..3 {
        let reply = agent.get("exalate.queue.count[demo,exalate-test-panic,syncrequests]");
        assert_eq!(
            reply.error(),
            "internal error in the exalate module (injected panic for relation exalate-test-panic); the agent goes on."
        );
        agent.assert_serving();
        // The one listener that panicked serves the module's items as before.
        assert_eq!(
            agent.get("exalate.queue.count[demo,AllContent,syncrequests]"),
            Reply::Value("3".into())
        );
        let stats = agent.get("exalate.relation.stats[demo,AllContent]");
        assert!(
            stats.value().starts_with("{\"syncrequests\":3,"),
            "{stats:?}"
        );
    }
    assert!(agent.is_running());
    assert_eq!(agent.process_ids(), pids);
}

/// Threads of process `pid` named `name` (/proc/PID/task/*/comm).
fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|comm| comm.trim_end() == name)
                .count()
        })
        .unwrap_or(0)
}

/// Issue 21: a host name whose lookup never answers (test builds: a name
/// under `dead-dns.exalate-test` blocks for good), asked every 0.5 s for
/// longer than the 5 s a failure is kept: each agent process holds one
/// lookup thread, not one more every 5 s.
#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fault-injection (a lookup that never answers)"
)]
fn a_dns_server_that_never_answers_holds_one_lookup_thread_per_process() {
    let env = Env::new("faults-dead-dns");
    env.write_config(&format!(
        "[nodes.dead]\nurl = \"http://module.dead-dns.exalate-test:8080\"\nrelations = [\"R\"]\njwt_secret_file = \"{}\"\ntimeout = 1\n",
        env.dir.join("demo.secret").display()
    ));
    let agent = env.start_agent(AgentOptions {
        start_agents: 1,
        ..AgentOptions::default()
    });
    let started = std::time::Instant::now();
    let mut most = 0;
    while started.elapsed() < Duration::from_secs(12) {
        let reply = agent.get("exalate.queue.count[dead,R,syncrequests]");
        assert!(matches!(reply, Reply::NotSupported(_)), "{reply:?}");
        let counts: Vec<usize> = agent
            .process_ids()
            .into_iter()
            .map(|pid| threads_named(pid, "exalate-dns"))
            .collect();
        most = most.max(counts.into_iter().max().unwrap_or(0));
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("lookup threads in an agent process over 12 s: at most {most}");
    assert_eq!(most, 1, "one lookup of a host at a time");
}
