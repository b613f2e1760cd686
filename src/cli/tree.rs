//! `warden tree [NAME...] [--json]`: every process of each instance's current run, as a
//! tree (leader first, each child under its parent) with its own CPU and memory, for
//! people without the dashboard. With `--json`, the supervisor's answer as it came.
//!
//! The reading of the answer ([`Tree`]) and its ordering into indented rows
//! ([`rows`]) live in `api::tree`, shared with the dashboard's tree view; nothing here
//! samples anything (the supervisor does, on request).

use super::{ANSWER_TIMEOUT, ClientArgs, Paint};
use crate::api::protocol::Request;
pub use crate::api::tree::{Tree, TreeProcess, guides, rows, totals};
use crate::human::mem;

pub fn run(client: &ClientArgs, names: Vec<String>, json: bool) -> i32 {
    let names = if names.is_empty() {
        vec!["all".to_string()]
    } else {
        names
    };
    let answer = match client.call(&Request::Tree { names }, Some(ANSWER_TIMEOUT)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let Some(raw) = answer.trees else {
        eprintln!("warden: the supervisor's answer has no trees (is it an older warden?)");
        return 1;
    };
    if json {
        super::out(raw.get());
        return 0;
    }
    match serde_json::from_str::<Vec<Tree>>(raw.get()) {
        Ok(trees) => {
            super::out(&render(&trees, Paint::stdout()));
            0
        }
        Err(e) => {
            eprintln!("warden: cannot read the process trees: {e}");
            1
        }
    }
}

/// One block per instance: a heading with the totals, then aligned rows.
pub fn render(trees: &[Tree], paint: Paint) -> String {
    let mut out = Vec::new();
    for tree in trees {
        if tree.processes.is_empty() {
            out.push(format!(
                "{}: {}",
                paint.paint(&tree.name, Some(Paint::BOLD)),
                paint.paint("not running", Some(Paint::DIM))
            ));
            continue;
        }
        let (cpu, rss) = totals(&tree.processes);
        let n = tree.processes.len();
        out.push(format!(
            "{}: {n} process{}, cpu {cpu:.1}%, rss {}",
            paint.paint(&tree.name, Some(Paint::BOLD)),
            if n == 1 { "" } else { "es" },
            mem(rss)
        ));
        let rows = rows(&tree.processes);
        let guides = guides(&rows);
        let pid_w = rows
            .iter()
            .map(|(_, p)| p.pid.to_string().len())
            .max()
            .unwrap_or(3)
            .max(3);
        out.push(paint.paint(
            &format!("  {:>pid_w$}  {:>6}  {:>8}  COMMAND", "PID", "CPU", "RSS"),
            Some(Paint::DIM),
        ));
        for ((_, p), guide) in rows.iter().zip(&guides) {
            out.push(format!(
                "  {:>pid_w$}  {:>6}  {:>8}  {guide}{}",
                p.pid,
                format!("{:.1}%", p.cpu_percent),
                mem(p.rss_bytes),
                p.shown()
            ));
        }
    }
    // The supervisor measures CPU between two looks at a process; a first look (nobody
    // watching, nothing sampled before) has nothing to compare with.
    let looked = trees.iter().flat_map(|t| &t.processes);
    if looked.clone().next().is_some() && looked.clone().all(|p| p.cpu_percent == 0.0) {
        out.push(paint.paint(
            "(cpu is measured between two looks at a process: 0.0% on a first one; \
             `warden tui` refreshes its tree view every second)",
            Some(Paint::DIM),
        ));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, parent: i32, name: &str) -> TreeProcess {
        TreeProcess {
            pid,
            parent: Some(parent),
            name: name.into(),
            command: String::new(),
            rss_bytes: 1024 * 1024,
            cpu_percent: 0.5,
        }
    }

    #[test]
    fn children_sit_under_their_parents_and_orphans_start_their_own_branch() {
        let tree = Tree {
            name: "web".into(),
            processes: vec![
                p(100, 1, "sh"),
                p(130, 100, "worker"),
                p(120, 100, "worker"),
                p(121, 120, "helper"),
                // Its parent died: warden adopted it.
                p(140, 1, "straggler"),
            ],
        };
        let expected = "\
web: 5 processes, cpu 2.5%, rss 5.0MiB
  PID     CPU       RSS  COMMAND
  100    0.5%    1.0MiB  sh
  120    0.5%    1.0MiB  ├─ worker
  121    0.5%    1.0MiB  │  └─ helper
  130    0.5%    1.0MiB  └─ worker
  140    0.5%    1.0MiB  straggler
db: not running";
        let db = Tree {
            name: "db".into(),
            processes: vec![],
        };
        assert_eq!(render(&[tree, db], Paint(false)), expected);
    }

    #[test]
    fn the_command_line_is_shown_and_the_name_stands_in_when_there_is_none() {
        let mut worker = p(8, 7, "python3");
        worker.command = "python3 -m http.server 8080".into();
        let tree = Tree {
            name: "web".into(),
            processes: vec![p(7, 1, "sh"), worker],
        };
        let text = render(&[tree], Paint(false));
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("web: 2 processes, cpu 1.0%, rss 2.0MiB"),
            "{text}"
        );
        assert!(lines[1].ends_with("RSS  COMMAND"), "{text}");
        assert!(lines[2].ends_with("  sh"), "{text}");
        assert!(
            lines[3].ends_with("└─ python3 -m http.server 8080"),
            "{text}"
        );
    }

    #[test]
    fn a_first_look_says_why_cpu_is_zero() {
        let mut first = p(7, 1, "sh");
        first.cpu_percent = 0.0;
        let tree = Tree {
            name: "job".into(),
            processes: vec![first],
        };
        let text = render(std::slice::from_ref(&tree), Paint(false));
        assert!(
            text.ends_with(
                "0.0% on a first one; `warden tui` refreshes its tree view every second)"
            ),
            "{text}"
        );
        let mut busy = tree;
        busy.processes[0].cpu_percent = 12.5;
        assert!(!render(&[busy], Paint(false)).contains("first one"));
    }

    #[test]
    fn a_parent_loop_lists_every_process_once() {
        let list = vec![p(10, 1, "a"), p(11, 12, "b"), p(12, 11, "c")];
        let order: Vec<i32> = rows(&list).iter().map(|(_, p)| p.pid).collect();
        assert_eq!(order, [10, 11, 12]);
    }
}
