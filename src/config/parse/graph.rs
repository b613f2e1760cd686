//! Cross-checks that need every name: `depends_on` targets exist and form no cycle,
//! `stdin_from` names another process, and no output feeds two processes.
//!
//! Runs after the walk over what it recorded ([`ProcessRefs`]), so it never looks at
//! TOML. Errors point at the name that is wrong, under the key that holds it.

use std::collections::{HashMap, HashSet, VecDeque};

use super::process::ProcessRefs;
use super::walk::{Ctx, closest};
use crate::config::spec::DependCondition;

pub(super) fn check(ctx: &mut Ctx, processes: &[ProcessRefs], checks: &[String]) {
    let names: Vec<&str> = processes.iter().map(|p| p.name.as_str()).collect();
    for p in processes {
        dependencies_exist(ctx, p, &names, checks);
    }
    cycles(ctx, processes);
    stdin_sources(ctx, processes, checks);
}

fn dependencies_exist(ctx: &mut Ctx, p: &ProcessRefs, processes: &[&str], checks: &[String]) {
    for dep in &p.depends {
        let is_check = checks.contains(&dep.name);
        if dep.name == p.name {
            ctx.error(
                &dep.span,
                &dep.path,
                format!("`{}` depends on itself; remove it", dep.name),
            );
        } else if is_check && dep.condition == DependCondition::Completed {
            let why = "a check never completes; wait for it to be `ready`";
            ctx.error(
                &dep.condition_span,
                &dep.path,
                format!("`{}` is a check: {why}", dep.name),
            );
        } else if !is_check && !processes.contains(&dep.name.as_str()) {
            let others = processes
                .iter()
                .copied()
                .chain(checks.iter().map(String::as_str))
                .filter(|n| *n != p.name);
            let message = unknown_name(&dep.name, &others.collect::<Vec<_>>(), "process or check");
            ctx.missing(&dep.span, &dep.path, message);
        }
    }
}

/// "`x` is not a declared …", with the likely name or the list of names to pick from.
fn unknown_name(name: &str, declared: &[&str], what: &str) -> String {
    let advice = if let Some((base, _)) = name.split_once('.')
        && declared.contains(&base)
    {
        format!("depend on `{base}`: replicas are not named one by one")
    } else if let Some(near) = closest(name, declared.iter().copied()) {
        format!("did you mean `{near}`?")
    } else if declared.is_empty() {
        format!("no other {what} is declared")
    } else {
        const SHOWN: usize = 10;
        let more = if declared.len() > SHOWN { ", …" } else { "" };
        let shown: Vec<String> = declared
            .iter()
            .take(SHOWN)
            .map(|n| format!("`{n}`"))
            .collect();
        format!("declared: {}{more}", shown.join(", "))
    };
    format!("`{name}` is not a declared {what}; {advice}")
}

/// Each cycle once, starting from its first member in file order:
/// `web -> api -> web`, reported at the first member's dependency on the second.
fn cycles(ctx: &mut Ctx, processes: &[ProcessRefs]) {
    let index: HashMap<&str, usize> = processes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    // Self-dependencies are reported on their own; unknown names and checks have no edges.
    let edges: Vec<Vec<usize>> = processes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.depends
                .iter()
                .filter_map(|d| index.get(d.name.as_str()).copied())
                .filter(|&j| j != i)
                .collect()
        })
        .collect();
    let mut reported = HashSet::new();
    for start in 0..processes.len() {
        if reported.contains(&start) {
            continue;
        }
        let Some(cycle) = shortest_cycle(&edges, start) else {
            continue;
        };
        reported.extend(cycle.iter().copied());
        let first = &processes[start];
        let second = &processes[cycle[1]].name;
        let Some(dep) = first.depends.iter().find(|d| &d.name == second) else {
            continue;
        };
        let names: Vec<&str> = cycle
            .iter()
            .chain([&start])
            .map(|&i| processes[i].name.as_str())
            .collect();
        ctx.error(
            &dep.span,
            &dep.path,
            format!("dependency cycle `{}`; remove one of these dependencies so they can start in order", names.join(" -> ")),
        );
    }
}

/// The shortest path `start -> … -> start`, without the final `start`.
fn shortest_cycle(edges: &[Vec<usize>], start: usize) -> Option<Vec<usize>> {
    let mut came_from: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &next in &edges[node] {
            if next == start {
                let mut path = vec![node];
                while let Some(&prev) = came_from.get(path.last()?) {
                    path.push(prev);
                }
                path.reverse();
                return Some(path);
            }
            if next != start && !came_from.contains_key(&next) {
                came_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}

fn stdin_sources(ctx: &mut Ctx, processes: &[ProcessRefs], checks: &[String]) {
    let names: Vec<&str> = processes.iter().map(|p| p.name.as_str()).collect();
    let mut fed: HashMap<&str, &str> = HashMap::new();
    for p in processes {
        let Some((source, span, path)) = &p.stdin_from else {
            continue;
        };
        let message = if *source == p.name {
            format!("`{source}` cannot feed its own stdin")
        } else if checks.contains(source) {
            format!("`{source}` is a check, which has no output; `stdin_from` names a process")
        } else if !names.contains(&source.as_str()) {
            let others: Vec<&str> = names.iter().copied().filter(|n| *n != p.name).collect();
            ctx.missing(span, path, unknown_name(source, &others, "process"));
            continue;
        } else if let Some(first) = fed.get(source.as_str()) {
            format!(
                "`{source}` already feeds `{first}`; a process's output can feed only one other process"
            )
        } else {
            fed.insert(source, &p.name);
            continue;
        };
        ctx.error(span, path, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_shortest_cycle_from_start() {
        // 0 -> 1 -> 2 -> 0, and 0 -> 2.
        let edges = vec![vec![1, 2], vec![2], vec![0]];
        assert_eq!(shortest_cycle(&edges, 0), Some(vec![0, 2]));
        assert_eq!(shortest_cycle(&edges, 1), Some(vec![1, 2, 0]));
        let acyclic = vec![vec![1], vec![2], vec![]];
        assert_eq!(shortest_cycle(&acyclic, 0), None);
    }
}
