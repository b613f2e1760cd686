//! The recent output of a process, for `warden logs`, `logs -f` and the dashboard.
//!
//! Bounded three ways: by `buffer_lines` (what `logs` may show), by [`RING_MAX_BYTES`] per
//! process, and by [`RINGS_MAX_BYTES`] for all processes together. When the total is over,
//! the process that is writing gives up its oldest output first, down to its fair share
//! (the total divided among the processes that keep any), so a flood in one process
//! cannot push a quiet one's last lines out; if that is not enough (rings that filled up
//! when there were fewer of them), every ring above its share gives up its oldest output
//! too ([`settle`]). It keeps whole chunks, always at least the newest one: a [`Batch`]
//! (framed as it came, shared with the file writer and the terminal) or an [`Unframed`]
//! chunk (framed here only when someone reads it; shared with the file writer and the
//! terminal, which frame it on their own threads).
//!
//! Followers (`logs -f`) read from here too, each at its own pace: one that falls behind
//! what is kept is told how many lines it skipped. While anyone follows, at least
//! [`FOLLOW_WINDOW`] lines are kept even if `buffer_lines` is smaller.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::LogLine;
use super::batch::Batch;
use super::unframed::Unframed;

/// Memory one process's ring may hold.
pub const RING_MAX_BYTES: usize = 1 << 20;
/// Memory all rings together may hold before the writing process gives up its oldest
/// output beyond its fair share.
pub const RINGS_MAX_BYTES: usize = 16 << 20;
/// Lines kept for followers even when `buffer_lines` is smaller.
pub const FOLLOW_WINDOW: usize = 1000;

/// What all the rings of a process share: the memory they hold together.
#[derive(Debug)]
pub struct Budget {
    /// Bytes held by every ring.
    total: AtomicUsize,
    /// Rings that hold anything.
    holding: AtomicUsize,
    rings: Mutex<Vec<Weak<Mutex<Ring>>>>,
}

impl Budget {
    pub const fn new() -> Budget {
        Budget {
            total: AtomicUsize::new(0),
            holding: AtomicUsize::new(0),
            rings: Mutex::new(Vec::new()),
        }
    }

    fn fair_share(&self) -> usize {
        RINGS_MAX_BYTES / self.holding.load(Ordering::Relaxed).max(1)
    }

    fn over(&self) -> bool {
        self.total.load(Ordering::Relaxed) > RINGS_MAX_BYTES
    }
}

/// The budget of warden's rings.
static BUDGET: Budget = Budget::new();

/// Brings all rings back under [`RINGS_MAX_BYTES`] if the ring that wrote last could not
/// (others filled up while there were fewer of them): every ring above its fair share
/// gives up its oldest output. Locks one ring at a time; call it holding none.
pub fn settle() {
    settle_budget(&BUDGET);
}

fn settle_budget(budget: &'static Budget) {
    if !budget.over() {
        return;
    }
    let rings: Vec<Arc<Mutex<Ring>>> = {
        let mut rings = budget.rings.lock().unwrap_or_else(PoisonError::into_inner);
        rings.retain(|r| r.strong_count() > 0);
        rings.iter().filter_map(Weak::upgrade).collect()
    };
    for ring in rings {
        if !budget.over() {
            return;
        }
        let fair = budget.fair_share();
        ring.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .shrink_to(fair);
    }
}

/// One chunk of output in the ring.
#[derive(Debug)]
pub enum Entry {
    Lines(Arc<Batch>),
    Unframed(Arc<Unframed>),
}

