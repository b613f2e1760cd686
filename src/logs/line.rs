//! Line framing: arbitrary chunks from a pipe in, lines out.
//!
//! A child writes whatever it likes: a 1 GB line, half a line then nothing for an hour.
//! The framer never holds more than [`MAX_LINE`] bytes per stream: longer lines are cut
//! into `partial` pieces. Lines that lie entirely inside a chunk are handed out as slices
//! of that chunk; only the fragment left at the end of a chunk is copied.

use memchr::memchr;

/// The longest line handed out in one piece, in bytes (without the newline). Longer lines
/// are split into pieces of exactly this size, marked partial, and a final piece.
pub const MAX_LINE: usize = 16 * 1024;

/// A pending fragment buffer that has grown beyond this is released once emptied, so an
/// idle stream does not keep a long line's memory (there may be a thousand of them).
const KEEP_CAPACITY: usize = 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

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

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
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
