use super::*;

fn parse(text: &str) -> Result<Config> {
    Config::parse(Path::new("/etc/x.toml"), text)
}

const GOOD: &str = r#"
[defaults]
timeout = 3
cache_ttl = 5
cache_max_bytes = 1048576

[nodes.prod]
url = "https://jira.example.com/jira/"
relations = ["AllContent", "Service Desk"]
jwt_secret_file = "/etc/zabbix/exalate/prod.secret"
jwt_user = "zabbix"
jwt_exp_unit = "s"
auth_header = "Authorization"

[nodes.test]
url = "http://127.0.0.1:8080"
token_file = "/t.jwt"
timeout = 7
cache_max_bytes = 0
"#;

/// Issue 21: the duplicate check was quadratic (60,000 relations took
/// 5.8 s, under the config lock). Six times the relations must cost
/// about six times as long, not 36 (a ratio, with room for a busy machine).
#[test]
fn many_relations_parse_in_linear_time() {
    let config = |n: usize| {
        let names: Vec<String> = (0..n).map(|i| format!("\"relation-{i}\"")).collect();
        format!(
            "[nodes.n]\nurl = \"http://127.0.0.1:1\"\ntoken_file = \"/t\"\nrelations = [{}]\n",
            names.join(", ")
        )
    };
    let timed = |n: usize| {
        let text = config(n);
        (0..2)
            .map(|_| {
                let started = std::time::Instant::now();
                let parsed = parse(&text).unwrap();
                assert_eq!(parsed.nodes["n"].relations.len(), n);
                started.elapsed()
            })
            .min()
            .unwrap()
    };
    let small = timed(10_000);
    let large = timed(60_000);
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
    println!("10,000 relations: {small:?}; 60,000: {large:?}; ratio {ratio:.1}");
    assert!(
        ratio < 18.0,
        "10,000 relations: {small:?}; 60,000: {large:?}"
    );
}

