//! The dashboard's styles: the terminal's own 16 colours (so a light or a dark scheme
//! both read well), no background colours except for selection, which is drawn
//! reversed; with `NO_COLOR`, no colour at all, only bold, dim and reverse. Every state
//! also has a glyph, so nothing relies on colour alone.

use ratatui::style::{Color, Modifier, Style};

use crate::supervisor::State;
use crate::supervisor::status::Health;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set (to anything non-empty).
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn bad(self) -> Style {
        if self.color {
            Style::new().fg(Color::Red)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    pub fn info(self) -> Style {
        self.fg(Color::Cyan)
    }

    pub fn accent(self) -> Style {
        self.fg(Color::Blue).add_modifier(Modifier::BOLD)
    }

    pub fn dim(self) -> Style {
        Style::new().add_modifier(Modifier::DIM)
    }

    pub fn bold(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// The selected row: reversed, so it reads on any background.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// A search match in the logs.
    pub fn matched(self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::UNDERLINED)
        }
    }

    /// The border of the pane that has the keyboard.
    pub fn focused_border(self) -> Style {
        if self.color {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    pub fn border(self) -> Style {
        Style::new().add_modifier(Modifier::DIM)
    }

    pub fn state(self, s: State) -> Style {
        match s {
            State::Running => self.good(),
            State::Starting | State::Pending | State::Stopping | State::Backoff => self.warn(),
            State::Fatal => self.bad(),
            State::Stopped | State::Exited => self.dim(),
        }
    }

    pub fn health(self, h: Health) -> Style {
        match h {
            Health::Healthy => self.good(),
            Health::Unhealthy => self.bad(),
            Health::Unknown => self.warn(),
            Health::None => self.dim(),
        }
    }
}

/// A glyph per state, so that the table reads without colour.
pub fn glyph(s: State) -> &'static str {
    match s {
        State::Running => "●",
        State::Starting => "◐",
        State::Pending => "○",
        State::Stopping => "◑",
        State::Stopped => "■",
        State::Exited => "✓",
        State::Backoff => "↻",
        State::Fatal => "✗",
    }
}
