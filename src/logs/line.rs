//! Line framing: arbitrary chunks from a pipe in, lines out.
//!
//! A child writes whatever it likes: a 1 GB line, half a line then nothing for an hour.
//! The framer never holds more than [`MAX_LINE`] bytes per stream: longer lines are cut
//! into `partial` pieces. Lines that lie entirely inside a chunk are handed out as slices
//! of that chunk; only the fragment left at the end of a chunk is copied.
//!
//! [`Framer::skim`] does the framer's bookkeeping for a chunk whose lines nobody wants
//! now (they are framed again from the chunk if someone reads them, see `unframed.rs`):
//! it counts them without visiting each one, and must count exactly what
//! [`Framer::feed`] would hand out.

use memchr::{memchr, memchr_iter, memrchr};

/// The longest line handed out in one piece, in bytes (without the newline). Longer lines
/// are split into pieces of exactly this size, marked partial, and a final piece.
pub const MAX_LINE: usize = 16 * 1024;

/// A pending fragment buffer that has grown beyond this is released once emptied, so an
/// idle stream does not keep a long line's memory (there may be a thousand of them).
const KEEP_CAPACITY: usize = 1024;

/// [`Framer::skim`] proves that no line is longer than [`MAX_LINE`] by finding a newline
/// in every block of this many bytes: a line that does not fit would cover one whole.
const BLOCK: usize = MAX_LINE / 2;

/// The framing state of one stream.
#[derive(Debug, Default)]
pub struct Framer {
    /// The start of a line whose end has not arrived yet; at most [`MAX_LINE`] bytes.
    pending: Vec<u8>,
}

impl Framer {
    #[cfg(test)]
    pub fn new() -> Framer {
        Framer::default()
    }

    /// A framer that has `carried` waiting for its end, as [`Framer::skim`] returned it.
    pub fn resume(carried: &[u8]) -> Framer {
        Framer {
            pending: carried.to_vec(),
        }
    }

    /// [`Framer::feed`] without handing out the records: how many `feed` would have
    /// handed out, and the fragment that was waiting before `chunk` (which the first of
    /// them starts with; empty when there are none). Output of short lines is counted without visiting each line;
    /// anything else is framed.
    pub fn skim(&mut self, chunk: &[u8]) -> (usize, Vec<u8>) {
        let carried = std::mem::take(&mut self.pending);
        match count_short_lines(carried.len(), chunk) {
            // No newline: all of it waits, and no record starts with what was waiting.
            Some((0, _)) => {
                self.pending = carried;
                self.pending.extend_from_slice(chunk);
                (0, Vec::new())
            }
            Some((records, rest)) => {
                self.pending.extend_from_slice(&chunk[rest..]);
                (records, carried)
            }
            None => {
                self.pending.extend_from_slice(&carried);
                let mut records = 0;
                self.feed(chunk, |_, _| records += 1);
                (records, carried)
            }
        }
    }

    /// Whether a fragment of a line is waiting for its end.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Frames `chunk`, calling `emit(text, partial)` for each line or piece in order.
    /// `text` excludes the newline; `partial` means no newline followed it (the line was
    /// longer than [`MAX_LINE`]).
    pub fn feed(&mut self, chunk: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        let mut rest = chunk;
        if !self.pending.is_empty() {
            let room = MAX_LINE - self.pending.len();
            // One byte beyond the room: a newline there still ends a line that fits.
            let window = &rest[..rest.len().min(room + 1)];
            match memchr(b'\n', window) {
                Some(i) => {
                    self.pending.extend_from_slice(&rest[..i]);
                    emit(&self.pending, false);
                    self.clear();
                    rest = &rest[i + 1..];
                }
                None if rest.len() > room => {
                    self.pending.extend_from_slice(&rest[..room]);
                    emit(&self.pending, true);
                    self.clear();
                    rest = &rest[room..];
                }
                None => {
                    self.pending.extend_from_slice(rest);
                    return;
                }
            }
        }
        while !rest.is_empty() {
            let window = &rest[..rest.len().min(MAX_LINE + 1)];
            match memchr(b'\n', window) {
                Some(i) => {
                    emit(&rest[..i], false);
                    rest = &rest[i + 1..];
                }
                None if rest.len() > MAX_LINE => {
                    emit(&rest[..MAX_LINE], true);
                    rest = &rest[MAX_LINE..];
                }
                None => {
                    self.pending.extend_from_slice(rest);
                    return;
                }
            }
        }
    }

