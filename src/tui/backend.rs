//! Where the dashboard's data comes from and where its actions go: the supervisor in the
//! same process (through its [`Handle`]) or one reached over its control socket. Both
//! speak the same protocol requests and feed the view the same messages; the view does
//! not know which it has.
//!
//! Everything here is bounded: a subscription skips (and says so) when the view falls
//! behind, and log lines are taken at most [`LOG_BATCH`] per frame, so a child printing
//! as fast as it can (`yes`) costs the view a fixed amount of work per frame, not one
//! unit per line. The log files keep every line; the view says how many it did not show.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::app::Msg;
use super::logbuf::{LogEntry, Origin};
use crate::api::dispatch::{act, ask};
use crate::api::protocol::{Answer, LogRecord, Request};
use crate::logs::{Follow, Followed, LogLine, LogSink, Stream};
use crate::supervisor::status::Snapshot;
use crate::supervisor::{Control, Description, Event, Handle, ReloadPlan, Update};

/// Log lines handed to the view at once; under a flood, one batch per frame.
pub const LOG_BATCH: usize = 500;
/// The pause between full batches: about one frame.
const FRAME: Duration = Duration::from_millis(33);
/// Lines of history shown when a process's logs are opened.
const TAIL: usize = 200;
/// How often a lost supervisor is looked for.
const RETRY: Duration = Duration::from_millis(500);

pub type Tx = mpsc::Sender<Msg>;

#[derive(Clone)]
pub enum Source {
    /// `warden up`: the supervisor in this process.
    Local { handle: Handle, config: String },
    /// `warden tui`: a supervisor behind a control socket.
    Remote { socket: std::path::PathBuf },
}

