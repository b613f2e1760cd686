//! `warden tree [NAME...] [--json]`: every process of each instance's current run, as a
//! tree (leader first, each child under its parent) with its own CPU and memory, for
//! people without the dashboard. With `--json`, the supervisor's answer as it came.
//!
//! The reading of the answer ([`Tree`]) and its ordering into indented rows
//! ([`rows`]) are shared with the dashboard's tree view; nothing here samples anything
//! (the supervisor does, on request).

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::{ANSWER_TIMEOUT, ClientArgs, Paint};
use crate::api::protocol::Request;
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

/// One instance's tree as the supervisor sends it. Lenient: a newer supervisor may add
/// fields.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Tree {
    pub name: String,
    /// The leader first; empty when the instance has no run going.
    #[serde(default)]
    pub processes: Vec<TreeProcess>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TreeProcess {
    pub pid: i32,
    #[serde(default)]
    pub parent: Option<i32>,
    #[serde(default)]
    pub name: String,
    /// Its arguments joined by spaces; empty from an older supervisor or for a zombie.
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub rss_bytes: u64,
    /// Percent of one core since this process's previous sample.
    #[serde(default)]
    pub cpu_percent: f64,
}

impl TreeProcess {
    /// What the COMMAND column shows: the command line, or the name when there is none.
    pub fn shown(&self) -> &str {
        match self.command.is_empty() {
            true => &self.name,
            false => &self.command,
        }
    }
}

/// The processes in display order with their depth: the leader, then each process under
/// its parent (children by pid). A process whose parent is not in the tree (re-parented
/// to warden after its parent died) starts a branch of its own at depth 0, after the
/// leader's.
pub fn rows(processes: &[TreeProcess]) -> Vec<(usize, &TreeProcess)> {
    let pids: HashSet<i32> = processes.iter().map(|p| p.pid).collect();
    let mut children: BTreeMap<i32, Vec<&TreeProcess>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (i, p) in processes.iter().enumerate() {
        match p.parent.filter(|pp| pids.contains(pp) && *pp != p.pid) {
            Some(pp) if i > 0 => children.entry(pp).or_default().push(p),
            _ => roots.push(p),
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|p| p.pid);
    }
    let mut out = Vec::with_capacity(processes.len());
    let mut seen = HashSet::new();
    let mut stack: Vec<(usize, &TreeProcess)> = roots.into_iter().rev().map(|p| (0, p)).collect();
    while let Some((depth, p)) = stack.pop() {
        // A parent loop (pids reused between two reads) must not spin.
        if !seen.insert(p.pid) {
            continue;
        }
        out.push((depth, p));
        if let Some(kids) = children.get(&p.pid) {
            stack.extend(kids.iter().rev().map(|k| (depth + 1, *k)));
        }
    }
    // Whatever a parent loop cut off is still listed.
    for p in processes {
        if !seen.contains(&p.pid) {
            out.push((0, p));
        }
    }
    out
}

/// `├─ `, `└─ ` and `│  ` guides for each row of [`rows`], so that siblings line up.
pub fn guides(rows: &[(usize, &TreeProcess)]) -> Vec<String> {
    let mut out = Vec::with_capacity(rows.len());
    for (i, (depth, _)) in rows.iter().enumerate() {
        let mut prefix = String::new();
        for level in 1..=*depth {
            // Is there a later row at this level before the branch closes?
            let more = rows[i + 1..]
                .iter()
                .take_while(|(d, _)| *d >= level)
                .any(|(d, _)| *d == level);
            prefix.push_str(match (level == *depth, more) {
                (true, true) => "├─ ",
                (true, false) => "└─ ",
                (false, true) => "│  ",
                (false, false) => "   ",
            });
        }
        out.push(prefix);
    }
    out
}

/// The sum of the tree's figures (CPU in percent of a core, resident bytes).
pub fn totals(processes: &[TreeProcess]) -> (f64, u64) {
    processes.iter().fold((0.0, 0), |(cpu, rss), p| {
        (cpu + p.cpu_percent, rss + p.rss_bytes)
    })
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
