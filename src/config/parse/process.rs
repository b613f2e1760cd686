//! `[processes.NAME]` and its sub-tables (`output`, `log`, `limits`, probes) → [`ProcessSpec`].
//!
//! Checks what one table can check on its own. References to other processes
//! (`depends_on`, `stdin_from`) are only recorded here, with their positions, for
//! `graph` to check once every name is known. The env file is read here, at load time,
//! so a missing one is a config error rather than a failure at spawn.

use std::time::Duration;

use indexmap::IndexMap;
use nix::sys::signal::Signal;
use toml::de::DeValue;

use super::env_file;
use super::probe;
use super::walk::{Ctx, Field, Span, Table, closest};
use crate::config::spec::{
    CgroupMode, CommandSpec, DependCondition, LimitAction, LimitsSpec, LogSpec, OutputRules,
    ProcessSpec, RestartPolicy,
};

const KEYS: &[&str] = &[
    "command",
    "shell",
    "cwd",
    "env",
    "env_file",
    "autostart",
    "replicas",
    "depends_on",
    "restart",
    "success_exit_codes",
    "backoff",
    "backoff_max",
    "min_uptime",
    "max_restarts",
    "stop_signal",
    "stop_timeout",
    "notify",
    "watchdog",
    "stdin_from",
    "output",
    "log",
    "startup",
    "readiness",
    "liveness",
    "limits",
    "user",
    "group",
    "umask",
    "schedule",
    "watch",
    "watch_ignore",
    "watch_delay",
];

pub(super) const CONDITIONS: &[(&str, DependCondition)] = &[
    ("started", DependCondition::Started),
    ("ready", DependCondition::Ready),
    ("completed", DependCondition::Completed),
];

/// One `depends_on` entry, kept with its position for the cross-checks.
pub(super) struct DependRef {
    pub name: String,
    pub condition: DependCondition,
    /// Where the dependency's name is written.
    pub span: Span,
    /// Where its condition is written (the name itself in the array form).
    pub condition_span: Span,
    pub path: String,
}

/// What the cross-checks need to know about one process.
pub(super) struct ProcessRefs {
    pub name: String,
    pub depends: Vec<DependRef>,
    /// The name and where it is written, with the key path of `stdin_from`.
    pub stdin_from: Option<(String, Span, String)>,
}

/// Walk one process table. Returns `None` for the spec when something required is
/// missing or wrong; the errors are in `ctx` either way.
pub(super) fn process(
    ctx: &mut Ctx,
    name: &str,
    t: &Table,
    cgroup: CgroupMode,
) -> (Option<ProcessSpec>, ProcessRefs) {
    t.check_keys(ctx, KEYS, |key| probe_key_hint(&t.path, key));
    let (depends_on, depends) = depends_on(ctx, t);
    let stdin_from = t.field("stdin_from").and_then(|f| {
        let name = f.non_empty_str(ctx)?.to_string();
        Some((name, f.span.clone(), f.path.clone()))
    });
    let refs = ProcessRefs {
        name: name.to_string(),
        depends,
        stdin_from,
    };

    let shell = t.bool(ctx, "shell").unwrap_or(false);
    let command = command(ctx, t, shell);
    let env = env(ctx, t);
    let cwd = t.path(ctx, "cwd").unwrap_or_else(|| ctx.dir.clone());
    let restart = t.choice(
        ctx,
        "restart",
        "a restart policy",
        &[
            ("always", RestartPolicy::Always),
            ("on-failure", RestartPolicy::OnFailure),
            ("never", RestartPolicy::Never),
        ],
    );
    let (backoff, backoff_max) = backoff(ctx, t);
    let stop_signal = t.field("stop_signal").and_then(|f| f.signal(ctx));
    let notify = t.bool(ctx, "notify").unwrap_or(false);
    let watchdog = watchdog(ctx, t, notify);
    let success_exit_codes = exit_codes(ctx, t);

    let autostart = t.bool(ctx, "autostart").unwrap_or(true);
    let replicas = t.uint(ctx, "replicas", 1).unwrap_or(1);
    let min_uptime = t
        .duration(ctx, "min_uptime")
        .unwrap_or(Duration::from_secs(10));
    let max_restarts = t.uint(ctx, "max_restarts", 0).unwrap_or(0);
    let stop_timeout = t
        .duration(ctx, "stop_timeout")
        .unwrap_or(Duration::from_secs(10));
    let output = t
        .table(ctx, "output")
        .map(|o| output(ctx, &o))
        .unwrap_or_default();
    let log_table = t.table(ctx, "log");
    let log = log(ctx, log_table.as_ref());
    let startup = t.table(ctx, "startup").and_then(|p| probe::probe(ctx, &p));
    let readiness = t
        .table(ctx, "readiness")
        .and_then(|p| probe::probe(ctx, &p));
    let liveness = t.table(ctx, "liveness").and_then(|p| probe::probe(ctx, &p));
    let limits = t.table(ctx, "limits").and_then(|l| limits(ctx, &l, cgroup));
    let run_as = super::run_as::run_as(ctx, t);
    let schedule = super::triggers::schedule(ctx, t);
    let watch = super::triggers::watch(ctx, t, t.has("schedule"));

    // Every key above is checked before giving up on a bad command, so all errors show.
    let spec = command.map(|command| ProcessSpec {
        name: name.to_string(),
        command,
        cwd,
        env,
        autostart,
        replicas,
        depends_on,
        restart: restart.unwrap_or(RestartPolicy::Always),
        success_exit_codes: success_exit_codes.unwrap_or_else(|| vec![0]),
        backoff,
        backoff_max,
        min_uptime,
        max_restarts,
        stop_signal: stop_signal.unwrap_or(Signal::SIGTERM),
        stop_timeout,
        notify,
        watchdog,
        stdin_from: refs.stdin_from.as_ref().map(|(n, _, _)| n.clone()),
        output,
        log,
        startup: startup.map(Box::new),
        readiness: readiness.map(Box::new),
        liveness: liveness.map(Box::new),
        limits: limits.map(Box::new),
        user: run_as.user,
        group: run_as.group,
        umask: run_as.umask,
        schedule: schedule.map(Box::new),
        watch: watch.map(Box::new),
    });
    (spec, refs)
}

