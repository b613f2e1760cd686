//! The streaming answers: `logs` (the tail of the ring, then, with `follow`, every new
//! line), `events` (every event from now on) and `subscribe` (a snapshot, then every
//! later event).
//!
//! A stream never makes anyone wait on its client. A `logs -f` follower reads the
//! process's ring at its own pace, a bounded slice at a time: while its client is slow it
//! reads nothing, the ring moves on, and when it reads again it is told how many lines it
//! missed (`skipped`). So a follower costs no memory beyond the ring, whatever its client
//! does. `events` and `subscribe` read the supervisor's event log the same way. A client
//! that stops reading altogether is dropped after the write timeout; one that hangs up is
//! noticed at once (its read side ends) and everything it held is released.

use std::io;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::conn::{Peer, hung_up, stopped};
use super::dispatch::ask;
use super::protocol::{Answer, LogRecord, Skipped};
use crate::logs::{Follow, Followed, LogLine, LogSink, Stream};
use crate::supervisor::observe::{Subscription, Update};
use crate::supervisor::{Control, Event};

/// Text a follower takes from the ring at a time: what one connection can hold in
/// flight per followed instance.
const FOLLOW_SLICE: usize = 16 * 1024;

const SUPERVISOR_STOPPED: &str = "the supervisor stopped";

/// How long a stream may take, once the supervisor has stopped, to send what was
/// published before the stop (a last log line, the final events).
const STOP_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// `{"stream":"logs","instances":[...]}`, the last `lines` lines of each instance (merged
/// by time), then with `follow` every new line until the supervisor stops.
pub(super) async fn logs(
    c: &mut Peer,
    names: Vec<String>,
    lines: usize,
    follow: bool,
    colors: bool,
) -> io::Result<bool> {
    let handle = c.handle.clone();
    let sinks = match ask(&handle, |reply| Control::Logs { names, reply })
        .await
        .and_then(|r| r)
    {
        Ok(sinks) => sinks,
        Err(e) => {
            c.send(&Answer::error(e)).await?;
            return Ok(true);
        }
    };
    let instances: Vec<String> = sinks.iter().map(|(name, _)| name.clone()).collect();
    // Following starts where the tail ends, atomically: nothing falls between the two.
    let mut tails = Vec::new();
    let mut follows = Vec::new();
    for (_, sink) in &sinks {
        if follow {
            let (tail, f) = sink.follow(lines);
            tails.push(tail);
            follows.push(f);
        } else {
            tails.push(sink.tail(lines));
        }
    }
    // Hold no sink: when the supervisor replaces one (a reload changed the process), the
    // follower learns it and attaches to the new one.
    drop(sinks);

    c.send(&Answer {
        stream: Some("logs".into()),
        instances: Some(instances.clone()),
        ..Answer::default()
    })
    .await?;
    let mut merged: Vec<(usize, &LogLine)> = tails
        .iter()
        .enumerate()
        .flat_map(|(i, tail)| tail.iter().map(move |l| (i, l)))
        .collect();
    merged.sort_by_key(|(_, l)| l.time);
    for (i, line) in merged {
        c.send(&line_answer(&instances[i], line, colors)).await?;
    }
    if !follow {
        c.send(&Answer::success()).await?;
        return Ok(true);
    }

    let (tx, mut feed) = mpsc::channel(1);
    let mut forwarders = JoinSet::new();
    for (i, f) in follows.into_iter().enumerate() {
        forwarders.spawn(forward(i, f, tx.clone()));
    }
    let mut live = instances.len();
    // Once the supervisor has stopped, what the forwarders still pass on (the last lines,
    // read before their sinks went) is sent, until they are done or `STOP_DRAIN` is over.
    let mut stopping: Option<tokio::time::Instant> = None;
    let mut tx = Some(tx);
    loop {
        let next = match stopping {
            Some(until) => tokio::time::timeout_at(until, feed.recv())
                .await
                .ok()
                .flatten(),
            None => tokio::select! {
                biased;
                () = stopped(&mut c.stop) => {
                    stopping = Some(tokio::time::Instant::now() + STOP_DRAIN);
                    // Each forwarder holds a sender: the feed ends when the last is done.
                    tx = None;
                    continue;
                }
                () = hung_up(&mut c.rd, true) => return Ok(false),
                f = feed.recv() => f,
            },
        };
        match next {
            None => {
                c.send(&Answer::message(SUPERVISOR_STOPPED)).await?;
                return Ok(false);
            }
            Some(Feed::Closed(_)) if stopping.is_some() => {}
            Some(Feed::Lines(i, skipped, lines)) => {
                if skipped > 0 {
                    let skipped = Skipped {
                        name: Some(instances[i].clone()),
                        count: skipped,
                    };
                    c.send(&Answer {
                        skipped: Some(skipped),
                        ..Answer::default()
                    })
                    .await?;
                }
                for line in &lines {
                    c.send(&line_answer(&instances[i], line, colors)).await?;
                }
            }
            Some(Feed::Closed(i)) => match reattach(c, &instances[i]).await {
                Attach::To(sink) => {
                    let (tail, f) = sink.follow(usize::MAX);
                    drop(sink);
                    for line in &tail {
                        c.send(&line_answer(&instances[i], line, colors)).await?;
                    }
                    if let Some(tx) = &tx {
                        forwarders.spawn(forward(i, f, tx.clone()));
                    }
                }
                Attach::Gone => {
                    live -= 1;
                    if live == 0 {
                        c.send(&Answer::message("nothing left to follow")).await?;
                        return Ok(false);
                    }
                }
                Attach::SupervisorStopped => {
                    c.send(&Answer::message(SUPERVISOR_STOPPED)).await?;
                    return Ok(false);
                }
            },
        }
    }
}

