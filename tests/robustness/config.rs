//! Hostile config files: for each, a real agent daemon starts with the module,
//! answers agent.ping, and the module's items give the precise error, with
//! the file's path and line. One test per file.

use crate::common::*;
use std::path::{Path, PathBuf};

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

/// Expected reasons of `exalate.queue.count[demo,AllContent,syncrequests]`
/// and of `exalate.discovery` (None: discovery must succeed).
type Expected = (Expect, Option<Expect>);

/// One case: its own fake node, directory, and the files the secret cases
/// point at.
struct Case {
    name: &'static str,
    env: Env,
    files: PathBuf,
}

impl Case {
    fn new(name: &'static str) -> Case {
        let env = Env::new(&format!("config-{name}"));
        let files = env.dir.join("files");
        std::fs::create_dir_all(&files).unwrap();
        write_file(&files.join("open.secret"), SECRET, 0o644);
        write_file(&files.join("empty.jwt"), "  \n", 0o600);
        write_file(
            &files.join("open.jwt"),
            "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
            0o604,
        );
        write_file(&files.join("root-only.secret"), SECRET, 0o600);
        Case { name, env, files }
    }

    /// The config file under test.
    fn path(&self) -> PathBuf {
        self.env.dir.join("case").join("exalate_zabbix.toml")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.files.join(name)
    }

    /// A `[nodes.demo]` table with `lines` (SECRET: the good secret file).
    fn node(&self, lines: &str) -> String {
        let relations = if lines.contains("relations") {
            ""
        } else {
            "relations = [\"AllContent\"]\n"
        };
        let secret = self.env.dir.join("demo.secret");
        format!(
            "[nodes.demo]\nurl = \"{}\"\n{lines}\n{relations}",
            self.env.node.url(),
            lines = lines.replace("SECRET", &secret.display().to_string())
        )
    }

    fn node_with(&self, key: &str, file: &Path) -> String {
        self.node(&format!("{key} = \"{}\"", file.display()))
    }

    fn config_error(&self, line: Option<u32>, reason: &str) -> String {
        let place = line.map(|l| format!(" line {l}")).unwrap_or_default();
        format!("config {}{place}: {reason}", self.path().display())
    }

    /// Both items fail with the config error, exactly.
    fn both(&self, line: Option<u32>, reason: &str) -> Expected {
        let e = format!("{}.", self.config_error(line, reason));
        (Expect::Exactly(e.clone()), Some(Expect::Exactly(e)))
    }

    /// Both items fail with a message that starts with the config error.
    fn both_prefix(&self, line: u32, reason: &str) -> Expected {
        let e = self.config_error(Some(line), reason);
        (Expect::StartsWith(e.clone()), Some(Expect::StartsWith(e)))
    }

    /// The count fails with `what`; discovery answers.
    fn item(what: String) -> Expected {
        let e = format!("node 'demo', relation 'AllContent', queue syncrequests: {what}.");
        (Expect::Exactly(e), None)
    }

    fn run(&self, config: Option<String>, expected: Expected) {
        self.run_as(config.map(String::into_bytes), 0o640, false, expected);
    }

    /// Writes `config` (None: no file) with `mode`, starts an agent (as user
    /// zabbix when `as_zabbix`) and checks its answers.
    fn run_as(&self, config: Option<Vec<u8>>, mode: u32, as_zabbix: bool, expected: Expected) {
        let config_path = self.path();
        let case_dir = config_path.parent().unwrap();
        std::fs::create_dir_all(case_dir).unwrap();
        if let Some(text) = &config {
            std::fs::write(&config_path, text).unwrap();
            std::fs::set_permissions(
                &config_path,
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            )
            .unwrap();
            if as_zabbix && mode & 0o040 != 0 {
                // root:zabbix 0640, as packaged.
                chown(&config_path, 0, zabbix_ids().1);
            }
        }
        let agent = Agent::start_audited(
            &self.env.name,
            case_dir,
            &config_path,
            AgentOptions {
                start_agents: 1,
                as_zabbix,
                ..AgentOptions::default()
            },
        );
        agent.assert_serving();
        let (count, discovery) = expected;
        let reply = agent.get("exalate.queue.count[demo,AllContent,syncrequests]");
        count.check(self.name, reply.error());
        let reply = agent.get("exalate.discovery");
        match &discovery {
            Some(expect) => expect.check(self.name, reply.error()),
            None => assert!(reply.value().contains("AllContent"), "{reply:?}"),
        }
        assert_eq!(
            agent.get("exalate.module.version"),
            Reply::Value(env!("CARGO_PKG_VERSION").into())
        );
        agent.assert_serving();
    }
}

