//! The config walk: TOML text → [`Spec`], or every error found in it.
//!
//! The text is parsed with toml's recoverable parser into a tree whose keys and values
//! keep their byte spans, then walked by hand: each table has a fixed set of keys and
//! each value a typed getter that records an error and carries on. Syntax errors, the
//! walk's errors and the cross-checks' errors all end up in one list, in file order.
//! (Not serde derive: it stops at the first error and cannot say which key was meant.)
//!
//! It reads the config file and any `env_file`, and looks up `user` and `group` in the
//! user database, and nothing else: no process is touched, no socket is opened, no path
//! is canonicalized or required to exist (except env files, whose contents become part
//! of the spec).

mod env_file;
mod graph;
mod probe;
mod process;
mod run_as;
mod triggers;
mod walk;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use toml::de::DeTable;

use crate::config::error::{ConfigError, ConfigErrors};
use crate::config::spec::{CgroupMode, CheckSpec, Spec, SupervisorSpec};
use walk::{Ctx, Span, Table};

/// A config file larger than this is a mistake (a log file, a device), not a config.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

pub(super) fn load(path: &Path, to_run: bool) -> Result<Spec, ConfigErrors> {
    let bytes = read_config(path)
        .map_err(|message| ConfigErrors(vec![ConfigError::whole_file(path, message)]))?;
    match String::from_utf8(bytes) {
        Ok(text) => load_str(path, &text, to_run),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(&e.as_bytes()[..valid]);
            let mut ctx = Ctx::new(path, PathBuf::new(), &text);
            ctx.error(
                &(valid..valid),
                "",
                "the file is not valid utf-8 from here on; save it as utf-8",
            );
            ctx.finish(None)
        }
    }
}

pub(super) fn load_str(path: &Path, text: &str, to_run: bool) -> Result<Spec, ConfigErrors> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut ctx = Ctx::new(path, dir, text);
    ctx.to_run = to_run;
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    for e in &syntax_errors {
        syntax_error(&mut ctx, e);
    }
    // The recovered tree is walked even after syntax errors, so one run shows them all.
    let spec = walk_root(&mut ctx, root.get_ref(), absolute);
    ctx.finish(spec)
}

/// The config file's bytes, or why they cannot be had. Only a regular file of a sane size
/// is read: `-c /dev/zero` or a FIFO must not make warden read forever.
fn read_config(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            let here = match std::env::current_dir() {
                Ok(cwd) if path.is_relative() => format!(" (looked in {})", cwd.display()),
                _ => String::new(),
            };
            format!("no such file{here}; create it, or name the config with `-c FILE`")
        }
        _ => format!("cannot read the config file: {}", io_reason(&e)),
    })?;
    if !meta.is_file() {
        return Err(
            "not a regular file (a folder, a device or a FIFO?); give the path of a TOML file"
                .into(),
        );
    }
    let too_big = || {
        format!(
            "larger than {} KiB: not a config file",
            MAX_CONFIG_BYTES >> 10
        )
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the config file: {}", io_reason(&e)))?;
    // It may have grown since the `stat`.
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

/// An io error as the end of a lowercase sentence: "no such file or directory".
pub(super) fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    lower_first(text.split(" (os error").next().unwrap_or(&text))
}

/// Other crates' messages are often capitalized sentences; ours are lowercase.
pub(super) fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

fn syntax_error(ctx: &mut Ctx, e: &toml::de::Error) {
    let span = e.span().unwrap_or(0..0);
    let mut message = format!("invalid toml: {}", e.message().trim_end());
    if message.ends_with("duplicate key") {
        // toml's message does not say which key; the span does.
        let key = ctx.source(&span).to_string();
        message = format!("`{key}` is set twice; a key can appear only once in a table");
    }
    ctx.syntax_error(&span, message);
}

fn walk_root(ctx: &mut Ctx, root: &DeTable, path: PathBuf) -> Option<Spec> {
    let t = Table::new(String::new(), 0..0, root);
    t.check_keys(ctx, &["supervisor", "processes", "checks"], |_| None);
    let supervisor_table = t.table(ctx, "supervisor");
    let supervisor = supervisor(ctx, supervisor_table.as_ref());

    let mut complete = true;
    let mut processes = IndexMap::new();
    let mut refs = Vec::new();
    for (name, _, table) in named_tables(ctx, &t, "processes", "web") {
        let (spec, r) = process::process(ctx, &name, &table, supervisor.cgroup);
        refs.push(r);
        match spec {
            Some(spec) => _ = processes.insert(name, std::sync::Arc::new(spec)),
            None => complete = false,
        }
    }

    let mut checks = IndexMap::new();
    let mut check_names = Vec::new();
    for (name, name_span, table) in named_tables(ctx, &t, "checks", "postgres") {
        check_names.push(name.clone());
        if refs.iter().any(|r| r.name == name) {
            let message = format!(
                "`{name}` is already the name of a process; a check needs a name of its own"
            );
            ctx.error(&name_span, &table.path, message);
        }
        match probe::probe(ctx, &table) {
            Some(probe) => _ = checks.insert(name.clone(), CheckSpec { name, probe }),
            None => complete = false,
        }
    }

    graph::check(ctx, &refs, &check_names);
    complete.then_some(Spec {
        path,
        supervisor,
        processes,
        checks,
    })
}

