//! Durations, sizes and signals as users write them in the config.
//!
//! Each parser takes the text of one value and returns either the value or a lowercase
//! message that quotes the input and shows how to write it. They know nothing of files,
//! lines or keys: the config walker adds those.

use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;

/// `"250ms"`, `"5s"`, `"2m"`, `"1h30m"`, `"0s"` (humantime syntax). A unit is required.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| format!("`{text}` is not a duration; write it like `250ms`, `10s` or `2m`"))
}

/// `"10MB"` (decimal, 10_000_000), `"512MiB"` (binary), `"100kB"`, `"10M"` (decimal),
/// `"1024"` or `"1024B"` (bytes). Units are case-insensitive; a fraction is allowed
/// (`"1.5GB"`) and rounded down to whole bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    parse_size_inner(text.trim())
        .ok_or_else(|| format!("`{text}` is not a size; write it like `10MB`, `512MiB` or `1GiB`"))
}

fn parse_size_inner(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier = size_multiplier(unit.trim_start())?;
    let number = number.replace('_', "");
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    match number.split_once('.') {
        None => number.parse::<u64>().ok()?.checked_mul(multiplier),
        Some((whole, fraction)) => {
            // Floats would lose bytes on large sizes; scale the fraction exactly instead.
            let whole = whole.parse::<u64>().ok()?.checked_mul(multiplier)?;
            let digits = u32::try_from(fraction.len()).ok().filter(|d| *d <= 18)?;
            let fraction = fraction.parse::<u128>().ok()?;
            let part = fraction * u128::from(multiplier) / 10u128.pow(digits);
            whole.checked_add(u64::try_from(part).ok()?)
        }
    }
}

fn size_multiplier(unit: &str) -> Option<u64> {
    const K: u64 = 1000;
    const KI: u64 = 1024;
    let m = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => K,
        "m" | "mb" => K.pow(2),
        "g" | "gb" => K.pow(3),
        "t" | "tb" => K.pow(4),
        "ki" | "kib" => KI,
        "mi" | "mib" => KI.pow(2),
        "gi" | "gib" => KI.pow(3),
        "ti" | "tib" => KI.pow(4),
        _ => return None,
    };
    Some(m)
}

/// `"TERM"`, `"SIGTERM"`, `"term"`, `"15"`, `"HUP"`, `"USR1"`...
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let trimmed = text.trim();
    if let Ok(number) = trimmed.parse::<i64>() {
        return signal_from_number(number);
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| {
        format!(
            "`{text}` is not a signal; use a name like `TERM`, `INT`, `HUP` or `USR1`, \
             or a number like `15`"
        )
    })
}

/// A signal given by number, as in `stop_signal = 15`.
pub fn signal_from_number(number: i64) -> Result<Signal, String> {
    i32::try_from(number)
        .ok()
        .and_then(|n| Signal::try_from(n).ok())
        .ok_or_else(|| {
            format!(
                "`{number}` is not a signal number on this system; try `15` (TERM) or `2` (INT)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["5x", "5", "", "-5s", "s", "ten seconds"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_duration("5x").unwrap_err(),
            "`5x` is not a duration; write it like `250ms`, `10s` or `2m`"
        );
    }

    #[test]
    fn sizes() {
        let cases = [
            ("10MB", 10_000_000),
            ("512MiB", 512 * 1024 * 1024),
            ("1GiB", 1 << 30),
            ("100KB", 100_000),
            ("100kB", 100_000),
            ("1024", 1024),
            ("1024B", 1024),
            ("10M", 10_000_000),
            ("2G", 2_000_000_000),
            ("4Ki", 4096),
            ("1.5GB", 1_500_000_000),
            ("0.5KiB", 512),
            ("10 MB", 10_000_000),
            ("1_000", 1000),
            ("0", 0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
        for bad in [
            "-1MB",
            "10XB",
            "",
            "MB",
            "1.MB",
            ".5MB",
            "1e3",
            "99999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_size("20000000TiB").is_err(), "overflow accepted");
    }

    #[test]
    fn signals() {
        for text in ["TERM", "SIGTERM", "term", "sigterm", "15", " TERM "] {
            assert_eq!(parse_signal(text), Ok(Signal::SIGTERM), "{text}");
        }
        assert_eq!(parse_signal("HUP"), Ok(Signal::SIGHUP));
        assert_eq!(parse_signal("USR1"), Ok(Signal::SIGUSR1));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        assert_eq!(signal_from_number(2), Ok(Signal::SIGINT));
        for bad in ["FOO", "SIG", "", "0", "-15", "999"] {
            assert!(parse_signal(bad).is_err(), "{bad:?} accepted");
        }
        assert!(signal_from_number(1 << 40).is_err());
    }
}
