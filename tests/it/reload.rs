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
    let r = w.wait_for(reloaded());
    let EventKind::Reloaded {
        added,
        removed,
        changed,
    } = r.kind
    else {
        unreachable!()
    };
    assert_eq!(
        (added, removed, changed),
        (
            vec!["added".into()],
            vec!["gone".into()],
            vec!["change".into()]
        )
    );
    w.wait_for(exited("change", 1));
    w.run_pid("change", 2);
    w.run_pid("added", 1);
    w.wait_for(transition("gone", State::Stopping, State::Stopped));
    assert!(alive(keep), "the untouched process keeps running");
    assert_eq!(w.shutdown(), Some(0));
    // Only the shutdown ended it.
    let keep_ended = w.wait_for(exited("keep", 1));
    assert_eq!(reason(&keep_ended), ExitReason::Shutdown, "{keep_ended:?}");
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
    let failed = w.wait_for(reload_failed());
    let EventKind::ReloadFailed { errors } = &failed.kind else {
        unreachable!()
    };
    assert_eq!(errors.len(), 2, "{errors:?}");
    // One error per line, each a line of its own on the terminal (the `--no-tui` tee's
    // rendering is what is tested here).
    for (line, key) in [(3, "stop_timeout"), (4, "restart")] {
        let at = format!("warden.toml:{line}:");
        w.wait_line("the error", |l| {
            notice(l).is_some_and(|n| n.starts_with('/') && n.contains(&at) && n.contains(key))
        });
    }
    assert!(alive(keep));
    let ended = all(&w.events(), &exited("keep", 1));
    assert!(ended.is_empty(), "nothing was stopped: {ended:?}");
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
    w.wait_for(spawned("added", 1));
    w.wait_for(transition("gone", State::Stopping, State::Stopped));
}