/// The entries of `[processes]` or `[checks]`: valid name, key span and table each.
fn named_tables<'t, 'i>(
    ctx: &mut Ctx,
    root: &Table<'t, 'i>,
    key: &str,
    example: &str,
) -> Vec<(String, Span, Table<'t, 'i>)> {
    let Some(f) = root.field(key) else {
        return Vec::new();
    };
    if !f.value.is_table() {
        f.type_error(
            ctx,
            &format!("a table of named entries, like `[{key}.{example}]`"),
        );
        return Vec::new();
    }
    let Some(table) = f.table(ctx) else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for entry in table.fields() {
        if let Err(why) = check_name(entry.key) {
            ctx.error(&entry.key_span, &entry.path, why);
        }
        if let Some(t) = entry.table(ctx) {
            entries.push((entry.key.to_string(), entry.key_span.clone(), t));
        }
    }
    entries
}

/// Names become file names (`<log_dir>/web.log`), instance names (`web.0`) and command
/// line arguments (`warden stop web`), hence the narrow alphabet.
fn check_name(name: &str) -> Result<(), String> {
    const ALPHABET: &str = "names may use only letters, digits, `-` and `_`";
    if name.is_empty() {
        return Err(format!("a name cannot be empty; {ALPHABET}"));
    }
    if name.contains('.') {
        return Err(format!(
            "`{name}` cannot contain a dot, which is kept for replicas (`web.0`); use `-` or `_` instead"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        let bad = if bad.is_whitespace() {
            "a space".to_string()
        } else {
            format!("`{bad}`")
        };
        return Err(format!(
            "`{name}` contains {bad}; {ALPHABET} (they become file names)"
        ));
    }
    if name.starts_with('-') {
        return Err(format!(
            "`{name}` cannot start with `-`: it would read as an option on the command line"
        ));
    }
    if name == "all" {
        return Err("`all` is reserved: `warden stop all` means every process".to_string());
    }
    Ok(())
}

fn supervisor(ctx: &mut Ctx, t: Option<&Table>) -> SupervisorSpec {
    let mut spec = SupervisorSpec {
        log_dir: ctx.dir.join("logs"),
        socket: None,
        shutdown_timeout: Duration::from_secs(30),
        sample_interval: Duration::from_secs(1),
        metrics: None,
        control_fifo: false,
        cgroup: CgroupMode::Auto,
    };
    let Some(t) = t else { return spec };
    let keys = [
        "log_dir",
        "socket",
        "shutdown_timeout",
        "sample_interval",
        "metrics",
        "control_fifo",
        "cgroup",
    ];
    t.check_keys(ctx, &keys, |_| None);
    spec.log_dir = t.path(ctx, "log_dir").unwrap_or(spec.log_dir);
    spec.socket = t.field("socket").and_then(|f| {
        let path = f.path(ctx)?;
        // sun_path holds 108 bytes with the terminating NUL.
        let len = path.as_os_str().len();
        if len > 107 {
            f.error(ctx, format!("resolves to a path of {len} bytes; unix sockets allow at most 107, so choose a shorter one"));
        }
        Some(path)
    });
    spec.shutdown_timeout = t
        .duration(ctx, "shutdown_timeout")
        .unwrap_or(spec.shutdown_timeout);
    spec.sample_interval = t
        .positive_duration(ctx, "sample_interval")
        .unwrap_or(spec.sample_interval);
    spec.metrics = t.field("metrics").and_then(|f| {
        let addr = f.str(ctx)?;
        if addr.parse::<SocketAddr>().is_err() {
            f.error(ctx, format!("`{addr}` is not an address to listen on; write it like `127.0.0.1:9900` or `[::1]:9900`"));
            return None;
        }
        Some(addr.to_string())
    });
    spec.control_fifo = t.bool(ctx, "control_fifo").unwrap_or(false);
    spec.cgroup = t
        .choice(
            ctx,
            "cgroup",
            "a cgroup mode",
            &[
                ("auto", CgroupMode::Auto),
                ("off", CgroupMode::Off),
                ("required", CgroupMode::Required),
            ],
        )
        .unwrap_or(spec.cgroup);
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["web", "db_1", "api-v2", "A9"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "web.0", "a/b", "my app", "-x", "all", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
