//! How observers follow the supervisor: one numbered stream of events with a backlog
//! bounded in bytes, and subscriptions that start from a snapshot (SPEC §6,
//! Kubernetes' list-then-watch).
//!
//! - [`EventLog`]: the actor publishes every event here; it gets the next sequence
//!   number. The latest events are kept from start-up, at most [`IDLE_BACKLOG_BYTES`] of
//!   them while nobody follows and [`EVENT_BACKLOG_BYTES`] while someone does, shared by
//!   every follower (no per-follower queue). A follower may start from any sequence
//!   number still kept (`events --since`, the dashboard's events pane), so a process's
//!   first events can be read by a follower that attaches later. A follower that falls
//!   further behind than the bound skips ahead and is told how many events it missed; it
//!   never makes the log hold more, and never slows the actor.
//! - [`EventCursor`]: one follower's position in the log.
//! - [`Subscription`]: a snapshot at sequence number N, then every event after N in
//!   order, and (if asked for) fresher snapshots at points of the stream where they are
//!   exact: a snapshot at N' is delivered after event N' and before event N'+1.
//!
//! With nobody following, publishing costs a lock, a counter and a push into a small
//! bounded ring: nothing is serialized, nobody is woken (no timer trims the ring: each
//! publish does). This module decides nothing about processes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use super::event::Event;
use super::status::Snapshot;

/// The most event data kept for followers that are behind, in bytes (an estimate:
/// [`Event::approx_bytes`]). About two thousand typical events.
pub const EVENT_BACKLOG_BYTES: usize = 256 * 1024;

/// The most event data kept while nobody follows, in bytes: the start-up of a few
/// hundred processes, cheap enough for a supervisor nobody watches (the 500-process idle
/// benchmark keeps under 10 MiB).
pub const IDLE_BACKLOG_BYTES: usize = 64 * 1024;

/// Events handed out per [`EventCursor::take`], so that one call never copies the whole
/// backlog at once.
const BATCH: usize = 256;

/// The supervisor's one stream of events.
pub struct EventLog {
    ring: Mutex<Ring>,
    /// The last sequence number published. Its receivers are the followers, so
    /// `receiver_count` says whether anyone follows.
    latest: watch::Sender<u64>,
    bound: usize,
    /// The bound while nobody follows (at most `bound`).
    idle_bound: usize,
}

struct Ring {
    events: VecDeque<(Arc<Event>, usize)>,
    bytes: usize,
    /// The number the next event gets; the first is 1.
    next_seq: u64,
    closed: bool,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog::with_bounds(EVENT_BACKLOG_BYTES, IDLE_BACKLOG_BYTES)
    }
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ring = self.lock();
        f.debug_struct("EventLog")
            .field("next_seq", &ring.next_seq)
            .field("kept", &ring.events.len())
            .field("bytes", &ring.bytes)
            .finish()
    }
}

impl EventLog {
    /// A log that keeps at most `bound` bytes of events, followed or not.
    pub fn new(bound: usize) -> EventLog {
        EventLog::with_bounds(bound, bound)
    }

    /// A log that keeps at most `bound` bytes of events while followed, `idle` while not.
    pub fn with_bounds(bound: usize, idle: usize) -> EventLog {
        EventLog {
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                bytes: 0,
                next_seq: 1,
                closed: false,
            }),
            latest: watch::Sender::new(0),
            bound,
            idle_bound: idle.min(bound),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Give `event` the next sequence number and hand it to the followers, if any.
    pub fn publish(&self, mut event: Event) -> Arc<Event> {
        let mut ring = self.lock();
        event.seq = ring.next_seq;
        ring.next_seq += 1;
        let event = Arc::new(event);
        // Under the lock, so that a follower created concurrently either sees this event
        // or starts after it.
        let bound = if self.latest.receiver_count() == 0 {
            self.idle_bound
        } else {
            self.bound
        };
        let size = event.approx_bytes() + std::mem::size_of::<(Arc<Event>, usize)>();
        ring.events.push_back((event.clone(), size));
        ring.bytes += size;
        while ring.bytes > bound {
            let Some((_, size)) = ring.events.pop_front() else {
                break;
            };
            ring.bytes -= size;
        }
        let seq = event.seq;
        drop(ring);
        self.latest.send_replace(seq);
        event
    }

    /// The sequence number of the last event published (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// Whether anyone follows the events (a subscription, `warden events`, the dashboard):
    /// work done only for observers (sampling, snapshots) can be skipped otherwise.
    pub fn watched(&self) -> bool {
        self.latest.receiver_count() > 0
    }

    /// How many follow the events now.
    pub fn followers(&self) -> usize {
        self.latest.receiver_count()
    }

