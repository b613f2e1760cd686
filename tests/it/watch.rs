//! `watch`: saving a watched file restarts the process once; ignored files do nothing.

use crate::harness::*;

#[test]
fn a_saved_file_restarts_the_process_exactly_once() {
    // `watch_delay` is long enough that nothing this test does in one go can be split in
    // two bursts, however busy the machine.
    let w = Warden::start_with(
        r#"
[processes.app]
command = "warden-demo-worker sleep"
watch = ["src/**/*.py"]
watch_ignore = ["*.pyc"]
watch_delay = "2s"
"#,
        |dir| {
            std::fs::create_dir_all(dir.join(".git")).unwrap();
            std::fs::create_dir_all(dir.join("src/gen")).unwrap();
            std::fs::write(dir.join(".gitignore"), "src/gen/\n").unwrap();
            std::fs::write(dir.join("src/app.py"), "v1\n").unwrap();
        },
    );
    w.run_pid("app", 1);
    // What an editor does on save: keep a backup, write the new file, drop the backup.
    let src = w.path("src");
    std::fs::rename(src.join("app.py"), src.join("app.py~")).unwrap();
    std::fs::write(src.join("app.py"), "v2\n").unwrap();
    std::fs::remove_file(src.join("app.py~")).unwrap();
    std::fs::write(src.join("helper.py"), "new\n").unwrap();
    let first = w.wait_event("app", "files changed (");
    assert!(
        first.contains("src/app.py") && first.contains("src/helper.py"),
        "{first}"
    );
    w.run_pid("app", 2);

    // Ignored: by watch_ignore, by .gitignore, by not matching. Then one that counts:
    // the next restart must name it alone.
    std::fs::write(src.join("app.pyc"), "x").unwrap();
    std::fs::write(src.join("gen/out.py"), "x").unwrap();
    std::fs::write(src.join("notes.txt"), "x").unwrap();
    std::fs::write(src.join("last.py"), "x").unwrap();
    let changes = |l: &str| notice(l).is_some_and(|n| n.starts_with("app: files changed ("));
    let second = w.wait_lines("a second change", 2, changes).pop().unwrap();
    assert!(
        second.ends_with("app: files changed (src/last.py): restarting"),
        "{second}"
    );
    w.run_pid("app", 3);
    let restarts = w.lines().iter().filter(|l| changes(l)).count();
    assert_eq!(restarts, 2, "one restart per burst");
    w.wait_event(
        "app",
        "run 1 ended (signal TERM, watch): files changed: src/app.py",
    );
}
