//! Reading the files the module is pointed at (the config, secret and
//! token files, a CA file) and the errors they give: never blocking on a
//! FIFO or a device, checks made on the open file, secrets zeroed.

use crate::error::io_reason;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What a permission error on the agent's files adds.
const RUNS_AS_ZABBIX: &str = " (the agent runs as user zabbix: chown root:zabbix and chmod 0640)";

/// The largest config file read: a config of 100,000 relations is under
/// 4 MiB; a larger file is a mistake, and reading it would hold it in
/// memory (and the config lock) for nothing.
pub(crate) const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// The largest secret, token or password file read: an HS256 secret or a
/// JWT is well under 8 KiB; a larger file is a mistake (a log, a key store
/// named by mistake), and reading it would hold it in memory for nothing.
pub(crate) const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// The config file's text, or why it cannot be read (`path_env` names the
/// variable that points at another file).
pub(crate) fn read_config_text(path: &Path, path_env: &str) -> Result<String> {
    let text = read_file_within(path, MAX_CONFIG_BYTES).and_then(|bytes| {
        String::from_utf8(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    });
    text.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::FileTooLarge => format!(
                "larger than {} MiB ({MAX_CONFIG_BYTES} bytes), the most a config file may be",
                MAX_CONFIG_BYTES / (1024 * 1024)
            ),
            std::io::ErrorKind::InvalidData => "is not UTF-8 text".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                format!("cannot read: {}{RUNS_AS_ZABBIX}", io_reason(&e))
            }
            std::io::ErrorKind::NotFound => format!(
                "cannot read: {} (create it, or set {path_env})",
                io_reason(&e)
            ),
            _ => format!("cannot read: {}", io_reason(&e)),
        };
        Error::new(
            ErrorKind::Config,
            format!("config {}: {why}", path.display()),
        )
    })
}

/// Reads a secret or token file, refusing one that others can read. The
/// file is opened once and its type and mode are read from the open file
/// (fstat), so what is checked is what is read, whatever happens to the
/// path meanwhile. Every buffer that held the content is zeroed.
pub(crate) fn read_secret_file(what: &str, path: &Path) -> Result<Secret> {
    use std::io::Read;
    let fail = |msg: String| {
        Error::new(
            ErrorKind::Config,
            format!("{what} {}: {msg}", path.display()),
        )
    };
    let cannot_read = |e: std::io::Error| {
        let mut msg = format!("cannot read: {}", io_reason(&e));
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            msg.push_str(RUNS_AS_ZABBIX);
        }
        fail(msg)
    };
    let (mut file, meta) = open_file(path).map_err(cannot_read)?;
    if !meta.is_file() {
        return Err(fail("is not a regular file".into()));
    }
    let mode = meta.permissions().mode();
    if mode & 0o004 != 0 {
        return Err(fail(format!(
            "is readable by others (mode {:04o}); run: chmod o-rwx {} (and chown root:zabbix, chmod 0640)",
            mode & 0o7777,
            path.display()
        )));
    }
    let too_large = || {
        fail(format!(
            "larger than {} KiB ({MAX_SECRET_BYTES} bytes), the most a secret or token file may be",
            MAX_SECRET_BYTES / 1024
        ))
    };
    if meta.len() > MAX_SECRET_BYTES {
        return Err(too_large());
    }
    let mut content = Vec::new();
    // It may grow after the fstat: one byte past the limit at most.
    let read = (&mut file)
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut content);
    let text = read
        .map_err(cannot_read)
        .and_then(|_| {
            if content.len() as u64 > MAX_SECRET_BYTES {
                return Err(too_large());
            }
            std::str::from_utf8(&content).map_err(|_| fail("is not UTF-8 text".into()))
        })
        .map(|text| Secret::new(text.trim().to_string()));
    crate::secret::zero(&mut content);
    let secret = text?;
    if secret.as_str().is_empty() {
        return Err(fail("is empty".into()));
    }
    Ok(secret)
}

/// Reads a whole file the module was pointed at (config, secret, token, CA),
/// refusing anything but a regular file: a FIFO or a device would block the
/// agent process or never end. Opened without blocking, checked on the open
/// file itself.
pub(crate) fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    read_file_within(path, u64::MAX)
}

/// As [`read_file`], refusing a file of more than `max_bytes` (an error of
/// kind `FileTooLarge`) without reading more than that.
pub(crate) fn read_file_within(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let (file, meta) = open_file(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let too_large = || std::io::Error::new(std::io::ErrorKind::FileTooLarge, "file too large");
    if meta.len() > max_bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    // It may grow after the fstat: read one byte past the limit at most.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Opens `path` for reading without blocking (a FIFO's open would wait for
/// a writer) and gives the open file's own metadata (fstat): checks on it
/// hold for what is read, unlike a check of the path before opening.
pub(crate) fn open_file(path: &Path) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A file with `content` and `mode` in this test process's directory.
    pub(crate) fn temp_file(name: &str, content: &str, mode: u32) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("exalate-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn refuses_world_readable_files() {
        let file = temp_file("open.jwt", "abc", 0o644);
        let e = read_secret_file("token_file", &file).unwrap_err();
        assert!(
            e.message()
                .contains("is readable by others (mode 0644); run: chmod o-rwx"),
            "{e}"
        );
        assert!(!e.message().contains("abc"));
    }

    /// Issue 25: a secret file had no size limit (a log or an image named
    /// by mistake was read whole into memory, and kept).
    #[test]
    fn secret_files_have_a_size_limit() {
        let most = "k".repeat(MAX_SECRET_BYTES as usize);
        let file = temp_file("most.secret", &most, 0o600);
        assert_eq!(
            read_secret_file("jwt_secret_file", &file).unwrap().as_str(),
            most
        );
        let over = format!("{most}\n");
        let file = temp_file("large.secret", &over, 0o600);
        let e = read_secret_file("jwt_secret_file", &file).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(
            e.message(),
            format!(
                "jwt_secret_file {}: larger than 64 KiB (65536 bytes), the most a secret or token file may be",
                file.display()
            )
        );
    }

    #[test]
    fn missing_and_empty_files() {
        let e = read_secret_file("token_file", Path::new("/nonexistent/t.jwt")).unwrap_err();
        assert_eq!(
            e.message(),
            "token_file /nonexistent/t.jwt: cannot read: No such file or directory"
        );
        let empty = temp_file("empty.jwt", " \n", 0o600);
        assert!(read_secret_file("token_file", &empty)
            .unwrap_err()
            .message()
            .ends_with("is empty"));
    }
}