/// Probe keys written straight into the process table are a common slip.
fn probe_key_hint(path: &str, key: &str) -> Option<String> {
    probe::KEYS.contains(&key).then(|| {
        format!("probe keys go in a probe table: `[{path}.liveness]`, `readiness` or `startup`")
    })
}

fn command(ctx: &mut Ctx, t: &Table, shell: bool) -> Option<CommandSpec> {
    let Some(f) = t.field("command") else {
        // A misspelt `command` is already reported with a suggestion; once is enough.
        let misspelt = t.fields().any(|f| {
            !KEYS.contains(&f.key) && closest(f.key, KEYS.iter().copied()) == Some("command")
        });
        if misspelt {
            return None;
        }
        ctx.missing(
            &t.span,
            &t.path,
            "missing `command`; every process needs one, like `command = \"./server --port 8080\"`",
        );
        return None;
    };
    if !shell {
        return f.argv(ctx).map(CommandSpec::Argv);
    }
    if f.value.is_array() {
        f.error(
            ctx,
            "with `shell = true`, `command` must be a string: it is passed to `/bin/sh -c` as one",
        );
        return None;
    }
    let script = f.str(ctx)?;
    if script.trim().is_empty() {
        f.error(ctx, "cannot be empty; give the shell command to run");
        return None;
    }
    Some(CommandSpec::Shell(script.to_string()))
}

/// `env_file` entries first, then `env` on top of them.
fn env(ctx: &mut Ctx, t: &Table) -> IndexMap<String, String> {
    let mut env = IndexMap::new();
    if let Some(f) = t.field("env_file")
        && let Some(path) = f.path(ctx)
    {
        match env_file::read(&path, f.value.as_str().unwrap_or_default()) {
            Ok(entries) => env.extend(entries),
            Err(message) => f.error(ctx, message),
        }
    }
    if let Some(table) = t.table(ctx, "env") {
        for f in table.fields() {
            if let Some(value) = env_value(ctx, &f) {
                env.insert(f.key.to_string(), value);
            }
        }
    }
    env
}

fn env_value(ctx: &mut Ctx, f: &Field) -> Option<String> {
    if f.key.is_empty() || f.key.contains(['=', '\0']) {
        ctx.error(
            &f.key_span,
            &f.path,
            format!("`{}` cannot be an environment variable name", f.key),
        );
        return None;
    }
    if !f.value.is_str() {
        let scalar = f.value.is_integer() || f.value.is_float() || f.value.is_bool();
        let hint = if scalar {
            format!("; quote it: `{} = \"{}\"`", f.key, f.source(ctx))
        } else {
            String::new()
        };
        f.error(ctx, format!("environment values must be strings{hint}"));
        return None;
    }
    let value = f.str(ctx)?;
    if value.contains('\0') {
        f.error(ctx, "environment values cannot contain a NUL character");
        return None;
    }
    Some(value.to_string())
}

