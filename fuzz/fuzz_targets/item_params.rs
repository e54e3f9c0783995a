//! Item key parameters to request, through the module's real ABI entry points
//! (the functions in `zbx_module_item_list`, called with an agent-shaped
//! AGENT_REQUEST) against an in-process fake node. Checks: no panic escapes,
//! the result is well formed (one value, or one message line), a relation
//! name reaches the node as exactly one percent-encoded path segment, and no
//! secret or token comes back.
//!
//! Input: byte 0 picks the item (mod 6) and the parameter count ((b / 6) % 5);
//! the rest, split at NUL bytes, gives the parameters (C strings hold no NUL).
#![no_main]

use exalate_zabbix::agentd::{
    zbx_module_item_list, AgentRequest, AgentResult, AR_MESSAGE, AR_STRING, AR_TEXT, AR_UINT64,
};
use fake_exalate_node::{Auth, AuthHeader, ExpUnit, FakeNode, NodeConfig};
use libfuzzer_sys::fuzz_target;
use std::ffi::{c_char, CStr, CString};
use std::sync::OnceLock;

const SECRET: &str = "fuzz-shared-secret-5d1c0a77";

struct Setup {
    node: FakeNode,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let node = FakeNode::start(NodeConfig::demo().with_auth(
            Auth::Hs256 {
                secret: SECRET.as_bytes().to_vec(),
                issuer: "EXALATE".into(),
                exp_unit: ExpUnit::Millis,
            },
            AuthHeader::XExalateJwt,
        ))
        .expect("fake node");
        let dir = std::env::temp_dir().join(format!("exalate-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("demo.secret");
        std::fs::write(&secret, SECRET).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = dir.join("exalate_zabbix.toml");
        std::fs::write(
            &config,
            format!(
                "[defaults]\ntimeout = 2\ncache_ttl = 0\nmax_response_bytes = 1048576\n\
                 [nodes.demo]\nurl = \"{}\"\nrelations = [\"AllContent\"]\njwt_secret_file = \"{}\"\n",
                node.url(),
                secret.display()
            ),
        )
        .unwrap();
        // Read by the module's monitor on its first item call.
        std::env::set_var("EXALATE_ZABBIX_CONFIG", &config);
        Setup { node }
    })
}

/// The module's encoding, written independently.
fn encoded(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let setup = setup();
    let item = (selector % 6) as usize;
    let nparam = ((selector / 6) % 5) as usize;
    let mut pieces = rest.split(|b| *b == 0);
    let params: Vec<CString> = (0..nparam)
        .map(|_| CString::new(pieces.next().unwrap_or_default()).unwrap())
        .collect();
    let relation = params
        .get(1)
        .map(|p| String::from_utf8_lossy(p.to_bytes()).into_owned());
    // The fake node's fault relations (hang, huge, ...) are tested elsewhere;
    // here they would only slow the fuzzer down.
    if relation.as_deref().is_some_and(|r| r.starts_with("fault-")) {
        return;
    }

    // SAFETY: the table is static and ends with a NULL key; 6 items precede it.
    let metric = unsafe { &*zbx_module_item_list().add(item) };
    let function = metric.function.expect("item function");
    let key = CString::new("fuzz").unwrap();
    let mut pointers: Vec<*mut c_char> = params.iter().map(|p| p.as_ptr() as *mut c_char).collect();
    let mut request = AgentRequest {
        key: key.as_ptr() as *mut c_char,
        nparam: nparam as i32,
        params: if nparam == 0 {
            std::ptr::null_mut()
        } else {
            pointers.as_mut_ptr()
        },
        lastlogsize: 0,
        mtime: 0,
    };
    // SAFETY: zero is a valid AGENT_RESULT, as the agent makes it.
    let mut result: AgentResult = unsafe { std::mem::zeroed() };
    setup.node.clear_requests();
    // SAFETY: valid request and result for the call, as the agent passes them.
    let rc = unsafe { function(&mut request, &mut result) };

    let take = |p: *mut c_char| -> Option<String> {
        if p.is_null() {
            return None;
        }
        // SAFETY: the module returns NUL-terminated strings from libc malloc.
        let s = unsafe { CStr::from_ptr(p) }
            .to_str()
            .expect("UTF-8 result")
            .to_string();
        unsafe { libc::free(p.cast()) };
        Some(s)
    };
    let (text, string, msg) = (take(result.text), take(result.str_), take(result.msg));
    let out = match rc.0 {
        0 => {
            assert_eq!(result.type_ & AR_MESSAGE, 0);
            match result.type_ {
                AR_UINT64 => String::new(),
                AR_STRING => string.expect("AR_STRING with a string"),
                AR_TEXT => text.expect("AR_TEXT with a text"),
                other => panic!("result type {other:#x}"),
            }
        }
        1 => {
            assert_eq!(result.type_, AR_MESSAGE);
            let msg = msg.expect("a failure has a message");
            assert!(msg.ends_with('.'), "{msg}");
            assert!(!msg.chars().any(char::is_control), "one line: {msg:?}");
            msg
        }
        other => panic!("return code {other}"),
    };

    let requests = setup.node.requests();
    for r in &requests {
        assert_eq!(r.method, "GET");
        let decoded = r.relation.as_deref().expect("a queue endpoint was asked");
        assert!(
            Some(decoded) == relation.as_deref() || decoded == "AllContent",
            "asked for {decoded:?}, the item named {relation:?}"
        );
        let prefix = format!("/jira/rest/issuehub/2.4/relations/{}/", encoded(decoded));
        let tail = r
            .raw_path
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{}", r.raw_path));
        assert_eq!(tail.split('/').count(), 2, "{}", r.raw_path);
        assert!(!tail.contains(['?', '#', '%']), "{}", r.raw_path);
        let token = r.header("x-exalate-jwt").expect("credentials sent");
        assert!(
            !out.contains(token) || String::from_utf8_lossy(rest).contains(token),
            "a token came back"
        );
    }
    if item <= 1 && nparam != 3 {
        assert!(requests.is_empty(), "a request for a wrong parameter count");
    }
    // (Parameters are echoed in messages: a parameter that holds the secret,
    // as the fuzzer learns to write, comes back as it was given.)
    let given = String::from_utf8_lossy(rest);
    assert!(
        !out.contains(SECRET) || given.contains(SECRET),
        "the secret came back"
    );
});
