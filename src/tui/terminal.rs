//! The terminal: raw mode, the alternate screen, mouse reporting, a hidden cursor; and
//! putting all of it back on quit, on panic, on a signal, and around Ctrl-Z.
//!
//! Restoring is idempotent and guarded by one flag, so the panic hook, a signal path
//! and the normal exit can all call it without undoing each other's work twice.

use std::io::{self, Stdout, Write};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{
    cursor,
    event::{DisableMouseCapture, EnableMouseCapture},
    execute,
    terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode},
};

/// The terminal is in the dashboard's modes (and must be restored).
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Take over the terminal. The panic hook that restores it is installed once, first.
pub fn enter() -> io::Result<Term> {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
    setup()?;
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

fn setup() -> io::Result<()> {
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        cursor::Hide
    )
}

/// Give the terminal back as it was. Safe to call at any time, any number of times.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(out, DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
        let _ = out.flush();
        let _ = disable_raw_mode();
    }
}

/// Ctrl-Z: give the terminal back, stop this process (the shell's `fg` continues it),
/// then take the terminal again and redraw everything.
pub fn suspend(term: &mut Term) -> io::Result<()> {
    restore();
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGTSTP);
    // Here only once continued.
    resume(term)
}

/// After a stop by anyone (SIGCONT): the shell may have changed the terminal's modes.
pub fn resume(term: &mut Term) -> io::Result<()> {
    if !ACTIVE.load(Ordering::SeqCst) {
        setup()?;
    } else {
        enable_raw_mode()?;
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            cursor::Hide
        )?;
    }
    // A full redraw on the next frame. Not `Terminal::clear`: it asks the terminal where
    // the cursor is, and the answer would go to the key reader instead.
    let size = term.size()?;
    term.resize(ratatui::layout::Rect::new(0, 0, size.width, size.height))
}
