//! The agent's side of the setup: whether its user can read the config and
//! every secret file (tested as that user: root forks a child that takes
//! the user's uid, gid and supplementary groups with setresgid/setgroups/
//! setresuid and opens each file), whether an agent configuration on this
//! host loads the module or the plugin, and its `Timeout=`.

// libc for the passwd and group databases and the forked child: each
// unsafe block says why it is sound.
#![allow(unsafe_code)]

use super::report::Check;
use crate::config::Config;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The module's path in the packages' snippets is matched by this name.
const MODULE_NAME: &str = "libexalate_zabbix.so";

/// A user of this host.
pub(crate) struct User {
    name: String,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
}

impl User {
    /// Looks `name` up in the passwd and group databases.
    pub(crate) fn lookup(name: &str) -> Option<User> {
        let c_name = CString::new(name).ok()?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut pwd: libc::passwd = unsafe_zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; buf outlives the use of pwd's strings (none are used).
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc != 0 || found.is_null() {
            return None;
        }
        let (uid, gid) = (pwd.pw_uid, pwd.pw_gid);
        let mut groups = vec![0 as libc::gid_t; 256];
        let mut n: libc::c_int = groups.len() as libc::c_int;
        // SAFETY: groups holds n entries; getgrouplist writes at most n and updates n.
        let rc = unsafe { libc::getgrouplist(c_name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        groups.truncate(if rc < 0 { 0 } else { n.max(0) as usize });
        if !groups.contains(&gid) {
            groups.push(gid);
        }
        Some(User {
            name: name.to_string(),
            uid,
            gid,
            groups,
        })
    }
}

fn unsafe_zeroed() -> libc::passwd {
    // SAFETY: passwd is plain old data (integers and pointers); all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Why a file is of no use to the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// It cannot be opened: the reason.
    Unreadable(String),
    /// It opens, but is not a regular file: what it is ("a FIFO").
    NotRegular(&'static str),
}

/// What a file that is not a regular one is, by its mode; index + 250 is
/// its code from the forked child.
const NOT_REGULAR: [&str; 6] = [
    "a directory",
    "a FIFO",
    "a character device",
    "a block device",
    "a socket",
    "not a file",
];
const NOT_REGULAR_CODE: u8 = 250;

/// None for a regular file (what the module reads, `crate::fs`), else
/// the index in [`NOT_REGULAR`]. Async-signal-safe: the child calls it.
fn not_regular(mode: libc::mode_t) -> Option<usize> {
    match mode & libc::S_IFMT {
        libc::S_IFREG => None,
        libc::S_IFDIR => Some(0),
        libc::S_IFIFO => Some(1),
        libc::S_IFCHR => Some(2),
        libc::S_IFBLK => Some(3),
        libc::S_IFSOCK => Some(4),
        _ => Some(5),
    }
}

/// The flags every file here is opened with: never blocking (a FIFO's open
/// waits for a writer), never taking a terminal as the controlling one.
const OPEN_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY;

/// Opens `path` as the module does, and tells whether it is a regular file.
fn open_as_the_module(path: &Path) -> Result<(), Unusable> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let unreadable = |e: std::io::Error| Unusable::Unreadable(crate::error::io_reason(&e));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OPEN_FLAGS)
        .open(path)
        .map_err(unreadable)?;
    // fstat: the file opened, not whatever the path names now.
    let mode = file.metadata().map_err(unreadable)?.mode();
    match not_regular(mode as libc::mode_t) {
        None => Ok(()),
        Some(i) => Err(Unusable::NotRegular(NOT_REGULAR[i])),
    }
}

/// Whether `user` can read each of `paths` as the module does (opened
/// without blocking, a regular file): Ok(()) or why not. As root, a forked
/// child with the user's ids tries; as the user itself, this process
/// tries; else nothing can be told (None).
pub(crate) fn readable(user: &User, paths: &[PathBuf]) -> Option<Vec<Result<(), Unusable>>> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid == user.uid {
        return Some(paths.iter().map(|p| open_as_the_module(p)).collect());
    }
    if euid != 0 {
        return None;
    }
    let c_paths: Vec<CString> = paths
        .iter()
        .map(|p| CString::new(p.as_os_str().as_bytes()).unwrap_or_default())
        .collect();
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return None;
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    // SAFETY: the child calls only async-signal-safe functions (setgroups,
    // setresgid, setresuid, open, fstat, close, write, _exit) on memory
    // prepared before the fork (or on its stack), and never returns.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            libc::close(read_end);
            libc::close(write_end);
            return None;
        }
        if pid == 0 {
            libc::close(read_end);
            let dropped = libc::setgroups(user.groups.len(), user.groups.as_ptr()) == 0
                && libc::setresgid(user.gid, user.gid, user.gid) == 0
                && libc::setresuid(user.uid, user.uid, user.uid) == 0;
            if !dropped {
                libc::_exit(3);
            }
            for path in &c_paths {
                let fd = libc::open(path.as_ptr(), OPEN_FLAGS);
                let code = if fd < 0 {
                    (*libc::__errno_location()).clamp(1, i32::from(NOT_REGULAR_CODE) - 1) as u8
                } else {
                    let mut stat: libc::stat = std::mem::zeroed();
                    let code = if libc::fstat(fd, &mut stat) != 0 {
                        (*libc::__errno_location()).clamp(1, i32::from(NOT_REGULAR_CODE) - 1) as u8
                    } else {
                        not_regular(stat.st_mode).map_or(0, |i| NOT_REGULAR_CODE + i as u8)
                    };
                    libc::close(fd);
                    code
                };
                libc::write(write_end, (&code as *const u8).cast(), 1);
            }
            libc::_exit(0);
        }
        libc::close(write_end);
        let mut codes = Vec::with_capacity(paths.len());
        let mut byte = 0u8;
        while codes.len() < paths.len()
            && libc::read(read_end, (&mut byte as *mut u8).cast(), 1) == 1
        {
            codes.push(byte);
        }
        libc::close(read_end);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        if codes.len() != paths.len() {
            return None;
        }
        Some(
            codes
                .into_iter()
                .map(|c| match c {
                    0 => Ok(()),
                    c if c >= NOT_REGULAR_CODE => Err(Unusable::NotRegular(
                        NOT_REGULAR[usize::from(c - NOT_REGULAR_CODE).min(NOT_REGULAR.len() - 1)],
                    )),
                    c => Err(Unusable::Unreadable(crate::error::io_reason(
                        &std::io::Error::from_raw_os_error(i32::from(c)),
                    ))),
                })
                .collect(),
        )
    }
}