enum Attach {
    To(std::sync::Arc<LogSink>),
    /// The instance no longer exists (a reload removed it).
    Gone,
    SupervisorStopped,
}

/// The sink that now serves instance `name`, if it still exists.
async fn reattach(c: &Peer, name: &str) -> Attach {
    let names = vec![name.to_string()];
    match ask(&c.handle, |reply| Control::Logs { names, reply }).await {
        Err(_) => Attach::SupervisorStopped,
        Ok(Err(_)) => Attach::Gone,
        Ok(Ok(sinks)) => match sinks.into_iter().find(|(n, _)| n == name) {
            Some((_, sink)) => Attach::To(sink),
            None => Attach::Gone,
        },
    }
}

enum Feed {
    /// Instance `i`'s next lines, after `skipped` it fell behind on.
    Lines(usize, u64, Vec<LogLine>),
    /// The sink is gone (the supervisor replaced or removed the instance).
    Closed(usize),
}

/// Pass instance `i`'s new lines to the connection, one slice at a time: the next slice
/// is read from the ring only once the connection has taken the previous one.
async fn forward(i: usize, mut follow: Follow, tx: mpsc::Sender<Feed>) {
    loop {
        let feed = match follow.next(FOLLOW_SLICE, usize::MAX).await {
            Followed::Lines { skipped, lines } => Feed::Lines(i, skipped, lines),
            Followed::Closed => {
                let _ = tx.send(Feed::Closed(i)).await;
                return;
            }
        };
        if tx.send(feed).await.is_err() {
            return;
        }
    }
}

fn line_answer(name: &str, line: &LogLine, colors: bool) -> Answer {
    let stream = match line.stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
        Stream::Warden => "warden",
    };
    let record = LogRecord {
        name: name.to_string(),
        seq: line.seq,
        time: humantime::format_rfc3339_millis(line.time).to_string(),
        stream: stream.into(),
        text: line.display_text(),
        ansi: colors
            .then(|| line.display_ansi())
            .filter(|a| a.contains('\x1b')),
        partial: line.partial,
    };
    Answer {
        line: Some(record),
        ..Answer::default()
    }
}