#[test]
fn missing_file() {
    let c = Case::new("missing");
    let e = c.both(
        None,
        "cannot read: No such file or directory (create it, or set EXALATE_ZABBIX_CONFIG)",
    );
    c.run(None, e);
}

#[test]
fn empty_file() {
    let c = Case::new("empty");
    let e = c.both(None, "no [nodes.NAME] table: configure at least one node");
    c.run(Some(String::new()), e);
}

#[test]
fn bad_toml() {
    let c = Case::new("bad-toml");
    let e = c.both_prefix(5, "");
    c.run(Some(format!("{}token_file = \n", c.node(""))), e);
}

#[test]
fn unknown_key() {
    let c = Case::new("unknown-key");
    let e = c.both_prefix(4, "unknown field `tmeout`, expected one of");
    c.run(Some(c.node("jwt_secret_file = \"SECRET\"\ntmeout = 3")), e);
}

#[test]
fn unknown_table() {
    let c = Case::new("unknown-table");
    let e = c.both_prefix(1, "unknown field `default`, expected `defaults` or `nodes`");
    let text = format!(
        "[default]\ntimeout = 3\n{}",
        c.node("jwt_secret_file = \"SECRET\"")
    );
    c.run(Some(text), e);
}

#[test]
fn wrong_type() {
    let c = Case::new("wrong-type");
    // The value is not quoted: it could be a password (issue 25).
    let e = c.both_prefix(2, "invalid type: string, expected u64");
    let text = format!(
        "[defaults]\ntimeout = \"3\"\n{}",
        c.node("jwt_secret_file = \"SECRET\"")
    );
    c.run(Some(text), e);
}

#[test]
fn relations_not_a_list() {
    let c = Case::new("relations-not-a-list");
    let e = c.both_prefix(4, "invalid type: string, expected a sequence");
    let text = c.node("jwt_secret_file = \"SECRET\"\nrelations = \"AllContent\"");
    c.run(Some(text), e);
}

#[test]
fn both_auth() {
    let c = Case::new("both-auth");
    let e = c.both(
        Some(1),
        "node 'demo': set exactly one of token_file and jwt_secret_file, not both",
    );
    let text = c.node("jwt_secret_file = \"SECRET\"\ntoken_file = \"SECRET\"");
    c.run(Some(text), e);
}

#[test]
fn no_auth() {
    let c = Case::new("no-auth");
    let e = c.both(
        Some(1),
        "node 'demo': no credentials: set token_file or jwt_secret_file",
    );
    c.run(Some(c.node("")), e);
}

#[test]
fn url_without_scheme() {
    let c = Case::new("url-without-scheme");
    let e = c.both(
        Some(2),
        "node 'demo': url must start with http:// or https://",
    );
    let text = format!(
        "[nodes.demo]\nurl = \"127.0.0.1:8080/jira\"\njwt_secret_file = \"{}\"\n",
        c.env.dir.join("demo.secret").display()
    );
    c.run(Some(text), e);
}

#[test]
fn url_with_credentials() {
    let c = Case::new("url-with-credentials");
    let password = "hunter2-password-in-url";
    add_secret(password);
    let e = c.both(
        Some(2),
        "node 'demo': url must not contain credentials (user:password@); use token_file, jwt_secret_file or the api_* keys",
    );
    let text = format!(
        "[nodes.demo]\nurl = \"https://zabbix:{password}@jira.example.com\"\njwt_secret_file = \"{}\"\n",
        c.env.dir.join("demo.secret").display()
    );
    c.run(Some(text), e);
}

