//! Config parsing and validation on arbitrary text: no panic (e.g. slicing
//! at a span), errors are one line that name the file, a parsed config holds
//! only valid values.
#![no_main]

use exalate_zabbix::config::Config;
use exalate_zabbix::ErrorKind;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|text: &str| {
    match Config::parse(Path::new("/etc/zabbix/exalate_zabbix.toml"), text) {
        Ok(config) => {
            assert!(!config.nodes.is_empty());
            for (name, node) in &config.nodes {
                assert_eq!(name, &node.name);
                let rest = node
                    .url
                    .strip_prefix("http://")
                    .or_else(|| node.url.strip_prefix("https://"))
                    .expect("http or https");
                // No credentials in the authority (an '@' in the path is fine).
                let authority = rest.split(['/', '?', '#']).next().unwrap();
                assert!(
                    !authority.is_empty() && !authority.contains('@'),
                    "{}",
                    node.url
                );
                assert!(node.max_response_bytes >= 2);
                if let Some(t) = node.timeout {
                    assert!((1..=30).contains(&t.as_secs()));
                }
            }
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(
                e.message()
                    .starts_with("config /etc/zabbix/exalate_zabbix.toml"),
                "{}",
                e.message()
            );
            assert!(
                !e.message().chars().any(char::is_control),
                "{}",
                e.message()
            );
        }
    }
});