    /// Follow every event published from now on.
    pub fn follow(&self) -> EventCursor {
        self.follow_since(u64::MAX)
    }

    /// Follow every event after `seq` (0: from the first), starting with those still kept:
    /// the first [`EventCursor::take`] reports as skipped those that were not. A `seq` at
    /// or beyond the last event follows from now on.
    pub fn follow_since(&self, seq: u64) -> EventCursor {
        let ring = self.lock();
        let rx = self.latest.subscribe();
        EventCursor {
            next: seq.saturating_add(1).min(ring.next_seq),
            rx,
        }
    }

    /// The sequence number of the oldest event kept (the next one's if none is kept).
    pub fn first_kept(&self) -> u64 {
        let ring = self.lock();
        ring.events.front().map_or(ring.next_seq, |(e, _)| e.seq)
    }

    /// The events still kept with a sequence number in `after + 1 ..= upto`, oldest first
    /// (a view's history: what happened before it attached).
    pub fn kept(&self, after: u64, upto: u64) -> Vec<Arc<Event>> {
        let ring = self.lock();
        ring.events
            .iter()
            .map(|(e, _)| e)
            .filter(|e| e.seq > after && e.seq <= upto)
            .cloned()
            .collect()
    }

    /// No more events: followers drain what is left and then see the end.
    pub fn close(&self) {
        self.lock().closed = true;
        self.latest.send_modify(|_| {});
    }

    /// How many bytes of events are kept now.
    pub fn kept_bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// One follower's place in an [`EventLog`].
#[derive(Debug)]
pub struct EventCursor {
    /// The sequence number of the next event to hand out.
    next: u64,
    rx: watch::Receiver<u64>,
}

/// What [`EventCursor::take`] found.
#[derive(Debug, Default)]
pub struct Batch {
    /// Events that fell out of the backlog before this follower read them.
    pub skipped: u64,
    pub events: Vec<Arc<Event>>,
    /// The log is closed and everything in it has been handed out.
    pub end: bool,
}

impl EventCursor {
    /// The sequence number of the next event this cursor will hand out.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Up to a batch of the events after the last one taken, none beyond `upto`.
    pub fn take(&mut self, log: &EventLog, upto: u64) -> Batch {
        // Mark the current value seen before reading, so that a publish after the read
        // wakes `changed` again.
        self.rx.borrow_and_update();
        let ring = log.lock();
        let first = ring.events.front().map_or(ring.next_seq, |(e, _)| e.seq);
        let mut batch = Batch::default();
        if self.next < first {
            batch.skipped = first - self.next;
            self.next = first;
        }
        let start = (self.next - first) as usize;
        let last = upto.min(ring.next_seq - 1);
        let count = (last + 1).saturating_sub(self.next).min(BATCH as u64) as usize;
        batch.events = ring
            .events
            .range(start..start + count)
            .map(|(e, _)| e.clone())
            .collect();
        self.next += count as u64;
        batch.end = ring.closed && self.next == ring.next_seq;
        batch
    }

    /// Wait until something was published since the last [`EventCursor::take`] (or the
    /// log was closed). False if the log itself is gone.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}

/// One step of a [`Subscription`].
#[derive(Debug, Clone)]
pub enum Update {
    /// A fresher picture; it includes every event up to its `seq`, which have all been
    /// delivered before it.
    Snapshot(Arc<Snapshot>),
    Event(Arc<Event>),
    /// This many events fell out of the backlog before they could be delivered.
    Skipped(u64),
    /// The supervisor stopped.
    End,
}

/// A snapshot, then every later event in order (SPEC §6), and fresher snapshots if
/// asked for. Created by the actor (`Control::Subscribe`) so that the first snapshot and
/// the cursor agree exactly.
pub struct Subscription {
    /// The picture the subscription starts from; events follow from `first.seq + 1`.
    pub first: Arc<Snapshot>,
    /// Events already included in `first` that were still kept, if asked for (oldest
    /// first): what a view shows as the history before it attached.
    pub backlog: Vec<Arc<Event>>,
    log: Arc<EventLog>,
    cursor: EventCursor,
    snapshots: Option<watch::Receiver<Arc<Snapshot>>>,
    /// Updates found but not handed out yet (at most one batch and a snapshot).
    pending: VecDeque<Update>,
    /// A fresher snapshot was announced (`changed` marks it seen; it is still to read).
    fresh: bool,
    ended: bool,
}

impl Subscription {
    /// `cursor` must stand right after `first.seq`; `snapshots`, if any, is the actor's
    /// watch of fresh snapshots.
    pub fn new(
        first: Arc<Snapshot>,
        log: Arc<EventLog>,
        cursor: EventCursor,
        snapshots: Option<watch::Receiver<Arc<Snapshot>>>,
    ) -> Subscription {
        debug_assert_eq!(cursor.next_seq(), first.seq + 1);
        Subscription {
            first,
            backlog: Vec::new(),
            log,
            cursor,
            snapshots,
            pending: VecDeque::new(),
            fresh: false,
            ended: false,
        }
    }

