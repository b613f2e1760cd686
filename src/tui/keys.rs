//! The key table: every key the dashboard takes, in one place. The handler looks keys
//! up here, the `?` overlay lists this table, and the bar at the bottom shows the
//! entries of the pane in use, so the three never disagree.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Where a binding applies. `Global` bindings apply wherever a more specific one does not
/// take the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Global,
    Table,
    Logs,
    Events,
    Detail,
    Tree,
    Connectivity,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Table => "Process table",
            Context::Logs => "Logs",
            Context::Events => "Events",
            Context::Detail => "Detail view",
            Context::Tree => "Tree view",
            Context::Connectivity => "Connectivity",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Interrupt,
    Help,
    FocusNext,
    FocusPrev,
    Back,
    Suspend,
    Zoom,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Tree,
    Connectivity,
    Mark,
    MarkAll,
    Start,
    Stop,
    Restart,
    Signal,
    ScaleUp,
    ScaleDown,
    Reload,
    Filter,
    StateFilter,
    SortNext,
    SortReverse,
    AllLogs,
    Search,
    NextMatch,
    PrevMatch,
    Wrap,
}

/// A key as written in the table (and shown in help).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Ctrl(char),
    Code(KeyCode),
    BackTab,
}

impl Key {
    pub fn label(self) -> String {
        match self {
            Key::Char(' ') => "space".into(),
            Key::Char(c) => c.to_string(),
            Key::Ctrl(c) => format!("Ctrl-{c}"),
            Key::BackTab => "Shift-Tab".into(),
            Key::Code(code) => match code {
                KeyCode::Up => "↑".into(),
                KeyCode::Down => "↓".into(),
                KeyCode::Left => "←".into(),
                KeyCode::Right => "→".into(),
                KeyCode::PageUp => "PgUp".into(),
                KeyCode::PageDown => "PgDn".into(),
                KeyCode::Home => "Home".into(),
                KeyCode::End => "End".into(),
                KeyCode::Enter => "Enter".into(),
                KeyCode::Esc => "Esc".into(),
                KeyCode::Tab => "Tab".into(),
                other => format!("{other:?}"),
            },
        }
    }

    fn matches(self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        match self {
            Key::Char(c) => !ctrl && ev.code == KeyCode::Char(c),
            Key::Ctrl(c) => ctrl && ev.code == KeyCode::Char(c),
            Key::BackTab => ev.code == KeyCode::BackTab,
            Key::Code(code) => !ctrl && ev.code == code,
        }
    }
}

pub struct Binding {
    pub context: Context,
    pub keys: &'static [Key],
    pub action: Action,
    /// Shown in the key bar (empty: only in help).
    pub hint: &'static str,
    pub help: &'static str,
}

const fn b(
    context: Context,
    keys: &'static [Key],
    action: Action,
    hint: &'static str,
    help: &'static str,
) -> Binding {
    Binding {
        context,
        keys,
        action,
        hint,
        help,
    }
}

use Action as A;
use Context as C;
use Key::{Char as Ch, Code, Ctrl};

