//! Hostile config files: for each, a real agent daemon starts with the module,
//! answers agent.ping, and the module's items give the precise error, with
//! the file's path and line.

use crate::common::*;
use std::path::{Path, PathBuf};

/// What a case writes next to its config.
struct Case {
    name: &'static str,
    /// None: no config file at all.
    config: Option<Vec<u8>>,
    /// Mode of the config file.
    config_mode: u32,
    /// The agent runs as user zabbix (for files it may not read).
    as_zabbix: bool,
    /// Expected reason of `exalate.queue.count[demo,AllContent,syncrequests]`.
    count: Expect,
    /// Expected reason of `exalate.discovery`, or None when it must succeed.
    discovery: Option<Expect>,
}

enum Expect {
    Exactly(String),
    StartsWith(String),
}

impl Expect {
    fn check(&self, case: &str, message: &str) {
        match self {
            Expect::Exactly(m) => assert_eq!(message, m, "case {case}"),
            Expect::StartsWith(m) => {
                assert!(message.starts_with(m.as_str()), "case {case}: {message}")
            }
        }
    }
}

#[test]
fn the_agent_starts_with_any_config_and_items_say_what_is_wrong() {
    let env = Env::new("config");
    let url = env.node.url();
    let dir = env.dir.clone();
    let secret = dir.join("demo.secret");
    let at = |case: &str| dir.join(case).join("exalate_zabbix.toml");
    let node = |_case: &str, lines: &str| {
        let relations = if lines.contains("relations") {
            ""
        } else {
            "relations = [\"AllContent\"]\n"
        };
        format!(
            "[nodes.demo]\nurl = \"{url}\"\n{lines}\n{relations}",
            lines = lines.replace("SECRET", &secret.display().to_string())
        )
    };
    let config_error = |case: &str, line: Option<u32>, reason: &str| {
        let place = line.map(|l| format!(" line {l}")).unwrap_or_default();
        format!("config {}{place}: {reason}", at(case).display())
    };
    let both = |e: String| {
        (
            Expect::Exactly(format!("{e}.")),
            Some(Expect::Exactly(format!("{e}."))),
        )
    };
    let both_prefix = |e: String| (Expect::StartsWith(e.clone()), Some(Expect::StartsWith(e)));
    let item = |what: String| {
        Expect::Exactly(format!(
            "node 'demo', relation 'AllContent', queue syncrequests: {what}."
        ))
    };

    // Files the secret cases point at.
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    write_file(&files.join("open.secret"), SECRET, 0o644);
    write_file(&files.join("empty.jwt"), "  \n", 0o600);
    write_file(
        &files.join("open.jwt"),
        "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
        0o604,
    );
    write_file(&files.join("root-only.secret"), SECRET, 0o600);
    let missing = files.join("missing.secret");
    let open_secret = files.join("open.secret");
    let empty_jwt = files.join("empty.jwt");
    let open_jwt = files.join("open.jwt");
    let root_only = files.join("root-only.secret");
    let password = "hunter2-password-in-url";
    add_secret(password);

    let mut cases = Vec::new();
    let mut case = |name: &'static str,
                    config: Option<String>,
                    (count, discovery): (Expect, Option<Expect>)| {
        cases.push(Case {
            name,
            config: config.map(String::into_bytes),
            config_mode: 0o640,
            as_zabbix: false,
            count,
            discovery,
        });
    };
    case(
        "missing",
        None,
        both(config_error(
            "missing",
            None,
            "cannot read: No such file or directory (create it, or set EXALATE_ZABBIX_CONFIG)",
        )),
    );
    case(
        "empty",
        Some(String::new()),
        both(config_error(
            "empty",
            None,
            "no [nodes.NAME] table: configure at least one node",
        )),
    );
    case(
        "bad-toml",
        Some(format!("{}token_file = \n", node("bad-toml", ""))),
        both_prefix(config_error("bad-toml", Some(5), "")),
    );
    case(
        "unknown-key",
        Some(node(
            "unknown-key",
            "jwt_secret_file = \"SECRET\"\ntmeout = 3",
        )),
        both_prefix(config_error(
            "unknown-key",
            Some(4),
            "unknown field `tmeout`, expected one of",
        )),
    );
    case(
        "unknown-table",
        Some(format!(
            "[default]\ntimeout = 3\n{}",
            node("unknown-table", "jwt_secret_file = \"SECRET\"")
        )),
        both_prefix(config_error(
            "unknown-table",
            Some(1),
            "unknown field `default`, expected `defaults` or `nodes`",
        )),
    );
    case(
        "wrong-type",
        Some(format!(
            "[defaults]\ntimeout = \"3\"\n{}",
            node("wrong-type", "jwt_secret_file = \"SECRET\"")
        )),
        both_prefix(config_error(
            "wrong-type",
            Some(2),
            "invalid type: string \"3\", expected u64",
        )),
    );
    case(
        "relations-not-a-list",
        Some(node(
            "relations-not-a-list",
            "jwt_secret_file = \"SECRET\"\nrelations = \"AllContent\"",
        )),
        both_prefix(config_error(
            "relations-not-a-list",
            Some(4),
            "invalid type: string \"AllContent\", expected a sequence",
        )),
    );
    case(
        "both-auth",
        Some(node(
            "both-auth",
            "jwt_secret_file = \"SECRET\"\ntoken_file = \"SECRET\"",
        )),
        both(config_error(
            "both-auth",
            Some(1),
            "node 'demo': set exactly one of token_file and jwt_secret_file, not both",
        )),
    );
    case(
        "no-auth",
        Some(node("no-auth", "")),
        both(config_error(
            "no-auth",
            Some(1),
            "node 'demo': no credentials: set token_file or jwt_secret_file",
        )),
    );
    case(
        "url-without-scheme",
        Some(format!(
            "[nodes.demo]\nurl = \"127.0.0.1:8080/jira\"\njwt_secret_file = \"{}\"\n",
            secret.display()
        )),
        both(config_error(
            "url-without-scheme",
            Some(2),
            "node 'demo': url must start with http:// or https://",
        )),
    );
    case(
        "url-with-credentials",
        Some(format!(
            "[nodes.demo]\nurl = \"https://zabbix:{password}@jira.example.com\"\njwt_secret_file = \"{}\"\n",
            secret.display()
        )),
        both(config_error(
            "url-with-credentials",
            Some(2),
            "node 'demo': url must not contain credentials (user:password@); use token_file or jwt_secret_file",
        )),
    );
    case(
        "missing-secret",
        Some(node(
            "missing-secret",
            &format!("jwt_secret_file = \"{}\"", missing.display()),
        )),
        (
            item(format!(
                "jwt_secret_file {}: cannot read: No such file or directory",
                missing.display()
            )),
            None,
        ),
    );
    case(
        "world-readable-secret",
        Some(node("world-readable-secret", &format!("jwt_secret_file = \"{}\"", open_secret.display()))),
        (
            item(format!(
                "jwt_secret_file {0}: is readable by others (mode 0644); run: chmod o-rwx {0} (and chown root:zabbix, chmod 0640)",
                open_secret.display()
            )),
            None,
        ),
    );
    case(
        "secret-is-a-directory",
        Some(node(
            "secret-is-a-directory",
            &format!("jwt_secret_file = \"{}\"", dir.join("files").display()),
        )),
        (
            item(format!(
                "jwt_secret_file {}: is not a regular file",
                files.display()
            )),
            None,
        ),
    );
    // A FIFO would block the agent process in read() forever.
    let fifo = files.join("secret.fifo");
    mkfifo(&fifo);
    case(
        "secret-is-a-fifo",
        Some(node(
            "secret-is-a-fifo",
            &format!("jwt_secret_file = \"{}\"", fifo.display()),
        )),
        (
            item(format!(
                "jwt_secret_file {}: is not a regular file",
                fifo.display()
            )),
            None,
        ),
    );
    case(
        "missing-token",
        Some(node(
            "missing-token",
            &format!("token_file = \"{}\"", missing.display()),
        )),
        (
            item(format!(
                "token_file {}: cannot read: No such file or directory",
                missing.display()
            )),
            None,
        ),
    );
    case(
        "world-readable-token",
        Some(node("world-readable-token", &format!("token_file = \"{}\"", open_jwt.display()))),
        (
            item(format!(
                "token_file {0}: is readable by others (mode 0604); run: chmod o-rwx {0} (and chown root:zabbix, chmod 0640)",
                open_jwt.display()
            )),
            None,
        ),
    );
    case(
        "empty-token",
        Some(node(
            "empty-token",
            &format!("token_file = \"{}\"", empty_jwt.display()),
        )),
        (
            item(format!("token_file {}: is empty", empty_jwt.display())),
            None,
        ),
    );
    let e = config_error("config-is-a-fifo", None, "cannot read: not a regular file");
    cases.push(Case {
        name: "config-is-a-fifo",
        config: None,
        config_mode: 0o640,
        as_zabbix: false,
        count: Expect::Exactly(format!("{e}.")),
        discovery: Some(Expect::Exactly(format!("{e}."))),
    });
    let e = config_error("not-utf8", None, "is not UTF-8 text");
    cases.push(Case {
        name: "not-utf8",
        config: Some(b"[nodes.demo]\nurl = \"http://x\xff\"\n".to_vec()),
        config_mode: 0o640,
        as_zabbix: false,
        count: Expect::Exactly(format!("{e}.")),
        discovery: Some(Expect::Exactly(format!("{e}."))),
    });
    // As installed: the agent runs as user zabbix and cannot read a root-only file.
    if is_root() {
        cases.push(Case {
            name: "unreadable-secret",
            config: Some(
                node(
                    "unreadable-secret",
                    &format!("jwt_secret_file = \"{}\"", root_only.display()),
                )
                .into_bytes(),
            ),
            config_mode: 0o640,
            as_zabbix: true,
            count: item(format!(
                "jwt_secret_file {}: cannot read: Permission denied (the agent runs as user zabbix: chown root:zabbix and chmod 0640)",
                root_only.display()
            )),
            discovery: None,
        });
        let e = config_error(
            "unreadable-config",
            None,
            "cannot read: Permission denied (the agent runs as user zabbix: chown root:zabbix and chmod 0640)",
        );
        cases.push(Case {
            name: "unreadable-config",
            config: Some(node("unreadable-config", "jwt_secret_file = \"SECRET\"").into_bytes()),
            config_mode: 0o600,
            as_zabbix: true,
            count: Expect::Exactly(format!("{e}.")),
            discovery: Some(Expect::Exactly(format!("{e}."))),
        });
    }

    // Two daemons at a time.
    std::thread::scope(|s| {
        for half in cases.chunks(cases.len().div_ceil(2)) {
            let env = &env;
            s.spawn(move || {
                for case in half {
                    run_case(env, case, &at(case.name));
                }
            });
        }
    });
}

