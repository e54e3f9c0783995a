//! The URLs of a node (`url`, `cmonitor_url`) and its `proxy`: checked so
//! that credentials only ever go where the admin wrote, never echoed (the
//! part before an `@` is a credential).

/// A port as written after the host: digits only, 1 to 65535. Anything
/// else is refused rather than left to a default port (80 or 443), which
/// would send the credentials to a server the admin never named.
pub(crate) fn valid_port(port: &str) -> bool {
    !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// A node's base URL (`key` names it in messages): http or https, a host,
/// an optional valid port and path; no credentials, query or fragment.
/// Returned without a trailing slash. `credential_keys` say where
/// credentials go instead of the URL.
pub(crate) fn validate_url(
    key: &str,
    url: &str,
    credential_keys: &str,
) -> std::result::Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{key} must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(format!(
            "{key} must not contain credentials (user:password@); use {credential_keys}"
        ));
    }
    let (host, port) = crate::proxy::split_authority(authority);
    if host.is_empty() {
        return Err(format!("{key} has no host"));
    }
    if port.is_some_and(|p| !valid_port(p)) {
        return Err(format!(
            "{key} has a port that is not a number from 1 to 65535"
        ));
    }
    if rest.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{key} must be a plain base URL, without query, fragment or spaces"
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// A proxy is `http://host[:port]` (default port 80), nothing more: no
/// credentials (secrets stay out of the config), no path. An https:// proxy
/// would need its own TLS settings; none is offered.
pub(crate) fn validate_proxy(proxy: &str) -> std::result::Result<String, String> {
    let authority = proxy
        .strip_prefix("http://")
        .ok_or_else(|| {
            "proxy must start with http:// (e.g. \"http://proxy.example.com:3128\")".to_string()
        })?
        .trim_end_matches('/');
    if authority.contains('@') {
        return Err("proxy must not contain credentials (user:password@)".into());
    }
    let (host, port) = crate::proxy::split_authority(authority);
    let host_ok = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        });
    if !host_ok || port.is_some_and(|p| !valid_port(p)) {
        return Err("proxy is not http://host or http://host:port (a port from 1 to 65535)".into());
    }
    Ok(format!("http://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 25: `http://127.0.0.1:99999` passed and the request (with the
    /// token) went to port 80.
    #[test]
    fn a_port_that_is_not_a_port_is_refused() {
        for bad in ["99999", "0", "18500x", "+80", "", " 80", "-1", "65536"] {
            assert!(!valid_port(bad), "{bad:?}");
            let url = format!("http://127.0.0.1:{bad}/jira");
            let m = validate_url("url", &url, "k").unwrap_err();
            assert!(
                m == "url has a port that is not a number from 1 to 65535"
                    || m.contains("without query, fragment or spaces"),
                "{bad:?}: {m}"
            );
            assert!(
                validate_proxy(&format!("http://p:{bad}")).is_err(),
                "{bad:?}"
            );
        }
        for good in ["1", "80", "8443", "65535"] {
            assert!(valid_port(good));
            assert!(validate_url("url", &format!("https://[::1]:{good}"), "k").is_ok());
        }
        assert_eq!(
            validate_url("cmonitor_url", "http://x:0/cmonitor", "k").unwrap_err(),
            "cmonitor_url has a port that is not a number from 1 to 65535"
        );
        assert_eq!(
            validate_url("url", "http://x/a/", "k").unwrap(),
            "http://x/a"
        );
    }
}
