//! The header: what runs (config, warden's pid, version, CPU and memory), whether the
//! config on disk differs, whether the supervisor is reachable, and counts by state.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::scale::drifted;
use super::super::app::{App, Link, Mode, names_phrase};
use super::super::theme::glyph;
use crate::human::mem;
use crate::supervisor::State;
use crate::supervisor::status::SupervisorStatus;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let s = &app.snapshot;
    let mut top = vec![Span::styled(" warden ", t.accent())];
    // Badges first: they must show even on a narrow terminal.
    let badge = |text: String, style: ratatui::style::Style| {
        Span::styled(text, style.add_modifier(ratatui::style::Modifier::REVERSED))
    };
    if let Some(lost) = app.lost_for() {
        let text = match app.mode {
            Mode::Attached => format!(" disconnected {}s, reconnecting ", lost.as_secs()),
            Mode::InProcess => " supervisor stopped ".to_string(),
        };
        top.push(badge(text, t.bad()));
        top.push(Span::raw(" "));
    } else if app.shutting_down {
        top.push(badge(" stopping everything… ".into(), t.warn()));
        top.push(Span::raw(" "));
    }
    if let Some(text) = drift_badge(app) {
        top.push(badge(text, t.warn()));
        top.push(Span::raw(" "));
    }
    match &s.supervisor {
        Some(sup) => {
            top.push(Span::raw(app.display_path(&sup.config)));
            top.push(Span::styled(
                format!("  pid {} · v{}", sup.pid, sup.version),
                t.dim(),
            ));
            let cpu = sup.cpu_percent.map(|c| format!("{c:.1}%"));
            let rss = sup.rss_bytes.map(mem);
            top.push(Span::styled(
                format!(
                    " · cpu {} · mem {}",
                    cpu.as_deref().unwrap_or("-"),
                    rss.as_deref().unwrap_or("-")
                ),
                t.dim(),
            ));
            if let Some(cg) = containment(sup, area.width, top.iter().map(Span::width).sum()) {
                top.push(Span::styled(format!(" · {cg}"), t.dim()));
            }
        }
        None if app.link == Link::Connecting => {
            top.push(Span::styled("connecting…", t.dim()));
        }
        None => {}
    }
    let mut lines = vec![Line::from(top)];
    if area.height >= 2 {
        lines.push(counts(app));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// How processes are contained and measured: the supervisor's sentence where it fits
/// after the `used` columns, else its mode alone (`cgroup v2`, `cgroup off`; `warden
/// status` has the reason).
fn containment(sup: &SupervisorStatus, width: u16, used: usize) -> Option<String> {
    let full = sup.cgroup.as_deref()?;
    if used + 3 + full.chars().count() <= width as usize {
        return Some(full.to_string());
    }
    Some(match &sup.cgroups {
        Some(c) => format!("cgroup {}", c.mode),
        None => full.to_string(),
    })
}

/// What runs differs from the file: an edit not applied, processes scaled at runtime.
fn drift_badge(app: &App) -> Option<String> {
    let s = &app.snapshot;
    let mut parts = Vec::new();
    if s.supervisor.as_ref().is_some_and(|sup| sup.config_drift) {
        parts.push("config on disk differs".to_string());
    }
    match drifted(s).as_slice() {
        [] => {}
        [(name, wanted, declared)] => parts.push(format!("{name} scaled {declared}→{wanted}")),
        many => {
            let names: Vec<String> = many.iter().map(|(n, ..)| n.to_string()).collect();
            parts.push(format!(
                "{} scaled away from the file",
                names_phrase(&names)
            ));
        }
    }
    (!parts.is_empty()).then(|| format!(" {} ", parts.join(" · ")))
}

/// `12 processes  8 ● running  1 ↻ backoff …  · 2 checks: 1 up, 1 down · filter …`
fn counts(app: &App) -> Line<'static> {
    let t = app.theme;
    let s = &app.snapshot;
    let mut spans = vec![Span::raw(format!(" {} processes ", s.processes.len()))];
    for state in [
        State::Running,
        State::Starting,
        State::Pending,
        State::Stopping,
        State::Backoff,
        State::Fatal,
        State::Exited,
        State::Stopped,
    ] {
        let n = s.processes.iter().filter(|p| p.state == state).count();
        if n > 0 {
            spans.push(Span::styled(
                format!(" {n} {} {state}", glyph(state)),
                t.state(state),
            ));
        }
    }
    if !s.checks.is_empty() {
        let up = s.checks.iter().filter(|c| c.ready).count();
        spans.push(Span::styled(
            format!("  · {} checks: {up} up", s.checks.len()),
            t.dim(),
        ));
        if up < s.checks.len() {
            spans.push(Span::styled(
                format!(", {} down", s.checks.len() - up),
                t.bad(),
            ));
        }
    }
    let mut view = Vec::new();
    if !app.filter.is_empty() {
        view.push(format!("filter `{}`", app.filter));
    }
    if app.state_filter != Default::default() {
        view.push(format!("showing {}", app.state_filter.label()));
    }
    if let Some(c) = app.sort.column {
        view.push(format!(
            "sorted by {} {}",
            c.title().to_lowercase(),
            if app.sort.descending { "↓" } else { "↑" }
        ));
    }
    if !app.marked.is_empty() {
        view.push(format!("{} marked", app.marked.len()));
    }
    if !view.is_empty() {
        spans.push(Span::styled(format!("  · {}", view.join(" · ")), t.info()));
    }
    Line::from(spans)
}
