//! The config file, watched and re-read: at most one `stat` a second, a new
//! [`Setup`] when the file changed, and the sessions (connections, tokens)
//! of nodes whose config did not change carried over.

use super::session::NodeSession;
use super::watch::WatchedFile;
use crate::config::Config;
use crate::error::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a config file gives: the config and one session per node.
pub struct Setup {
    pub config: Config,
    pub sessions: BTreeMap<String, Arc<NodeSession>>,
}

pub struct ConfigWatch {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

#[derive(Default)]
struct Loaded {
    current: Option<Result<Arc<Setup>>>,
    file: WatchedFile,
}

impl ConfigWatch {
    pub fn new(path: PathBuf) -> ConfigWatch {
        ConfigWatch {
            path,
            loaded: Mutex::new(Loaded::default()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current setup, re-reading the config when the file changed.
    pub fn current(&self) -> Result<Arc<Setup>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.file.changed(&self.path) || loaded.current.is_none() {
            let previous = match &loaded.current {
                Some(Ok(setup)) => Some(setup.clone()),
                _ => None,
            };
            let next = Config::load(&self.path)
                .map(|config| Arc::new(Setup::new(config, previous.as_deref())));
            loaded.current = Some(next);
        }
        loaded.current.clone().expect("loaded above")
    }

    /// The setup loaded now, if it loaded, without looking at the file.
    pub fn loaded(&self) -> Option<Arc<Setup>> {
        let loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        loaded.current.clone().and_then(|r| r.ok())
    }
}

impl Setup {
    /// Keeps the sessions (connections, tokens) of nodes whose config did
    /// not change; their caches start afresh, like everything after a reload.
    fn new(config: Config, previous: Option<&Setup>) -> Setup {
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
        Setup { config, sessions }
    }

    pub fn session(&self, node: &str) -> Result<Arc<NodeSession>> {
        let name = &self.config.node(node)?.name;
        Ok(self.sessions[name].clone())
    }
}