/// `depends_on = ["db"]` (each `started`) or `depends_on = { db = "ready" }`.
fn depends_on(ctx: &mut Ctx, t: &Table) -> (IndexMap<String, DependCondition>, Vec<DependRef>) {
    let mut refs = Vec::new();
    let Some(f) = t.field("depends_on") else {
        return (IndexMap::new(), refs);
    };
    match f.value {
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let item = f.item(i, item);
                let Some(name) = item.non_empty_str(ctx) else {
                    continue;
                };
                if refs.iter().any(|r: &DependRef| r.name == name) {
                    item.error(ctx, format!("`{name}` is listed twice"));
                    continue;
                }
                refs.push(DependRef {
                    name: name.to_string(),
                    condition: DependCondition::Started,
                    span: item.span.clone(),
                    condition_span: item.span.clone(),
                    path: f.path.clone(),
                });
            }
        }
        DeValue::Table(_) => {
            let Some(table) = f.table(ctx) else {
                return (IndexMap::new(), refs);
            };
            for entry in table.fields() {
                let Some(condition) = entry.choice(ctx, "a dependency condition", CONDITIONS)
                else {
                    continue;
                };
                refs.push(DependRef {
                    name: entry.key.to_string(),
                    condition,
                    span: entry.key_span.clone(),
                    condition_span: entry.span.clone(),
                    path: f.path.clone(),
                });
            }
        }
        _ => f.type_error(
            ctx,
            "an array of names like `[\"db\"]` or a table like `{ db = \"ready\" }`",
        ),
    }
    let map = refs.iter().map(|r| (r.name.clone(), r.condition)).collect();
    (map, refs)
}

fn backoff(ctx: &mut Ctx, t: &Table) -> (Duration, Duration) {
    let backoff = t.duration(ctx, "backoff");
    let backoff_max = t.duration(ctx, "backoff_max");
    let first = backoff.unwrap_or(Duration::from_millis(500));
    let max = backoff_max.unwrap_or(Duration::from_secs(30));
    // Compare only values that were given and valid, or defaults for absent keys.
    let usable =
        t.has("backoff") == backoff.is_some() && t.has("backoff_max") == backoff_max.is_some();
    if usable && max < first {
        let shown = |d: Duration| humantime::format_duration(d).to_string();
        let (key, message) = match backoff_max {
            Some(_) => (
                "backoff_max",
                format!(
                    "`{}` is shorter than `backoff` (`{}`); the restart delay grows from `backoff` up to `backoff_max`",
                    shown(max),
                    shown(first),
                ),
            ),
            None => (
                "backoff",
                format!(
                    "`{}` is longer than the default `backoff_max` of `{}`; set `backoff_max` too",
                    shown(first),
                    shown(max),
                ),
            ),
        };
        if let Some(f) = t.field(key) {
            f.error(ctx, message);
        }
    }
    (first, max)
}

fn watchdog(ctx: &mut Ctx, t: &Table, notify: bool) -> Option<Duration> {
    let f = t.field("watchdog")?;
    let notify_is_bad = t.field("notify").is_some_and(|n| !n.value.is_bool());
    if !notify && !notify_is_bad {
        f.error(
            ctx,
            "only works with `notify = true`: the process reports `WATCHDOG=1` through sd_notify",
        );
        return None;
    }
    t.positive_duration(ctx, "watchdog")
}

fn exit_codes(ctx: &mut Ctx, t: &Table) -> Option<Vec<i32>> {
    let f = t.field("success_exit_codes")?;
    let items = f.array(ctx, "an array of exit codes like `[0, 2]`")?;
    let mut codes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item = f.item(i, item);
        let Some(code) = item.int(ctx) else { continue };
        match i32::try_from(code) {
            Ok(c) if (0..=255).contains(&c) => codes.push(c),
            _ => item.error(
                ctx,
                format!("`{code}` is not an exit code; exit codes run from 0 to 255"),
            ),
        }
    }
    (codes.len() == items.len()).then_some(codes)
}

fn output(ctx: &mut Ctx, t: &Table) -> OutputRules {
    t.check_keys(ctx, &["silence", "hung_on"], |_| None);
    let hung_on = t.field("hung_on").and_then(|f| {
        let pattern = f.non_empty_str(ctx)?;
        match regex::Regex::new(pattern) {
            Ok(_) => Some(pattern.to_string()),
            Err(e) => {
                f.error(
                    ctx,
                    format!(
                        "`{pattern}` is not a valid regular expression: {}",
                        regex_reason(&e)
                    ),
                );
                None
            }
        }
    });
    OutputRules {
        silence: t.positive_duration(ctx, "silence"),
        hung_on,
    }
}