#[test]
fn a_config_file_over_the_size_limit_is_refused() {
    use crate::fs::MAX_CONFIG_BYTES;
    let dir = std::env::temp_dir().join(format!("exalate-config-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.toml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_CONFIG_BYTES + 1).unwrap();
    let e = Config::load(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(
        e.message(),
        format!(
            "config {}: larger than 16 MiB ({MAX_CONFIG_BYTES} bytes), the most a config file may be",
            path.display()
        )
    );
    // At the limit it is read (and then found not to be TOML text).
    file.set_len(MAX_CONFIG_BYTES).unwrap();
    assert!(!Config::load(&path)
        .unwrap_err()
        .message()
        .contains("larger than"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parses_the_contract_example() {
    let c = parse(GOOD).unwrap();
    let prod = c.node("prod").unwrap();
    assert_eq!(prod.url, "https://jira.example.com/jira");
    assert_eq!(prod.relations, ["AllContent", "Service Desk"]);
    assert_eq!(prod.timeout, Some(Duration::from_secs(3)));
    assert_eq!(prod.cache_ttl, Duration::from_secs(5));
    assert_eq!(prod.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
    assert_eq!(prod.cache_max_bytes, 1 << 20);
    assert_eq!(c.node("test").unwrap().cache_max_bytes, 0);
    match &prod.auth {
        Some(Credential::MintedJwt {
            issuer,
            user,
            ttl,
            exp_unit,
            header,
            ..
        }) => {
            assert_eq!(issuer, "EXALATE");
            assert_eq!(user.as_deref(), Some("zabbix"));
            assert_eq!(*ttl, Duration::from_secs(60));
            assert_eq!(*exp_unit, ExpUnit::Seconds);
            assert_eq!(*header, AuthHeader::Bearer);
        }
        other => panic!("{other:?}"),
    }
    let test = c.node("test").unwrap();
    assert_eq!(test.timeout, Some(Duration::from_secs(7)));
    assert_eq!(
        test.auth,
        Some(Credential::Token {
            file: "/t.jwt".into(),
            header: AuthHeader::XExalateJwt
        })
    );
    assert_eq!(test.api, None);
}

fn err(text: &str) -> String {
    let e = parse(text).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    e.message().to_string()
}

#[test]
fn unknown_key_names_path_and_line() {
    let m = err("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\ntmeout = 3\n");
    assert!(m.starts_with("config /etc/x.toml line 4: "), "{m}");
    assert!(m.contains("tmeout"), "{m}");
}

#[test]
fn bad_toml_names_line() {
    let m = err("[nodes.a]\nurl = \n");
    assert!(m.starts_with("config /etc/x.toml line 2: "), "{m}");
}

#[test]
fn wrong_type_names_line() {
    let m = err("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\nrelations = \"AllContent\"\n");
    assert!(m.starts_with("config /etc/x.toml line 4: "), "{m}");
}

#[test]
fn auth_must_be_exactly_one() {
    assert!(err("[nodes.a]\nurl = \"http://x\"\n").contains("no credentials"));
    assert!(
        err("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\njwt_secret_file = \"/s\"\n")
            .contains("exactly one")
    );
    assert!(
        err("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\njwt_user = \"u\"\n")
            .contains("line 4: node 'a': jwt_user applies only with jwt_secret_file")
    );
}

#[test]
fn url_is_checked_without_echoing_credentials() {
    let m = err("[nodes.a]\nurl = \"https://bob:hunter2@x\"\ntoken_file = \"/t\"\n");
    assert!(m.contains("line 2") && m.contains("credentials"), "{m}");
    assert!(!m.contains("hunter2"), "{m}");
    assert!(
        err("[nodes.a]\nurl = \"jira.example.com\"\ntoken_file = \"/t\"\n")
            .contains("http:// or https://")
    );
}

#[test]
fn values_are_range_checked() {
    assert!(
        err("[defaults]\ntimeout = 0\n[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\n")
            .contains("line 2: node 'a': timeout must be 1 to 30")
    );
    assert!(err(
        "[nodes.a]\nurl = \"http://x\"\njwt_secret_file = \"/t\"\njwt_exp_unit = \"us\"\n"
    )
    .contains("line 4: node 'a': jwt_exp_unit is not \"ms\" or \"s\""));
    assert!(
        err("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\nauth_header = \"Cookie\"\n")
            .contains(
                "line 4: node 'a': auth_header is not \"X-Exalate-Jwt\" or \"Authorization\""
            )
    );
    assert!(err("").contains("no [nodes.NAME]"));
}

#[test]
fn relation_names_are_unique_non_empty_and_printable() {
    let node = |relations: &str| {
        format!("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\nrelations = [\n{relations}]\n")
    };
    assert_eq!(
        err(&node("  \"A\",\n  \"B\",\n  \"A\",\n")),
        "config /etc/x.toml line 7: node 'a': relations: 'A' is listed twice"
    );
    assert_eq!(
        err(&node("\"A\", \"\"\n")),
        "config /etc/x.toml line 5: node 'a': relations: a relation name is empty"
    );
    assert_eq!(
        err(&node("\"A\",\n\"x\\u0000y\"\n")),
        "config /etc/x.toml line 6: node 'a': relations: 'x\\u{0}y' holds a control character"
    );
    assert!(err(&node("\"tab\\there\"")).contains("holds a control character"));
    // Names differing only in case or spaces are distinct relations.
    let ok = parse(&node("\"A\", \"a\", \"A \", \"Jira Cloud/EU\"")).unwrap();
    assert_eq!(ok.nodes["a"].relations, ["A", "a", "A ", "Jira Cloud/EU"]);
}

/// Issue 19: a relation written as a table brings its own credentials.
#[test]
fn a_relation_table_overrides_the_node_auth() {
    let c = parse(
        "[nodes.msp]\nurl = \"http://x\"\njwt_secret_file = \"/msp.secret\"\njwt_user = \"z\"\n\
         relations = [\"AllContent\", { name = \"Service Desk\", jwt_secret_file = \"/sd.secret\" },\n\
         { name = \"Claims\", jwt_exp_unit = \"s\", auth_header = \"Authorization\" },\n\
         { name = \"Static\", token_file = \"/t.jwt\" }]\n",
    )
    .unwrap();
    let n = &c.nodes["msp"];
    assert_eq!(
        n.relations,
        ["AllContent", "Service Desk", "Claims", "Static"]
    );
    assert!(n.own_auth);
    assert_eq!(n.ping_relation(), "AllContent");
    let secret = |r: &str| match n.credential(r) {
        Some(Credential::MintedJwt {
            file,
            user,
            exp_unit,
            ..
        }) => (file.display().to_string(), user.clone(), *exp_unit),
        other => panic!("{other:?}"),
    };
    let header = |r: &str| match n.credential(r) {
        Some(Credential::MintedJwt { header, .. } | Credential::Token { header, .. }) => *header,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        secret("AllContent"),
        ("/msp.secret".into(), Some("z".into()), ExpUnit::Millis)
    );
    assert_eq!(secret("not listed").0, "/msp.secret");
    // Its own secret: none of the node's claims.
    assert_eq!(
        secret("Service Desk"),
        ("/sd.secret".into(), None, ExpUnit::Millis)
    );
    // No source of its own: the node's, with the keys it overrides.
    assert_eq!(
        secret("Claims"),
        ("/msp.secret".into(), Some("z".into()), ExpUnit::Seconds)
    );
    assert_eq!(header("Claims"), AuthHeader::Bearer);
    assert_eq!(header("Service Desk"), AuthHeader::XExalateJwt);
    assert_eq!(
        n.credential("Static"),
        Some(&Credential::Token {
            file: "/t.jwt".into(),
            header: AuthHeader::XExalateJwt
        })
    );
}

#[test]
fn the_node_auth_is_optional_when_every_relation_has_its_own() {
    let c = parse(
        "[nodes.a]\nurl = \"http://x\"\nauth_header = \"Authorization\"\n\
         relations = [{ name = \"R1\", jwt_secret_file = \"/r1\" }, { name = \"R2\", token_file = \"/r2\" }]\n",
    )
    .unwrap();
    let n = &c.nodes["a"];
    assert!(!n.own_auth);
    // ping: the first relation, with its credentials.
    assert_eq!(n.ping_relation(), "R1");
    assert_eq!(n.auth.as_ref(), n.credential("R1"));
    assert!(matches!(
        n.credential("R2"),
        Some(Credential::Token {
            header: AuthHeader::Bearer,
            ..
        })
    ));
    // Every relation has its own, the node too: ping asks none of them.
    let c = parse(
        "[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\n\
         relations = [{ name = \"R1\", jwt_secret_file = \"/r1\" }]\n",
    )
    .unwrap();
    assert_eq!(c.nodes["a"].ping_relation(), PING_RELATION);
}

#[test]
fn relation_auth_errors_name_the_relation_and_line() {
    let node = |lines: &str| format!("[nodes.a]\nurl = \"http://x\"\n{lines}\n");
    assert_eq!(
        err(&node("relations = [\"R1\",\n  { name = \"R2\", jwt_secret_file = \"/s\" }]")),
        "config /etc/x.toml line 1: node 'a': no credentials for relation 'R1': set token_file or \
         jwt_secret_file on the node, or write the relation as { name = \"R1\", jwt_secret_file = \"...\" }"
    );
    assert_eq!(
        err(&node("token_file = \"/t\"\nrelations = [\"R1\",\n  { name = \"R2\", jwt_secret_file = \"/s\", token_file = \"/t2\" }]")),
        "config /etc/x.toml line 5: node 'a': relation 'R2': set exactly one of token_file and jwt_secret_file, not both"
    );
    assert_eq!(
        err(&node("relations = [\n  { name = \"R2\", token_file = \"/t\",\n jwt_user = \"u\" }]")),
        "config /etc/x.toml line 5: node 'a': relation 'R2': jwt_user applies only with jwt_secret_file, but token_file is set"
    );
    assert_eq!(
        err(&node("relations = [\n  { name = \"R2\", jwt_secret_file = \"/s\",\n jwt_exp_unit = \"us\" }]")),
        "config /etc/x.toml line 5: node 'a': relation 'R2': jwt_exp_unit is not \"ms\" or \"s\""
    );
    assert_eq!(
        err(&node(
            "relations = [\n  { name = \"R2\", jwt_secret_file = \"/s\", jwt_ttl = 1 }]"
        )),
        "config /etc/x.toml line 4: node 'a': relation 'R2': jwt_ttl must be 10 to 86400 seconds"
    );
    assert_eq!(
        err(&node("relations = [\n  { name = \"R2\", jwt_secret_file = \"/s\", auth_header = \"Cookie\" }]")),
        "config /etc/x.toml line 4: node 'a': relation 'R2': auth_header is not \"X-Exalate-Jwt\" or \"Authorization\""
    );
    // A key only a node has, a table without a name, a duplicate.
    let m = err(&node(
        "token_file = \"/t\"\nrelations = [\n  { name = \"R2\", timeout = 3 }]",
    ));
    assert!(
        m.starts_with("config /etc/x.toml line 5: ") && m.contains("unknown field `timeout`"),
        "{m}"
    );
    let m = err(&node(
        "token_file = \"/t\"\nrelations = [\n  { jwt_secret_file = \"/s\" }]",
    ));
    assert!(
        m.starts_with("config /etc/x.toml line 5: ") && m.contains("missing field `name`"),
        "{m}"
    );
    assert_eq!(
        err(&node("token_file = \"/t\"\nrelations = [\"R\",\n  { name = \"R\", jwt_secret_file = \"/s\" }]")),
        "config /etc/x.toml line 5: node 'a': relations: 'R' is listed twice"
    );
    let m = err(&node("token_file = \"/t\"\nrelations = [3]"));
    assert!(
        m.contains("line 4") && m.contains("a relation name, or a table"),
        "{m}"
    );
    // The node's own keys are checked even when every relation has its own:
    // a jwt_* key would apply to nothing.
    assert_eq!(
        err(&node("jwt_exp_unit = \"s\"\nrelations = [{ name = \"R\", token_file = \"/t\" }]")),
        "config /etc/x.toml line 3: node 'a': jwt_exp_unit applies only with the node's jwt_secret_file, \
         and every relation has its own credentials: set it in the relations' tables"
    );
    assert!(err(&node(
        "auth_header = \"Cookie\"\nrelations = [{ name = \"R\", token_file = \"/t\" }]"
    ))
    .contains("line 3: node 'a': relation 'R': auth_header is not"));
    // Neither the node nor any relation.
    assert!(err(&node("")).contains("no credentials: set token_file or jwt_secret_file"));
}

#[test]
fn proxy_from_defaults_or_the_node() {
    let c = parse(
        "[defaults]\nproxy = \"http://proxy.example.com:3128/\"\n\
         [nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\n\
         [nodes.b]\nurl = \"https://y\"\ntoken_file = \"/t\"\nproxy = \"http://10.0.0.1:8080\"\n",
    )
    .unwrap();
    assert_eq!(
        c.nodes["a"].proxy.as_deref(),
        Some("http://proxy.example.com:3128")
    );
    assert_eq!(c.nodes["b"].proxy.as_deref(), Some("http://10.0.0.1:8080"));
    assert_eq!(parse(GOOD).unwrap().nodes["prod"].proxy, None);
    let bad = |proxy: &str| {
        err(&format!(
            "[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\nproxy = \"{proxy}\"\n"
        ))
    };
    assert!(
        bad("proxy.example.com:3128").contains("line 4: node 'a': proxy must start with http://")
    );
    assert!(bad("socks5://p:1080").contains("must start with http://"));
    let m = bad("http://bob:hunter2@p:3128");
    assert!(
        m.contains("must not contain credentials") && !m.contains("hunter2"),
        "{m}"
    );
    for v6 in ["http://[::1]", "http://[fd00::1]:3128"] {
        let c = parse(&format!(
            "[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\nproxy = \"{v6}\"\n"
        ))
        .unwrap();
        assert_eq!(c.nodes["a"].proxy.as_deref(), Some(v6));
    }
    assert!(bad("http://[::1]x").contains("is not http://host or http://host:port"));
    assert!(bad("http://p:99999").contains("proxy is not http://host or http://host:port"));
    assert!(bad("http://p/path").contains("is not http://host"));
    assert!(bad("http://").contains("is not http://host"));
}

#[test]
fn cmonitor_needs_exactly_one_kind_of_its_own_credentials() {
    let node = |keys: &str| format!("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\n{keys}");
    let url = "cmonitor_url = \"https://a.exalate.cloud/rest/issuehub/4.0/cmonitor/\"\n";
    let basic = parse(&node(&format!(
        "{url}cmonitor_user = \"monitor\"\ncmonitor_password_file = \"/p\"\n"
    )))
    .unwrap();
    assert_eq!(
        basic.nodes["a"].cmonitor,
        Some(CmonitorConfig {
            url: "https://a.exalate.cloud/rest/issuehub/4.0/cmonitor".into(),
            auth: Credential::Basic {
                user: "monitor".into(),
                password_file: "/p".into(),
                keys: Keys::Cmonitor,
            }
        })
    );
    let bearer = parse(&node(&format!("{url}cmonitor_token_file = \"/k\"\n"))).unwrap();
    assert_eq!(
        bearer.nodes["a"].cmonitor.as_ref().unwrap().auth,
        Credential::Bearer {
            token_file: "/k".into(),
            keys: Keys::Cmonitor,
        }
    );
    assert_eq!(parse(&node("")).unwrap().nodes["a"].cmonitor, None);
    assert_eq!(
        err(&node(url)),
        "config /etc/x.toml line 4: node 'a': cmonitor_url needs credentials: cmonitor_user with cmonitor_password_file, or cmonitor_token_file"
    );
    assert_eq!(
        err(&node(&format!("{url}cmonitor_user = \"m\"\n"))),
        "config /etc/x.toml line 5: node 'a': cmonitor_user needs cmonitor_password_file (HTTP Basic)"
    );
    assert_eq!(
        err(&node(&format!("{url}cmonitor_password_file = \"/p\"\n"))),
        "config /etc/x.toml line 5: node 'a': cmonitor_password_file needs cmonitor_user (HTTP Basic)"
    );
    assert_eq!(
        err(&node(&format!(
            "{url}cmonitor_user = \"m\"\ncmonitor_password_file = \"/p\"\ncmonitor_token_file = \"/k\"\n"
        ))),
        "config /etc/x.toml line 7: node 'a': set either cmonitor_user with cmonitor_password_file or cmonitor_token_file, not both"
    );
    assert_eq!(
        err(&node("cmonitor_token_file = \"/k\"\n")),
        "config /etc/x.toml line 4: node 'a': cmonitor_token_file applies only with cmonitor_url, which is not set"
    );
    assert!(err(&node(&format!(
        "{url}cmonitor_user = \"a:b\"\ncmonitor_password_file = \"/p\"\n"
    )))
    .contains("line 5: node 'a': cmonitor_user must be non-empty, without ':'"));
    let m = err(&node(
        "cmonitor_url = \"https://bob:hunter2@x/cmonitor\"\ncmonitor_token_file = \"/k\"\n",
    ));
    assert_eq!(
        m,
        "config /etc/x.toml line 4: node 'a': cmonitor_url must not contain credentials (user:password@); use cmonitor_user or cmonitor_token_file"
    );
    assert!(err(&node(
        "cmonitor_url = \"ftp://x/cmonitor\"\ncmonitor_token_file = \"/k\"\n"
    ))
    .contains("line 4: node 'a': cmonitor_url must start with http:// or https://"));
}

#[test]
fn node_lookup() {
    let c = parse(GOOD).unwrap();
    let e = c.node("").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownNode);
    assert!(e.message().contains("prod, test"), "{e}");
    let e = c.node("staging").unwrap_err();
    assert_eq!(
        e.message(),
        "unknown node 'staging'; configured nodes: prod, test"
    );
    let one = parse("[nodes.only]\nurl = \"http://x\"\ntoken_file = \"/t\"\n").unwrap();
    assert_eq!(one.node("").unwrap().name, "only");
}

#[test]
fn missing_file_says_so() {
    let e = Config::load(Path::new("/nonexistent/exalate.toml")).unwrap_err();
    assert_eq!(
        e.message(),
        "config /nonexistent/exalate.toml: cannot read: No such file or directory (create it, or set EXALATE_ZABBIX_CONFIG)"
    );
}

/// Issue 24: the 4.0 API's credentials, each kind and every wrong
/// combination an error with its line.
#[test]
fn api_credentials_are_one_kind_of_three() {
    let node = |keys: &str| format!("[nodes.a]\nurl = \"http://x\"\ntoken_file = \"/t\"\n{keys}");
    let api = |keys: &str| parse(&node(keys)).unwrap().nodes["a"].api.clone();
    assert_eq!(
        api("api_user = \"zabbix\"\napi_password_file = \"/p\"\n"),
        Some(Credential::Basic {
            user: "zabbix".into(),
            password_file: "/p".into(),
            keys: Keys::Api
        })
    );
    assert_eq!(
        api("api_user = \"zabbix\"\napi_password_file = \"/p\"\napi_login = false\n"),
        api("api_user = \"zabbix\"\napi_password_file = \"/p\"\n")
    );
    assert_eq!(
        api("api_user = \"a:b\"\napi_password_file = \"/p\"\napi_login = true\n"),
        Some(Credential::Login {
            user: "a:b".into(),
            password_file: "/p".into()
        })
    );
    assert_eq!(
        api("api_token_file = \"/k\"\n"),
        Some(Credential::Bearer {
            token_file: "/k".into(),
            keys: Keys::Api
        })
    );
    assert_eq!(api(""), None);
    for (keys, message) in [
        ("api_user = \"u\"\n", "line 4: node 'a': api_user needs api_password_file (HTTP Basic)"),
        ("api_password_file = \"/p\"\n", "line 4: node 'a': api_password_file needs api_user (HTTP Basic)"),
        (
            "api_user = \"u\"\napi_password_file = \"/p\"\napi_token_file = \"/k\"\n",
            "line 6: node 'a': set either api_user with api_password_file or api_token_file, not both",
        ),
        ("api_login = true\n", "line 4: node 'a': api_login applies only with api_user and api_password_file"),
        (
            "api_token_file = \"/k\"\napi_login = true\n",
            "line 5: node 'a': api_login applies only with api_user and api_password_file, not with api_token_file",
        ),
        (
            "api_user = \"a:b\"\napi_password_file = \"/p\"\n",
            "line 4: node 'a': api_user must be non-empty, without ':' or control characters",
        ),
        ("api_login = \"yes\"\n", "line 4: invalid type: string, expected a boolean"),
    ] {
        let m = err(&node(keys));
        assert!(m.contains(message), "{keys:?}: {m}");
    }
}

/// Issue 24: a node watched with a Jira user only: no relations, no 2.4
/// credentials; a 2.4 key there applies to nothing.
#[test]
fn a_node_may_have_only_api_credentials() {
    let c = parse(
        "[nodes.onprem]\nurl = \"https://jira2.example.com\"\napi_user = \"zabbix-monitor\"\n\
         api_password_file = \"/etc/zabbix/exalate/onprem.api\"\n",
    )
    .unwrap();
    let n = &c.nodes["onprem"];
    assert_eq!((n.auth.as_ref(), n.relations.len()), (None, 0));
    assert!(n.api.is_some());
    let only_api = "[nodes.a]\nurl = \"http://x\"\napi_token_file = \"/k\"\n";
    assert!(
        err(&format!("{only_api}jwt_user = \"u\"\n")).contains(
            "line 4: node 'a': jwt_user applies only with the node's jwt_secret_file, which is not set (the node has no relations)"
        )
    );
    assert!(err(&format!("{only_api}auth_header = \"Cookie\"\n"))
        .contains("line 4: node 'a': auth_header is not"));
    // Relations still need 2.4 credentials, API or not.
    assert!(err(&format!("{only_api}relations = [\"R\"]\n"))
        .contains("no credentials: set token_file or jwt_secret_file"));
    let m = err("[nodes.a]\nurl = \"http://x\"\n");
    assert!(
        m.contains("api_user with api_password_file, or api_token_file"),
        "{m}"
    );
}

/// Issue 25: a port that is not a port sends the token elsewhere; it is a
/// config error with its line, for url, cmonitor_url and proxy alike.
#[test]
fn ports_that_are_not_ports_are_config_errors() {
    for (line, keys) in [
        (2, "url = \"http://127.0.0.1:99999\"\ntoken_file = \"/t\"\n"),
        (2, "url = \"http://127.0.0.1:18500x/jira\"\ntoken_file = \"/t\"\n"),
        (
            4,
            "url = \"http://x\"\ntoken_file = \"/t\"\ncmonitor_url = \"https://x:0/c\"\ncmonitor_token_file = \"/k\"\n",
        ),
        (4, "url = \"http://x\"\ntoken_file = \"/t\"\nproxy = \"http://p:+80\"\n"),
    ] {
        let m = err(&format!("[nodes.a]\n{keys}"));
        assert!(m.starts_with(&format!("config /etc/x.toml line {line}: node 'a': ")), "{m}");
        assert!(m.contains("a port") || m.contains("port that is not"), "{m}");
    }
}

/// Issue 25: a config error becomes every item's error text: it names the
/// key and the line and what was expected, never the value (a password
/// pasted in the wrong place).
#[test]
fn config_errors_quote_no_value() {
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWRtaW4ifQ.c2lnbmF0dXJlc2lnbmF0dXJl";
    let secret = "hunter2-Pa55-W0rd";
    for (keys, expected) in [
        (
            format!("token_file = \"/t\"\nauth_header = \"Authorization: Bearer {token}\"\n"),
            "line 4: node 'a': auth_header is not \"X-Exalate-Jwt\" or \"Authorization\" (the header's name only: the token goes in token_file)",
        ),
        (
            format!("token_file = \"/t\"\ntimeout = \"{secret}\"\n"),
            "line 4: invalid type: string, expected u64",
        ),
        (
            format!("jwt_secret_file = \"/s\"\njwt_exp_unit = \"{secret}\"\n"),
            "line 4: node 'a': jwt_exp_unit is not \"ms\" or \"s\"",
        ),
        (
            format!("token_file = \"/t\"\njwt_user = 8675309{}\n", 1),
            "line 4: invalid type: integer, expected a string",
        ),
        (
            format!("token_file = \"/t\"\nproxy = \"http://{secret}:x\"\n"),
            "line 4: node 'a': proxy is not http://host",
        ),
    ] {
        let m = err(&format!("[nodes.a]\nurl = \"http://x\"\n{keys}"));
        assert!(m.contains(expected), "{m}");
        for value in [token, secret, "86753091", "eyJ"] {
            assert!(!m.contains(value), "{m}");
        }
    }
    assert_eq!(
        without_values(r#"invalid value: string "a\"b", expected x; unknown field `tmeout`"#),
        "invalid value: string, expected x; unknown field `tmeout`"
    );
}