fn run_case(env: &Env, case: &Case, config_path: &Path) {
    let case_dir: PathBuf = config_path.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&case_dir).unwrap();
    if case.name == "config-is-a-fifo" {
        mkfifo(config_path);
    }
    if let Some(text) = &case.config {
        std::fs::write(config_path, text).unwrap();
        std::fs::set_permissions(
            config_path,
            std::os::unix::fs::PermissionsExt::from_mode(case.config_mode),
        )
        .unwrap();
        if case.as_zabbix && case.config_mode & 0o040 != 0 {
            // root:zabbix 0640, as packaged.
            chown(config_path, 0, zabbix_ids().1);
        }
    }
    let agent = Agent::start_audited(
        &format!("{}/{}", env.name, case.name),
        &case_dir,
        config_path,
        AgentOptions {
            start_agents: 1,
            as_zabbix: case.as_zabbix,
            ..AgentOptions::default()
        },
    );
    agent.assert_serving();
    let reply = agent.get("exalate.queue.count[demo,AllContent,syncrequests]");
    case.count.check(case.name, reply.error());
    let discovery = agent.get("exalate.discovery");
    match &case.discovery {
        Some(expect) => expect.check(case.name, discovery.error()),
        None => assert!(discovery.value().contains("AllContent"), "{discovery:?}"),
    }
    assert_eq!(
        agent.get("exalate.module.version"),
        Reply::Value(env!("CARGO_PKG_VERSION").into())
    );
    agent.assert_serving();
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}
