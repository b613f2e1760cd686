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
    let first = w.wait_for(files_changed("app"));
    let paths = changed_paths(&first);
    assert!(
        paths.contains(&"src/app.py".to_string()) && paths.contains(&"src/helper.py".to_string()),
        "{first:?}"
    );
    w.run_pid("app", 2);

    // Ignored: by watch_ignore, by .gitignore, by not matching. Then one that counts:
    // the next restart must name it alone.
    std::fs::write(src.join("app.pyc"), "x").unwrap();
    std::fs::write(src.join("gen/out.py"), "x").unwrap();
    std::fs::write(src.join("notes.txt"), "x").unwrap();
    std::fs::write(src.join("last.py"), "x").unwrap();
    let second = w.wait_for_n(2, files_changed("app")).pop().unwrap();
    assert_eq!(changed_paths(&second), ["src/last.py"], "{second:?}");
    w.run_pid("app", 3);
    let restarts = all(&w.events(), &files_changed("app")).len();
    assert_eq!(restarts, 2, "one restart per burst");
    let ended = w.wait_for(exited("app", 1));
    assert_eq!(
        (status(&ended), reason(&ended)),
        ((None, Some(libc::SIGTERM)), ExitReason::Watch),
        "{ended:?}"
    );
    assert!(
        detail(&ended).starts_with("files changed: src/app.py"),
        "{ended:?}"
    );
}
