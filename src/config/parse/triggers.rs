//! What starts a process besides `autostart` and requests: `schedule` (cron times) and,
//! in the sibling function, `watch` (file changes).
//!
//! A scheduled process runs at its times and is not kept alive, so the keys that tune
//! restarts are refused next to it rather than silently ignored.

use super::walk::{Ctx, Table};
use crate::config::spec::CronSchedule;

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
