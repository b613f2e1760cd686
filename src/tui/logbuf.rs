//! The lines the logs pane holds: bounded in lines and in bytes, oldest dropped first,
//! with the scroll position (follow, or paused some lines up) and the search.
//!
//! Lines arrive already made safe for a terminal (see `LogLine::display_text`); the
//! colours a child printed ride along as SGR-only text and are parsed only for the lines
//! on screen.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

/// The most lines the pane keeps; older ones are dropped (`warden logs` and the log
/// files have the rest).
pub const MAX_LINES: usize = 5_000;
/// The most text the pane keeps, in bytes.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Stdout,
    Stderr,
    /// warden's own marker lines (run started, exited).
    Warden,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub name: Arc<str>,
    pub time: SystemTime,
    pub origin: Origin,
    /// Safe text without colours.
    pub text: String,
    /// The same text with the child's SGR sequences, when it had any.
    pub ansi: Option<String>,
}

impl LogEntry {
    fn bytes(&self) -> usize {
        self.text.len() + self.ansi.as_ref().map_or(0, String::len) + 64
    }
}

#[derive(Debug, Default)]
pub struct LogBuf {
    lines: VecDeque<LogEntry>,
    bytes: usize,
    /// Lines from the bottom that the view is scrolled up by; 0 = following.
    pub scroll: usize,
    /// Lines that arrived while paused.
    pub unseen: usize,
    /// Lines the source skipped (a flood, a slow view), since the pane was opened.
    pub skipped: u64,
    pub search: Option<String>,
}

impl LogBuf {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn clear(&mut self) {
        *self = LogBuf {
            search: self.search.take(),
            ..LogBuf::default()
        };
    }

    pub fn following(&self) -> bool {
        self.scroll == 0
    }

    /// Line `i` counted from the oldest kept.
    pub fn get(&self, i: usize) -> Option<&LogEntry> {
        self.lines.get(i)
    }

    pub fn push(&mut self, entry: LogEntry) {
        self.bytes += entry.bytes();
        self.lines.push_back(entry);
        if self.scroll > 0 {
            // Paused: the same lines stay on screen.
            self.scroll += 1;
            self.unseen += 1;
        }
        while self.lines.len() > MAX_LINES || self.bytes > MAX_BYTES {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.bytes();
        }
        self.scroll = self.scroll.min(self.lines.len().saturating_sub(1));
    }

    pub fn scroll_up(&mut self, n: usize) {
        self.scroll = (self.scroll + n).min(self.lines.len().saturating_sub(1));
    }

    pub fn scroll_down(&mut self, n: usize) {
        self.scroll = self.scroll.saturating_sub(n);
        if self.scroll == 0 {
            self.unseen = 0;
        }
    }

    pub fn top(&mut self) {
        self.scroll = self.lines.len().saturating_sub(1);
    }

    pub fn follow(&mut self) {
        self.scroll = 0;
        self.unseen = 0;
    }

    /// The index of the newest line shown at the bottom of the view.
    pub fn bottom_index(&self) -> Option<usize> {
        self.lines.len().checked_sub(1 + self.scroll)
    }

    /// Scroll to the next line matching the search, going up (`older`) or down; false if
    /// there is none.
    pub fn jump(&mut self, older: bool) -> bool {
        let Some(query) = self.search.clone().filter(|q| !q.is_empty()) else {
            return false;
        };
        let Some(from) = self.bottom_index() else {
            return false;
        };
        let hit = if older {
            (0..from)
                .rev()
                .find(|&i| matches(&self.lines[i].text, &query))
        } else {
            (from + 1..self.lines.len()).find(|&i| matches(&self.lines[i].text, &query))
        };
        match hit {
            Some(i) => {
                self.scroll = self.lines.len() - 1 - i;
                if self.scroll == 0 {
                    self.unseen = 0;
                }
                true
            }
            None => false,
        }
    }

    /// How many kept lines match the search.
    pub fn match_count(&self) -> usize {
        match self.search.as_deref().filter(|q| !q.is_empty()) {
            Some(q) => self.lines.iter().filter(|l| matches(&l.text, q)).count(),
            None => 0,
        }
    }
}

/// Case-insensitive unless the query has a capital letter (as in less and vim's
/// smartcase).
pub fn matches(text: &str, query: &str) -> bool {
    find(text, query).next().is_some()
}

/// Byte ranges of the matches of `query` in `text`, with smartcase.
pub fn find<'a>(text: &'a str, query: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
    let fold = !query.chars().any(char::is_uppercase);
    let (hay, needle) = if fold {
        (text.to_lowercase(), query.to_lowercase())
    } else {
        (text.to_string(), query.to_string())
    };
    // Lowercasing can change lengths outside ASCII; then fall back to exact matching.
    let (hay, needle) = if hay.len() == text.len() {
        (hay, needle)
    } else {
        (text.to_string(), query.to_string())
    };
    let mut at = 0;
    std::iter::from_fn(move || {
        if needle.is_empty() {
            return None;
        }
        let i = hay.get(at..)?.find(&needle)? + at;
        at = i + needle.len();
        Some((i, i + needle.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogEntry {
        LogEntry {
            name: "web".into(),
            time: std::time::UNIX_EPOCH,
            origin: Origin::Stdout,
            text: text.into(),
            ansi: None,
        }
    }

    #[test]
    fn follow_pauses_when_scrolled_up_and_resumes_at_the_bottom() {
        let mut b = LogBuf::default();
        for i in 0..10 {
            b.push(line(&format!("l{i}")));
        }
        assert!(b.following());
        b.scroll_up(3);
        assert_eq!(b.bottom_index(), Some(6));
        b.push(line("l10"));
        assert_eq!(b.bottom_index(), Some(6), "the view stays put while paused");
        assert_eq!(b.unseen, 1);
        b.scroll_down(10);
        assert!(b.following());
        assert_eq!(b.unseen, 0);
    }

    #[test]
    fn memory_is_bounded_in_lines_and_bytes() {
        let mut b = LogBuf::default();
        for i in 0..MAX_LINES + 10 {
            b.push(line(&format!("{i}")));
        }
        assert_eq!(b.len(), MAX_LINES);
        assert_eq!(b.get(0).unwrap().text, "10");
        let big = "x".repeat(64 * 1024);
        for _ in 0..100 {
            b.push(line(&big));
        }
        assert!(b.bytes <= MAX_BYTES);
    }

    #[test]
    fn search_is_smartcase_and_jumps_between_matches() {
        let mut b = LogBuf::default();
        for t in ["GET /a", "error: x", "get /b", "ERROR y", "ok"] {
            b.push(line(t));
        }
        b.search = Some("error".into());
        assert_eq!(b.match_count(), 2);
        assert!(b.jump(true));
        assert_eq!(b.bottom_index(), Some(3));
        assert!(b.jump(true));
        assert_eq!(b.bottom_index(), Some(1));
        assert!(!b.jump(true), "no older match");
        assert!(b.jump(false));
        assert_eq!(b.bottom_index(), Some(3));
        b.search = Some("ERROR".into());
        assert_eq!(b.match_count(), 1, "a capital letter makes it exact");
        assert_eq!(find("aXbxc", "x").collect::<Vec<_>>(), [(1, 2), (3, 4)]);
    }
}
