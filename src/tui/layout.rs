//! Where each part of the screen goes, as a pure function of the terminal size and the
//! few facts of the view's state that shape it ([`Shape`]). The views draw into these
//! areas and the mouse handler hit-tests the same ones, so a click always lands where the
//! user sees it. It knows nothing of the app's state beyond [`Shape`], so the app can ask
//! it without a cycle.

use ratatui::layout::Rect;

/// The panes of the main screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Table,
    Logs,
    Events,
}

/// What the layout depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The terminal's (width, height).
    pub size: (u16, u16),
    /// The main screen (table, logs, events) is shown, not a full-screen view.
    pub main: bool,
    /// The focused pane fills the body.
    pub zoom: bool,
    pub focus: Pane,
    /// Rows of the table.
    pub rows: usize,
}

/// Below this the layout does not fit: a notice is shown instead, never a panic.
pub const MIN_WIDTH: u16 = 30;
pub const MIN_HEIGHT: u16 = 8;
/// From this width the logs and the events sit side by side.
const SIDE_BY_SIDE: u16 = 100;
/// From this body height the table and a bottom pane are both shown.
const STACKED: u16 = 16;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    pub body: Rect,
    /// The key bar.
    pub keys: Rect,
    /// The status line (results of actions, connection).
    pub status: Rect,
    pub table: Option<Rect>,
    pub logs: Option<Rect>,
    pub events: Option<Rect>,
    pub too_small: bool,
}

pub fn areas(app: &Shape) -> Areas {
    let (w, h) = app.size;
    let full = Rect::new(0, 0, w, h);
    if w < MIN_WIDTH || h < MIN_HEIGHT {
        return Areas {
            body: full,
            too_small: true,
            ..Areas::default()
        };
    }
    let header_h = if h >= 20 { 2 } else { 1 };
    let header = Rect::new(0, 0, w, header_h);
    let status = Rect::new(0, h - 2, w, 1);
    let keys = Rect::new(0, h - 1, w, 1);
    let body = Rect::new(0, header_h, w, h - header_h - 2);
    let mut a = Areas {
        header,
        body,
        keys,
        status,
        ..Areas::default()
    };
    if !app.main {
        return a;
    }
    let bottom_pane = if app.focus == Pane::Events {
        Pane::Events
    } else {
        Pane::Logs
    };
    if app.zoom || body.height < STACKED {
        match app.focus {
            Pane::Table => a.table = Some(body),
            Pane::Logs => a.logs = Some(body),
            Pane::Events => a.events = Some(body),
        }
        return a;
    }
    // The table takes what its rows need, up to 55% of the body; at least 5 lines.
    let wanted = app.rows as u16 + 3;
    let table_h = wanted.clamp(5, (body.height * 55 / 100).max(5));
    let table = Rect::new(body.x, body.y, w, table_h);
    let rest = Rect::new(body.x, body.y + table_h, w, body.height - table_h);
    a.table = Some(table);
    if w >= SIDE_BY_SIDE {
        let logs_w = w * 62 / 100;
        a.logs = Some(Rect::new(rest.x, rest.y, logs_w, rest.height));
        a.events = Some(Rect::new(rest.x + logs_w, rest.y, w - logs_w, rest.height));
    } else if bottom_pane == Pane::Events {
        a.events = Some(rest);
    } else {
        a.logs = Some(rest);
    }
    a
}

/// Whether `(col, row)` is inside `r`.
pub fn contains(r: Rect, col: u16, row: u16) -> bool {
    col >= r.x && col < r.x + r.width && row >= r.y && row < r.y + r.height
}

/// The inside of a bordered block.
pub fn inner(r: Rect) -> Rect {
    Rect::new(
        r.x + 1,
        r.y + 1,
        r.width.saturating_sub(2),
        r.height.saturating_sub(2),
    )
}