/// `{"stream":"events"}`, then every event as `{"event":{...},"text":"..."}` until the
/// supervisor stops; with `since`, the kept events after that number first.
pub(super) async fn events(c: &mut Peer, since: Option<u64>) -> io::Result<bool> {
    let log = c.handle.events.clone();
    let mut cursor = c.handle.follow_since(since.unwrap_or(u64::MAX));
    c.send(&Answer {
        stream: Some("events".into()),
        ..Answer::default()
    })
    .await?;
    let mut stopping = false;
    loop {
        let batch = cursor.take(&log, u64::MAX);
        if batch.skipped > 0 {
            c.send(&skipped(batch.skipped)).await?;
        }
        for event in &batch.events {
            c.send(&event_answer(event)).await?;
        }
        // Once stopping (the server stopped, or the log is gone), what was published
        // before is sent, then the end; the log is closed before the server stops, so a
        // stop normally finds the log's own end.
        let more = !batch.events.is_empty() || batch.skipped > 0;
        if batch.end || (stopping && !more) {
            c.send(&Answer::message(SUPERVISOR_STOPPED)).await?;
            return Ok(false);
        }
        if more {
            continue;
        }
        stopping = tokio::select! {
            biased;
            () = stopped(&mut c.stop) => true,
            () = hung_up(&mut c.rd, true) => return Ok(false),
            alive = cursor.changed() => !alive,
        };
    }
}

/// `{"stream":"subscribe","snapshot":{...}}`, with `since` the kept events the snapshot
/// includes, then every later event (and, with `refresh`, `{"snapshot":{...}}` items)
/// until the supervisor stops.
pub(super) async fn subscribe(c: &mut Peer, refresh: bool, since: Option<u64>) -> io::Result<bool> {
    let handle = c.handle.clone();
    let mut sub: Subscription = match ask(&handle, |reply| Control::Subscribe {
        refresh,
        since,
        reply,
    })
    .await
    {
        Ok(sub) => sub,
        Err(e) => {
            c.send(&Answer::error(e)).await?;
            return Ok(false);
        }
    };
    c.send(&Answer {
        stream: Some("subscribe".into()),
        snapshot: Some(raw(&*sub.first)),
        ..Answer::default()
    })
    .await?;
    for event in std::mem::take(&mut sub.backlog) {
        c.send(&event_answer(&event)).await?;
    }
    let mut stopping = false;
    loop {
        let update = if stopping {
            // What was published before the stop, then the end.
            sub.ready().unwrap_or(Update::End)
        } else {
            tokio::select! {
                biased;
                () = stopped(&mut c.stop) => {
                    stopping = true;
                    continue;
                }
                () = hung_up(&mut c.rd, true) => return Ok(false),
                u = sub.next() => u,
            }
        };
        let answer = match update {
            Update::Event(event) => event_answer(&event),
            Update::Skipped(count) => skipped(count),
            Update::Snapshot(s) => Answer {
                snapshot: Some(raw(&*s)),
                ..Answer::default()
            },
            Update::End => {
                c.send(&Answer::message(SUPERVISOR_STOPPED)).await?;
                return Ok(false);
            }
        };
        c.send(&answer).await?;
    }
}

fn raw<T: serde::Serialize>(value: &T) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(value).expect("observer data always serializes")
}

fn event_answer(event: &Event) -> Answer {
    Answer {
        text: Some(event.describe()),
        event: Some(raw(event)),
        ..Answer::default()
    }
}

