//! Which of warden's children are whose: the leaders (and other children someone waits
//! for) that the spawner registers, and, by difference, the adopted orphans, indexed by
//! the run they came from.
//!
//! Data only, at the bottom of the process module: the tree walk fills an [`Adopted`]
//! (`tree.rs`), the sweeps share one between the runs that end together (`sweep.rs`),
//! and the spawner registers each child it forks. This file must not read `/proc` or
//! reap anything itself, so that none of those modules has to be imported here.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::sweep::Sweeps;

/// Pids of children that someone else will reap (leaders, exec probes, the guard).
/// Any other child of warden is an adopted orphan, reaped by [`super::reap_orphans`].
#[derive(Debug, Default)]
pub struct Registry {
    pub(super) managed: Mutex<HashSet<i32>>,
    /// Held shared by each spawner thread from its clone until the child is in
    /// `managed`, and exclusively by the look at all of warden's exited children
    /// ([`Registry::settled`]), so that a child is never seen between the two.
    forking: RwLock<()>,
    /// Sweeps of the adopted orphans, shared by the runs that end together.
    pub(super) sweeps: Sweeps<Adopted>,
}

/// warden's adopted orphans, by the run they belong to. Found once per sample: reading
/// warden's children and their environments for every run's walk would cost that much
/// again per run.
#[derive(Debug, Default)]
pub struct Adopted(pub(super) HashMap<String, Vec<i32>>);

impl Adopted {
    /// The adopted orphans of the run `run_id`.
    pub fn roots(&self, run_id: &str) -> &[i32] {
        self.0.get(run_id).map_or(&[], Vec::as_slice)
    }
}

impl Registry {
    /// Hold off [`Registry::settled`] while a child is cloned and registered; spawns on
    /// several threads hold this at once.
    pub(super) fn forking(&self) -> RwLockReadGuard<'_, ()> {
        self.forking.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Note a child that someone will reap (under [`Registry::forking`], for a child
    /// just cloned).
    pub(super) fn register(&self, pid: i32) {
        self.managed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid);
    }

    /// The managed pids, with no child cloned but not yet registered for as long as the
    /// answer is held.
    pub(super) fn settled(&self) -> Settled<'_> {
        let no_spawn = self.forking.write().unwrap_or_else(|e| e.into_inner());
        Settled {
            managed: self.managed.lock().unwrap_or_else(|e| e.into_inner()),
            _no_spawn: no_spawn,
        }
    }
}

/// See [`Registry::settled`].
pub(super) struct Settled<'a> {
    managed: MutexGuard<'a, HashSet<i32>>,
    _no_spawn: RwLockWriteGuard<'a, ()>,
}

impl std::ops::Deref for Settled<'_> {
    type Target = HashSet<i32>;

    fn deref(&self) -> &HashSet<i32> {
        &self.managed
    }
}
