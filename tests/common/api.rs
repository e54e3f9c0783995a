//! Exalate's own API (issuehub 4.0) in every outcome: one config of several
//! nodes, each watched with one kind of credentials (Basic, Bearer, a login
//! answering in its header or only in its body) or answering one way (a
//! rejected password or login, a 404, a 500, malformed JSON, no `total`, a
//! string `total`, connections without `results` or a name, a listing too
//! large for `limit=0`, a hang, a refused port, a world-readable token
//! file, no API credentials at all), with the exact value or message each
//! must give through either agent, the module host and the C API.

use super::*;
use fake_exalate_node::{Api, ApiFault, FakeNode, NodeConfig};
use std::path::Path;

/// The password and token the API nodes take (the demo's user).
pub const API_PASSWORD: &str = "api-Pa55 w0rd:\"ü\"-7d1c";
pub const API_TOKEN: &str = "api-pat-NjQ5MTc4OTI0MzQ2-4be1";
pub const API_USER: &str = "zabbix-monitor";

/// What `exalate.node.connections` gives for [`Api::demo_connections`].
pub const DEMO_CONNECTIONS: &str = r#"[{"name":"AllContent","status":"ACTIVE","remote":"https://partner.example.com/jira"},{"name":"Service Desk","status":"ACTIVE","remote":"https://support.example.net"},{"name":"Jira Cloud/EU","status":"DEACTIVATED","remote":"https://eu-tenant.atlassian.net"},{"name":"Zürich Ops","status":"PENDING","remote":"https://zuerich.example.ch/jira"},{"name":"Old Partner","status":"ACTIVE","remote":""},{"name":"Legacy Sync","status":"ERROR","remote":"https://legacy.example.org"}]"#;

/// The API nodes, kept running while the test runs.
pub struct ApiNodes {
    /// Basic, Bearer and the login in its header (the demo API's totals).
    pub node: FakeNode,
    /// The login only in the body, exp in milliseconds.
    pub body_only: FakeNode,
    /// One node per misbehaviour.
    pub faulty: Vec<FakeNode>,
    /// (key, Ok(value) or Err(message as the agent shows it)).
    pub cases: Vec<(String, Result<String, String>)>,
}

impl ApiNodes {
    /// Every request the API nodes received.
    pub fn requests(&self) -> Vec<fake_exalate_node::RecordedRequest> {
        let mut all = self.node.requests();
        all.extend(self.body_only.requests());
        for node in &self.faulty {
            all.extend(node.requests());
        }
        all
    }
}

/// The demo API with the test's password and token.
pub fn test_api() -> Api {
    Api::demo()
        .with_basic(API_USER, API_PASSWORD)
        .with_bearer(API_TOKEN)
}

/// Registers the API's secrets (and Basic's encoding) with the leak audit.
pub fn add_api_secrets() {
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{API_USER}:{API_PASSWORD}"));
    for secret in [API_PASSWORD, API_TOKEN, basic.as_str()] {
        add_secret(secret);
    }
}

/// The `api_*` lines of a node: `kind` is basic, bearer or login.
pub fn api_keys(dir: &Path, kind: &str) -> String {
    let password = dir.join("api.password");
    let token = dir.join("api.token");
    let basic = format!(
        "api_user = \"{API_USER}\"\napi_password_file = \"{}\"\n",
        password.display()
    );
    match kind {
        "basic" => basic,
        "login" => format!("{basic}api_login = true\n"),
        "bearer" => format!("api_token_file = \"{}\"\n", token.display()),
        other => panic!("no API credentials of kind {other}"),
    }
}