/// Every binding. Order matters twice: lookups take the first match (specific contexts
/// are searched before `Global`), and help and the bar list them in this order.
pub const BINDINGS: &[Binding] = &[
    // Process table.
    b(
        C::Table,
        &[Code(KeyCode::Up), Ch('k')],
        A::Up,
        "",
        "previous process",
    ),
    b(
        C::Table,
        &[Code(KeyCode::Down), Ch('j')],
        A::Down,
        "",
        "next process",
    ),
    b(
        C::Table,
        &[Code(KeyCode::PageUp), Ctrl('u')],
        A::PageUp,
        "",
        "a page up",
    ),
    b(
        C::Table,
        &[Code(KeyCode::PageDown), Ctrl('d')],
        A::PageDown,
        "",
        "a page down",
    ),
    b(
        C::Table,
        &[Ch('g'), Code(KeyCode::Home)],
        A::Top,
        "",
        "first process",
    ),
    b(
        C::Table,
        &[Ch('G'), Code(KeyCode::End)],
        A::Bottom,
        "",
        "last process",
    ),
    b(
        C::Table,
        &[Code(KeyCode::Enter)],
        A::Open,
        "details",
        "details of the process: command, environment, restart history",
    ),
    b(
        C::Table,
        &[Ch('t')],
        A::Tree,
        "tree",
        "its process tree: every descendant with its own CPU and memory",
    ),
    b(
        C::Table,
        &[Ch(' ')],
        A::Mark,
        "mark",
        "mark or unmark the process (actions apply to every marked one)",
    ),
    b(
        C::Table,
        &[Ch('*')],
        A::MarkAll,
        "",
        "mark every shown process, or unmark all",
    ),
    b(
        C::Table,
        &[Ch('s')],
        A::Start,
        "start",
        "start the selected or marked processes",
    ),
    b(
        C::Table,
        &[Ch('x')],
        A::Stop,
        "stop",
        "stop them (asks first)",
    ),
    b(
        C::Table,
        &[Ch('r')],
        A::Restart,
        "restart",
        "restart them (asks first)",
    ),
    b(
        C::Table,
        &[Ch('S')],
        A::Signal,
        "signal",
        "send a signal, picked by name (asks first)",
    ),
    b(
        C::Table,
        &[Ch('+'), Ch('=')],
        A::ScaleUp,
        "",
        "one replica more of the selected process (as `warden scale`)",
    ),
    b(
        C::Table,
        &[Ch('-')],
        A::ScaleDown,
        "",
        "one replica fewer, the highest index stops (asks first)",
    ),
    b(
        C::Table,
        &[Ch('/')],
        A::Filter,
        "filter",
        "filter by name (Esc clears)",
    ),
    b(
        C::Table,
        &[Ch('f')],
        A::StateFilter,
        "state",
        "show all, only problems, only running, only stopped",
    ),
    b(
        C::Table,
        &[Ch('o')],
        A::SortNext,
        "sort",
        "sort by the next column",
    ),
    b(
        C::Table,
        &[Ch('O')],
        A::SortReverse,
        "",
        "reverse the sort order",
    ),
    b(
        C::Table,
        &[Ch('a')],
        A::AllLogs,
        "",
        "logs of the selected process, or of all merged",
    ),
    // Logs.
    b(
        C::Logs,
        &[Code(KeyCode::Up), Ch('k')],
        A::Up,
        "",
        "scroll up (pauses following)",
    ),
    b(
        C::Logs,
        &[Code(KeyCode::Down), Ch('j')],
        A::Down,
        "",
        "scroll down",
    ),
    b(
        C::Logs,
        &[Code(KeyCode::PageUp), Ctrl('u')],
        A::PageUp,
        "",
        "a page up",
    ),
    b(
        C::Logs,
        &[Code(KeyCode::PageDown), Ctrl('d')],
        A::PageDown,
        "",
        "a page down",
    ),
    b(
        C::Logs,
        &[Ch('g'), Code(KeyCode::Home)],
        A::Top,
        "",
        "oldest line kept",
    ),
    b(
        C::Logs,
        &[Ch('G'), Code(KeyCode::End)],
        A::Bottom,
        "follow",
        "newest line, and follow again",
    ),
    b(
        C::Logs,
        &[Ch('/')],
        A::Search,
        "search",
        "search (matches highlighted)",
    ),
    b(
        C::Logs,
        &[Ch('n')],
        A::NextMatch,
        "next",
        "next match (older)",
    ),
    b(
        C::Logs,
        &[Ch('N')],
        A::PrevMatch,
        "",
        "previous match (newer)",
    ),
    b(
        C::Logs,
        &[Ch('w')],
        A::Wrap,
        "wrap",
        "wrap long lines on or off",
    ),
    b(
        C::Logs,
        &[Ch('a')],
        A::AllLogs,
        "all",
        "the selected process, or all processes merged",
    ),
    // Events.
    b(
        C::Events,
        &[Code(KeyCode::Up), Ch('k')],
        A::Up,
        "",
        "scroll up",
    ),
    b(
        C::Events,
        &[Code(KeyCode::Down), Ch('j')],
        A::Down,
        "",
        "scroll down",
    ),
    b(
        C::Events,
        &[Code(KeyCode::PageUp), Ctrl('u')],
        A::PageUp,
        "",
        "a page up",
    ),
    b(
        C::Events,
        &[Code(KeyCode::PageDown), Ctrl('d')],
        A::PageDown,
        "",
        "a page down",
    ),
    b(
        C::Events,
        &[Ch('g'), Code(KeyCode::Home)],
        A::Top,
        "",
        "oldest event kept",
    ),
    b(
        C::Events,
        &[Ch('G'), Code(KeyCode::End)],
        A::Bottom,
        "newest",
        "newest event, and follow",
    ),
    // Detail view.
    b(
        C::Detail,
        &[Code(KeyCode::Up), Ch('k')],
        A::Up,
        "",
        "previous restart",
    ),
    b(
        C::Detail,
        &[Code(KeyCode::Down), Ch('j')],
        A::Down,
        "",
        "next restart",
    ),
    b(
        C::Detail,
        &[Ch('s')],
        A::Start,
        "start",
        "start this process",
    ),
    b(
        C::Detail,
        &[Ch('x')],
        A::Stop,
        "stop",
        "stop it (asks first)",
    ),
    b(
        C::Detail,
        &[Ch('r')],
        A::Restart,
        "restart",
        "restart it (asks first)",
    ),
    b(
        C::Detail,
        &[Ch('S')],
        A::Signal,
        "signal",
        "send it a signal (asks first)",
    ),
    b(
        C::Detail,
        &[Ch('t')],
        A::Tree,
        "tree",
        "its process tree, refreshed while shown",
    ),
    b(
        C::Detail,
        &[Ch('+'), Ch('=')],
        A::ScaleUp,
        "",
        "one replica more",
    ),
    b(
        C::Detail,
        &[Ch('-')],
        A::ScaleDown,
        "",
        "one replica fewer (asks first)",
    ),
    // Tree view.
    b(
        C::Tree,
        &[Code(KeyCode::Up), Ch('k')],
        A::Up,
        "",
        "scroll up",
    ),
    b(
        C::Tree,
        &[Code(KeyCode::Down), Ch('j')],
        A::Down,
        "",
        "scroll down",
    ),
    b(
        C::Tree,
        &[Code(KeyCode::Esc)],
        A::Back,
        "back",
        "back to the table or the details it was opened from",
    ),
    // Connectivity.
    b(
        C::Connectivity,
        &[Code(KeyCode::Up), Ch('k')],
        A::Up,
        "",
        "scroll up",
    ),
    b(
        C::Connectivity,
        &[Code(KeyCode::Down), Ch('j')],
        A::Down,
        "",
        "scroll down",
    ),
    // Everywhere.
    b(
        C::Global,
        &[Code(KeyCode::Tab)],
        A::FocusNext,
        "pane",
        "next pane",
    ),
    b(
        C::Global,
        &[Key::BackTab],
        A::FocusPrev,
        "",
        "previous pane",
    ),
    b(
        C::Global,
        &[Ch('c')],
        A::Connectivity,
        "connectivity",
        "every probe and check, with latency history",
    ),
    b(
        C::Global,
        &[Ch('z')],
        A::Zoom,
        "zoom",
        "the pane in use fills the screen, or not",
    ),
    b(
        C::Global,
        &[Ch('R')],
        A::Reload,
        "reload",
        "reload the config: shows the plan, applies it on confirmation",
    ),
    b(
        C::Global,
        &[Code(KeyCode::Esc)],
        A::Back,
        "",
        "back, close, clear the filter",
    ),
    b(C::Global, &[Ch('?')], A::Help, "help", "this help"),
    b(
        C::Global,
        &[Ch('q')],
        A::Quit,
        "quit",
        "quit (under `warden up`: asks whether to stop everything)",
    ),
    b(
        C::Global,
        &[Ctrl('c')],
        A::Interrupt,
        "",
        "under `warden up`: stop everything, as Ctrl-C does; else quit",
    ),
    b(
        C::Global,
        &[Ctrl('z')],
        A::Suspend,
        "",
        "suspend (`fg` resumes)",
    ),
];

