//! What starts a process besides `autostart` and requests: `schedule` (cron times) and
//! `watch` (file changes).
//!
//! A scheduled process runs at its times and is not kept alive, so the keys that tune
//! restarts are refused next to it rather than silently ignored.

use super::walk::{Ctx, Table};
use crate::config::spec::CronSchedule;
use crate::config::watch::WatchSpec;

/// Keys that only mean something for a process that is restarted.
const RESTART_KEYS: [&str; 5] = [
    "restart",
    "backoff",
    "backoff_max",
    "min_uptime",
    "max_restarts",
];

pub(super) fn schedule(ctx: &mut Ctx, t: &Table) -> Option<CronSchedule> {
    let f = t.field("schedule")?;
    for key in RESTART_KEYS {
        if let Some(k) = t.field(key) {
            k.error(
                ctx,
                format!("`{key}` does not apply to a scheduled process: it runs at its `schedule` times and is not restarted in between; remove `{key}`"),
            );
        }
    }
    let text = f.non_empty_str(ctx)?;
    let schedule = match CronSchedule::parse(text) {
        Ok(s) => s,
        Err(why) => {
            f.error(
                ctx,
                format!("`{text}` is not a cron schedule ({why}); write five fields, minute hour day-of-month month day-of-week, like `\"*/5 * * * *\"`, or six with seconds first"),
            );
            return None;
        }
    };
    if schedule.next_after(std::time::SystemTime::now()).is_none() {
        f.error(ctx, format!("`{text}` names no time that will ever come"));
        return None;
    }
    Some(schedule)
}

/// `watch = ["src/**/*.py"]` and `watch_ignore = ["*.pyc"]`, compiled.
pub(super) fn watch(ctx: &mut Ctx, t: &Table, scheduled: bool) -> Option<WatchSpec> {
    let patterns = string_list(ctx, t, "watch");
    let ignore = string_list(ctx, t, "watch_ignore");
    let f = t.field("watch");
    let Some(f) = f else {
        for key in ["watch_ignore", "watch_delay"] {
            if let Some(i) = t.field(key) {
                i.error(
                    ctx,
                    format!("only works with `watch`; remove `{key}` or add `watch`"),
                );
            }
        }
        return None;
    };
    if scheduled {
        f.error(
            ctx,
            "does not apply to a scheduled process, which runs at its `schedule` times; remove one of them",
        );
        return None;
    }
    let (patterns, ignore) = (patterns?, ignore.unwrap_or_default());
    if patterns.is_empty() {
        f.error(ctx, "needs at least one pattern, like `[\"src/**/*.py\"]`");
        return None;
    }
    let delay = t.positive_duration(ctx, "watch_delay");
    match WatchSpec::new(&ctx.dir, &patterns, &ignore) {
        Ok(mut spec) => {
            spec.delay = delay.unwrap_or(spec.delay);
            Some(spec)
        }
        Err(why) => {
            // Say it at the list the bad pattern is in.
            let key = if patterns.iter().any(|p| why.starts_with(&format!("`{p}`"))) {
                "watch"
            } else {
                "watch_ignore"
            };
            let at = t.field(key).unwrap_or(f);
            at.error(ctx, why);
            None
        }
    }
}

/// An array of strings (`None` if absent or wrong; the error is recorded).
fn string_list(ctx: &mut Ctx, t: &Table, key: &str) -> Option<Vec<String>> {
    let f = t.field(key)?;
    let items = f.array(ctx, "an array of patterns like `[\"src/**/*.py\"]`")?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(f.item(i, item).str(ctx)?.to_string());
    }
    Some(out)
}