impl Entry {
    fn len(&self) -> usize {
        match self {
            Entry::Lines(batch) => batch.len(),
            Entry::Unframed(chunk) => chunk.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cost(&self) -> usize {
        match self {
            Entry::Lines(batch) => batch.cost(),
            Entry::Unframed(chunk) => chunk.cost(),
        }
    }

    fn first_seq(&self) -> u64 {
        match self {
            Entry::Lines(batch) => batch.first_seq(),
            Entry::Unframed(chunk) => chunk.first_seq,
        }
    }

    /// The sequence number of the last record.
    fn last_seq(&self) -> u64 {
        (self.first_seq() + self.len() as u64).saturating_sub(1)
    }

    /// Its records from the `skip`th on, oldest first, while `take` says yes to their text.
    fn lines(&self, skip: usize, mut take: impl FnMut(&[u8]) -> bool) -> Vec<LogLine> {
        match self {
            Entry::Lines(batch) => batch
                .records()
                .skip(skip)
                .take_while(|record| take(record.text))
                .map(|record| batch.line(record))
                .collect(),
            Entry::Unframed(chunk) => chunk.lines(skip, take),
        }
    }
}

#[derive(Debug)]
pub struct Ring {
    chunks: VecDeque<Entry>,
    records: usize,
    bytes: usize,
    /// `buffer_lines`: the most `tail` shows.
    max_lines: usize,
    followers: usize,
    budget: &'static Budget,
}

impl Ring {
    /// A ring that shares warden's budget (see [`settle`]).
    pub fn shared(max_lines: usize) -> Arc<Mutex<Ring>> {
        Ring::with_budget(max_lines, &BUDGET)
    }

    fn with_budget(max_lines: usize, budget: &'static Budget) -> Arc<Mutex<Ring>> {
        let ring = Arc::new(Mutex::new(Ring {
            chunks: VecDeque::new(),
            records: 0,
            bytes: 0,
            max_lines,
            followers: 0,
            budget,
        }));
        budget
            .rings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&ring));
        ring
    }

    /// Gives up the oldest output down to `bytes` (keeping the newest batch).
    fn shrink_to(&mut self, bytes: usize) {
        while self.bytes > bytes && self.chunks.len() > 1 {
            let front = self.chunks.pop_front().expect("checked");
            self.release(&front);
        }
    }

    /// Lines kept: `buffer_lines`, or more while someone follows.
    fn window(&self) -> usize {
        if self.followers > 0 {
            self.max_lines.max(FOLLOW_WINDOW)
        } else {
            self.max_lines
        }
    }

    pub fn follow(&mut self, joining: bool) {
        if joining {
            self.followers += 1;
        } else {
            self.followers = self.followers.saturating_sub(1);
            self.evict();
        }
    }

    pub fn push(&mut self, batch: Entry) {
        if self.window() == 0 || batch.is_empty() {
            return;
        }
        if self.bytes == 0 {
            self.budget.holding.fetch_add(1, Ordering::Relaxed);
        }
        self.records += batch.len();
        self.bytes += batch.cost();
        self.budget.total.fetch_add(batch.cost(), Ordering::Relaxed);
        self.chunks.push_back(batch);
        self.evict();
    }

    fn evict(&mut self) {
        let window = self.window();
        while let Some(front) = self.chunks.front() {
            let newest_only = self.chunks.len() == 1;
            if newest_only && window > 0 {
                break;
            }
            let over = self.records - front.len() >= window
                || self.bytes > RING_MAX_BYTES
                || (self.budget.over() && self.bytes > self.budget.fair_share());
            if !over {
                break;
            }
            let front = self.chunks.pop_front().expect("checked");
            self.release(&front);
        }
    }

