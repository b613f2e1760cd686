//! Child bytes → text that is safe to show on a terminal or in a widget.
//!
//! A child's output may be anything: invalid UTF-8, a clear-screen, a window-title change,
//! an OSC 52 clipboard write. Shown raw, it would act on the user's terminal (or garble
//! the dashboard). This makes it inert. It must never be used for the log file, which
//! keeps the raw bytes, and it must never panic, whatever the input.

const ESC: char = '\x1b';
const BEL: char = '\x07';
/// C1 "string terminator".
const ST: char = '\u{9c}';

/// Lossy UTF-8, with escape sequences removed and control characters other than tab
/// dropped.
pub(crate) fn sanitize(bytes: &[u8]) -> String {
    clean(bytes, false)
}

/// [`sanitize`], except that SGR sequences (`ESC [ 1;31 m`: colours, bold, underline)
/// are kept, for a viewer that draws them itself (the dashboard). Nothing else that
/// could act on a terminal survives: SGR only styles text.
pub(crate) fn sanitize_keep_sgr(bytes: &[u8]) -> String {
    clean(bytes, true)
}

/// Whether `bytes` are all printable ASCII, tabs, and (with `newlines`) newlines: text
/// that is inert as it is. Checked a block at a time without an early exit inside a
/// block, so that the compiler vectorises it (a byte-by-byte check was most of the
/// terminal tee's work).
pub(crate) fn is_plain(bytes: &[u8], newlines: bool) -> bool {
    bytes.chunks(1024).all(|block| {
        block.iter().fold(true, |plain, &b| {
            plain & ((0x20..0x7f).contains(&b) | (b == b'\t') | (newlines & (b == b'\n')))
        })
    })
}

fn clean(bytes: &[u8], keep_sgr: bool) -> String {
    // Most lines are plain printable ASCII: one copy, no state machine.
    if is_plain(bytes, false) {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ESC => match chars.next() {
                // CSI: parameters and intermediates, then one final byte.
                Some('[') if keep_sgr => {
                    let sequence = take_csi(&mut chars);
                    if let Some(params) = sequence.strip_suffix('m')
                        && params
                            .chars()
                            .all(|c| c.is_ascii_digit() || c == ';' || c == ':')
                    {
                        out.push_str("\x1b[");
                        out.push_str(&sequence);
                    }
                }
                Some('[') => skip_csi(&mut chars),
                // OSC, DCS, SOS, PM, APC: a string up to BEL or ST.
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // nF sequences (`ESC ( B`, ...): intermediates, then a final byte.
                Some('\x20'..='\x2f') => {
                    while chars.next_if(|c| ('\x20'..='\x2f').contains(c)).is_some() {}
                    chars.next_if(|c| ('\x30'..='\x7e').contains(c));
                }
                // Any other `ESC x` is a two-character sequence; a control character
                // after ESC is dropped as well.
                Some(_) | None => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The rest of a CSI sequence (parameters, intermediates, final byte) as text.
fn take_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut sequence = String::new();
    while let Some(c) = chars.next_if(|c| ('\x20'..='\x3f').contains(c)) {
        sequence.push(c);
    }
    if let Some(c) = chars.next_if(|c| ('\x40'..='\x7e').contains(c)) {
        sequence.push(c);
    }
    sequence
}

fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| ('\x20'..='\x3f').contains(c)).is_some() {}
    // The final byte; anything else ends a malformed sequence and is handled normally.
    chars.next_if(|c| ('\x40'..='\x7e').contains(c));
}

fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    // An unterminated string swallows the rest of the line: the terminal would have done
    // the same, and it is safer than showing half a sequence.
    while let Some(c) = chars.next() {
        match c {
            BEL | ST => return,
            ESC => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_plain, sanitize, sanitize_keep_sgr};

    #[test]
    fn plain_means_printable_ascii_tab_and_asked_for_newlines_anywhere_in_a_block() {
        let one_by_one = |bytes: &[u8], newlines: bool| {
            bytes
                .iter()
                .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b) || (newlines && b == b'\n'))
        };
        let base = vec![b'a'; 3000];
        assert!(is_plain(&base, false) && is_plain(&[], false));
        // Every byte value, at the start, inside and at the end of a block, and alone.
        for b in 0..=255u8 {
            for at in [0, 1023, 1024, 2999] {
                let mut bytes = base.clone();
                bytes[at] = b;
                for newlines in [false, true] {
                    assert_eq!(
                        is_plain(&bytes, newlines),
                        one_by_one(&bytes, newlines),
                        "byte {b} at {at}"
                    );
                }
            }
            assert_eq!(is_plain(&[b], true), one_by_one(&[b], true), "byte {b}");
        }
    }

    #[test]
    fn colours_can_be_kept_and_nothing_else() {
        assert_eq!(
            sanitize_keep_sgr(b"\x1b[1;31mred\x1b[0m \x1b[38:5:208mo\x1b[m"),
            "\x1b[1;31mred\x1b[0m \x1b[38:5:208mo\x1b[m"
        );
        assert_eq!(
            sanitize_keep_sgr(b"a\x1b[2J\x1b[?25lb\x1b[10;20Hc\x1b]0;t\x07d\x1b[>4;2m"),
            "abcd",
            "screen, cursor, title and private sequences go"
        );
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let out = sanitize_keep_sgr(&[0x1b, b'[', a, b, b'm', 0x1b, a, b]);
                let without_sgr = out.replace("\x1b[", "");
                assert!(
                    !without_sgr.chars().any(|c| c.is_control() && c != '\t'),
                    "{a:#x} {b:#x}: {out:?}"
                );
            }
        }
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            sanitize(b"hello\tworld [red]x[/]"),
            "hello\tworld [red]x[/]"
        );
        assert_eq!(sanitize("héllo wörld ✓".as_bytes()), "héllo wörld ✓");
        assert_eq!(sanitize(b""), "");
    }

    #[test]
    fn clear_screen_and_title_are_removed() {
        assert_eq!(sanitize(b"a\x1b[2J\x1b]0;pwned\x07b"), "ab");
    }

    #[test]
    fn clipboard_write_is_removed() {
        assert_eq!(sanitize(b"x\x1b]52;c;Zm9v\x07y"), "xy");
        assert_eq!(sanitize(b"x\x1b]52;c;Zm9v\x1b\\y"), "xy");
    }

    #[test]
    fn colours_and_cursor_moves_are_removed() {
        assert_eq!(
            sanitize(b"\x1b[1;31mred\x1b[0m \x1b[10;20H\x1b[?25l."),
            "red ."
        );
        assert_eq!(sanitize(b"\x1b(Bcharset\x1b7saved\x1b8"), "charsetsaved");
    }

    #[test]
    fn c1_sequences_are_removed() {
        assert_eq!(
            sanitize("a\u{9b}2Jb\u{9d}0;t\u{9c}c\u{85}d".as_bytes()),
            "abcd"
        );
    }

    #[test]
    fn controls_other_than_tab_are_dropped() {
        assert_eq!(sanitize(b"a\0b\rc\x08d\x7fe\tf\x07"), "abcde\tf");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(sanitize(b"\x88\xff\xfeok"), "\u{fffd}\u{fffd}\u{fffd}ok");
    }

    #[test]
    fn truncated_sequences_do_not_panic() {
        for input in [
            &b"\x1b"[..],
            b"\x1b[",
            b"\x1b[12;",
            b"\x1b]0;title",
            b"\x1b(",
            b"\xe2\x9c",
        ] {
            let out = sanitize(input);
            assert!(!out.contains('\x1b'), "{input:?} → {out:?}");
        }
    }

    #[test]
    fn every_byte_pair_is_inert() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let out = sanitize(&[a, b, b'x', 0x1b, a, b]);
                assert!(
                    !out.chars().any(|c| c.is_control() && c != '\t'),
                    "{a:#x} {b:#x}"
                );
            }
        }
    }
}