#[test]
fn missing_secret() {
    let c = Case::new("missing-secret");
    let missing = c.file("missing.secret");
    let e = Case::item(format!(
        "jwt_secret_file {}: cannot read: No such file or directory",
        missing.display()
    ));
    c.run(Some(c.node_with("jwt_secret_file", &missing)), e);
}

#[test]
fn world_readable_secret() {
    let c = Case::new("world-readable-secret");
    let open = c.file("open.secret");
    let e = Case::item(format!(
        "jwt_secret_file {0}: is readable by others (mode 0644); run: chmod o-rwx {0} (and chown root:zabbix, chmod 0640)",
        open.display()
    ));
    c.run(Some(c.node_with("jwt_secret_file", &open)), e);
}

#[test]
fn secret_is_a_directory() {
    let c = Case::new("secret-is-a-directory");
    let e = Case::item(format!(
        "jwt_secret_file {}: is not a regular file",
        c.files.display()
    ));
    c.run(Some(c.node_with("jwt_secret_file", &c.files)), e);
}

/// A FIFO would block the agent process in read() forever.
#[test]
fn secret_is_a_fifo() {
    let c = Case::new("secret-is-a-fifo");
    let fifo = c.file("secret.fifo");
    mkfifo(&fifo);
    let e = Case::item(format!(
        "jwt_secret_file {}: is not a regular file",
        fifo.display()
    ));
    c.run(Some(c.node_with("jwt_secret_file", &fifo)), e);
}

#[test]
fn missing_token() {
    let c = Case::new("missing-token");
    let missing = c.file("missing.secret");
    let e = Case::item(format!(
        "token_file {}: cannot read: No such file or directory",
        missing.display()
    ));
    c.run(Some(c.node_with("token_file", &missing)), e);
}

#[test]
fn world_readable_token() {
    let c = Case::new("world-readable-token");
    let open = c.file("open.jwt");
    let e = Case::item(format!(
        "token_file {0}: is readable by others (mode 0604); run: chmod o-rwx {0} (and chown root:zabbix, chmod 0640)",
        open.display()
    ));
    c.run(Some(c.node_with("token_file", &open)), e);
}

#[test]
fn empty_token() {
    let c = Case::new("empty-token");
    let empty = c.file("empty.jwt");
    let e = Case::item(format!("token_file {}: is empty", empty.display()));
    c.run(Some(c.node_with("token_file", &empty)), e);
}

#[test]
fn file_is_a_fifo() {
    let c = Case::new("config-is-a-fifo");
    let e = c.both(None, "cannot read: not a regular file");
    std::fs::create_dir_all(c.path().parent().unwrap()).unwrap();
    mkfifo(&c.path());
    c.run(None, e);
}

#[test]
fn not_utf8() {
    let c = Case::new("not-utf8");
    let e = c.both(None, "is not UTF-8 text");
    let text = b"[nodes.demo]\nurl = \"http://x\xff\"\n".to_vec();
    c.run_as(Some(text), 0o640, false, e);
}

/// As installed: the agent runs as user zabbix and cannot read a root-only
/// file (only a root test run can make one).
#[test]
fn unreadable_secret() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let c = Case::new("unreadable-secret");
    let root_only = c.file("root-only.secret");
    let e = Case::item(format!(
        "jwt_secret_file {}: cannot read: Permission denied (the agent runs as user zabbix: chown root:zabbix and chmod 0640)",
        root_only.display()
    ));
    let text = c.node_with("jwt_secret_file", &root_only);
    c.run_as(Some(text.into_bytes()), 0o640, true, e);
}

#[test]
fn unreadable_config() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let c = Case::new("unreadable-config");
    let e = c.both(
        None,
        "cannot read: Permission denied (the agent runs as user zabbix: chown root:zabbix and chmod 0640)",
    );
    let text = c.node("jwt_secret_file = \"SECRET\"");
    c.run_as(Some(text.into_bytes()), 0o600, true, e);
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
