//! The config file, watched and re-read: at most one `stat` a second, a new
//! [`LoadedConfig`] when the file changed, and the sessions (connections, tokens)
//! of nodes whose config did not change carried over.

use super::session::NodeSession;
use super::watch::WatchedFile;
use crate::config::Config;
use crate::error::Result;
use crate::lock::lock;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a config file gives: the config and one session per node.
pub(crate) struct LoadedConfig {
    pub(crate) config: Config,
    pub(crate) sessions: BTreeMap<String, Arc<NodeSession>>,
}

pub(crate) struct ConfigWatch {
    path: PathBuf,
    state: Mutex<WatchState>,
}

/// The last load's outcome and the file's stamp then.
#[derive(Default)]
struct WatchState {
    current: Option<Result<Arc<LoadedConfig>>>,
    file: WatchedFile,
}

impl ConfigWatch {
    pub(crate) fn new(path: PathBuf) -> ConfigWatch {
        ConfigWatch {
            path,
            state: Mutex::new(WatchState::default()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The config loaded now, re-reading the config when the file changed.
    pub(crate) fn current(&self) -> Result<Arc<LoadedConfig>> {
        let mut state = lock(&self.state);
        let failed = matches!(state.current, Some(Err(_)));
        if state.file.read_again(&self.path, failed) || state.current.is_none() {
            let previous = match &state.current {
                Some(Ok(loaded)) => Some(loaded.clone()),
                _ => None,
            };
            let next = Config::load(&self.path)
                .map(|config| Arc::new(LoadedConfig::new(config, previous.as_deref())));
            state.current = Some(next);
        }
        state.current.clone().expect("loaded above")
    }

    /// The config loaded now, if it loaded, without looking at the file.
    pub(crate) fn last_good(&self) -> Option<Arc<LoadedConfig>> {
        let state = lock(&self.state);
        state.current.clone().and_then(|r| r.ok())
    }
}

impl LoadedConfig {
    /// Keeps the sessions (connections, tokens) of nodes whose config did
    /// not change; their caches start afresh, like everything after a reload.
    fn new(config: Config, previous: Option<&LoadedConfig>) -> LoadedConfig {
        let sessions = config
            .nodes
            .values()
            .map(|node| {
                let kept = previous
                    .and_then(|p| p.sessions.get(&node.name))
                    .filter(|s| s.config == *node)
                    .cloned();
                let session = match kept {
                    Some(session) => {
                        session.cache.clear();
                        session
                    }
                    None => Arc::new(NodeSession::new(node.clone())),
                };
                (node.name.clone(), session)
            })
            .collect();
        LoadedConfig { config, sessions }
    }

    pub(crate) fn session(&self, node: &str) -> Result<Arc<NodeSession>> {
        let name = &self.config.node(node)?.name;
        Ok(self.sessions[name].clone())
    }
}
