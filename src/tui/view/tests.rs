//! Every view drawn into a `TestBackend` and compared with its snapshot, at a normal
//! size (120×40) and a tiny one (40×10); plus what text snapshots cannot show: colours
//! only from the terminal's 16, none with `NO_COLOR`.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;

use crate::tui::app::{App, Mode, Msg, Screen};
use crate::tui::test_support::app;

fn render(app: &App) -> Buffer {
    let (w, h) = app.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| super::draw(f, app)).unwrap();
    terminal.backend().buffer().clone()
}

fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut skip = 0;
        for x in 0..buf.area.width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            skip = unicode_width::UnicodeWidthStr::width(sym).saturating_sub(1);
            line.push_str(sym);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn keys(app: &mut App, keys: &str) {
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\t' => KeyCode::Tab,
            '\x1b' => KeyCode::Esc,
            c => KeyCode::Char(c),
        };
        app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }
}

/// Snapshot the view that `setup` leads to, at both sizes.
fn both_sizes(name: &str, mode: Mode, setup: impl Fn(&mut App)) {
    for (w, h) in [(120, 40), (40, 10)] {
        let mut a = app(mode, (w, h), true);
        setup(&mut a);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), text(&render(&a)));
    }
}

#[test]
fn main_view() {
    both_sizes("main", Mode::InProcess, |_| {});
}

#[test]
fn main_view_with_marks_filter_and_sort() {
    both_sizes("main_marked", Mode::Attached, |a| {
        keys(a, " j ");
        keys(a, "/e\n");
        keys(a, "oo");
    });
}

#[test]
fn logs_focused_paused_searched_and_merged() {
    both_sizes("logs", Mode::Attached, |a| {
        keys(a, "\tk/slow\n");
    });
    both_sizes("logs_zoomed_wrapped", Mode::Attached, |a| {
        keys(a, "\tzw");
    });
}

#[test]
fn events_focused() {
    both_sizes("events", Mode::Attached, |a| {
        keys(a, "\t\t");
        a.update(Msg::Skipped(17));
    });
}

#[test]
fn detail_view() {
    both_sizes("detail", Mode::Attached, |a| {
        keys(a, "j\n");
        let d = crate::supervisor::Description {
            name: "wedged".into(),
            process: "wedged".into(),
            command: vec![
                "warden-demo-worker".into(),
                "http".into(),
                "18081".into(),
                "6000".into(),
            ],
            cwd: "/srv/demo".into(),
            env: [("PORT", "18081"), ("DB_PASSWORD", "••••••")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            masked: vec!["DB_PASSWORD".into()],
            log_file: "/srv/demo/logs/wedged.log".into(),
            restart: "always".into(),
            stop_signal: "SIGTERM".into(),
            stop_timeout_ms: 2000,
            ..Default::default()
        };
        a.update(Msg::Described {
            name: "wedged".into(),
            result: Ok(Box::new(d)),
        });
    });
    both_sizes("detail_web_usage", Mode::Attached, |a| {
        keys(a, "\n");
    });
}

#[test]
fn detail_of_a_scheduled_process() {
    both_sizes("detail_scheduled", Mode::Attached, |a| {
        keys(a, "jjj\n");
        assert_eq!(a.detail.as_ref().unwrap().name, "migrate");
    });
}

#[test]
fn tree_view() {
    both_sizes("tree", Mode::Attached, |a| {
        keys(a, "t");
        a.update(Msg::Tree {
            name: "web".into(),
            result: Ok(crate::tui::test_support::tree()),
        });
    });
    both_sizes("tree_waiting", Mode::Attached, |a| keys(a, "jt"));
}

#[test]
fn connectivity_view() {
    both_sizes("connectivity", Mode::Attached, |a| {
        keys(a, "c");
        assert_eq!(a.screen, Screen::Connectivity);
    });
}

#[test]
fn overlays() {
    both_sizes("help", Mode::Attached, |a| keys(a, "?"));
    both_sizes("confirm_quit", Mode::InProcess, |a| keys(a, "q"));
    both_sizes("signal_picker", Mode::Attached, |a| keys(a, "Sjj"));
    both_sizes("reload_plan", Mode::Attached, |a| {
        keys(a, "R");
        a.update(Msg::Plan(Ok(crate::supervisor::ReloadPlan {
            added: vec!["cache".into()],
            removed: vec!["batch".into()],
            changed: vec![crate::supervisor::reload::ChangedInstance {
                name: "web".into(),
                keys: vec!["env".into(), "liveness".into()],
            }],
            unchanged: vec!["flaky".into()],
            notes: vec![],
        })));
    });
}

#[test]
fn disconnected_keeps_the_last_picture() {
    both_sizes("disconnected", Mode::Attached, |a| {
        a.update(Msg::Disconnected("connection reset by peer".into()));
        let later = a.now + std::time::Duration::from_secs(12);
        a.update(Msg::Tick(later, a.wall, 0));
    });
}

#[test]
fn too_small_says_so() {
    let a = app(Mode::Attached, (20, 5), true);
    insta::assert_snapshot!("too_small", text(&render(&a)));
}

#[test]
fn every_size_from_tiny_to_wide_draws_without_panicking() {
    for setup in [
        "", "\t", "\t\t", "\n", "c", "?", "q", "S", "R", "\tzw", "a", "t", "-",
    ] {
        let mut a = app(Mode::InProcess, (120, 40), true);
        keys(&mut a, setup);
        for w in [1, 10, 29, 30, 40, 80, 100, 130] {
            for h in [1, 5, 7, 8, 10, 16, 20, 45] {
                a.update(Msg::Resize(w, h));
                render(&a);
            }
        }
    }
}

/// The colours a view uses: the terminal's own 16 (and its default), never RGB or a
/// 256-colour index; none at all with `NO_COLOR`. Backgrounds: only the search match.
#[test]
fn colours_come_from_the_terminal_palette_and_no_color_means_none() {
    for color in [true, false] {
        for setup in ["", "\tk/slow\n", "j\n", "c", "?"] {
            let mut a = app(Mode::InProcess, (120, 40), color);
            keys(&mut a, setup);
            let buf = render(&a);
            for cell in buf.content() {
                for c in [cell.fg, cell.bg] {
                    assert!(
                        !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                        "{c:?} in {setup:?}"
                    );
                    if !color {
                        assert_eq!(c, Color::Reset, "NO_COLOR: {setup:?}");
                    }
                }
                if color && cell.bg != Color::Reset {
                    assert_eq!(
                        cell.bg,
                        Color::Yellow,
                        "only search matches have a background"
                    );
                }
            }
        }
    }
}

/// How processes are contained: the supervisor's whole sentence where it fits, its mode
/// alone where it does not (the figures before it must not be pushed off the line).
#[test]
fn the_header_says_how_processes_are_contained_in_the_room_it_has() {
    let sentence = "cgroup v2 at `/sys/fs/cgroup/warden` (controllers: memory, cpu, pids)";
    let mut s = crate::tui::test_support::snapshot();
    let sup = s.supervisor.as_mut().unwrap();
    sup.cgroup = Some(sentence.into());
    sup.cgroups = Some(serde_json::from_value(serde_json::json!({"mode": "v2"})).unwrap());
    for (width, want) in [(200, sentence), (140, "cgroup v2")] {
        let mut a = app(Mode::Attached, (width, 40), true);
        a.update(Msg::Snapshot(std::sync::Arc::new(s.clone())));
        let top = text(&render(&a)).lines().next().unwrap().to_string();
        assert!(
            top.ends_with(&format!("mem 8.6MiB · {want}")),
            "{width}: {top}"
        );
    }
}
