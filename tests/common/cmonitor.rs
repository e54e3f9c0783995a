//! `exalate.node.errors` in every outcome: one config of several nodes, each
//! pointing its `cmonitor_url` at an endpoint that answers one way (a count
//! over Basic and over Bearer, a rejected password, a 403, a malformed,
//! object-less, count-less and non-numeric answer, a hung and a refused
//! endpoint, a world-readable token file, none configured), with the exact
//! value or message each must give through either agent.

use super::*;
use fake_exalate_node::{Cmonitor, CmonitorAuth, FakeNode, NodeConfig};
use std::time::Duration;

/// The Basic password and the bearer token the endpoints take.
pub const CMONITOR_PASSWORD: &str = "cmonitor-password-8c3e1f";
pub const CMONITOR_TOKEN: &str = "cmonitor-bearer-token-2b7d90";
/// `base64("monitor:" + CMONITOR_PASSWORD)`: what the Basic header carries.
pub const CMONITOR_BASIC: &str = "bW9uaXRvcjpjbW9uaXRvci1wYXNzd29yZC04YzNlMWY=";

/// The endpoints, kept running while the test runs.
pub struct CmonitorNodes {
    pub basic: FakeNode,
    pub bearer: FakeNode,
    pub bodies: Vec<FakeNode>,
    pub slow: FakeNode,
    /// (key, Ok(value) or Err(message as the agent shows it)).
    pub cases: Vec<(String, Result<String, String>)>,
}

/// Path of the endpoint below a fake node's URL.
pub const CMONITOR_PATH: &str = "/rest/issuehub/4.0/cmonitor";