fn skipped(count: u64) -> Answer {
    Answer {
        skipped: Some(Skipped { name: None, count }),
        ..Answer::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt, BufReader, Lines};
    use tokio::net::UnixStream;
    use tokio::sync::watch;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::supervisor::Handle;
    use crate::supervisor::event::EventKind;
    use crate::supervisor::observe::EventLog;

    /// One side of a connection served by `stream` (on a task), once its first line (the
    /// stream's header) has come; and the switch that stops the server.
    struct Client {
        lines: Lines<BufReader<UnixStream>>,
        stop: watch::Sender<bool>,
        task: JoinHandle<io::Result<bool>>,
    }

    impl Client {
        async fn start<F, S>(handle: Handle, header: &str, stream: S) -> Client
        where
            S: FnOnce(Peer) -> F,
            F: Future<Output = io::Result<bool>> + Send + 'static,
        {
            let (stop, stop_rx) = watch::channel(false);
            let (ours, theirs) = UnixStream::pair().unwrap();
            let task = tokio::spawn(stream(Peer::new(theirs, handle, stop_rx)));
            let mut lines = BufReader::new(ours).lines();
            let first = lines.next_line().await.unwrap().unwrap();
            assert!(first.contains(header), "{first}");
            Client { lines, stop, task }
        }

        /// Every line after the header until the server closes the connection, which
        /// must end the stream without an error.
        async fn rest(mut self) -> Vec<String> {
            let mut rest = Vec::new();
            while let Some(line) = self.lines.next_line().await.unwrap() {
                rest.push(line);
            }
            assert!(!self.task.await.unwrap().unwrap());
            rest
        }
    }

    /// The server stops right after the supervisor's last events: both are ready when the
    /// stream wakes, and the events still go out before the end.
    #[tokio::test(flavor = "current_thread")]
    async fn events_published_just_before_the_stop_are_sent() {
        let (control, _requests) = mpsc::unbounded_channel();
        let log = Arc::new(EventLog::new(1 << 20));
        let handle = Handle {
            control,
            events: log.clone(),
        };
        let client = Client::start(handle, r#""stream":"events""#, |mut peer| async move {
            events(&mut peer, None).await
        })
        .await;
        // One thread: the stream has sent its first line and waits; nothing runs until
        // this test awaits again.
        log.publish(Event {
            seq: 0,
            time: std::time::UNIX_EPOCH,
            name: "job".into(),
            kind: EventKind::Message {
                text: "the last word".into(),
            },
        });
        log.close();
        client.stop.send_replace(true);
        let rest = client.rest().await;
        assert_eq!(rest.len(), 2, "{rest:?}");
        assert!(rest[0].contains("the last word"), "{rest:?}");
        assert!(rest[1].contains(SUPERVISOR_STOPPED), "{rest:?}");
    }

    /// As above for `logs -f`: a line the follower has read from the ring when the server
    /// stops is still sent.
    #[tokio::test(flavor = "current_thread")]
    async fn a_followed_line_read_just_before_the_stop_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let spec = crate::config::LogSpec {
            file: None,
            max_size: u64::MAX,
            keep: 0,
            timestamps: false,
            buffer_lines: 100,
        };
        let sink = LogSink::new("job", &dir.path().join("job.log"), &spec, None, None);
        let (control, mut requests) = mpsc::unbounded_channel();
        let answering = sink.clone();
        let answerer = tokio::spawn(async move {
            while let Some(request) = requests.recv().await {
                if let Control::Logs { names, reply } = request {
                    let sinks = names.into_iter().map(|n| (n, answering.clone())).collect();
                    let _ = reply.send(Ok(sinks));
                }
            }
        });
        let handle = Handle {
            control,
            events: Arc::new(EventLog::new(1 << 20)),
        };
        let client = Client::start(handle, r#""stream":"logs""#, |mut peer| async move {
            logs(&mut peer, vec!["job".into()], 0, true, false).await
        })
        .await;
        // Let the forwarder start waiting on the ring.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // The forwarder wakes first (it reads the line into the feed), then the stream,
        // which finds both the line and the stop ready.
        sink.write(Stream::Stdout, b"the last line\n");
        client.stop.send_replace(true);
        // The sink goes, as at shutdown: the forwarder ends once it has read the line, and
        // so does the stream's feed (rather than the stream giving up after `STOP_DRAIN`).
        drop(sink);
        answerer.abort();
        let rest = client.rest().await;
        assert_eq!(rest.len(), 2, "{rest:?}");
        assert!(rest[0].contains("the last line"), "{rest:?}");
        assert!(rest[1].contains(SUPERVISOR_STOPPED), "{rest:?}");
    }
}
