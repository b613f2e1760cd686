//! `watch`: files changed, so the process restarts, once per burst of changes.
//!
//! Each report of changes (the actor folds whatever arrived between two of its turns
//! into one) postpones a debounce timer: the restart happens once the files have been
//! quiet for `watch_delay`. An editor's save (a write, a rename, a chmod) or a formatter
//! run right after it is one burst. A process that had ended (crashed, exited, gave up) is
//! started again, as the change is likely the fix; one stopped on request is left alone.

use super::*;

impl Core {
    pub(super) fn on_files_changed(
        &mut self,
        process: &str,
        paths: Vec<String>,
        count: usize,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        for inst in self.instances.values_mut() {
            if inst.process != process || inst.removing || !inst.want_up {
                continue;
            }
            // The same file often comes up in several reports (a write, then a rename):
            // named paths are counted once.
            inst.changed.extend(paths.iter().cloned());
            inst.changed_unnamed += count.saturating_sub(paths.len());
            inst.change_seq = inst.change_seq.next();
            let quiet = inst
                .spec
                .watch
                .as_ref()
                .map_or(crate::config::watch::WatchSpec::DEFAULT_DELAY, |w| w.delay);
            fx.push(Effect::Schedule {
                at: now.mono + quiet,
                id: inst.id,
                run_no: inst.change_seq,
                timer: Timer::Watch,
            });
        }
    }

    /// The files have been quiet for `watch_delay` since the last change.
    pub(super) fn on_quiet(
        &mut self,
        id: InstanceId,
        seq: Generation,
        now: Now,
        fx: &mut Vec<Effect>,
    ) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        if inst.change_seq != seq || self.shutting_down {
            return;
        }
        let named = std::mem::take(&mut inst.changed);
        let count = named.len() + std::mem::take(&mut inst.changed_unnamed);
        if !inst.want_up || inst.removing {
            return;
        }
        let paths: Vec<String> = named.into_iter().take(5).collect();
        let detail = format!("files changed: {}", paths.join(", "));
        let name = inst.name.clone();
        fx.push(emit(now, &name, EventKind::Changed { paths, count }));
        match inst.state {
            State::Starting | State::Running => {
                inst.start_after_stop = true;
                self.begin_stop(id, ExitReason::Watch, Some(detail), now, fx);
            }
            State::Stopping => inst.start_after_stop = true,
            State::Backoff => {
                self.reset_counters(id);
                self.spawn(id, now, fx);
            }
            State::Exited | State::Fatal | State::Stopped => {
                self.reset_counters(id);
                self.transition(id, State::Pending, now, fx);
            }
            State::Pending => {}
        }
    }
}
