//! `watch` and `watch_ignore`: which file changes restart a process, compiled once.
//!
//! Both lists are read like `.gitignore` lines: a pattern without a `/` matches a name at
//! any depth (`*.py`), one with a `/` is anchored (`src/**/*.py`), `**` crosses folders,
//! and a trailing `/` matches folders (and so everything in them). `watch` patterns
//! start at the config file's folder, or at a folder written in front of them
//! (`../shared/*.py`, `/etc/app/*.conf`); `watch_ignore` patterns start at the config
//! file's folder. This module only answers "does this path count"; watching folders,
//! `.gitignore` files and debouncing are the supervisor's.

use std::path::{Component, Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The compiled `watch` of one process.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// The config file's folder.
    pub base: PathBuf,
    /// As written, for messages and reload comparisons.
    pub patterns: Vec<String>,
    pub ignore: Vec<String>,
    /// How long files must stay unchanged after a change before the restart
    /// (`watch_delay`, default [`WatchSpec::DEFAULT_DELAY`]).
    pub delay: std::time::Duration,
    /// One matcher per folder that patterns start from (which is what gets watched),
    /// and whether they reach below it.
    include: Vec<(PathBuf, bool, Gitignore)>,
    exclude: Gitignore,
}

impl PartialEq for WatchSpec {
    fn eq(&self, other: &Self) -> bool {
        (&self.base, &self.patterns, &self.ignore, self.delay)
            == (&other.base, &other.patterns, &other.ignore, other.delay)
    }
}

impl WatchSpec {
    /// An editor's save (write, rename, chmod) and a formatter run right after it fit in.
    pub const DEFAULT_DELAY: std::time::Duration = std::time::Duration::from_millis(300);

    /// Compile `patterns` and `ignore`, relative to `base`. The error names the pattern
    /// and what is wrong with it.
    pub fn new(base: &Path, patterns: &[String], ignore: &[String]) -> Result<WatchSpec, String> {
        let mut roots: Vec<(PathBuf, bool, GitignoreBuilder)> = Vec::new();
        for pattern in patterns {
            let (root, deep, line) = split(base, pattern)?;
            let builder = match roots.iter_mut().find(|(r, _, _)| *r == root) {
                Some((_, d, b)) => {
                    *d |= deep;
                    b
                }
                None => {
                    roots.push((root.clone(), deep, GitignoreBuilder::new(&root)));
                    &mut roots.last_mut().expect("just pushed").2
                }
            };
            builder
                .add_line(None, &line)
                .map_err(|e| format!("`{pattern}` is not a pattern: {}", reason(&e)))?;
        }
        let include = roots
            .into_iter()
            .map(|(root, deep, b)| b.build().map(|gi| (root, deep, gi)))
            .collect::<Result<_, _>>()
            .map_err(|e| reason(&e))?;
        let mut exclude = GitignoreBuilder::new(base);
        for pattern in ignore {
            if pattern.starts_with("../") || pattern == ".." {
                return Err(format!(
                    "`{pattern}`: `watch_ignore` patterns start at the config file's folder and cannot leave it"
                ));
            }
            exclude
                .add_line(None, pattern)
                .map_err(|e| format!("`{pattern}` is not a pattern: {}", reason(&e)))?;
        }
        Ok(WatchSpec {
            base: base.to_path_buf(),
            patterns: patterns.to_vec(),
            ignore: ignore.to_vec(),
            delay: Self::DEFAULT_DELAY,
            include,
            exclude: exclude.build().map_err(|e| reason(&e))?,
        })
    }

    /// The folders to watch, where the patterns start, and whether to watch what is
    /// below them too.
    pub fn roots(&self) -> impl Iterator<Item = (&Path, bool)> {
        self.include
            .iter()
            .map(|(root, deep, _)| (root.as_path(), *deep))
    }

    /// Whether a change to `path` (absolute) counts, by `watch` and `watch_ignore` alone.
    pub fn matches(&self, path: &Path, is_dir: bool) -> bool {
        let included = self.include.iter().any(|(root, _, gi)| {
            path.starts_with(root) && gi.matched_path_or_any_parents(path, is_dir).is_ignore()
        });
        let excluded = path.starts_with(&self.base)
            && self
                .exclude
                .matched_path_or_any_parents(path, is_dir)
                .is_ignore();
        included && !excluded
    }
}