/// Writes `env`'s config with one node per outcome and gives the cases.
pub fn cmonitor_config(env: &TestEnv) -> CmonitorNodes {
    for secret in [CMONITOR_PASSWORD, CMONITOR_TOKEN, CMONITOR_BASIC] {
        add_secret(secret);
    }
    let dir = &env.dir;
    write_file(&dir.join("cmonitor.password"), CMONITOR_PASSWORD, 0o640);
    write_file(&dir.join("wrong.password"), "not-the-password-1234", 0o600);
    write_file(
        &dir.join("cmonitor.token"),
        &format!("{CMONITOR_TOKEN}\n"),
        0o600,
    );
    write_file(&dir.join("open.token"), CMONITOR_TOKEN, 0o644);
    let basic_auth = CmonitorAuth::Basic {
        user: "monitor".into(),
        password: CMONITOR_PASSWORD.into(),
    };
    let bearer_auth = CmonitorAuth::Bearer(CMONITOR_TOKEN.into());
    let start = |auth: &CmonitorAuth, n: u64| {
        FakeNode::start(NodeConfig::default().with_cmonitor(Cmonitor::new(auth.clone(), n)))
            .unwrap()
    };
    let basic = start(&basic_auth, 3);
    let bearer = start(&bearer_auth, 0);
    let bodies: Vec<FakeNode> = [
        r#"{"numErrors": "#,
        r#"[{"numErrors": 1}]"#,
        r#"{"errors": 1}"#,
        r#"{"numErrors": "many"}"#,
    ]
    .iter()
    .map(|body| {
        let node = start(&bearer_auth, 0);
        assert!(node.set_cmonitor_body(*body));
        node
    })
    .collect();
    let slow = start(&bearer_auth, 0);
    slow.set_response_delay(Duration::from_secs(4));

    let password = dir.join("cmonitor.password");
    let wrong = dir.join("wrong.password");
    let token = dir.join("cmonitor.token");
    let open = dir.join("open.token");
    let section = |name: &str, url: &str, keys: &str| {
        format!(
            "[nodes.{name}]\nurl = \"{}\"\nrelations = [\"AllContent\"]\njwt_secret_file = \"{}\"\ntimeout = 2\n{}{keys}\n",
            env.node.url(),
            dir.join("demo.secret").display(),
            if url.is_empty() { String::new() } else { format!("cmonitor_url = \"{url}\"\n") },
        )
    };
    let basic_keys = |file: &std::path::Path| {
        format!(
            "cmonitor_user = \"monitor\"\ncmonitor_password_file = \"{}\"\n",
            file.display()
        )
    };
    let bearer_keys =
        |file: &std::path::Path| format!("cmonitor_token_file = \"{}\"\n", file.display());
    let at = |node: &FakeNode| format!("{}{CMONITOR_PATH}", node.url());
    let mut config = String::new();
    config += &section("basic", &at(&basic), &basic_keys(&password));
    config += &section("bearer", &at(&bearer), &bearer_keys(&token));
    config += &section("wrongpw", &at(&basic), &basic_keys(&wrong));
    // The node's queue endpoint wants its JWT, which the monitor never sends.
    let queue_url = format!(
        "{}/rest/issuehub/2.4/relations/AllContent/syncevents/syncrequests",
        env.node.url()
    );
    config += &section("forbidden", &queue_url, &bearer_keys(&token));
    for (name, node) in ["malformed", "array", "nocount", "string"]
        .iter()
        .zip(&bodies)
    {
        config += &section(name, &at(node), &bearer_keys(&token));
    }
    config += &section("slow", &at(&slow), &bearer_keys(&token));
    config += &section(
        "refused",
        "http://127.0.0.1:1/rest/issuehub/4.0/cmonitor",
        &bearer_keys(&token),
    );
    config += &section("open", &at(&bearer), &bearer_keys(&open));
    config += &section("none", "", "");
    env.write_config(&config);

    let expected = "expected {\"numErrors\": N}";
    let ok = |v: &str| Ok(v.to_string());
    let err = |m: String| Err(m);
    let cases = vec![
        ("exalate.node.errors[basic]", ok("3")),
        ("exalate.node.errors[bearer]", ok("0")),
        ("exalate.node.errors[wrongpw]", err(format!(
            "node 'wrongpw', customer monitor: credentials rejected (HTTP 401): check cmonitor_user and the password in cmonitor_password_file {}.",
            wrong.display()
        ))),
        ("exalate.node.errors[forbidden]", err(format!(
            "node 'forbidden', customer monitor: not authenticated (HTTP 403): the endpoint took no credentials from the Authorization header; check the token in cmonitor_token_file {}.",
            token.display()
        ))),
        ("exalate.node.errors[malformed]", err(
            "node 'malformed', customer monitor: malformed JSON: EOF while parsing a value at line 1 column 14.".into()
        )),
        ("exalate.node.errors[array]", err(format!(
            "node 'array', customer monitor: unexpected JSON: an array, {expected}."
        ))),
        ("exalate.node.errors[nocount]", err(format!(
            "node 'nocount', customer monitor: unexpected JSON: no numErrors, {expected}."
        ))),
        ("exalate.node.errors[string]", err(format!(
            "node 'string', customer monitor: unexpected JSON: numErrors is a string, not a non-negative integer, {expected}."
        ))),
        ("exalate.node.errors[slow]", err(
            "node 'slow', customer monitor: timeout after 2 s.".into()
        )),
        ("exalate.node.errors[refused]", err(
            "node 'refused', customer monitor: connection refused.".into()
        )),
        ("exalate.node.errors[open]", err(format!(
            "node 'open', customer monitor: cmonitor_token_file {path}: is readable by others (mode 0644); run: chmod o-rwx {path} (and chown root:zabbix, chmod 0640).",
            path = open.display()
        ))),
        ("exalate.node.errors[none]", err(
            "node 'none': no customer monitor endpoint configured (cmonitor_url): Exalate support enables it on request; set cmonitor_url and its credentials in the node's table.".into()
        )),
        ("exalate.node.errors[basic,extra]", err(
            "wrong number of parameters: exalate.node.errors takes 1, got 2: use exalate.node.errors[<node>].".into()
        )),
        ("exalate.node.errors[staging]", err(
            "unknown node 'staging'; configured nodes: array, basic, bearer, forbidden, malformed, nocount, none, open, refused, slow, string, wrongpw.".into()
        )),
    ];
    CmonitorNodes {
        basic,
        bearer,
        bodies,
        slow,
        cases: cases.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

/// A `-t` output as Ok(value) or Err(message).
pub fn test_outcome(output: &str) -> Result<String, String> {
    let (_, value) = test_value(output);
    match value.strip_prefix("ZBX_NOTSUPPORTED] [") {
        Some(reason) => Err(reason.to_string()),
        None => Ok(value),
    }
}
