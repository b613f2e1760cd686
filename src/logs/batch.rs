//! One chunk of a child's output, framed into records, in two allocations.
//!
//! A 64 KiB read of `yes` is 32 768 lines. Giving each line its own allocation (and its
//! own queue entry for the ring, the terminal and every follower) is what made warden
//! swell under a fast writer. A [`Batch`] keeps the texts of all of a chunk's records in
//! one buffer and their lengths in another (two bytes a record), and is shared (`Arc`) by
//! everything that needs it: the ring, the file writer and the terminal. A line becomes
//! an owned [`LogLine`] only when a client asks for it.
//!
//! A batch is immutable once published; its sequence numbers are assigned by the sink
//! under its lock, so that every consumer sees one order.

use std::time::SystemTime;

use super::line::MAX_LINE;
use super::{LogLine, Stream};

/// The high bit of a record's length: no newline followed it.
const PARTIAL: u16 = 0x8000;

/// Fixed cost counted for each batch besides its buffers (the `Arc`, the struct, the
/// queue slots that point at it).
const OVERHEAD: usize = 96;

#[derive(Debug)]
pub struct Batch {
    /// The sequence number of the first record; the others follow one by one.
    pub(super) first_seq: u64,
    /// When warden read the chunk (every record shares it).
    pub time: SystemTime,
    pub stream: Stream,
    /// A recycled buffer for a large chunk (see `buffers.rs`), else exactly its size.
    text: Vec<u8>,
    /// Per record: its length in bytes (at most [`MAX_LINE`]), with [`PARTIAL`] set when
    /// no newline followed it.
    lens: Box<[u16]>,
}

/// One record of a batch, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: u64,
    pub text: &'a [u8],
    pub partial: bool,
}

/// Collects the records of one chunk before they become a [`Batch`].
#[derive(Debug, Default)]
pub struct BatchBuilder {
    text: Vec<u8>,
    lens: Vec<u16>,
}

impl BatchBuilder {
    pub fn with_capacity(bytes: usize) -> BatchBuilder {
        let text = match bytes >= super::buffers::LARGE {
            true => super::buffers::take(),
            false => Vec::with_capacity(bytes),
        };
        BatchBuilder {
            text,
            // Room for lines of 64 bytes on average without growing.
            lens: Vec::with_capacity(bytes / 64),
        }
    }

    /// Adds a record; `text` longer than [`MAX_LINE`] is cut into pieces (all but the
    /// last partial), as the framer would have done.
    pub fn push(&mut self, text: &[u8], partial: bool) {
        let mut rest = text;
        while rest.len() > MAX_LINE {
            self.push_piece(&rest[..MAX_LINE], true);
            rest = &rest[MAX_LINE..];
        }
        self.push_piece(rest, partial);
    }

    fn push_piece(&mut self, text: &[u8], partial: bool) {
        self.text.extend_from_slice(text);
        // MAX_LINE is 16 KiB: the length fits in 15 bits.
        let len = text.len() as u16 | if partial { PARTIAL } else { 0 };
        self.lens.push(len);
    }

    pub fn finish(self, time: SystemTime, stream: Stream) -> Batch {
        let mut text = self.text;
        if text.capacity() != super::buffers::CHUNK {
            text.shrink_to_fit();
        }
        Batch {
            first_seq: 0,
            time,
            stream,
            text,
            lens: self.lens.into_boxed_slice(),
        }
    }
}

impl Batch {
    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The sequence number of the last record (`first_seq - 1` when empty).
    pub fn last_seq(&self) -> u64 {
        (self.first_seq + self.lens.len() as u64).saturating_sub(1)
    }

    /// Bytes of memory it holds, for the budgets of the ring, the writer and the terminal.
    pub fn cost(&self) -> usize {
        self.text.len() + 2 * self.lens.len() + OVERHEAD
    }

    /// The text bytes of all records (without newlines).
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// The records, oldest first (and back to front with `.rev()`).
    pub fn records(&self) -> Records<'_> {
        Records {
            batch: self,
            front: 0,
            back: self.lens.len(),
            front_offset: 0,
            back_offset: self.text.len(),
        }
    }

    /// An owned copy of one record, for a client.
    pub fn line(&self, record: Record<'_>) -> LogLine {
        LogLine {
            seq: record.seq,
            time: self.time,
            stream: self.stream,
            text: record.text.into(),
            partial: record.partial,
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        super::buffers::give(std::mem::take(&mut self.text));
    }
}

fn record_len(len: u16) -> (usize, bool) {
    (usize::from(len & !PARTIAL), len & PARTIAL != 0)
}

/// Iterator over a batch's records, from both ends.
pub struct Records<'a> {
    batch: &'a Batch,
    front: usize,
    back: usize,
    front_offset: usize,
    back_offset: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.front == self.back {
            return None;
        }
        let (len, partial) = record_len(self.batch.lens[self.front]);
        let text = &self.batch.text[self.front_offset..self.front_offset + len];
        let seq = self.batch.first_seq + self.front as u64;
        self.front += 1;
        self.front_offset += len;
        Some(Record { seq, text, partial })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Records<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        let (len, partial) = record_len(self.batch.lens[self.back]);
        self.back_offset -= len;
        let text = &self.batch.text[self.back_offset..self.back_offset + len];
        let seq = self.batch.first_seq + self.back as u64;
        Some(Record { seq, text, partial })
    }
}

impl ExactSizeIterator for Records<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: &[(&[u8], bool)]) -> Batch {
        let mut b = BatchBuilder::default();
        for (text, partial) in records {
            b.push(text, *partial);
        }
        let mut batch = b.finish(SystemTime::UNIX_EPOCH, Stream::Stdout);
        batch.first_seq = 10;
        batch
    }

    #[test]
    fn records_come_back_in_order_from_both_ends() {
        let b = batch(&[(b"one", false), (b"", false), (b"three", true)]);
        let forward: Vec<_> = b.records().map(|r| (r.seq, r.text, r.partial)).collect();
        assert_eq!(
            forward,
            [
                (10, &b"one"[..], false),
                (11, b"", false),
                (12, b"three", true)
            ]
        );
        let backward: Vec<_> = b.records().rev().map(|r| r.seq).collect();
        assert_eq!(backward, [12, 11, 10]);
        let mut mixed = b.records();
        assert_eq!(mixed.next().unwrap().text, b"one");
        assert_eq!(mixed.next_back().unwrap().text, b"three");
        assert_eq!(mixed.next().unwrap().text, b"");
        assert!(mixed.next().is_none() && mixed.next_back().is_none());
        assert_eq!(b.last_seq(), 12);
    }

    #[test]
    fn long_text_is_cut_at_max_line() {
        let long = vec![b'x'; 2 * MAX_LINE + 3];
        let b = batch(&[(&long, false)]);
        let lens: Vec<_> = b.records().map(|r| (r.text.len(), r.partial)).collect();
        assert_eq!(lens, [(MAX_LINE, true), (MAX_LINE, true), (3, false)]);
    }

    #[test]
    fn a_short_line_costs_a_few_bytes() {
        let mut b = BatchBuilder::default();
        for _ in 0..32_768 {
            b.push(b"y", false);
        }
        let b = b.finish(SystemTime::UNIX_EPOCH, Stream::Stdout);
        assert_eq!(b.cost(), 32_768 * 3 + OVERHEAD);
    }
}