/// Every file the module reads for `config`: the config, each secret or
/// token file (the node's and each relation's), each `ca_file`; with what
/// it is.
pub(crate) fn files_of(config: &Config) -> Vec<(String, PathBuf)> {
    let mut files = vec![("config".to_string(), config.path.clone())];
    let mut add = |what: String, path: &Path| {
        if !files.iter().any(|(_, p)| p == path) {
            files.push((what, path.to_path_buf()));
        }
    };
    for node in config.nodes.values() {
        let credentials = node
            .auth
            .iter()
            .chain(node.relation_auth.values())
            .chain(node.cmonitor.as_ref().map(|c| &c.auth))
            .chain(node.api.as_ref());
        for credential in credentials {
            let (key, file) = credential.file();
            add(key.into(), file);
        }
        if let Some(ca) = &node.ca_file {
            add("ca_file".into(), ca);
        }
    }
    files
}

/// What the agent configurations under `dir` (normally /etc/zabbix) say.
#[derive(Default)]
pub(crate) struct AgentConfigs {
    /// `LoadModule=` lines naming the module: (file, value).
    pub(crate) load_module: Vec<(PathBuf, String)>,
    /// `LoadModulePath=`, for a relative `LoadModule`.
    pub(crate) load_module_path: Option<String>,
    /// `Plugins.Exalate.System.Path=` lines: (file, value).
    pub(crate) plugin_path: Vec<(PathBuf, String)>,
    /// `Plugins.Exalate.Config=`, if any.
    pub(crate) plugin_config: Option<(PathBuf, String)>,
    /// `Timeout=` of zabbix_agentd and of zabbix_agent2: (file, seconds).
    pub(crate) agentd_timeout: Option<(PathBuf, u64)>,
    /// Agent 2's.
    pub(crate) agent2_timeout: Option<(PathBuf, u64)>,
    /// Whether the agents' main configs exist.
    pub(crate) agentd_present: bool,
    /// Agent 2's main config exists.
    pub(crate) agent2_present: bool,
}

