//! What people read, pinned by snapshots: the `status` table, the `events` text and the
//! `reload --dry-run` plan. Pids, times, durations, figures and the temp folder are
//! redacted, so that a snapshot changes only when the wording or layout does.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use regex::Regex;

use crate::control::{AFTER, BEFORE, ok};
use crate::harness::*;

/// `text` with this test's folder, clock times, pids, durations and figures replaced by
/// placeholders.
fn redact(w: &Warden, text: &str) -> String {
    let dir = w.dir.path().canonicalize().unwrap();
    let mut text = text
        .replace(&dir.display().to_string(), "[DIR]")
        .replace(&w.dir.path().display().to_string(), "[DIR]");
    for (pattern, with) in [
        (r"\b\d{2}:\d{2}:\d{2}\.\d{3}\b", "[TIME]"),
        (r"\bpid \d+", "pid [PID]"),
        (r"\b\d+(\.\d+)?(ms|s|m|h|d)\b", "[DUR]"),
        (r"\b\d+(\.\d+)?(B|KiB|MiB|GiB)\b", "[SIZE]"),
        (r"\b\d+(\.\d+)?%", "[PCT]"),
    ] {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, with)
            .into_owned();
    }
    text
}

const TWO: &str = r#"
[processes.web]
command = "warden-demo-worker sleep"
[processes.batch]
command = "warden-demo-worker crash 0 3"
restart = "never"
[processes.manual]
command = "warden-demo-worker sleep"
autostart = false
"#;

#[test]
fn status_table() {
    let w = Warden::start(TWO);
    let web = w.run_pid("web", 1);
    w.wait_for(state("web", State::Running));
    w.wait_for(state("batch", State::Exited));
    let out = ok(&w, &["status"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    // Every cell starts under its heading; the widths depend on the figures, which are
    // redacted, so the snapshot has the words of each line.
    let starts: Vec<usize> = header
        .match_indices(|c: char| c != ' ')
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || header.as_bytes()[i - 1] == b' ')
        .collect();
    let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut pinned = vec![words(header)];
    for row in lines.by_ref().take_while(|l| !l.is_empty()) {
        for &i in &starts {
            let b = row.as_bytes();
            assert!(
                b.get(i).is_some_and(|&c| c != b' ') && (i == 0 || b[i - 1] == b' '),
                "a cell not under its heading at column {i}:\n{header}\n{row}"
            );
        }
        let row = row.replace(&web.to_string(), "[PID]");
        pinned.push(
            redact(&w, &row)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    pinned.push(String::new());
    for line in lines {
        // The cgroup line describes this machine.
        pinned.push(match line.split_once(": ") {
            Some(("cgroup", _)) => "cgroup: [THIS MACHINE]".into(),
            _ => redact(&w, line),
        });
    }
    insta::assert_snapshot!(pinned.join("\n"));
}

#[test]
fn events_text() {
    let w = Warden::start(TWO);
    let last = w
        .wait_for(state("batch", State::Exited))
        .seq
        .max(w.wait_for(state("web", State::Running)).seq);
    // Everything up to both of those, replayed: two processes' events interleave as they
    // happen to, so each one's lines are pinned apart.
    let mut child = Command::new(warden_bin())
        .args(["events", "--since", "0"])
        .current_dir(w.dir.path())
        .env("NO_COLOR", "1")
        .env_remove("WARDEN_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    while lines.len() < last as usize {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        lines.push(redact(&w, line.trim_end()));
    }
    let _ = child.kill();
    let _ = child.wait();
    let of = |name: &str| {
        lines
            .iter()
            .filter(|l| l.contains(&format!(" {name}: ")))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    };
    insta::assert_snapshot!("events_text_web", of("web"));
    insta::assert_snapshot!("events_text_batch", of("batch"));
}

#[test]
fn reload_dry_run_plan() {
    // The edit goes to the symlink's target, which the file watch does not see: nothing
    // reloads behind the dry run's back.
    let w = Warden::start_with(BEFORE, |dir| {
        std::fs::create_dir(dir.join("real")).unwrap();
        std::fs::rename(dir.join("warden.toml"), dir.join("real/warden.toml")).unwrap();
        std::os::unix::fs::symlink("real/warden.toml", dir.join("warden.toml")).unwrap();
    });
    for name in ["keep", "change", "gone"] {
        w.wait_for(state(name, State::Running));
    }
    std::fs::write(w.path("real/warden.toml"), AFTER).unwrap();
    let out = ok(&w, &["reload", "--dry-run"]);
    insta::assert_snapshot!(redact(&w, &out));
}