/// A pattern's starting folder, whether it reaches below it, and the gitignore line that
/// matches there. Without a `/`, the line matches at any depth below `base`; with one,
/// the literal folders in front become the root and the rest is anchored there
/// (`./x` anchors `x` at `base`).
fn split(base: &Path, pattern: &str) -> Result<(PathBuf, bool, String), String> {
    if pattern.trim().is_empty() {
        return Err("a pattern cannot be empty".into());
    }
    if pattern.starts_with('!') {
        return Err(format!(
            "`{pattern}`: leave paths out with `watch_ignore` instead of `!`"
        ));
    }
    let body = pattern.trim_end_matches('/');
    if !body.contains('/') {
        return Ok((base.to_path_buf(), true, pattern.to_string()));
    }
    let glob = |s: &str| s.contains(['*', '?', '[', '{', '\\']);
    let mut root = if body.starts_with('/') {
        PathBuf::from("/")
    } else {
        base.to_path_buf()
    };
    let parts: Vec<&str> = body.split('/').filter(|p| !p.is_empty()).collect();
    let literal = parts.iter().take_while(|p| !glob(p)).count();
    // A literal path names a file or a folder: its parent is the root, and the name,
    // anchored there, matches it (and, for a folder, everything in it).
    let literal = literal.min(parts.len() - 1);
    for part in &parts[..literal] {
        root.push(part);
    }
    let root = normalize(&root);
    let rest = &parts[literal..];
    // One name with no `**` matches directly in the root, unless it names a folder.
    let deep = rest.len() > 1
        || rest[0].contains("**")
        || pattern.ends_with('/')
        || root.join(rest[0]).is_dir();
    let mut line = format!("/{}", rest.join("/"));
    if pattern.ends_with('/') {
        line.push('/');
    }
    Ok((root, deep, line))
}

/// `a/b/../c` → `a/c`, `.` dropped; no file system access (the folder may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

fn reason(e: &ignore::Error) -> String {
    let text = e.to_string();
    // "error parsing glob '/{a,b': unclosed…" quotes our rewritten line, not the user's.
    let text = match text.strip_prefix("error parsing glob '") {
        Some(rest) => rest
            .split_once("': ")
            .map_or(rest, |(_, why)| why)
            .to_string(),
        None => text,
    };
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(patterns: &[&str], ignore: &[&str]) -> WatchSpec {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        WatchSpec::new(Path::new("/app"), &s(patterns), &s(ignore)).unwrap()
    }

    #[test]
    fn patterns_read_like_gitignore_lines() {
        let w = spec(
            &["src/**/*.py", "*.toml", "../shared/lib/", "/etc/app/*.conf"],
            &["*.pyc", "src/gen/"],
        );
        let roots: Vec<(&Path, bool)> = w.roots().collect();
        assert_eq!(
            roots,
            [
                (Path::new("/app/src"), true),
                (Path::new("/app"), true),
                (Path::new("/shared"), true),
                (Path::new("/etc/app"), false)
            ]
        );
        let top = spec(&["./touch-me"], &[]);
        assert_eq!(
            top.roots().collect::<Vec<_>>(),
            [(Path::new("/app"), false)]
        );
        assert!(top.matches(Path::new("/app/touch-me"), false));
        assert!(!top.matches(Path::new("/app/sub/touch-me"), false));
        let m = |p: &str| w.matches(Path::new(p), false);
        assert!(m("/app/src/a.py"));
        assert!(m("/app/src/deep/er/b.py"));
        assert!(!m("/app/a.py"), "anchored at src/");
        assert!(!m("/app/src/a.txt"));
        assert!(
            m("/app/x.toml") && m("/app/some/where/y.toml"),
            "no slash: any depth"
        );
        assert!(
            m("/shared/lib/util.py"),
            "a folder matches everything in it"
        );
        assert!(!m("/shared/other.py"));
        assert!(m("/etc/app/x.conf"));
        assert!(!m("/app/src/gen/c.py"), "watch_ignore folder");
        assert!(!m("/app/src/a.pyc"));
    }

    #[test]
    fn bad_patterns_are_explained() {
        let err = |p: &[&str], i: &[&str]| {
            let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
            WatchSpec::new(Path::new("/app"), &s(p), &s(i)).unwrap_err()
        };
        assert!(
            err(&["src/{a,b"], &[]).starts_with("`src/{a,b` is not a pattern"),
            "{}",
            err(&["src/{a,b"], &[])
        );
        assert!(err(&["!x"], &[]).contains("`watch_ignore`"));
        assert!(err(&[""], &[]).contains("cannot be empty"));
        assert!(err(&["*.py"], &["../x"]).contains("cannot leave it"));
    }
}