    /// The next update. After [`Update::End`] it keeps answering `End`.
    pub async fn next(&mut self) -> Update {
        loop {
            if let Some(u) = self.ready() {
                return u;
            }
            let fresh = async {
                match self.snapshots.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                alive = self.cursor.changed() => if !alive { self.ended = true },
                alive = fresh => match alive {
                    true => self.fresh = true,
                    false => self.snapshots = None,
                },
            }
        }
    }

    /// The next update if one is ready now, without waiting.
    pub fn ready(&mut self) -> Option<Update> {
        if self.pending.is_empty() && !self.ended {
            self.fill();
        }
        let ended = self.ended;
        self.pending
            .pop_front()
            .or_else(|| ended.then_some(Update::End))
    }

    /// Queue what is ready now.
    fn fill(&mut self) {
        let delivered = self.cursor.next_seq() - 1;
        let snapshot = match self.snapshots.as_mut() {
            Some(rx) if std::mem::take(&mut self.fresh) || rx.has_changed().unwrap_or(false) => {
                let s = rx.borrow_and_update().clone();
                // An older picture than what was delivered would undo events; a newer
                // one comes after the next change anyway.
                (s.seq >= delivered).then_some(s)
            }
            _ => None,
        };
        let upto = snapshot.as_ref().map_or(u64::MAX, |s| s.seq);
        loop {
            let batch = self.cursor.take(&self.log, upto);
            if batch.skipped > 0 {
                self.pending.push_back(Update::Skipped(batch.skipped));
            }
            let full = batch.events.len() == BATCH;
            self.pending
                .extend(batch.events.into_iter().map(Update::Event));
            if batch.end {
                self.ended = true;
            }
            // A snapshot goes right after the event it includes last: all of those first.
            if !(full && snapshot.is_some()) {
                break;
            }
        }
        if let Some(s) = snapshot
            && self.cursor.next_seq() > s.seq
        {
            self.pending.push_back(Update::Snapshot(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::event::EventKind;

    fn event(text: &str) -> Event {
        Event {
            seq: 0,
            time: std::time::UNIX_EPOCH,
            name: String::new(),
            kind: EventKind::Message { text: text.into() },
        }
    }

    fn texts(batch: &Batch) -> Vec<String> {
        batch
            .events
            .iter()
            .map(|e| match &e.kind {
                EventKind::Message { text } => text.clone(),
                _ => unreachable!(),
            })
            .collect()
    }

    fn one_event_bytes() -> usize {
        event("00").approx_bytes() + std::mem::size_of::<(Arc<Event>, usize)>()
    }

    #[test]
    fn events_are_numbered_and_kept_within_the_idle_bound_while_nobody_follows() {
        let one = one_event_bytes();
        let log = EventLog::with_bounds(one * 10, one * 3);
        assert_eq!(log.publish(event("00")).seq, 1);
        assert_eq!(
            log.kept_bytes(),
            one,
            "kept from start-up, nobody following"
        );
        let mut c = log.follow();
        assert!(log.watched());
        for i in 2..=6 {
            log.publish(event(&format!("{i:02}")));
        }
        let b = c.take(&log, u64::MAX);
        assert_eq!(texts(&b), ["02", "03", "04", "05", "06"]);
        assert_eq!(b.events[0].seq, 2);
        assert_eq!(b.skipped, 0);
        assert!(c.take(&log, u64::MAX).events.is_empty());
        assert_eq!(log.kept_bytes(), one * 6, "followed: the larger bound");
        drop(c);
        assert!(!log.watched());
        log.publish(event("07"));
        assert_eq!(
            log.kept_bytes(),
            one * 3,
            "the last follower left: back to the idle bound"
        );
        assert_eq!(log.first_kept(), 5);
    }

    #[test]
    fn a_late_follower_starts_from_what_is_kept() {
        let one = one_event_bytes();
        let log = EventLog::with_bounds(one * 10, one * 4);
        for i in 1..=6 {
            log.publish(event(&format!("{i:02}")));
        }
        // From the first: the two that fell out are reported, then the four kept.
        let mut all = log.follow_since(0);
        let b = all.take(&log, u64::MAX);
        assert_eq!(b.skipped, 2);
        assert_eq!(texts(&b), ["03", "04", "05", "06"]);
        // From a number still kept: nothing skipped.
        let mut late = log.follow_since(4);
        let b = late.take(&log, u64::MAX);
        assert_eq!((b.skipped, texts(&b)), (0, vec!["05".into(), "06".into()]));
        // Beyond the last: from now on.
        let mut now = log.follow_since(99);
        assert_eq!(now.next_seq(), 7);
        assert!(now.take(&log, u64::MAX).events.is_empty());
        log.publish(event("07"));
        assert_eq!(texts(&now.take(&log, u64::MAX)), ["07"]);
        assert_eq!(log.follow().next_seq(), 8);
        let kept: Vec<u64> = log.kept(3, 5).iter().map(|e| e.seq).collect();
        assert_eq!(kept, [4, 5]);
    }

    #[test]
    fn a_slow_follower_skips_and_is_told_how_many() {
        let one = one_event_bytes();
        let log = EventLog::new(one * 10);
        let mut slow = log.follow();
        let mut fast = log.follow();
        for i in 0..25 {
            log.publish(event(&format!("{i:02}")));
            if i < 3 {
                assert_eq!(fast.take(&log, u64::MAX).events.len(), 1);
            }
        }
        assert!(
            log.kept_bytes() <= one * 10,
            "bounded: {}",
            log.kept_bytes()
        );
        let b = slow.take(&log, u64::MAX);
        assert_eq!(b.skipped, 15);
        assert_eq!(b.events.first().unwrap().seq, 16);
        assert_eq!(b.events.last().unwrap().seq, 25);
        // Nothing counted twice: the fast one missed 12 of the 22 after its first three.
        let b = fast.take(&log, u64::MAX);
        assert_eq!(b.skipped, 12);
        assert_eq!(b.events.len(), 10);
    }

    #[test]
    fn take_stops_at_upto_and_reports_the_end() {
        let log = EventLog::new(1 << 20);
        let mut c = log.follow();
        for t in ["a", "b", "c"] {
            log.publish(event(t));
        }
        assert_eq!(texts(&c.take(&log, 2)), ["a", "b"]);
        log.close();
        let b = c.take(&log, u64::MAX);
        assert_eq!(texts(&b), ["c"]);
        assert!(b.end);
    }

    fn snapshot(seq: u64) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            seq,
            ..Snapshot::default()
        })
    }

    #[tokio::test]
    async fn snapshots_are_placed_exactly_between_events() {
        let log = Arc::new(EventLog::new(1 << 20));
        log.publish(event("before"));
        let (tx, _) = watch::channel(snapshot(1));
        let mut sub =
            Subscription::new(snapshot(1), log.clone(), log.follow(), Some(tx.subscribe()));
        log.publish(event("2"));
        log.publish(event("3"));
        tx.send_replace(snapshot(2)); // taken after event 2, published late
        log.publish(event("4"));
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(match sub.next().await {
                Update::Event(e) => format!("e{}", e.seq),
                Update::Snapshot(s) => format!("s{}", s.seq),
                other => format!("{other:?}"),
            });
        }
        assert_eq!(seen, ["e2", "s2", "e3", "e4"]);
        // A picture older than what was delivered is not sent; the next one is.
        tx.send_replace(snapshot(3));
        log.publish(event("5"));
        assert!(matches!(sub.next().await, Update::Event(e) if e.seq == 5));
        tx.send_replace(snapshot(5));
        assert!(matches!(sub.next().await, Update::Snapshot(s) if s.seq == 5));
        // A fresher picture (new figures, no new event) sent while the subscriber waits.
        let waiting = tokio::spawn(async move {
            let u = sub.next().await;
            (sub, u)
        });
        tokio::task::yield_now().await;
        tx.send_replace(snapshot(5));
        let (mut sub, u) = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the fresh snapshot is delivered")
            .unwrap();
        assert!(matches!(&u, Update::Snapshot(s) if s.seq == 5), "{u:?}");
        log.close();
        assert!(matches!(sub.next().await, Update::End));
        assert!(matches!(sub.next().await, Update::End));
    }

    #[test]
    fn ready_hands_out_what_is_there_without_waiting_and_then_the_end() {
        let log = Arc::new(EventLog::new(1 << 20));
        let mut sub = Subscription::new(snapshot(0), log.clone(), log.follow(), None);
        assert!(sub.ready().is_none(), "nothing yet, and the log is open");
        log.publish(event("last"));
        log.close();
        assert!(matches!(sub.ready(), Some(Update::Event(e)) if e.seq == 1));
        assert!(matches!(sub.ready(), Some(Update::End)));
    }
}
