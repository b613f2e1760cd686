//! The crate's import graph, read from its sources: no module imports one that imports
//! it back, through any chain, neither among files (`logs::file`, `tui::app`, …) nor
//! among the top modules (`cli`, `tui`, `supervisor`, …). A parent and its own children
//! may use each other (that is how Rust modules are built); everything else points one
//! way, so each layer can be read, tested and changed without the ones above it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Cycles known and owned by work in progress elsewhere, each with why it is allowed for
/// now. A cycle not listed here fails the test. None today.
const KNOWN: &[(&[&str], &str)] = &[];

type Module = Vec<String>;

/// Every module of `src/` (by its path) and its source.
fn read_modules(dir: &Path, path: &[String], out: &mut BTreeMap<Module, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            let mut sub = path.to_vec();
            sub.push(p.file_name().unwrap().to_string_lossy().to_string());
            read_modules(&p, &sub, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let mut m = path.to_vec();
            if !matches!(name.as_str(), "mod" | "lib" | "main") {
                m.push(name);
            }
            let text = std::fs::read_to_string(&p).unwrap();
            out.entry(m).or_default().push_str(&text);
        }
    }
}

/// The paths after each `prefix` (`crate::`, `super::`) in code, comments left out.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<(usize, Vec<&'a str>)> {
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().last();
            rest = &rest[i..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                rest = &rest[prefix.len()..];
                continue;
            }
            let mut ups = 0;
            while let Some(r) = rest.strip_prefix(prefix) {
                ups += 1;
                rest = r;
            }
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let segments = rest[..end].split("::").filter(|s| !s.is_empty()).collect();
            out.push((ups, segments));
            rest = &rest[end..];
        }
    }
    out
}

/// The longest module that `path` starts with.
fn resolve(modules: &BTreeMap<Module, String>, path: &[String]) -> Option<Module> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains_key(m))
}

fn graph(modules: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, code) in modules {
        let mut to = BTreeSet::new();
        for (_, segments) in paths_after(code, "crate::") {
            let path: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
            to.extend(resolve(modules, &path));
        }
        for (ups, segments) in paths_after(code, "super::") {
            let Some(base) = m.len().checked_sub(ups) else {
                continue;
            };
            let mut path = m[..base].to_vec();
            path.extend(segments.iter().map(|s| s.to_string()));
            to.extend(resolve(modules, &path));
        }
        // A parent and its descendants are one unit here.
        to.retain(|t| !(t.starts_with(m) || m.starts_with(t)));
        edges.insert(m.clone(), to);
    }
    edges
}

/// The strongly connected parts of more than one module (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<BTreeSet<Module>> {
    struct T<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        out: Vec<BTreeSet<Module>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Module) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        for w in t.edges.get(v).into_iter().flatten() {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.stack.contains(&w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut part = BTreeSet::new();
            while let Some(w) = t.stack.pop() {
                part.insert(w.clone());
                if w == v {
                    break;
                }
            }
            if part.len() > 1 {
                t.out.push(part);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The graph with each module replaced by its first `depth` segments.
fn collapse(
    edges: &BTreeMap<Module, BTreeSet<Module>>,
    depth: usize,
) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut out: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (from, tos) in edges {
        let a: Module = from.iter().take(depth).cloned().collect();
        for to in tos {
            let b: Module = to.iter().take(depth).cloned().collect();
            if !(a.starts_with(&b) || b.starts_with(&a)) {
                out.entry(a.clone()).or_default().insert(b);
            }
        }
        out.entry(a).or_default();
    }
    out
}

fn named(part: &BTreeSet<Module>) -> BTreeSet<String> {
    part.iter().map(|m| m.join("::")).collect()
}

fn src_graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let mut modules = BTreeMap::new();
    read_modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut modules,
    );
    assert!(
        modules.len() > 50,
        "read the crate's modules: {}",
        modules.len()
    );
    graph(&modules)
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let edges = src_graph();
    let known: Vec<BTreeSet<String>> = KNOWN
        .iter()
        .map(|(m, _)| m.iter().map(|s| s.to_string()).collect())
        .collect();
    let new: Vec<BTreeSet<String>> = cycles(&edges)
        .iter()
        .map(named)
        .filter(|c| !known.contains(c))
        .collect();
    let detail = |c: &BTreeSet<String>| {
        let mut lines = Vec::new();
        for (from, tos) in &edges {
            for to in tos {
                let (a, b) = (from.join("::"), to.join("::"));
                if c.contains(&a) && c.contains(&b) {
                    lines.push(format!("{a} -> {b}"));
                }
            }
        }
        lines.join("\n")
    };
    let text: Vec<String> = new.iter().map(detail).collect();
    assert!(new.is_empty(), "import cycles:\n{}", text.join("\n\n"));
    let top: Vec<BTreeSet<String>> = cycles(&collapse(&edges, 1)).iter().map(named).collect();
    assert!(top.is_empty(), "import cycles between top modules: {top:?}");
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let m = |s: &str| -> Module { s.split("::").map(String::from).collect() };
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    edges.insert(m("a::x"), [m("b")].into());
    edges.insert(m("b"), [m("c")].into());
    edges.insert(m("c"), [m("a::y")].into());
    edges.insert(m("a::y"), BTreeSet::new());
    assert!(cycles(&edges).is_empty());
    assert_eq!(
        cycles(&collapse(&edges, 1))
            .iter()
            .map(named)
            .collect::<Vec<_>>(),
        [["a", "b", "c"].map(String::from).into()]
    );
    edges.get_mut(&m("c")).unwrap().insert(m("b"));
    assert_eq!(
        cycles(&edges).iter().map(named).collect::<Vec<_>>(),
        [["b", "c"].map(String::from).into()]
    );
}
