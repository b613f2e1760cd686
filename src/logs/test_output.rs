//! What the log tests generate and read back: seeded random output, and the records of a
//! timestamped file.

/// A small seeded generator (xorshift64): the same seed, the same output, every run.
pub(super) fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// One write's worth of output: short, tiny or up to a 70 KB read, with a newline every
/// so often, at most every `longest_gap` bytes (the gaps cycle through 50, 3,000 and
/// `longest_gap` with `round`).
pub(super) fn random_output(seed: &mut u64, round: usize, longest_gap: u64) -> Vec<u8> {
    let len = match xorshift(seed) % 8 {
        0 => (xorshift(seed) % 70_000) as usize,
        1 => 1 + (xorshift(seed) % 10) as usize,
        _ => (xorshift(seed) % 5_000) as usize,
    };
    let newline_every = 1 + xorshift(seed) % [50, 3_000, longest_gap][round % 3];
    (0..len)
        .map(|_| match xorshift(seed) % newline_every {
            0 => b'\n',
            r => b'a' + (r % 26) as u8,
        })
        .collect()
}

/// One record of a timestamped file (without its newline), checked for its shape: its
/// time as written, its stream's tag (`out`, `err`, `---`), whether it is partial, its
/// text.
pub(super) fn parse_record(record: &[u8]) -> (&str, &[u8], bool, &[u8]) {
    let time = std::str::from_utf8(&record[..24]).unwrap();
    humantime::parse_rfc3339(time).unwrap_or_else(|e| panic!("{time:?}: {e}"));
    assert!(time.ends_with('Z') && time.as_bytes()[19] == b'.', "{time}");
    assert_eq!((record[24], record[29]), (b' ', b' '));
    let partial = match record[28] {
        b'|' => false,
        b'+' => true,
        _ => panic!("bad record {:?}", String::from_utf8_lossy(record)),
    };
    (time, &record[25..28], partial, &record[30..])
}
