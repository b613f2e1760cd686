//! The README's screenshots, taken from the real program: `warden up` on
//! `config/demo.toml` in a pseudo-terminal (120×40), driven by keys as a person would,
//! each screen read back through a terminal emulator and written as SVG (colours as a
//! dark terminal shows them) and as plain text, under `assets/screenshots/`.
//!
//! `make screenshots` (the demo's workers must be on PATH, which it arranges).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const ROWS: u16 = 40;
const COLS: u16 = 120;
const PATIENCE: Duration = Duration::from_secs(60);

type Shared = Arc<(Mutex<(vt100::Parser, bool)>, Condvar)>;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("assets/screenshots");
    std::fs::create_dir_all(&out).expect("the screenshots folder");
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("a pseudo-terminal");
    let warden = std::env::var("WARDEN").unwrap_or_else(|_| "warden".into());
    let mut cmd = CommandBuilder::new(warden);
    cmd.args(["up", "-c", "demo.toml"]);
    cmd.cwd(root.join("config"));
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("NO_COLOR");
    let mut child = pair.slave.spawn_command(cmd).expect("warden up");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut keys = pair.master.take_writer().unwrap();
    let shared: Shared = Arc::new((
        Mutex::new((
            vt100::Parser::new(ROWS.try_into().unwrap(), COLS.try_into().unwrap(), 0),
            false,
        )),
        Condvar::new(),
    ));
    let feed = shared.clone();
    let master = pair.master;
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            let n = reader.read(&mut buf).unwrap_or(0);
            let mut t = feed.0.lock().unwrap();
            if n == 0 {
                t.1 = true;
                feed.1.notify_all();
                return;
            }
            t.0.process(&buf[..n]);
            feed.1.notify_all();
        }
    });
    let mut press = |k: &str| {
        keys.write_all(k.as_bytes()).unwrap();
        keys.flush().unwrap();
        // Let the view take the key and draw (a frame is at most 33 ms away).
        std::thread::sleep(Duration::from_millis(300));
    };
    // Let the demo play out: a restart by liveness, a crash loop, the hog's kill.
    wait(&shared, "the demo under way", |text| {
        text.contains("flaky") && text.contains("SIGTERM (liveness)") && text.contains("(memory)")
    });
    let size = |cols| PtySize {
        rows: ROWS,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    };
    // Each picture from a full redraw (a resize forces one), not from a frame's diff.
    let shoot = |name: &str| {
        master.resize(size(COLS - 1)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        master.resize(size(COLS)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        shoot(&shared, &out, name);
    };
    shoot("main");
    // A worker's process tree: the shell and its two children, each with its figures.
    for _ in 0..8 {
        press("j");
    }
    press("t");
    wait(&shared, "the tree", |text| {
        text.contains("worker.0 ● running · process tree") && text.contains("3 processes · cpu")
    });
    shoot("tree");
    press("\x1b");
    std::thread::sleep(Duration::from_millis(300));
    press("g");
    // The wedged server's details.
    press("j");
    press("\r");
    wait(&shared, "the details", |text| text.contains("command "));
    shoot("detail");
    press("\x1b");
    std::thread::sleep(Duration::from_millis(300));
    press("c");
    shoot("connectivity");
    press("c");
    press("\t");
    press("a");
    press("z");
    shoot("logs");
    press("z");
    press("?");
    shoot("help");
    press("\x1b");
    std::thread::sleep(Duration::from_millis(300));
    press("q");
    shoot("quit");
    press("\r");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "warden did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("screenshots written to {}", out.display());
}

fn wait(shared: &Shared, what: &str, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    let (lock, cv) = &**shared;
    let mut t = lock.lock().unwrap();
    loop {
        let text = t.0.screen().contents();
        if pred(&text) {
            return;
        }
        let now = Instant::now();
        assert!(now < deadline && !t.1, "waited for {what}:\n{text}");
        t = cv.wait_timeout(t, deadline - now).unwrap().0;
    }
}

fn shoot(shared: &Shared, out: &Path, name: &str) {
    let t = shared.0.lock().unwrap();
    let screen = t.0.screen();
    std::fs::write(out.join(format!("{name}.txt")), screen.contents()).unwrap();
    std::fs::write(out.join(format!("{name}.svg")), svg(screen)).unwrap();
}

/// The xterm palette's 16 colours, as a dark terminal shows them.
const PALETTE: [&str; 16] = [
    "#1e1e1e", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
    "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff",
];
const FG: &str = "#cccccc";
const BG: &str = "#1e1e1e";
const CELL_W: f64 = 8.4;
const CELL_H: f64 = 18.0;

fn color(c: vt100::Color, default: &str) -> String {
    match c {
        vt100::Color::Default => default.to_string(),
        vt100::Color::Idx(i) if i < 16 => PALETTE[i as usize].to_string(),
        vt100::Color::Idx(i) => format!("#{:02x}{:02x}{:02x}", i, i, i),
        vt100::Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
    }
}

fn svg(screen: &vt100::Screen) -> String {
    let (rows, cols) = screen.size();
    let (rows, cols) = (rows.get(), cols.get());
    let (w, h) = (cols as f64 * CELL_W + 16.0, rows as f64 * CELL_H + 16.0);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="14px" xml:space="preserve">
<rect width="100%" height="100%" rx="6" fill="{BG}"/>
"#
    );
    for row in 0..rows {
        let y = 8.0 + row as f64 * CELL_H;
        // Runs of cells that look the same: one element each, stretched to the cells
        // they cover, so that any monospace font lines up with the grid.
        let mut col = 0;
        while col < cols {
            let Some(first) = screen.cell(row, col) else {
                break;
            };
            let style = look(first);
            let start = col;
            let mut text = String::new();
            while col < cols {
                let Some(cell) = screen.cell(row, col) else {
                    break;
                };
                if look(cell) != style {
                    break;
                }
                let c = cell.contents();
                text.push_str(if c.is_empty() { " " } else { c });
                col += if cell.is_wide() { 2 } else { 1 };
            }
            let (fg, bg, bold, dim) = style;
            let x = 8.0 + start as f64 * CELL_W;
            let width = (col - start) as f64 * CELL_W;
            if bg != BG {
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{y}" width="{width:.1}" height="{CELL_H}" fill="{bg}"/>"#
                );
            }
            if !text.trim().is_empty() {
                let weight = if bold { r#" font-weight="bold""# } else { "" };
                let opacity = if dim { r#" fill-opacity="0.6""# } else { "" };
                let _ = writeln!(
                    s,
                    r#"<text x="{x:.1}" y="{:.1}" fill="{fg}" textLength="{width:.1}" lengthAdjust="spacingAndGlyphs"{weight}{opacity}>{}</text>"#,
                    y + CELL_H * 0.78,
                    escape(&text)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// What a cell looks like: foreground, background, bold, dim.
fn look(cell: &vt100::Cell) -> (String, String, bool, bool) {
    let (mut fg, mut bg) = (color(cell.fgcolor(), FG), color(cell.bgcolor(), BG));
    if cell.inverse() {
        std::mem::swap(&mut fg, &mut bg);
    }
    (fg, bg, cell.bold(), cell.dim())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