    /// The stream has ended: hands out the fragment left without a newline, if any, as a
    /// partial line, and resets the framer for the next run.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8], bool)) {
        if !self.pending.is_empty() {
            emit(&self.pending, true);
            self.clear();
        }
    }

    fn clear(&mut self) {
        if self.pending.capacity() > KEEP_CAPACITY {
            self.pending = Vec::new();
        } else {
            self.pending.clear();
        }
    }
}

/// The records [`Framer::feed`] hands out for `chunk` after a fragment of `carried` bytes,
/// and where the fragment it then keeps starts, when no line or piece can be longer than
/// [`MAX_LINE`] (one newline is one record); `None` when that is not certain.
fn count_short_lines(carried: usize, chunk: &[u8]) -> Option<(usize, usize)> {
    let Some(first) = memchr(b'\n', chunk) else {
        // No newline: all of it waits, if it fits.
        return (carried + chunk.len() <= MAX_LINE).then_some((0, 0));
    };
    let last = memrchr(b'\n', chunk).unwrap_or(first);
    if carried + first > MAX_LINE || chunk.len() - (last + 1) > MAX_LINE {
        return None;
    }
    // A line of MAX_LINE - 1 bytes or more between the first and last newlines would
    // cover a whole block (the blocks are half of MAX_LINE), which would have no newline.
    let middle = &chunk[first + 1..=last];
    if !middle.chunks(BLOCK).all(|b| memchr(b'\n', b).is_some()) {
        return None;
    }
    Some((memchr_iter(b'\n', chunk).count(), last + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::test_output::xorshift;

    /// Frames `input` cut into the given chunk sizes (cycled), then finishes.
    fn frame(input: &[u8], sizes: &[usize]) -> Vec<(Vec<u8>, bool)> {
        let mut framer = Framer::new();
        let mut out = Vec::new();
        let mut rest = input;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].clamp(1, rest.len());
            framer.feed(&rest[..n], |t, p| out.push((t.to_vec(), p)));
            assert!(framer.pending.len() <= MAX_LINE);
            rest = &rest[n..];
            i += 1;
        }
        framer.finish(|t, p| out.push((t.to_vec(), p)));
        assert!(!framer.has_pending());
        out
    }

    /// Rebuilds the input from the records: a newline after each complete one.
    fn rejoin(records: &[(Vec<u8>, bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (text, partial) in records {
            out.extend_from_slice(text);
            if !partial {
                out.push(b'\n');
            }
        }
        out
    }

    #[test]
    fn lines_in_one_chunk() {
        let out = frame(b"a\nbc\n\nd", &[100]);
        assert_eq!(
            out,
            vec![
                (b"a".to_vec(), false),
                (b"bc".to_vec(), false),
                (b"".to_vec(), false),
                (b"d".to_vec(), true),
            ]
        );
    }

    #[test]
    fn lines_across_chunks() {
        let input = b"hello world\nsecond line\r\nthird\rstill third\n";
        for size in 1..input.len() {
            let out = frame(input, &[size]);
            assert_eq!(
                out,
                vec![
                    (b"hello world".to_vec(), false),
                    (b"second line\r".to_vec(), false),
                    (b"third\rstill third".to_vec(), false),
                ],
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn a_line_of_exactly_max_line_is_not_split() {
        let mut input = vec![b'x'; MAX_LINE];
        input.push(b'\n');
        for sizes in [&[usize::MAX][..], &[MAX_LINE], &[1000], &[MAX_LINE - 1, 2]] {
            let out = frame(&input, sizes);
            assert_eq!(out, vec![(vec![b'x'; MAX_LINE], false)], "{sizes:?}");
        }
    }

    #[test]
    fn long_lines_are_split_at_max_line() {
        let mut input = vec![b'y'; 2 * MAX_LINE + 5];
        input.push(b'\n');
        for sizes in [&[usize::MAX][..], &[4096], &[MAX_LINE + 1], &[7, 10_000]] {
            let out = frame(&input, sizes);
            assert_eq!(
                out,
                vec![
                    (vec![b'y'; MAX_LINE], true),
                    (vec![b'y'; MAX_LINE], true),
                    (vec![b'y'; 5], false),
                ],
                "{sizes:?}"
            );
        }
    }

    #[test]
    fn last_line_without_newline_is_partial() {
        assert_eq!(
            frame(b"done\nno newline", &[3]).last().unwrap(),
            &(b"no newline".to_vec(), true)
        );
        assert_eq!(frame(b"x", &[1]), vec![(b"x".to_vec(), true)]);
    }

    #[test]
    fn random_input_and_chunking_round_trip() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200 {
            let len = (xorshift(&mut seed) % 70_000) as usize;
            let newline_every = 1 + xorshift(&mut seed) % 40_000;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    let r = xorshift(&mut seed);
                    if r.is_multiple_of(newline_every) {
                        b'\n'
                    } else {
                        (r >> 8) as u8
                    }
                })
                .collect();
            let sizes: Vec<usize> = (0..5)
                .map(|_| 1 + (xorshift(&mut seed) % 20_000) as usize)
                .collect();
            let out = frame(&input, &sizes);
            assert_eq!(rejoin(&out), input);
            assert!(
                out.iter()
                    .all(|(t, _)| t.len() <= MAX_LINE && !t.contains(&b'\n'))
            );
            // A piece is partial only if full-size, or the very last one.
            for (i, (t, p)) in out.iter().enumerate() {
                assert!(!p || t.len() == MAX_LINE || i == out.len() - 1);
            }
        }
    }

    /// Skimming counts exactly what feeding hands out, and a chunk framed again later from
    /// what skimming returned gives the very same records.
    #[test]
    fn skimming_counts_what_feeding_hands_out() {
        let mut seed = 0x2545_f491_4f6c_dd1d;
        // Line lengths around the bounds: short lines, lines just under, at and over
        // MAX_LINE and the block size, and huge ones.
        let lengths = [
            0,
            1,
            99,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            MAX_LINE - 2,
            MAX_LINE - 1,
            MAX_LINE,
            MAX_LINE + 1,
            2 * MAX_LINE,
            70_000,
        ];
        let mut slow = 0;
        for round in 0..100 {
            let mut input = Vec::new();
            while input.len() < 200_000 {
                let len = match xorshift(&mut seed) % 4 {
                    0 => lengths[(xorshift(&mut seed) % lengths.len() as u64) as usize],
                    _ => (xorshift(&mut seed) % 200) as usize,
                };
                input.extend(std::iter::repeat_n(b'a' + (round % 26) as u8, len));
                input.push(b'\n');
            }
            input.truncate(input.len() - (xorshift(&mut seed) % 70_000) as usize);
            let (mut fed, mut skimmed) = (Framer::new(), Framer::new());
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = match xorshift(&mut seed) % 3 {
                    0 => 1 + (xorshift(&mut seed) % 100) as usize,
                    _ => 1 + (xorshift(&mut seed) % 65_536) as usize,
                }
                .min(rest.len());
                let chunk = &rest[..n];
                rest = &rest[n..];
                let mut expected = Vec::new();
                fed.feed(chunk, |t, p| expected.push((t.to_vec(), p)));
                let (count, carried) = skimmed.skim(chunk);
                assert_eq!(count, expected.len());
                assert_eq!(skimmed.pending, fed.pending);
                if count_short_lines(carried.len(), chunk).is_none() {
                    slow += 1;
                }
                let mut again = Vec::new();
                Framer::resume(&carried).feed(chunk, |t, p| again.push((t.to_vec(), p)));
                assert_eq!(again, expected);
            }
        }
        assert!(slow > 30, "the long lines took the framing path: {slow}");
    }

    #[test]
    fn finish_resets_for_the_next_run() {
        let mut framer = Framer::new();
        let mut out = Vec::new();
        framer.feed(b"run 1 tail", |t, p| out.push((t.to_vec(), p)));
        framer.finish(|t, p| out.push((t.to_vec(), p)));
        framer.feed(b"run 2\n", |t, p| out.push((t.to_vec(), p)));
        assert_eq!(
            out,
            vec![(b"run 1 tail".to_vec(), true), (b"run 2".to_vec(), false)]
        );
    }
}