/// Reads the agents' configs and their include directories (the packages'
/// snippets) under `dir`.
pub(crate) fn agent_configs(dir: &Path) -> AgentConfigs {
    let mut found = AgentConfigs::default();
    let agentd_main = dir.join("zabbix_agentd.conf");
    let agent2_main = dir.join("zabbix_agent2.conf");
    found.agentd_present = agentd_main.exists();
    found.agent2_present = agent2_main.exists();
    let mut agentd = vec![agentd_main];
    agentd.extend(conf_files(&dir.join("zabbix_agentd.conf.d")));
    agentd.extend(conf_files(&dir.join("zabbix_agentd.d")));
    let mut agent2 = vec![agent2_main];
    agent2.extend(conf_files(&dir.join("zabbix_agent2.d")));
    agent2.extend(conf_files(&dir.join("zabbix_agent2.d/plugins.d")));
    for file in agentd {
        for (key, value) in conf_lines(&file) {
            match key.as_str() {
                "LoadModule" if value.contains(MODULE_NAME) => {
                    found.load_module.push((file.clone(), value))
                }
                "LoadModulePath" => found.load_module_path = Some(value),
                "Timeout" => {
                    if let Ok(t) = value.parse() {
                        found.agentd_timeout = Some((file.clone(), t));
                    }
                }
                _ => {}
            }
        }
    }
    for file in agent2 {
        for (key, value) in conf_lines(&file) {
            match key.as_str() {
                "Plugins.Exalate.System.Path" => found.plugin_path.push((file.clone(), value)),
                "Plugins.Exalate.Config" => found.plugin_config = Some((file.clone(), value)),
                "Timeout" => {
                    if let Ok(t) = value.parse() {
                        found.agent2_timeout = Some((file.clone(), t));
                    }
                }
                _ => {}
            }
        }
    }
    found
}

fn conf_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
        .collect();
    files.sort();
    files
}

