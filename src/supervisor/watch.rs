//! Watching the config file for edits, so that saving it reloads warden.
//!
//! Editors often save by writing a new file and renaming it over the old one, which
//! replaces the inode a file watch would be attached to; so the folder is watched and
//! events are filtered by name. Bursts of events (write, chmod, rename) are folded by the
//! core's debounce (`core::RELOAD_DEBOUNCE`); this module only says "the config may have
//! changed".

use std::ffi::OsString;
use std::path::Path;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Keeps the watch alive; dropping it stops watching.
pub struct ConfigWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Watch `config`'s folder; each change to `config` sends `()` on `tx`.
pub fn watch(config: &Path, tx: mpsc::UnboundedSender<()>) -> notify::Result<ConfigWatch> {
    let folder = config.parent().unwrap_or(Path::new("/")).to_path_buf();
    let name: OsString = config.file_name().unwrap_or_default().to_owned();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) && event
            .paths
            .iter()
            .any(|p| p.file_name() == Some(name.as_os_str()));
        if relevant {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&folder, RecursiveMode::NonRecursive)?;
    Ok(ConfigWatch { _watcher: watcher })
}