/// Writes `env`'s config with one node per outcome and gives the cases.
pub fn api_config(env: &TestEnv) -> ApiNodes {
    add_api_secrets();
    let dir = &env.dir;
    write_file(&dir.join("api.password"), API_PASSWORD, 0o640);
    write_file(&dir.join("api.token"), &format!("{API_TOKEN}\n"), 0o600);
    write_file(&dir.join("wrong.password"), "not-the-password-5678", 0o600);
    write_file(&dir.join("open.token"), API_TOKEN, 0o644);
    let start = |api: Api| FakeNode::start(NodeConfig::default().with_api(api)).unwrap();
    let node = start(test_api());
    let body_only = start(test_api().with_login_body_only().with_login_exp_millis());
    let faults = [
        ("malformed", ApiFault::from_name("malformed").unwrap()),
        ("status500", ApiFault::from_name("status-500").unwrap()),
        ("nototal", ApiFault::MissingTotal),
        ("stringtotal", ApiFault::TotalAsString),
        ("noresults", ApiFault::ResultsNotArray),
        ("noname", ApiFault::ConnectionWithoutName),
        ("listing", ApiFault::from_name("huge").unwrap()),
        ("hang", ApiFault::from_name("hang").unwrap()),
    ];
    let faulty: Vec<FakeNode> = faults
        .iter()
        .map(|(_, fault)| start(test_api().with_fault(*fault)))
        .chain([
            start(test_api().with_login_fault(ApiFault::LoginWithoutToken)),
            FakeNode::start(NodeConfig::default()).unwrap(),
        ])
        .collect();
    let section = |name: &str, url: &str, keys: &str| {
        format!("[nodes.{name}]\nurl = \"{url}\"\ntimeout = 2\n{keys}\n")
    };
    let mut config = String::new();
    for kind in ["basic", "bearer", "login"] {
        config += &section(kind, &node.url(), &api_keys(dir, kind));
    }
    config += &section("bodyonly", &body_only.url(), &api_keys(dir, "login"));
    let wrong = dir.join("wrong.password");
    let with_wrong = |keys: String| {
        keys.replace(
            &dir.join("api.password").display().to_string(),
            &wrong.display().to_string(),
        )
    };
    config += &section("wrongpw", &node.url(), &with_wrong(api_keys(dir, "basic")));
    config += &section(
        "wronglogin",
        &node.url(),
        &with_wrong(api_keys(dir, "login")),
    );
    for ((name, _), faulty) in faults.iter().zip(&faulty) {
        config += &section(name, &faulty.url(), &api_keys(dir, "basic"));
    }
    config += &section(
        "notoken",
        &faulty[faults.len()].url(),
        &api_keys(dir, "login"),
    );
    config += &section(
        "noapi",
        &faulty[faults.len() + 1].url(),
        &api_keys(dir, "basic"),
    );
    config += &section("refused", "http://127.0.0.1:1", &api_keys(dir, "bearer"));
    let open = dir.join("open.token");
    config += &section(
        "open",
        &node.url(),
        &format!("api_token_file = \"{}\"\n", open.display()),
    );
    // The test env's node: relations with their secret, no API keys.
    config += &env.node_section("relations", &[]);
    env.write_config(&config);

    let ok = |v: &str| Ok(v.to_string());
    let err = |m: &str| Err(m.to_string());
    let total = "expected {\"total\": N}";
    let mut cases = vec![];
    for kind in ["basic", "bearer", "login", "bodyonly"] {
        cases.push((format!("exalate.node.queue[{kind},outgoing]"), ok("1500")));
        cases.push((format!("exalate.node.queue[{kind},incoming]"), ok("420")));
        cases.push((
            format!("exalate.node.connections[{kind}]"),
            ok(DEMO_CONNECTIONS),
        ));
        cases.push((format!("exalate.node.ping[{kind}]"), ok("1")));
    }
    cases.extend([
        ("exalate.node.queue[wrongpw,outgoing]".to_string(), Err(format!(
            "node 'wrongpw', API: credentials rejected (HTTP 401): check api_user and the password in api_password_file {}.",
            wrong.display()
        ))),
        ("exalate.node.ping[wrongpw]".into(), ok("0")),
        ("exalate.node.connections[wronglogin]".into(), Err(format!(
            "node 'wronglogin', API: login rejected (HTTP 401): check api_user and the password in api_password_file {}.",
            wrong.display()
        ))),
        ("exalate.node.queue[malformed,incoming]".into(), err(
            "node 'malformed', API: malformed JSON: EOF while parsing a value at line 1 column 19."
        )),
        ("exalate.node.queue[status500,outgoing]".into(), err(
            "node 'status500', API: node error (HTTP 500: {\"message\":\"NullPointerException\"})."
        )),
        ("exalate.node.queue[nototal,outgoing]".into(), Err(format!(
            "node 'nototal', API: unexpected JSON: no total, {total}."
        ))),
        ("exalate.node.queue[stringtotal,incoming]".into(), Err(format!(
            "node 'stringtotal', API: unexpected JSON: total is a string, not a non-negative integer, {total}."
        ))),
        ("exalate.node.connections[noresults]".into(), err(
            "node 'noresults', API: unexpected JSON: results is an object, expected {\"results\": [{\"name\": ..., \"status\": ...}]}."
        )),
        ("exalate.node.connections[noname]".into(), err(
            "node 'noname', API: unexpected JSON: connection 1 has no name, expected {\"results\": [{\"name\": ..., \"status\": ...}]}."
        )),
        ("exalate.node.queue[listing,outgoing]".into(), err(
            "node 'listing', API: response larger than 65536 bytes, the most an answer with limit=0, {\"total\": N} may be."
        )),
        ("exalate.node.queue[hang,outgoing]".into(), err("node 'hang', API: timeout after 2 s.")),
        ("exalate.node.queue[notoken,outgoing]".into(), err(
            "node 'notoken', API: login answered without a token (no X-Exalate-Jwt header, no JWT in the body)."
        )),
        ("exalate.node.queue[noapi,outgoing]".into(), err(
            "node 'noapi', API: no issuehub 4.0 API at url (HTTP 404: {\"message\":\"Not Found\"}): an Exalate older than 4.x, or a wrong url (its base path)."
        )),
        ("exalate.node.connections[refused]".into(), err("node 'refused', API: connection refused.")),
        ("exalate.node.queue[open,outgoing]".into(), Err(format!(
            "node 'open', API: api_token_file {path}: is readable by others (mode 0644); run: chmod o-rwx {path} (and chown root:zabbix, chmod 0640).",
            path = open.display()
        ))),
        ("exalate.node.queue[relations,outgoing]".into(), err(
            "node 'relations': no issuehub 4.0 API credentials configured: set api_user with api_password_file (HTTP Basic; add api_login = true where the node wants a login), or api_token_file (Bearer)."
        )),
        ("exalate.node.queue[basic,sideways]".into(), err(
            "node 'basic': unknown direction 'sideways'; valid directions: outgoing, incoming."
        )),
        ("exalate.node.queue[basic]".into(), err(
            "wrong number of parameters: exalate.node.queue takes 2, got 1: use exalate.node.queue[<node>,<direction>]."
        )),
        ("exalate.queue.count[basic,AllContent,syncrequests]".into(), err(
            "node 'basic', relation 'AllContent', queue syncrequests: no issuehub 2.4 credentials configured (token_file or jwt_secret_file): this node is watched through the 4.0 API only (exalate.node.queue, exalate.node.connections)."
        )),
    ]);
    ApiNodes {
        node,
        body_only,
        faulty,
        cases,
    }
}
