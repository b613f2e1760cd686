//! Watching a process's files (`watch`), so that saving one restarts it.
//!
//! The folders the patterns start from are watched recursively through `notify` (folders,
//! not files: editors save by writing a new file and renaming it over the old one). Each
//! event's paths are filtered here, on notify's thread: they must match `watch`, not
//! `watch_ignore`, not what the `.gitignore` files of their folders ignore (up to the
//! repository's root), and not be warden's own log files or a `.git` folder. What passes
//! is collected, and the actor is signalled once until it takes the collection, so a
//! `git checkout` of ten thousand files is one message. Debouncing is the core's.
//!
//! This module must not decide anything about the process: it only says "these files
//! changed".

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ignore::gitignore::Gitignore;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::watch::WatchSpec;

/// How many changed paths are kept to be named (the rest are counted).
const KEEP: usize = 5;
/// How many distinct paths are remembered for counting; past this, every event counts.
const DISTINCT: usize = 10_000;

/// A live watch; dropping it stops watching.
pub struct FileWatch {
    pub spec: WatchSpec,
    changes: Arc<Mutex<Changes>>,
    _watcher: notify::RecommendedWatcher,
}

#[derive(Default)]
struct Changes {
    paths: Vec<PathBuf>,
    /// Distinct paths changed (a save touches one file several times).
    seen: HashSet<PathBuf>,
    /// Events beyond what `seen` may hold.
    extra: usize,
    /// The actor was told and has not taken them yet.
    signalled: bool,
}

impl FileWatch {
    /// Watch for `process`. Each first change after a [`FileWatch::take`] sends `process`
    /// on `tx`. `skip`: paths (and everything under them) that never count, such as the
    /// log folder. Returns the watch and the folders that could not be watched, with why.
    pub fn start(
        process: &str,
        spec: &WatchSpec,
        skip: Vec<PathBuf>,
        tx: mpsc::UnboundedSender<String>,
    ) -> notify::Result<(FileWatch, Vec<String>)> {
        let changes = Arc::new(Mutex::new(Changes::default()));
        let filter = Filter {
            spec: spec.clone(),
            skip,
            git: HashMap::new(),
        };
        let handler = Handler {
            process: process.to_string(),
            filter,
            changes: changes.clone(),
            tx,
        };
        let mut watcher = notify::recommended_watcher(handler)?;
        let mut problems = Vec::new();
        for (root, deep) in spec.roots() {
            // A folder that does not exist yet is watched from its nearest parent, and
            // then below it, to see it appear.
            let existing = root
                .ancestors()
                .find(|p| p.is_dir())
                .unwrap_or(Path::new("/"));
            let mode = if deep || existing != root {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            if let Err(e) = watcher.watch(existing, mode) {
                problems.push(format!("cannot watch `{}`: {e}", existing.display()));
            }
        }
        Ok((
            FileWatch {
                spec: spec.clone(),
                changes,
                _watcher: watcher,
            },
            problems,
        ))
    }

    /// The changed paths collected since the last call (at most a few, as text relative
    /// to the config folder where possible) and how many there were in all.
    pub fn take(&self) -> (Vec<String>, usize) {
        let mut c = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        c.signalled = false;
        let paths = std::mem::take(&mut c.paths)
            .into_iter()
            .map(|p| {
                p.strip_prefix(&self.spec.base)
                    .unwrap_or(&p)
                    .display()
                    .to_string()
            })
            .collect();
        let count = c.seen.len() + c.extra;
        c.seen = HashSet::new();
        c.extra = 0;
        (paths, count)
    }
}

struct Handler {
    process: String,
    filter: Filter,
    changes: Arc<Mutex<Changes>>,
    tx: mpsc::UnboundedSender<String>,
}

impl notify::EventHandler for Handler {
    fn handle_event(&mut self, event: notify::Result<notify::Event>) {
        let Ok(event) = event else { return };
        if !matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) {
            return;
        }
        for path in &event.paths {
            if path.file_name().is_some_and(|n| n == ".gitignore")
                && let Some(dir) = path.parent()
            {
                self.filter.git.remove(dir);
            }
            if !self.filter.counts(path) {
                continue;
            }
            let mut c = self.changes.lock().unwrap_or_else(|e| e.into_inner());
            if c.seen.len() < DISTINCT {
                c.seen.insert(path.clone());
            } else if !c.seen.contains(path) {
                c.extra += 1;
            }
            if c.paths.len() < KEEP && !c.paths.contains(path) {
                c.paths.push(path.clone());
            }
            if !c.signalled {
                c.signalled = true;
                let _ = self.tx.send(self.process.clone());
            }
        }
    }
}

