//! The agent protocol from the server's side (Debian ships no zabbix_get),
//! and `-t` output.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A passive check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Value(String),
    NotSupported(String),
}

impl Reply {
    pub fn value(&self) -> &str {
        match self {
            Reply::Value(v) => v,
            Reply::NotSupported(m) => panic!("expected a value, got ZBX_NOTSUPPORTED: {m}"),
        }
    }

    pub fn error(&self) -> &str {
        match self {
            Reply::NotSupported(m) => m,
            Reply::Value(v) => panic!("expected ZBX_NOTSUPPORTED, got value {v:?}"),
        }
    }
}

/// One passive check over the agent protocol: `ZBXD\x01`, u32 LE length,
/// u32 reserved, then the key; the reply has the same header.
pub fn zabbix_get(addr: SocketAddr, key: &str) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut packet = b"ZBXD\x01".to_vec();
    packet.extend_from_slice(&(key.len() as u32).to_le_bytes());
    packet.extend_from_slice(&0u32.to_le_bytes());
    packet.extend_from_slice(key.as_bytes());
    stream.write_all(&packet)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    if reply.len() < 13 || &reply[..5] != b"ZBXD\x01" {
        return Err(std::io::Error::other(format!(
            "bad reply header: {:?}",
            String::from_utf8_lossy(&reply)
        )));
    }
    let len = u32::from_le_bytes(reply[5..9].try_into().unwrap()) as usize;
    let data = &reply[13..];
    if data.len() != len {
        return Err(std::io::Error::other(format!(
            "reply length {} != header {len}",
            data.len()
        )));
    }
    let text = String::from_utf8_lossy(data).to_string();
    Ok(match text.strip_prefix("ZBX_NOTSUPPORTED\0") {
        Some(reason) => Reply::NotSupported(reason.to_string()),
        None => Reply::Value(text),
    })
}

/// Parses `zabbix_agentd -t` output: `key [t|value]`.
pub fn test_value(output: &str) -> (char, String) {
    let start = output
        .find(" [")
        .unwrap_or_else(|| panic!("no value in {output:?}"));
    let rest = output[start + 2..].trim_end();
    let kind = rest.chars().next().unwrap();
    let value = rest[2..]
        .strip_suffix(']')
        .unwrap_or(&rest[2..])
        .to_string();
    (kind, value)
}