/// `Key=Value` lines, comments and blanks skipped.
fn conf_lines(file: &Path) -> Vec<(String, String)> {
    let Ok(bytes) = crate::fs::read_file_within(file, 1 << 20) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The agent-side checks as `user_name`, with the agents' configs under
/// `dir`, for `config` (None: it is not valid, or has no node yet; then
/// only the file at `config_path` is read).
pub(crate) fn checks(
    config: Option<&Config>,
    config_path: &Path,
    user_name: &str,
    dir: &Path,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let agents = agent_configs(dir);
    let agent_here = !agents.load_module.is_empty() || !agents.plugin_path.is_empty();
    // Unreadable files fail only where the agent runs here as that user.
    let severity = |user_exists: bool| user_exists && agent_here;
    let files = match config {
        Some(config) => files_of(config),
        None => vec![("config".to_string(), config_path.to_path_buf())],
    };
    match User::lookup(user_name) {
        None => checks.push(Check::warn(
            "user",
            format!("no user {user_name:?} on this host: what the agent can read is not checked"),
            "run the check on the agent's host, or name the agent's user with --user",
        )),
        Some(user) => {
            let paths: Vec<PathBuf> = files.iter().map(|(_, p)| p.clone()).collect();
            match readable(&user, &paths) {
                None => checks.push(Check::warn(
                    "read",
                    format!(
                        "not checked: run as root or as {:?} to test what it can read",
                        user.name
                    ),
                    &format!("sudo exalate-zabbix check --user {}", user.name),
                )),
                Some(results) => {
                    for ((what, path), result) in files.iter().zip(results) {
                        let label = format!("read {what}");
                        match result {
                            Ok(()) => checks.push(Check::ok(
                                &label,
                                format!("{} readable by {}", path.display(), user.name),
                            )),
                            Err(unusable) => {
                                let (detail, fix) = match unusable {
                                    Unusable::Unreadable(reason) => (
                                        format!(
                                            "{} not readable by {}: {reason}",
                                            path.display(),
                                            user.name
                                        ),
                                        format!(
                                            "let the agent's user read it, not others: chgrp {} {} && chmod 0640 {} (and its directories g+x)",
                                            user.name,
                                            path.display(),
                                            path.display()
                                        ),
                                    ),
                                    Unusable::NotRegular(kind) => (
                                        format!(
                                            "{} is not a regular file ({kind}): the module reads only regular files",
                                            path.display()
                                        ),
                                        format!("point {what} at a regular file"),
                                    ),
                                };
                                checks.push(if severity(true) {
                                    Check::fail(&label, detail, &fix)
                                } else {
                                    Check::warn(&label, detail, &fix)
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    // The module in zabbix_agentd.
    match agents.load_module.first() {
        Some((file, value)) => {
            let module = match (&agents.load_module_path, value.starts_with('/')) {
                (Some(dir), false) => Path::new(dir).join(value),
                _ => PathBuf::from(value),
            };
            if module.exists() {
                checks.push(Check::ok(
                    "agentd",
                    format!("LoadModule={value} in {}", file.display()),
                ));
            } else {
                checks.push(Check::warn(
                    "agentd",
                    format!("LoadModule={value} in {}, but {} does not exist", file.display(), module.display()),
                    "install the package, or correct the path in LoadModule=",
                ));
            }
        }
        None if agents.agentd_present => checks.push(Check::warn(
            "agentd",
            format!("{} loads no {MODULE_NAME}", dir.join("zabbix_agentd.conf").display()),
            &format!(
                "add LoadModule=/usr/lib/zabbix/modules/{MODULE_NAME} in {} (the package writes it), then restart zabbix-agent",
                dir.join("zabbix_agentd.conf.d/exalate_zabbix.conf").display()
            ),
        )),
        None => checks.push(Check::skip(
            "agentd",
            format!("no {} on this host", dir.join("zabbix_agentd.conf").display()),
        )),
    }
    // The plugin in zabbix_agent2.
    match agents.plugin_path.first() {
        Some((file, value)) if Path::new(value).exists() => checks.push(Check::ok(
            "agent2",
            format!("Plugins.Exalate.System.Path={value} in {}", file.display()),
        )),
        Some((file, value)) => checks.push(Check::warn(
            "agent2",
            format!("Plugins.Exalate.System.Path={value} in {}, but it does not exist", file.display()),
            "install the package, or correct the path",
        )),
        None if agents.agent2_present => checks.push(Check::warn(
            "agent2",
            format!("{} loads no Exalate plugin", dir.join("zabbix_agent2.conf").display()),
            &format!(
                "add Plugins.Exalate.System.Path=/usr/sbin/zabbix-agent2-plugin/zabbix-agent2-plugin-exalate in {} (the package writes it), then restart zabbix-agent2",
                dir.join("zabbix_agent2.d/plugins.d/exalate.conf").display()
            ),
        )),
        None => checks.push(Check::skip(
            "agent2",
            format!("no {} on this host", dir.join("zabbix_agent2.conf").display()),
        )),
    }
    if let Some((file, path)) = &agents.plugin_config {
        if Path::new(path) != config_path {
            checks.push(Check::warn(
                "agent2",
                format!(
                    "Plugins.Exalate.Config={path} in {}: agent 2 reads that file, not {}",
                    file.display(),
                    config_path.display()
                ),
                &format!("exalate-zabbix check --config {path}"),
            ));
        }
    }
    // Timeout= against the config's timeout.
    for (agent, present, found) in [
        (
            "zabbix_agentd",
            agents.agentd_present || !agents.load_module.is_empty(),
            &agents.agentd_timeout,
        ),
        (
            "zabbix_agent2",
            agents.agent2_present || !agents.plugin_path.is_empty(),
            &agents.agent2_timeout,
        ),
    ] {
        if !present {
            continue;
        }
        let (agent_timeout, place) = match found {
            Some((file, t)) => (*t, format!("Timeout={t} in {}", file.display())),
            None => (3, "Timeout not set (3 s)".to_string()),
        };
        let longer: Vec<String> = config
            .iter()
            .flat_map(|c| c.nodes.values())
            .filter_map(|n| n.timeout.map(|t| (n, t.as_secs())))
            .filter(|(_, t)| *t > agent_timeout)
            .map(|(n, t)| format!("{} ({t} s)", n.name))
            .collect();
        if longer.is_empty() {
            checks.push(Check::ok(
                &format!("timeout {agent}"),
                format!("{place}; no node's timeout is longer"),
            ));
        } else {
            checks.push(Check::warn(
                &format!("timeout {agent}"),
                format!(
                    "{place}, shorter than the timeout of node {}: the agent gives up first",
                    longer.join(", ")
                ),
                "raise the agent's Timeout= to at least the config's timeout, or lower timeout",
            ));
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(path: &Path, mode: libc::mode_t) {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), mode) }, 0);
    }

    /// Issue 25: a FIFO (never blocking) and a directory are not usable;
    /// a regular file is. As this process's user, and as root through
    /// the forked child with another user's ids.
    #[test]
    fn only_a_regular_file_is_usable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("exalate-check-agent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a.d")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("a.secret"), "x").unwrap();
        std::fs::set_permissions(dir.join("a.secret"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        fifo(&dir.join("a.fifo"), 0o644);
        let paths = ["a.secret", "a.fifo", "a.d", "missing"].map(|f| dir.join(f));
        let expected = [
            Ok(()),
            Err(Unusable::NotRegular("a FIFO")),
            Err(Unusable::NotRegular("a directory")),
            Err(Unusable::Unreadable("No such file or directory".into())),
        ];
        // SAFETY: geteuid and getegid have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let me = User {
            name: "me".into(),
            uid,
            gid,
            groups: vec![gid],
        };
        assert_eq!(readable(&me, &paths).unwrap(), expected);
        if uid == 0 {
            let nobody = User::lookup("nobody").expect("a user nobody");
            assert_eq!(readable(&nobody, &paths).unwrap(), expected);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
