//! The answer to a `tree` request as clients read it ([`Tree`], [`TreeProcess`]), and its
//! ordering into indented rows with their guides and totals: shared by `warden tree` and
//! the dashboard's tree view, below both. Plain data and pure functions; it asks nothing
//! of the supervisor.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

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
