//! A chunk of a child's output as it was read, framed into records only where they are
//! needed: by a timestamped file's writer and the terminal's printer, on their threads,
//! and by the ring when someone reads it (`logs`, `logs -f`, the dashboard).
//!
//! When nobody needs a chunk's lines on the capture thread (stdout, no line watch),
//! framing every line there was most of its work. An [`Unframed`] chunk shares the
//! reader's buffer with the log file's queue and knows only how many records it holds
//! (counted by [`Framer::skim`]), which is all the ring needs for its bounds and the
//! sequence numbers; its records share the time it was read. It carries the start of the
//! line that was waiting before it, so it frames into the very records [`Framer::feed`]
//! would have given, even when the chunks before it are gone from the ring.
//!
//! It must frame exactly as the framer does (the record count is a promise to the ring
//! and to followers), and must not hold more than its chunk and that one carried line.

use std::sync::Arc;
use std::time::SystemTime;

use super::buffers::Chunk;
use super::line::Framer;
use super::{LogLine, Stream};

/// Fixed cost counted for each chunk besides its bytes (the `Arc`s, the struct, the ring's
/// slot), as for a batch.
const OVERHEAD: usize = 96;

#[derive(Debug)]
pub struct Unframed {
    /// The sequence number of the first record; the others follow one by one.
    pub(super) first_seq: u64,
    /// When warden read the chunk (every record shares it).
    pub time: SystemTime,
    pub stream: Stream,
    /// The start of a line that was waiting when the chunk came (at most `MAX_LINE`).
    carried: Box<[u8]>,
    bytes: Arc<Chunk>,
    /// Records it frames into, as the framer counted them when the chunk came.
    records: usize,
}

impl Unframed {
    /// `bytes` read from `stream` at `time`, which frame into `records` records after
    /// the fragment `carried` (both from [`Framer::skim`]).
    pub fn new(
        time: SystemTime,
        stream: Stream,
        carried: Vec<u8>,
        bytes: Arc<Chunk>,
        records: usize,
    ) -> Unframed {
        Unframed {
            first_seq: 0,
            time,
            stream,
            carried: carried.into_boxed_slice(),
            bytes,
            records,
        }
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Bytes of memory it holds, for the ring's budgets (the chunk is shared with the log
    /// file's queue, which counts it too).
    pub fn cost(&self) -> usize {
        self.bytes.len() + self.carried.len() + OVERHEAD
    }

    /// Calls `emit(text, partial)` for each of its records, oldest first, exactly as
    /// [`Framer::feed`] handed them out when the chunk came.
    pub fn frame(&self, mut emit: impl FnMut(&[u8], bool)) {
        let mut count = 0;
        Framer::resume(&self.carried).feed(&self.bytes, |text, partial| {
            emit(text, partial);
            count += 1;
        });
        debug_assert_eq!(count, self.records, "framed as counted");
    }

    /// Whether all of its text is printable ASCII (see [`super::display::is_plain`]).
    pub fn is_plain(&self) -> bool {
        super::display::is_plain(&self.carried, false)
            && super::display::is_plain(&self.bytes, true)
    }

    /// The bytes of its records' text (without newlines), found by framing it.
    pub fn text_len(&self) -> usize {
        let mut len = 0;
        self.frame(|text, _| len += text.len());
        len
    }

    /// The records from the `skip`th on, oldest first, each as an owned line, while
    /// `take` says yes.
    pub fn lines(&self, skip: usize, mut take: impl FnMut(&[u8]) -> bool) -> Vec<LogLine> {
        let mut out = Vec::new();
        let mut index = 0;
        let mut taking = true;
        self.frame(|text, partial| {
            if index >= skip && taking {
                taking = take(text);
                if taking {
                    out.push(LogLine {
                        seq: self.first_seq + index as u64,
                        time: self.time,
                        stream: self.stream,
                        text: text.into(),
                        partial,
                    });
                }
            }
            index += 1;
        });
        out
    }
}