/// The last line of regex's multi-line report ("error: unclosed group"), which is the
/// part that says what is wrong; the lines above repeat the pattern.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or_default();
    super::lower_first(
        last.strip_prefix("error: ")
            .unwrap_or(last)
            .trim_end_matches('.'),
    )
}

fn log(ctx: &mut Ctx, t: Option<&Table>) -> LogSpec {
    let mut spec = LogSpec {
        file: None,
        max_size: 10_000_000,
        keep: 5,
        timestamps: true,
        buffer_lines: 1000,
    };
    let Some(t) = t else { return spec };
    t.check_keys(
        ctx,
        &["file", "max_size", "keep", "timestamps", "buffer_lines"],
        |_| None,
    );
    spec.file = t.path(ctx, "file");
    // "0" turns rotation off: the file grows for as long as warden runs.
    if let Some(size) = t.field("max_size").and_then(|f| f.size(ctx)) {
        spec.max_size = size;
    }
    spec.keep = t.uint(ctx, "keep", 0).unwrap_or(spec.keep);
    spec.timestamps = t.bool(ctx, "timestamps").unwrap_or(spec.timestamps);
    spec.buffer_lines = t.uint(ctx, "buffer_lines", 1).unwrap_or(spec.buffer_lines);
    spec
}

/// The smallest CPU quota the kernel takes is 1ms per 100ms period.
const MIN_CPU_MAX: f64 = 0.01;

fn limits(ctx: &mut Ctx, t: &Table, cgroup: CgroupMode) -> Option<LimitsSpec> {
    const HARD: [&str; 3] = ["memory_max", "cpu_max", "pids_max"];
    t.check_keys(
        ctx,
        &["memory", "cpu", "for", "action", HARD[0], HARD[1], HARD[2]],
        |_| None,
    );
    let empty = ["memory", "cpu"].iter().chain(&HARD).all(|k| !t.has(k));
    if empty {
        ctx.missing(
            &t.span,
            &t.path,
            format!(
                "set `memory`, `cpu` (warden's rules) or `memory_max`, `cpu_max`, `pids_max` (the kernel's), or remove `[{}]`",
                t.path
            ),
        );
    }
    let positive_size = |ctx: &mut Ctx, key: &str| {
        let f = t.field(key)?;
        let size = f.size(ctx)?;
        if size == 0 {
            f.error(ctx, "must be more than 0 bytes");
            return None;
        }
        Some(size)
    };
    let memory = positive_size(ctx, "memory");
    let cpu = t.field("cpu").and_then(|f| {
        let cpu = f.number(ctx)?;
        if !(cpu.is_finite() && cpu > 0.0) {
            f.error(ctx, format!("`{}` is not a cpu limit; give a percentage of one core above 0, like `90` (or `200` for two cores)", f.source(ctx)));
        }
        Some(cpu)
    });
    let action = t.choice(
        ctx,
        "action",
        "a limit action",
        &[
            ("restart", LimitAction::Restart),
            ("stop", LimitAction::Stop),
            ("warn", LimitAction::Warn),
        ],
    );
    let cpu_for = t.duration(ctx, "for").unwrap_or(Duration::from_secs(30));
    let memory_max = positive_size(ctx, "memory_max");
    let cpu_max = t.field("cpu_max").and_then(|f| {
        let cores = f.number(ctx)?;
        if !(cores.is_finite() && cores >= MIN_CPU_MAX) {
            f.error(ctx, format!("`{}` is not a cpu quota; give a number of cores of at least {MIN_CPU_MAX}, like `0.5` or `2`", f.source(ctx)));
            return None;
        }
        Some(cores)
    });
    let pids_max = t.uint(ctx, "pids_max", 1);
    if cgroup == CgroupMode::Off {
        let given = [memory_max.is_some(), cpu_max.is_some(), pids_max.is_some()];
        for (key, _) in HARD.iter().zip(given).filter(|(_, set)| *set) {
            if let Some(f) = t.field(key) {
                f.error(ctx, format!("`{key}` is enforced by the kernel through a cgroup, and `[supervisor] cgroup = \"off\"` turns cgroups off; remove `{key}` or set `cgroup = \"auto\"`"));
            }
        }
    }
    (!empty).then_some(LimitsSpec {
        memory,
        cpu,
        cpu_for,
        action: action.unwrap_or(LimitAction::Restart),
        memory_max,
        cpu_max,
        pids_max,
    })
}
