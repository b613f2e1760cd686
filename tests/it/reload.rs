//! Reload from the file watch and SIGHUP: the difference is applied, untouched processes
//! keep their pid, an invalid edit changes nothing.

use crate::harness::*;

// The same edit as the `warden reload` tests: keep, change and gone become keep, change
// and added.
use crate::control::{AFTER, BEFORE};

/// Replace the config the way editors do: write a temp file, rename it over.
fn save(w: &Warden, text: &str) {
    let tmp = w.path(".warden.toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, w.path("warden.toml")).unwrap();
}

#[test]
fn saving_the_config_applies_the_difference() {
    let mut w = Warden::start(BEFORE);
    let keep = w.run_pid("keep", 1);
    w.run_pid("change", 1);
    w.run_pid("gone", 1);
    save(&w, AFTER);
    w.wait_event("", "config reloaded: 1 added, 1 removed, 1 changed");
    w.wait_event("change", "run 1 ended");
    w.run_pid("change", 2);
    w.run_pid("added", 1);
    w.wait_event("gone", "stopping → stopped");
    assert!(alive(keep), "the untouched process keeps running");
    assert!(!w.lines().iter().any(|l| l.contains("keep: run 1 ended")));
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}

#[test]
fn an_invalid_edit_is_reported_and_changes_nothing() {
    let w = Warden::start(BEFORE);
    let keep = w.run_pid("keep", 1);
    save(
        &w,
        "[processes.keep]\ncommand = \"warden-demo-worker sleep\"\nstop_timeout = \"later\"\nrestart = \"sometimes\"\n",
    );
    w.wait_event("", "config reload rejected, keeping the running config");
    // One error per line, each a line of its own on the terminal.
    for (line, key) in [(3, "stop_timeout"), (4, "restart")] {
        let at = format!("warden.toml:{line}:");
        w.wait_line("the error", |l| {
            notice(l).is_some_and(|n| n.starts_with('/') && n.contains(&at) && n.contains(key))
        });
    }
    assert!(alive(keep));
    assert!(
        !w.lines().iter().any(|l| l.contains("run 1 ended")),
        "nothing was stopped"
    );
}

#[test]
fn sighup_reloads() {
    // warden.toml is a symlink to real/warden.toml, and the edit goes to the target: the
    // watch (on the folder of warden.toml, filtered by name) sees nothing, so only the
    // SIGHUP can make this reload.
    let w = Warden::start_with(BEFORE, |dir| {
        std::fs::create_dir(dir.join("real")).unwrap();
        std::fs::rename(dir.join("warden.toml"), dir.join("real/warden.toml")).unwrap();
        std::os::unix::fs::symlink("real/warden.toml", dir.join("warden.toml")).unwrap();
    });
    w.run_pid("gone", 1);
    std::fs::write(w.path("real/warden.toml"), AFTER).unwrap();
    w.signal(libc::SIGHUP);
    w.wait_event("added", "run 1 started");
    w.wait_event("gone", "stopping → stopped");
}