/// What a folder's `.gitignore` says, and whether the folder is a repository's root.
struct Folder {
    gitignore: Option<Gitignore>,
    repo_root: bool,
}

impl Folder {
    fn read(dir: &Path) -> Folder {
        let file = dir.join(".gitignore");
        Folder {
            gitignore: file.is_file().then(|| Gitignore::new(&file).0),
            repo_root: dir.join(".git").exists(),
        }
    }
}

struct Filter {
    spec: WatchSpec,
    skip: Vec<PathBuf>,
    /// Folders seen so far; an edited `.gitignore` drops its folder's entry.
    git: HashMap<PathBuf, Folder>,
}

impl Filter {
    fn counts(&mut self, path: &Path) -> bool {
        // `x.log` covers the files rotation makes of it, `x.log.1`…
        let skipped = |s: &PathBuf| {
            path.starts_with(s)
                || (path.parent() == s.parent()
                    && path.file_name().zip(s.file_name()).is_some_and(|(p, s)| {
                        p.as_encoded_bytes().starts_with(s.as_encoded_bytes())
                    }))
        };
        if self.skip.iter().any(skipped) || path.components().any(|c| c.as_os_str() == ".git") {
            return false;
        }
        // A removed path cannot say what it was; patterns for folders end in `/` and
        // match what is inside them, so "file" is the right guess for a change.
        let is_dir = path.is_dir();
        self.spec.matches(path, is_dir) && !self.git_ignores(path, is_dir)
    }

    /// `.gitignore` files from the path's folder up to the repository's root, the
    /// deepest deciding first. Outside a repository, only those at or below the folder
    /// the matching pattern starts from count (git would read none).
    fn git_ignores(&mut self, path: &Path, is_dir: bool) -> bool {
        let mut folders = Vec::new();
        let mut in_repo = false;
        for dir in path.ancestors().skip(1) {
            let folder = self
                .git
                .entry(dir.to_path_buf())
                .or_insert_with(|| Folder::read(dir));
            folders.push(dir.to_path_buf());
            if folder.repo_root {
                in_repo = true;
                break;
            }
        }
        if !in_repo {
            let top = self
                .spec
                .roots()
                .map(|(r, _)| r)
                .filter(|r| path.starts_with(r))
                .min_by_key(|r| r.components().count())
                .map(Path::to_path_buf);
            folders.retain(|d| top.as_ref().is_some_and(|t| d.starts_with(t)));
        }
        for dir in folders {
            let Some(gi) = self.git.get(&dir).and_then(|f| f.gitignore.as_ref()) else {
                continue;
            };
            match gi.matched_path_or_any_parents(path, is_dir) {
                ignore::Match::Ignore(_) => return true,
                ignore::Match::Whitelist(_) => return false,
                ignore::Match::None => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(dir: &Path, patterns: &[&str], ignore: &[&str]) -> Filter {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        Filter {
            spec: WatchSpec::new(dir, &s(patterns), &s(ignore)).unwrap(),
            skip: vec![dir.join("logs"), dir.join("src/app.log")],
            git: HashMap::new(),
        }
    }

    #[test]
    fn gitignore_files_log_files_and_git_folders_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("src/build")).unwrap();
        std::fs::write(root.join(".gitignore"), "build/\n*.tmp\n").unwrap();
        std::fs::write(root.join("src/.gitignore"), "!keep.tmp\nlocal.py\n").unwrap();
        let mut f = filter(root, &["src/**", "*.log"], &["*.pyc"]);
        let counts = |f: &mut Filter, p: &str| f.counts(&root.join(p));
        assert!(counts(&mut f, "src/a.py"));
        assert!(!counts(&mut f, "src/a.pyc"), "watch_ignore");
        assert!(
            !counts(&mut f, "src/build/out.py"),
            "a folder the root .gitignore ignores"
        );
        assert!(!counts(&mut f, "src/x.tmp"), "the root .gitignore");
        assert!(
            counts(&mut f, "src/keep.tmp"),
            "re-included by the deeper .gitignore"
        );
        assert!(!counts(&mut f, "src/local.py"), "the deeper .gitignore");
        assert!(!counts(&mut f, "logs/web.log"), "warden's own logs");
        assert!(
            !counts(&mut f, "src/app.log.3"),
            "a log file elsewhere, rotated"
        );
        assert!(counts(&mut f, "other.log"));
        assert!(!counts(&mut f, ".git/index"));
        // An edited .gitignore is read again once its entry is dropped.
        std::fs::write(root.join("src/.gitignore"), "").unwrap();
        f.git.remove(&root.join("src"));
        assert!(counts(&mut f, "src/local.py"));
    }
}
