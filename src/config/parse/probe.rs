//! Probe tables (`[processes.NAME.liveness]`, `readiness`, `startup`, `[checks.NAME]`)
//! → [`ProbeSpec`].
//!
//! Validates targets by their shape only (`http://host/...`, `host:port`); it never
//! resolves a name or opens a socket: the endpoint may well be down at load time.

use std::net::Ipv6Addr;
use std::time::Duration;

use toml::de::DeValue;

use super::walk::{Ctx, Field, Table, quoted_list};
use crate::config::spec::{ProbeSpec, ProbeTarget};

const KINDS: &[&str] = &["http", "tcp", "udp", "unix", "exec"];

pub(super) const KEYS: &[&str] = &[
    "http",
    "tcp",
    "udp",
    "unix",
    "exec",
    "send",
    "expect",
    "status",
    "initial_delay",
    "period",
    "timeout",
    "success_threshold",
    "failure_threshold",
];

pub(super) fn probe(ctx: &mut Ctx, t: &Table) -> Option<ProbeSpec> {
    t.check_keys(ctx, KEYS, |_| None);
    let target = target(ctx, t);
    let initial_delay = t.duration(ctx, "initial_delay").unwrap_or(Duration::ZERO);
    let period = t
        .positive_duration(ctx, "period")
        .unwrap_or(Duration::from_secs(10));
    let timeout = t
        .positive_duration(ctx, "timeout")
        .unwrap_or(Duration::from_secs(1));
    let success_threshold = t.uint(ctx, "success_threshold", 1).unwrap_or(1);
    let failure_threshold = t.uint(ctx, "failure_threshold", 1).unwrap_or(3);
    Some(ProbeSpec {
        target: target?,
        initial_delay,
        period,
        timeout,
        success_threshold,
        failure_threshold,
    })
}

fn target(ctx: &mut Ctx, t: &Table) -> Option<ProbeTarget> {
    let kinds: Vec<Field> = KINDS.iter().filter_map(|k| t.field(k)).collect();
    let all_kinds = quoted_list(KINDS, "or");
    let kind = match kinds.as_slice() {
        [] => {
            ctx.missing(
                &t.span,
                &t.path,
                format!("a probe needs one of {all_kinds}; none is set"),
            );
            None
        }
        [only] => Some(only),
        [_, second, ..] => {
            let names: Vec<&str> = kinds.iter().map(|f| f.key).collect();
            let verb = if names.len() == 2 {
                "are both"
            } else {
                "are all"
            };
            ctx.error(
                &second.key_span,
                &t.path,
                format!(
                    "{} {verb} set; a probe has exactly one of {all_kinds}",
                    quoted_list(&names, "and")
                ),
            );
            None
        }
    };
    let kind_name = kind.map(|f| f.key);
    let send = allowed_string(ctx, t, "send", kind_name, &["tcp", "udp", "unix"]);
    let expect = allowed_string(ctx, t, "expect", kind_name, &["http", "tcp", "udp", "unix"]);
    let status = t.field("status").and_then(|f| {
        if kind_name.is_some_and(|k| k != "http") {
            ctx.error(
                &f.key_span,
                &f.path,
                "`status` only applies to `http` probes",
            );
            return None;
        }
        status(ctx, &f)
    });

    let kind = kind?;
    match kind.key {
        "http" => Some(ProbeTarget::Http {
            url: http_url(ctx, kind)?,
            status: status.unwrap_or((200, 399)),
            expect,
        }),
        "tcp" => Some(ProbeTarget::Tcp {
            addr: host_port(ctx, kind)?,
            send,
            expect,
        }),
        "udp" => {
            let addr = host_port(ctx, kind);
            let Some(send) = send else {
                let why = "udp has no connection to check, so warden sends a datagram and waits for the reply";
                ctx.missing(
                    &kind.key_span,
                    &t.path,
                    format!("a `udp` probe needs `send`: {why}"),
                );
                return None;
            };
            Some(ProbeTarget::Udp {
                addr: addr?,
                send,
                expect,
            })
        }
        "unix" => Some(ProbeTarget::Unix {
            path: kind.path(ctx)?,
            send,
            expect,
        }),
        _ => Some(ProbeTarget::Exec {
            argv: kind.argv(ctx)?,
        }),
    }
}

