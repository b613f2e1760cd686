//! `warden scale NAME N`: replicas added and removed at runtime, seen through status.

use serde_json::Value;

use crate::harness::*;

fn status(w: &Warden) -> Vec<Value> {
    let (code, out, err) = run_warden(w.dir.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["processes"].as_array().unwrap().clone()
}

fn of<'a>(list: &'a [Value], name: &str) -> Vec<&'a Value> {
    list.iter()
        .filter(|p| {
            let n = p["name"].as_str().unwrap();
            n == name || n.starts_with(&format!("{name}."))
        })
        .collect()
}

fn names(list: &[&Value]) -> Vec<String> {
    list.iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn scale_one_to_five_to_two() {
    let mut w = Warden::start(
        r#"
[processes.web]
command = "warden-demo-worker sleep"
[processes.other]
command = "warden-demo-worker sleep"
"#,
    );
    let first = w.run_pid("web", 1);
    w.wait_for(transition("web", State::Starting, State::Running));

    let (code, out, err) = run_warden(w.dir.path(), &["scale", "web", "5"]);
    assert_eq!(code, 0, "{err}");
    for n in 1..5 {
        assert!(out.contains(&format!("web.{n}: running (pid ")), "{out}");
    }
    let list = status(&w);
    let web = of(&list, "web");
    assert_eq!(names(&web), ["web.0", "web.1", "web.2", "web.3", "web.4"]);
    assert_eq!(
        web[0]["pid"], first,
        "the running instance kept its process"
    );
    for p in &web {
        assert_eq!(p["state"], "running", "{p}");
        assert_eq!(p["replicas_declared"], 1);
        assert_eq!(p["replicas_wanted"], 5);
        assert_eq!(p["drift"], true);
    }
    assert_eq!(of(&list, "other")[0]["drift"], false);
    let (_, table, _) = run_warden(w.dir.path(), &["status"]);
    assert!(
        table.contains("web: 5 replicas from `warden scale` (the file says 1)"),
        "{table}"
    );
    let doomed: Vec<i32> = web[2..]
        .iter()
        .map(|p| p["pid"].as_i64().unwrap() as i32)
        .collect();

    let (code, out, err) = run_warden(w.dir.path(), &["scale", "web", "2"]);
    assert_eq!(code, 0, "{err}");
    for n in 2..5 {
        assert!(
            out.contains(&format!("web.{n}: stopped and removed")),
            "{out}"
        );
    }
    for pid in doomed {
        assert!(!alive(pid), "web.2-4 are gone once scale returns");
    }
    let list = status(&w);
    let web = of(&list, "web");
    assert_eq!(names(&web), ["web.0", "web.1"]);
    assert!(
        web.iter()
            .all(|p| p["state"] == "running" && p["replicas_wanted"] == 2)
    );
    assert_eq!(web[0]["pid"], first);
    w.wait_for(signalled("web.4", 1, libc::SIGTERM, ExitReason::Scale));
    assert!(
        w.path("logs/web.3.log").exists(),
        "each replica has its log"
    );

    let (code, _, err) = run_warden(w.dir.path(), &["scale", "web", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("`warden stop web` stops them all"), "{err}");
    let (code, _, err) = run_warden(w.dir.path(), &["scale", "web.1", "3"]);
    assert_eq!(code, 1);
    assert!(err.contains("no process named `web.1`"), "{err}");
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}