/// The action bound to `ev` in `context` (its own bindings first, then global ones).
pub fn lookup(context: Context, ev: &KeyEvent) -> Option<Action> {
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    [context, Context::Global].into_iter().find_map(|ctx| {
        BINDINGS
            .iter()
            .filter(|b| b.context == ctx)
            .find(|b| b.keys.iter().any(|k| k.matches(ev)))
            .map(|b| b.action)
    })
}

/// The bindings shown in the key bar for `context`: help and quit first (they must
/// fit on any width), then the context's own, then the other global ones.
pub fn bar(context: Context) -> impl Iterator<Item = &'static Binding> {
    let first = |b: &Binding| matches!(b.action, Action::Help | Action::Quit);
    let global = |b: &&Binding| b.context == Context::Global && !b.hint.is_empty();
    BINDINGS
        .iter()
        .filter(move |b| global(b) && first(b))
        .chain(
            BINDINGS
                .iter()
                .filter(move |b| b.context == context && !b.hint.is_empty()),
        )
        .chain(BINDINGS.iter().filter(move |b| global(b) && !first(b)))
}

/// How the keys of a binding are written: `↑ k`.
pub fn keys_label(b: &Binding) -> String {
    b.keys
        .iter()
        .map(|k| k.label())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn contexts_shadow_global_keys_and_nothing_is_bound_twice() {
        assert_eq!(
            lookup(Context::Table, &key(KeyCode::Char('k'))),
            Some(Action::Up)
        );
        assert_eq!(
            lookup(Context::Table, &key(KeyCode::Char('q'))),
            Some(Action::Quit)
        );
        assert_eq!(
            lookup(Context::Logs, &key(KeyCode::Char('/'))),
            Some(Action::Search)
        );
        assert_eq!(
            lookup(Context::Table, &key(KeyCode::Char('/'))),
            Some(Action::Filter)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(Context::Table, &ctrl_c), Some(Action::Interrupt));
        assert_eq!(
            lookup(Context::Table, &key(KeyCode::Char('c'))),
            Some(Action::Connectivity)
        );
        for (i, a) in BINDINGS.iter().enumerate() {
            for b2 in &BINDINGS[i + 1..] {
                if a.context == b2.context {
                    for k in a.keys {
                        assert!(!b2.keys.contains(k), "{k:?} bound twice in {:?}", a.context);
                    }
                }
            }
        }
    }

    #[test]
    fn no_bare_key_kills_anything() {
        // btop#582: a signal goes through a picker and a confirmation, never one key.
        for b in BINDINGS.iter().filter(|b| b.action == Action::Signal) {
            assert!(b.help.contains("asks first"), "{}", b.help);
        }
    }
}

/// The keys table of the README: the same bindings, as Markdown.
pub fn markdown() -> String {
    let mut out = String::from("| keys | where | what |\n|---|---|---|\n");
    for b in BINDINGS {
        let keys = b
            .keys
            .iter()
            .map(|k| format!("`{}`", k.label().replace('|', "\\|")))
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&format!(
            "| {keys} | {} | {} |\n",
            b.context.title(),
            b.help
        ));
    }
    out
}

#[cfg(test)]
mod readme {
    /// The README's keys table is this table: a binding added or changed here must be
    /// documented there (the test prints the table to paste).
    #[test]
    fn the_readme_lists_every_key() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let (begin, end) = ("<!-- keys:begin -->\n", "<!-- keys:end -->");
        let start = readme.find(begin).expect("keys markers in the README") + begin.len();
        let stop = readme[start..].find(end).expect("the end marker") + start;
        let want = super::markdown();
        assert!(
            readme[start..stop] == want,
            "README.md's keys table is out of date; between the markers put:\n{want}"
        );
    }
}