impl Source {
    /// Follow the supervisor: a snapshot, then events and fresher snapshots, until the
    /// view goes. A remote supervisor that goes away is looked for again and again.
    pub async fn feed(self, tx: Tx) {
        match self {
            Source::Local { handle, .. } => {
                // The events pane starts from what the supervisor kept.
                let sub = ask(&handle, |reply| Control::Subscribe {
                    refresh: true,
                    since: Some(0),
                    reply,
                })
                .await;
                let Ok(mut sub) = sub else {
                    let _ = tx.send(Msg::Ended).await;
                    return;
                };
                if tx.send(Msg::Connected(sub.first.clone())).await.is_err() {
                    return;
                }
                for e in std::mem::take(&mut sub.backlog) {
                    if tx.send(Msg::Event(e)).await.is_err() {
                        return;
                    }
                }
                loop {
                    let msg = match sub.next().await {
                        Update::Event(e) => Msg::Event(e),
                        Update::Snapshot(s) => Msg::Snapshot(s),
                        Update::Skipped(n) => Msg::Skipped(n),
                        Update::End => {
                            let _ = tx.send(Msg::Ended).await;
                            return;
                        }
                    };
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
            }
            Source::Remote { socket } => {
                let mut shown = 0;
                loop {
                    let why = match remote_feed(&socket, &tx, &mut shown).await {
                        Ok(()) => "the supervisor stopped".to_string(),
                        Err(e) => e,
                    };
                    if tx.is_closed() {
                        return;
                    }
                    let _ = tx.send(Msg::Disconnected(why)).await;
                    // Look for it again until it is back.
                    loop {
                        tokio::time::sleep(RETRY).await;
                        if tx.is_closed() {
                            return;
                        }
                        if UnixStream::connect(&socket).await.is_ok() {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Perform a request that has one answer.
    pub async fn call(&self, request: Request) -> Result<Answer, String> {
        let answer = match self {
            Source::Local { handle, config } => act(handle, config, request).await,
            Source::Remote { socket } => remote_call(socket, &request).await?,
        };
        match answer.ok {
            Some(true) => Ok(answer),
            _ => Err(answer.error.unwrap_or_else(|| "the request failed".into())),
        }
    }

    pub async fn act(&self, request: Request) -> Result<String, String> {
        self.call(request)
            .await
            .map(|a| a.message.unwrap_or_default())
    }

    pub async fn describe(&self, name: String) -> Result<Box<Description>, String> {
        let answer = self.call(Request::Describe { name }).await?;
        let raw = answer.description.ok_or("no description in the answer")?;
        serde_json::from_str(raw.get()).map_err(|e| format!("cannot read the description: {e}"))
    }

    pub async fn plan(&self) -> Result<ReloadPlan, String> {
        let answer = self.call(Request::Reload { dry_run: true }).await?;
        let raw = answer.plan.ok_or("no plan in the answer")?;
        serde_json::from_str(raw.get()).map_err(|e| format!("cannot read the plan: {e}"))
    }

    /// One instance's process tree (`tree`), leader first.
    pub async fn tree(&self, name: String) -> Result<Vec<crate::api::tree::TreeProcess>, String> {
        let answer = self.call(Request::Tree { names: vec![name] }).await?;
        let raw = answer.trees.ok_or("no tree in the answer")?;
        let trees: Vec<crate::api::tree::Tree> =
            serde_json::from_str(raw.get()).map_err(|e| format!("cannot read the tree: {e}"))?;
        Ok(trees
            .into_iter()
            .next()
            .map(|t| t.processes)
            .unwrap_or_default())
    }

    /// Follow `names`' logs (their last lines first) for the view, tagged `generation`,
    /// until aborted or the source ends.
    pub async fn follow_logs(self, names: Vec<String>, generation: u64, tx: Tx) {
        if names.is_empty() {
            return;
        }
        match self {
            Source::Local { handle, .. } => local_logs(handle, names, generation, tx).await,
            Source::Remote { socket } => {
                let _ = remote_logs(&socket, names, generation, &tx).await;
            }
        }
    }
}

// ----- in process -------------------------------------------------------------------

async fn local_logs(handle: Handle, names: Vec<String>, generation: u64, tx: Tx) {
    let Ok(Ok(sinks)) = ask(&handle, |reply| Control::Logs { names, reply }).await else {
        return;
    };
    // Following starts where each tail ends: nothing falls between the two.
    let followed: Vec<_> = sinks
        .into_iter()
        .map(|(name, sink)| {
            let (tail, follow) = sink.follow(TAIL);
            (Arc::<str>::from(name), follow, tail)
        })
        .collect();
    let mut history: Vec<LogEntry> = Vec::new();
    let mut tasks = JoinSet::new();
    for (name, follow, tail) in followed {
        history.extend(tail.iter().map(|l| entry(&name, l)));
        tasks.spawn(forward(
            handle.clone(),
            name,
            follow,
            generation,
            tx.clone(),
        ));
    }
    history.sort_by_key(|e| e.time);
    let skip = history.len().saturating_sub(TAIL);
    let lines = history.into_iter().skip(skip).collect();
    if tx
        .send(Msg::Logs {
            generation,
            lines,
            skipped: 0,
        })
        .await
        .is_err()
    {
        return;
    }
    while tasks.join_next().await.is_some() {}
}

/// One instance's new lines, at most a batch per frame, read from its ring at the view's
/// pace (lines it was too slow for are counted as skipped). When the supervisor replaces
/// the instance's sink (a reload changed the process), the new one is followed.
async fn forward(handle: Handle, name: Arc<str>, mut follow: Follow, generation: u64, tx: Tx) {
    loop {
        let (lines, skipped, full) = match follow.next(usize::MAX, LOG_BATCH).await {
            Followed::Lines { skipped, lines } => {
                let full = lines.len() == LOG_BATCH;
                (
                    lines.iter().map(|l| entry(&name, l)).collect(),
                    skipped,
                    full,
                )
            }
            Followed::Closed => {
                let Some(sink) = reattach(&handle, &name).await else {
                    return;
                };
                let (tail, next) = sink.follow(TAIL);
                drop(sink);
                follow = next;
                (tail.iter().map(|l| entry(&name, l)).collect(), 0, false)
            }
        };
        let msg = Msg::Logs {
            generation,
            lines,
            skipped,
        };
        if tx.send(msg).await.is_err() {
            return;
        }
        if full {
            tokio::time::sleep(FRAME).await;
        }
    }
}

/// The sink that now serves `name`, if the instance still exists.
async fn reattach(handle: &Handle, name: &str) -> Option<Arc<LogSink>> {
    let names = vec![name.to_string()];
    let sinks = ask(handle, |reply| Control::Logs { names, reply })
        .await
        .ok()?
        .ok()?;
    sinks.into_iter().find(|(n, _)| n == name).map(|(_, s)| s)
}

fn entry(name: &Arc<str>, line: &LogLine) -> LogEntry {
    LogEntry {
        name: name.clone(),
        time: line.time,
        origin: match line.stream {
            Stream::Stdout => Origin::Stdout,
            Stream::Stderr => Origin::Stderr,
            Stream::Warden => Origin::Warden,
        },
        text: line.display_text(),
        ansi: line
            .text
            .contains(&0x1b)
            .then(|| line.display_ansi())
            .filter(|a| a.contains('\x1b')),
    }
}

// ----- over the socket --------------------------------------------------------------

struct Lines {
    rd: BufReader<tokio::net::unix::OwnedReadHalf>,
    wr: tokio::net::unix::OwnedWriteHalf,
}

impl Lines {
    async fn open(socket: &std::path::Path, request: &Request) -> Result<Lines, String> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| format!("cannot reach the supervisor: {}", lower(&e)))?;
        let (rd, wr) = stream.into_split();
        let mut lines = Lines {
            rd: BufReader::with_capacity(64 * 1024, rd),
            wr,
        };
        lines
            .wr
            .write_all(&request.to_line())
            .await
            .map_err(|e| format!("lost the supervisor: {}", lower(&e)))?;
        Ok(lines)
    }

    /// The next answer line; `None` at the end of the connection.
    async fn next(&mut self) -> Result<Option<Answer>, String> {
        let mut line = Vec::new();
        match self.rd.read_until(b'\n', &mut line).await {
            Ok(0) => Ok(None),
            Ok(_) => serde_json::from_slice(&line)
                .map(Some)
                .map_err(|e| format!("cannot read the supervisor's answer: {e}")),
            Err(e) => Err(format!("lost the supervisor: {}", lower(&e))),
        }
    }

    /// Whether more input is already buffered.
    fn buffered(&self) -> bool {
        !self.rd.buffer().is_empty()
    }
}

fn lower(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut c = text.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

async fn remote_call(socket: &std::path::Path, request: &Request) -> Result<Answer, String> {
    let mut conn = Lines::open(socket, request).await?;
    loop {
        match conn.next().await? {
            Some(a) if a.ok.is_some() => return Ok(a),
            Some(_) => continue,
            None => return Err("the supervisor closed the connection without answering".into()),
        }
    }
}

/// One subscription, until the connection ends (Ok) or fails (Err with why). The events
/// pane starts from the events the supervisor kept, but none shown already: `shown` is
/// the last sequence number shown (a supervisor whose snapshot is older than that is a
/// new one, whose events are all new).
async fn remote_feed(socket: &std::path::Path, tx: &Tx, shown: &mut u64) -> Result<(), String> {
    let request = Request::Subscribe {
        refresh: true,
        since: Some(0),
    };
    let mut conn = Lines::open(socket, &request).await?;
    let header = conn
        .next()
        .await?
        .ok_or("the supervisor closed the connection")?;
    if header.ok == Some(false) {
        return Err(header.error.unwrap_or_default());
    }
    let first: Snapshot = parse(header.snapshot.as_deref())?.ok_or("no snapshot in the answer")?;
    if first.seq < *shown {
        *shown = 0;
    }
    tx.send(Msg::Connected(Arc::new(first)))
        .await
        .map_err(|_| "the view closed".to_string())?;
    while let Some(a) = conn.next().await? {
        let msg = if let Some(e) = parse::<Event>(a.event.as_deref())? {
            if e.seq <= *shown {
                continue;
            }
            *shown = e.seq;
            Msg::Event(Arc::new(e))
        } else if let Some(s) = parse::<Snapshot>(a.snapshot.as_deref())? {
            Msg::Snapshot(Arc::new(s))
        } else if let Some(skipped) = a.skipped {
            Msg::Skipped(skipped.count)
        } else if a.ok.is_some() {
            return Ok(());
        } else {
            continue;
        };
        tx.send(msg)
            .await
            .map_err(|_| "the view closed".to_string())?;
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(
    raw: Option<&serde_json::value::RawValue>,
) -> Result<Option<T>, String> {
    raw.map(|r| serde_json::from_str(r.get()))
        .transpose()
        .map_err(|e| format!("cannot read the supervisor's answer: {e}"))
}

async fn remote_logs(
    socket: &std::path::Path,
    names: Vec<String>,
    generation: u64,
    tx: &Tx,
) -> Result<(), String> {
    let request = Request::Logs {
        names,
        lines: TAIL,
        follow: true,
        colors: true,
    };
    let mut conn = Lines::open(socket, &request).await?;
    let mut lines = Vec::new();
    let mut skipped = 0u64;
    loop {
        let Some(a) = conn.next().await? else {
            return Ok(());
        };
        if a.ok == Some(false) {
            return Err(a.error.unwrap_or_default());
        }
        if let Some(r) = a.line {
            lines.push(remote_entry(r));
        }
        if let Some(s) = a.skipped {
            skipped += s.count;
        }
        // Hand over what has arrived; under a flood, one full batch per frame (the
        // supervisor skips what the socket cannot take meanwhile, and says so).
        let full = lines.len() >= LOG_BATCH;
        if full || !conn.buffered() {
            if !lines.is_empty() || skipped > 0 {
                let msg = Msg::Logs {
                    generation,
                    lines: std::mem::take(&mut lines),
                    skipped: std::mem::take(&mut skipped),
                };
                if tx.send(msg).await.is_err() {
                    return Ok(());
                }
            }
            if full {
                tokio::time::sleep(FRAME).await;
            }
        }
        if a.ok.is_some() {
            return Ok(());
        }
    }
}

fn remote_entry(r: LogRecord) -> LogEntry {
    LogEntry {
        name: r.name.into(),
        time: humantime::parse_rfc3339_weak(&r.time).unwrap_or(std::time::UNIX_EPOCH),
        origin: match r.stream.as_str() {
            "stderr" => Origin::Stderr,
            "warden" => Origin::Warden,
            _ => Origin::Stdout,
        },
        text: r.text,
        ansi: r.ansi,
    }
}