/// `send` / `expect`: a string, and only with the probe kinds that can use it.
fn allowed_string(
    ctx: &mut Ctx,
    t: &Table,
    key: &str,
    kind: Option<&str>,
    kinds: &[&str],
) -> Option<String> {
    let f = t.field(key)?;
    if let Some(kind) = kind
        && !kinds.contains(&kind)
    {
        let only = quoted_list(kinds, "and");
        ctx.error(
            &f.key_span,
            &f.path,
            format!("`{key}` does not apply to `{kind}` probes, only to {only}"),
        );
        return None;
    }
    f.str(ctx).map(str::to_string)
}

/// `"200-399"`, `"200"` or `200` → inclusive range.
fn status(ctx: &mut Ctx, f: &Field) -> Option<(u16, u16)> {
    let text = match f.value {
        DeValue::Integer(_) => f.int(ctx)?.to_string(),
        DeValue::String(s) => s.to_string(),
        _ => {
            f.type_error(ctx, "a status like `200` or a range like `\"200-399\"`");
            return None;
        }
    };
    let (lo, hi) = text.split_once('-').unwrap_or((&text, &text));
    let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) else {
        f.error(
            ctx,
            format!("`{text}` is not a status range; write it like `200` or `\"200-399\"`"),
        );
        return None;
    };
    if let Some(bad) = [lo, hi].into_iter().find(|s| !(100..=599).contains(s)) {
        f.error(
            ctx,
            format!("`{bad}` is not an http status; statuses run from 100 to 599"),
        );
        return None;
    }
    if lo > hi {
        f.error(
            ctx,
            format!("`{text}` is backwards; write the lower status first, like `\"{hi}-{lo}\"`"),
        );
        return None;
    }
    Some((lo, hi))
}

fn http_url(ctx: &mut Ctx, f: &Field) -> Option<String> {
    let url = f.non_empty_str(ctx)?;
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        f.error(ctx, "https is not supported: the probe speaks plain http; probe an `http://` port, or use `tcp` to check that the port is open");
        return None;
    }
    let host = lower
        .strip_prefix("http://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    if host.is_none_or(str::is_empty) || url.contains(char::is_whitespace) {
        f.error(
            ctx,
            format!("`{url}` is not an http url; write it like `http://127.0.0.1:8080/health`"),
        );
        return None;
    }
    Some(url.to_string())
}

/// `host:port`, `[::1]:port`; `{replica}` may stand anywhere in it (checked as `0`).
fn host_port(ctx: &mut Ctx, f: &Field) -> Option<String> {
    let text = f.non_empty_str(ctx)?;
    match check_host_port(&text.replace("{replica}", "0")) {
        Ok(()) => Some(text.to_string()),
        Err(why) => {
            f.error(ctx, format!("`{text}` {why}"));
            None
        }
    }
}

fn check_host_port(text: &str) -> Result<(), &'static str> {
    const SHAPE: &str = "is not `host:port`; write it like `127.0.0.1:6379` or `[::1]:6379`";
    let (host, port) = text.rsplit_once(':').ok_or(SHAPE)?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && !host.contains([':', '/', '[', ']'])
                && !host.contains(char::is_whitespace)
        }
    };
    if !host_ok {
        return Err(SHAPE);
    }
    match port.parse::<u32>() {
        Ok(1..=65535) => Ok(()),
        Ok(_) => Err("has no valid port; ports run from 1 to 65535"),
        Err(_) => Err(SHAPE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports() {
        for ok in [
            "127.0.0.1:80",
            "localhost:6379",
            "[::1]:5432",
            "db-1.internal:65535",
        ] {
            assert_eq!(check_host_port(ok), Ok(()), "{ok}");
        }
        for bad in [
            "localhost",
            ":80",
            "host:0",
            "host:70000",
            "::1:80",
            "tcp://host:80",
            "host:port",
        ] {
            assert!(check_host_port(bad).is_err(), "{bad} accepted");
        }
    }
}