    fn release(&mut self, batch: &Entry) {
        self.records -= batch.len();
        self.bytes -= batch.cost();
        self.budget.total.fetch_sub(batch.cost(), Ordering::Relaxed);
        if self.bytes == 0 {
            self.budget.holding.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Memory held, in bytes.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Chunks kept, how many of them unframed, and the bytes they are counted for.
    #[cfg(test)]
    pub fn shape(&self) -> (usize, usize, usize) {
        let unframed = self
            .chunks
            .iter()
            .filter(|e| matches!(e, Entry::Unframed(_)));
        (self.chunks.len(), unframed.count(), self.bytes)
    }

    /// The last `n` lines (at most `buffer_lines`), oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let n = n.min(self.max_lines).min(self.records);
        // The chunk the first of them is in, and how many of its records come before.
        let (mut first, mut skip, mut need) = (self.chunks.len(), 0, n);
        while need > 0 {
            first -= 1;
            let len = self.chunks[first].len();
            skip = len.saturating_sub(need);
            need -= len.min(need);
        }
        let mut out = Vec::with_capacity(n);
        for (i, batch) in self.chunks.range(first..).enumerate() {
            out.extend(batch.lines(if i == 0 { skip } else { 0 }, |_| true));
        }
        out
    }

    /// Lines after sequence number `after`, oldest first, at most `max_lines` and
    /// `max_bytes` of text (but at least one line), and how many lines after `after` are
    /// no longer kept.
    pub fn after(&self, after: u64, max_bytes: usize, max_lines: usize) -> (u64, Vec<LogLine>) {
        let Some(newest) = self.chunks.back().map(|b| b.last_seq()) else {
            return (0, Vec::new());
        };
        if newest <= after {
            return (0, Vec::new());
        }
        let oldest_kept = self.chunks.front().map_or(newest, |b| b.first_seq());
        let in_window = newest + 1 - (self.window().min(self.records) as u64).max(1);
        let start = (after + 1).max(oldest_kept).max(in_window);
        let skipped = start - (after + 1);
        let first = self.chunks.partition_point(|b| b.last_seq() < start);
        let mut out = Vec::new();
        let (mut bytes, mut count, mut full) = (0, 0, false);
        for batch in self.chunks.range(first..) {
            let skip = start.saturating_sub(batch.first_seq()) as usize;
            out.extend(batch.lines(skip, |text| {
                full = count > 0 && (bytes + text.len() > max_bytes || count >= max_lines);
                bytes += text.len();
                count += 1;
                !full
            }));
            if full {
                break;
            }
        }
        (skipped, out)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.total.fetch_sub(self.bytes, Ordering::Relaxed);
            self.budget.holding.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::super::Stream;
    use super::super::batch::BatchBuilder;
    use super::*;

    /// A batch of `n` lines numbered from `first`.
    fn batch(first: u64, n: usize, len: usize) -> Entry {
        let mut b = BatchBuilder::default();
        for i in 0..n as u64 {
            let mut text = (first + i).to_string().into_bytes();
            text.resize(len.max(text.len()), b'.');
            b.push(&text, false);
        }
        let mut batch = b.finish(SystemTime::UNIX_EPOCH, Stream::Stdout);
        batch.first_seq = first;
        Entry::Lines(Arc::new(batch))
    }

    fn seqs(lines: &[LogLine]) -> Vec<u64> {
        lines.iter().map(|l| l.seq).collect()
    }

    /// A ring on a budget of its own: tests run side by side.
    fn ring(max_lines: usize) -> Ring {
        static OWN: Budget = Budget::new();
        Arc::try_unwrap(Ring::with_budget(max_lines, &OWN))
            .unwrap()
            .into_inner()
            .unwrap()
    }

    #[test]
    fn keeps_the_last_n_lines() {
        let mut ring = ring(3);
        for seq in 1..=10 {
            ring.push(batch(seq, 1, 1));
            assert!(ring.tail(usize::MAX).len() <= 3);
        }
        assert_eq!(seqs(&ring.tail(100)), [8, 9, 10]);
        assert_eq!(seqs(&ring.tail(2)), [9, 10]);
        assert!(ring.tail(0).is_empty());
        // A batch bigger than the window: its last lines are what counts.
        ring.push(batch(11, 50, 1));
        assert_eq!(seqs(&ring.tail(100)), [58, 59, 60]);
    }

    #[test]
    fn zero_capacity_keeps_nothing_unless_followed() {
        let mut ring = ring(0);
        ring.push(batch(1, 1, 1));
        assert!(ring.tail(10).is_empty());
        assert_eq!(ring.bytes(), 0);
        ring.follow(true);
        ring.push(batch(2, 2, 1));
        assert_eq!(seqs(&ring.after(0, usize::MAX, usize::MAX).1), [2, 3]);
        // `logs` still shows nothing: buffer_lines is 0.
        assert!(ring.tail(10).is_empty());
        ring.follow(false);
        assert!(ring.after(0, usize::MAX, usize::MAX).1.is_empty());
    }

    #[test]
    fn bounded_in_bytes_per_process() {
        let mut ring = ring(1_000_000);
        for i in 0..200 {
            ring.push(batch(1 + i * 16, 16, 1000));
            assert!(ring.bytes() <= RING_MAX_BYTES + 20_000, "{}", ring.bytes());
        }
        let tail = ring.tail(usize::MAX);
        assert!(tail.len() > 900 && tail.len() < 1100, "{}", tail.len());
        assert_eq!(tail.last().unwrap().seq, 3200);
    }

    #[test]
    fn bounded_in_bytes_in_total_and_the_writer_pays() {
        static OWN: Budget = Budget::new();
        let lock = |r: &Arc<Mutex<Ring>>| r.lock().unwrap().tail(usize::MAX).len();
        let push = |r: &Arc<Mutex<Ring>>, b| {
            r.lock().unwrap().push(b);
            settle_budget(&OWN);
        };
        let one = batch(1, 16, 1000).cost();
        // 30 quiet rings that filled up one after the other, each to about 580 KB: the
        // first ones while their share was still large.
        let quiet: Vec<Arc<Mutex<Ring>>> = (0..30)
            .map(|_| Ring::with_budget(1_000_000, &OWN))
            .collect();
        for ring in &quiet {
            for k in 0..36 {
                push(ring, batch(1 + k * 16, 16, 1000));
                assert!(OWN.total.load(Ordering::Relaxed) <= RINGS_MAX_BYTES + one);
            }
        }
        let kept: Vec<usize> = quiet.iter().map(lock).collect();
        assert!(kept.iter().all(|&n| n > 400), "{kept:?}");
        assert!(OWN.total.load(Ordering::Relaxed) > RINGS_MAX_BYTES - 30 * one);
        // Then a flood in one more: it gives up its own lines, down to its share, and
        // the quiet ones keep theirs (a 31st of the total, now).
        let flood = Ring::with_budget(1_000_000, &OWN);
        for k in 0..1000 {
            push(&flood, batch(1 + k * 16, 16, 1000));
            let total = OWN.total.load(Ordering::Relaxed);
            assert!(total <= RINGS_MAX_BYTES + one, "{total}");
        }
        let share = RINGS_MAX_BYTES / 31;
        assert!(flood.lock().unwrap().bytes() <= share + one);
        for ring in &quiet {
            let bytes = ring.lock().unwrap().bytes();
            assert!(bytes + one >= share, "{bytes}");
        }
        drop(quiet);
        drop(flood);
        assert_eq!(OWN.total.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn followers_read_after_their_cursor_and_learn_what_they_missed() {
        let mut ring = ring(10);
        ring.push(batch(1, 5, 1));
        ring.push(batch(6, 5, 1));
        let (skipped, lines) = ring.after(3, usize::MAX, usize::MAX);
        assert_eq!((skipped, seqs(&lines)), (0, vec![4, 5, 6, 7, 8, 9, 10]));
        let (skipped, lines) = ring.after(3, 3, usize::MAX);
        assert_eq!((skipped, seqs(&lines)), (0, vec![4, 5, 6]));
        ring.push(batch(11, 5, 1));
        // Lines 1-5 are gone; 6 is the oldest left.
        let (skipped, lines) = ring.after(2, usize::MAX, usize::MAX);
        assert_eq!(skipped, 3);
        assert_eq!(seqs(&lines), (6..=15).collect::<Vec<_>>());
        assert_eq!(ring.after(15, usize::MAX, usize::MAX), (0, Vec::new()));
    }
}
