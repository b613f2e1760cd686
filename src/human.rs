//! How figures read to people: durations, sizes and how a run ended, written once so the
//! CLI, the dashboard, events and the core's messages say them alike.
//!
//! Pure functions of plain numbers. This module imports no other part of warden, so any
//! layer may use it without an arrow running back up; it must stay that way (a function
//! that needs a supervisor type belongs next to that type and calls in here).

use std::time::Duration;

use nix::sys::signal::Signal;

/// `250ms`, `2s`, `1.5s`: a duration the way an event or a message states it.
pub fn ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// [`ms`] for a [`Duration`].
pub fn duration(d: Duration) -> String {
    ms(d.as_millis() as u64)
}

/// `1s`, `1500ms`, `250ms`, `10µs`: a duration as it reads in the config.
pub fn config_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        format!("{}µs", d.as_micros())
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `8.1s`, `1.2s`: a measured duration, to a tenth of a second.
pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// `850ms` → `0s`, `45s`, `3m12s`, `2h05m`, `3d04h`: how long something has been up.
pub fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// A configured size, as the user most likely wrote it (`50MB` stays `50MB`).
pub fn size(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 30, "GiB"),
        (1_000_000_000, "GB"),
        (1 << 20, "MiB"),
        (1_000_000, "MB"),
    ];
    match UNITS
        .iter()
        .find(|(unit, _)| n > 0 && n.is_multiple_of(*unit))
    {
        Some((unit, name)) => format!("{}{name}", n / unit),
        None => mib(n as f64),
    }
}

/// `202.1MiB`: a measured figure in the unit limits are compared in.
pub fn mib(bytes: f64) -> String {
    format!("{:.1}MiB", bytes / (1024.0 * 1024.0))
}

/// `512B`, `1.5KiB`, `24.0MiB`, `1.2GiB`: memory at a glance, in the unit that fits.
pub fn mem(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

/// `KILL`, `TERM`; the number for a signal with no name (`34`).
pub fn signal_name(sig: i32) -> String {
    Signal::try_from(sig)
        .map(|s| s.as_str().trim_start_matches("SIG").to_string())
        .unwrap_or_else(|_| sig.to_string())
}

/// `exit code 1`, `signal KILL`, `unknown status`: how a run ended, in a sentence.
pub fn exit_status(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(c), _) => format!("exit code {c}"),
        (_, Some(s)) => format!("signal {}", signal_name(s)),
        _ => "unknown status".into(),
    }
}

/// `exit 1`, `SIGKILL`, `signal 34`, `?`: how a run ended, in a table cell.
pub fn exit_short(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => match signal_name(sig) {
            name if name.parse::<i32>().is_ok() => format!("signal {name}"),
            name => format!("SIG{name}"),
        },
        (None, None) => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_stated() {
        assert_eq!(ms(250), "250ms");
        assert_eq!(ms(2000), "2s");
        assert_eq!(ms(1500), "1.5s");
        assert_eq!(duration(Duration::from_millis(300)), "300ms");
        assert_eq!(secs(Duration::from_millis(8149)), "8.1s");
    }

    #[test]
    fn durations_read_like_the_config() {
        assert_eq!(config_duration(Duration::from_secs(1)), "1s");
        assert_eq!(config_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(config_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(config_duration(Duration::from_micros(10)), "10µs");
    }

    #[test]
    fn durations_and_sizes_read_at_a_glance() {
        assert_eq!(uptime(850), "0s");
        assert_eq!(uptime(45_000), "45s");
        assert_eq!(uptime(192_000), "3m12s");
        assert_eq!(uptime(7_500_000), "2h05m");
        assert_eq!(uptime(3 * 86_400_000 + 4 * 3_600_000), "3d04h");
        assert_eq!(mem(512), "512B");
        assert_eq!(mem(25_165_824), "24.0MiB");
        assert_eq!(mem(1536), "1.5KiB");
    }

    #[test]
    fn sizes_read_as_written() {
        assert_eq!(size(50_000_000), "50MB");
        assert_eq!(size(64 << 20), "64MiB");
        assert_eq!(size(2 << 30), "2GiB");
        assert_eq!(size(3_000_000_000), "3GB");
        assert_eq!(size(1_500_000), "1.4MiB");
        assert_eq!(mib(211_917_209.6), "202.1MiB");
    }

    #[test]
    fn exits_read_in_a_sentence_and_in_a_cell() {
        assert_eq!(exit_status(Some(1), None), "exit code 1");
        assert_eq!(exit_status(None, Some(9)), "signal KILL");
        assert_eq!(exit_status(None, Some(34)), "signal 34");
        assert_eq!(exit_status(None, None), "unknown status");
        assert_eq!(exit_short(Some(1), None), "exit 1");
        assert_eq!(exit_short(None, Some(9)), "SIGKILL");
        assert_eq!(exit_short(None, Some(34)), "signal 34");
        assert_eq!(exit_short(None, None), "?");
    }
}
