//! warden's own cgroup subtree: found from `/proc/self`, created as `warden-TOKEN` beside
//! (below) warden's cgroup, given the controllers the host allows, and removed at the end.
//!
//! Controllers in cgroup v2 reach a cgroup only through its parent's `subtree_control`,
//! and a cgroup that holds processes may not hand them on (the "no internal processes"
//! rule). When warden's cgroup holds warden alone (a systemd unit or scope with
//! `Delegate=yes`, a container's root) warden moves itself into a leaf of its own,
//! `warden-TOKEN/supervisor`, as systemd does, enables the controllers, and moves back at
//! the end. When v2 has no controllers (a hybrid host), each run also joins a v1 cgroup
//! per controller. Whatever cannot be had is said in [`CgroupStatus`].

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::discover::{self, Controller, Membership, Mount};
use super::{HardLimits, Place, RunCgroup, open_dir, remove_dir, write};
use crate::config::CgroupMode;

/// The leaf warden moves into when it has to empty its own cgroup.
const SUPERVISOR_LEAF: &str = "supervisor";

/// What status shows about cgroups: the mode, where, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupStatus {
    /// `v2` (each process in a cgroup of its own) or `off` (figures from the process tree).
    pub mode: String,
    /// The folder that holds the processes' cgroups.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The controllers in use and where: `{"memory": "v1", "pids": "v2"}`.
    #[serde(default)]
    pub controllers: BTreeMap<String, String>,
    /// Why, in a sentence.
    #[serde(default)]
    pub detail: String,
}

impl CgroupStatus {
    fn off(detail: String) -> CgroupStatus {
        CgroupStatus {
            mode: "off".into(),
            path: None,
            controllers: BTreeMap::new(),
            detail,
        }
    }

    /// The mode and why, as one line (the dashboard's header, the status table).
    pub fn summary(&self) -> String {
        match self.mode.as_str() {
            "v2" => self.detail.clone(),
            _ => format!("process tree (cgroups off: {})", self.detail),
        }
    }
}

/// The outcome of [`setup`].
pub enum Setup {
    On(Cgroups),
    Off(CgroupStatus),
}

impl Setup {
    pub fn status(&self) -> CgroupStatus {
        match self {
            Setup::On(c) => c.status.clone(),
            Setup::Off(s) => s.clone(),
        }
    }
}

/// warden moved out of its cgroup to enable controllers below it; undone at the end.
#[derive(Debug)]
struct Evacuation {
    base: PathBuf,
    /// What warden added to `base/cgroup.subtree_control`.
    enabled: Vec<Controller>,
}

/// warden's subtree: where runs get their cgroups.
#[derive(Debug)]
pub struct Cgroups {
    /// `<warden's v2 cgroup>/warden-TOKEN`.
    dir: PathBuf,
    /// The same, as `/proc/PID/cgroup` names it.
    path: String,
    places: Vec<(Controller, Place)>,
    /// `<warden's v1 cgroup>/warden-TOKEN`, per controller taken from v1.
    v1: Vec<(Controller, PathBuf)>,
    evacuation: Option<Evacuation>,
    status: CgroupStatus,
    /// `dir` and the `v1` folders, open (`O_PATH`) for warden's life: a run's counters are
    /// opened relative to them, two names to look up instead of the whole path (the
    /// kernel's walk of `/sys/fs/cgroup/…` was a third of a status request's sample).
    /// A folder missing here is reached by its path.
    handles: Vec<(Option<Controller>, std::os::fd::OwnedFd)>,
}

/// Find and create warden's subtree. `Err` only with `cgroup = "required"` and no way to
/// honour it; otherwise the reason for `off` is in the status.
pub fn setup(mode: CgroupMode, token: &str) -> Result<Setup, String> {
    let off = |detail: String| match mode {
        CgroupMode::Required => Err(format!(
            "`[supervisor] cgroup = \"required\"`, but {detail}; set `cgroup = \"auto\"` to run without"
        )),
        _ => Ok(Setup::Off(CgroupStatus::off(detail))),
    };
    if mode == CgroupMode::Off {
        return Ok(Setup::Off(CgroupStatus::off(
            "turned off by `cgroup = \"off\"`".into(),
        )));
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let me = discover::parse_proc_cgroup(&read("/proc/self/cgroup"));
    let mounts = discover::parse_mountinfo(&read("/proc/self/mountinfo"));
    let Some(own) = discover::v2_path(&me) else {
        return off("warden is in no cgroup v2 hierarchy (a cgroup v1 host)".into());
    };
    let Some(base) = discover::v2_dir(&mounts, own) else {
        return off(format!(
            "the cgroup v2 hierarchy is not mounted where warden can see its cgroup `{own}`"
        ));
    };
    let name = format!("warden-{token}");
    let dir = base.join(&name);
    if let Err(e) = std::fs::create_dir(&dir) {
        return off(format!(
            "warden may not create cgroups in `{}` ({}); run it as root, or in a cgroup delegated to its user (systemd: `Delegate=yes`)",
            base.display(),
            reason(&e)
        ));
    }
    let mut cg = Cgroups {
        path: format!("{}/{name}", own.trim_end_matches('/')),
        dir,
        places: Vec::new(),
        v1: Vec::new(),
        evacuation: None,
        status: CgroupStatus::off(String::new()),
        handles: Vec::new(),
    };
    let notes = cg.take_controllers(&base, &me, &mounts, &name);
    cg.handles = std::iter::once((None, cg.dir.as_path()))
        .chain(cg.v1.iter().map(|(c, d)| (Some(*c), d.as_path())))
        .filter_map(|(c, d)| Some((c, open_dir(d).ok()?)))
        .collect();
    cg.status = CgroupStatus {
        mode: "v2".into(),
        path: Some(cg.dir.clone()),
        controllers: cg
            .places
            .iter()
            .map(|(c, p)| {
                let at = match p {
                    Place::V2 => "v2",
                    Place::V1 => "v1",
                };
                (c.name().to_string(), at.to_string())
            })
            .collect(),
        detail: describe(&base, &cg.places, &notes),
    };
    Ok(Setup::On(cg))
}

impl Cgroups {
    /// The status line's facts.
    pub fn status(&self) -> &CgroupStatus {
        &self.status
    }

    /// Where `c` is available to runs, if anywhere.
    pub fn place(&self, c: Controller) -> Option<Place> {
        self.places.iter().find(|(pc, _)| *pc == c).map(|(_, p)| *p)
    }

    /// The hard limits of `limits` that no controller can enforce here.
    pub fn unenforced(&self, limits: &HardLimits) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (set, c, key) in [
            (
                limits.memory_max.is_some(),
                Controller::Memory,
                "memory_max",
            ),
            (limits.cpu_max.is_some(), Controller::Cpu, "cpu_max"),
            (limits.pids_max.is_some(), Controller::Pids, "pids_max"),
        ] {
            if set && self.place(c).is_none() {
                out.push(key);
            }
        }
        out
    }

    /// Create the cgroups of one run (`leaf` like `web@3`) with its hard limits.
    pub fn create(self: &Arc<Self>, leaf: &str, limits: &HardLimits) -> io::Result<RunCgroup> {
        let leaf = self.free_leaf(leaf)?;
        let mut run = RunCgroup {
            owner: self.clone(),
            leaf: leaf.clone().into(),
            v1: 0,
        };
        let wanted = |c: Controller| match c {
            // Always, where it is: it gives the figures and names OOM kills.
            Controller::Memory => true,
            Controller::Cpu => limits.cpu_max.is_some(),
            Controller::Pids => limits.pids_max.is_some(),
        };
        let made = (|| {
            for (c, parent) in &self.v1 {
                if wanted(*c) {
                    std::fs::create_dir(parent.join(&leaf))?;
                    run.v1 |= super::bit(*c);
                }
            }
            run.apply(limits)
        })();
        if let Err(e) = made {
            let _ = run.remove();
            return Err(e);
        }
        Ok(run)
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// warden's folder (`None`: the v2 one; `c`'s in v1), open, if it could be.
    pub(super) fn handle(&self, c: Option<Controller>) -> Option<&std::os::fd::OwnedFd> {
        self.handles
            .iter()
            .find(|(hc, _)| *hc == c)
            .map(|(_, fd)| fd)
    }

    pub(super) fn v1_dirs(&self) -> impl Iterator<Item = (Controller, &PathBuf)> {
        self.v1.iter().map(|(c, d)| (*c, d))
    }

    /// `leaf`, or `leaf~N` if a cgroup of that name is still there (a run whose processes
    /// could not be killed, say).
    fn free_leaf(&self, leaf: &str) -> io::Result<String> {
        let mut name = leaf.to_string();
        for n in 2.. {
            match std::fs::create_dir(self.dir.join(&name)) {
                Ok(()) => return Ok(name),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => {
                    name = format!("{leaf}~{n}");
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    /// A subtree at `dir` (`path` as `/proc/PID/cgroup` names it) with no controller,
    /// for tests that need runs in cgroups without setting up (and moving) warden.
    #[cfg(test)]
    pub(crate) fn for_tests(dir: PathBuf, path: String) -> Cgroups {
        let handles = open_dir(&dir)
            .ok()
            .map(|fd| (None, fd))
            .into_iter()
            .collect();
        Cgroups {
            dir,
            path,
            places: Vec::new(),
            v1: Vec::new(),
            evacuation: None,
            status: CgroupStatus::off(String::new()),
            handles,
        }
    }

    /// What the guard needs to clean up after a warden that died.
    pub fn guard_args(&self) -> Vec<String> {
        let mut args = vec![format!("cgroup={}", self.dir.display())];
        args.extend(self.v1.iter().map(|(_, d)| format!("v1={}", d.display())));
        if let Some(ev) = &self.evacuation {
            args.push(format!("base={}", ev.base.display()));
            let names: Vec<&str> = ev.enabled.iter().map(|c| c.name()).collect();
            args.push(format!("enabled={}", names.join(",")));
        }
        args
    }

    /// Remove warden's subtree (every run is over) and move warden back where it was.
    /// `others` are warden's helpers that followed it into its leaf (the guard).
    pub fn teardown(&self, others: &[i32]) {
        cleanup(
            &self.dir,
            &self.v1.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(),
            self.evacuation
                .as_ref()
                .map(|e| (e.base.as_path(), e.enabled.as_slice())),
            others,
        );
    }

    /// Give runs the controllers the host allows: v2 where warden's cgroup hands them on
    /// (moving warden into a leaf of its own if that is what it takes), else v1.
    fn take_controllers(
        &mut self,
        base: &Path,
        me: &[Membership],
        mounts: &[Mount],
        name: &str,
    ) -> Vec<String> {
        let mut notes = Vec::new();
        let words = |p: PathBuf| -> Vec<String> {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let has = |list: &[String], c: Controller| list.iter().any(|w| w == c.name());
        let below_base = words(base.join("cgroup.subtree_control"));
        let offered = words(base.join("cgroup.controllers"));
        let missing: Vec<Controller> = Controller::ALL
            .into_iter()
            .filter(|&c| !has(&below_base, c) && has(&offered, c))
            .collect();
        if !missing.is_empty() {
            match self.evacuate(base, &missing) {
                Ok(ev) => self.evacuation = Some(ev),
                Err(why) => notes.push(why),
            }
        }
        let below_base = words(base.join("cgroup.subtree_control"));
        for c in Controller::ALL {
            if has(&below_base, c)
                && write(
                    &self.dir.join("cgroup.subtree_control"),
                    &format!("+{}", c.name()),
                )
                .is_ok()
            {
                self.places.push((c, Place::V2));
                continue;
            }
            let Some(v1) = discover::v1_dir(mounts, me, c) else {
                continue;
            };
            let d = v1.join(name);
            match std::fs::create_dir(&d) {
                Ok(()) => {
                    self.places.push((c, Place::V1));
                    self.v1.push((c, d));
                }
                Err(e) => notes.push(format!(
                    "no {} controller: cannot create a cgroup in `{}` ({})",
                    c.name(),
                    v1.display(),
                    reason(&e)
                )),
            }
        }
        notes
    }

    /// Move warden into `warden-TOKEN/supervisor` so its cgroup can hand controllers on.
    /// Only when warden is alone in its cgroup: moving anyone else is not warden's to do.
    fn evacuate(&self, base: &Path, controllers: &[Controller]) -> Result<Evacuation, String> {
        let names = controllers
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ");
        if !base.join("cgroup.type").exists() {
            return Err(format!(
                "{names} not enabled for children of the root cgroup, and warden does not change the root's"
            ));
        }
        let me = std::process::id().to_string();
        let procs = std::fs::read_to_string(base.join("cgroup.procs")).unwrap_or_default();
        if procs.split_whitespace().any(|p| p != me) {
            return Err(format!(
                "{names} not enabled below `{}`, which holds other processes besides warden (give warden a cgroup of its own, e.g. `systemd-run --scope -p Delegate=yes`)",
                base.display()
            ));
        }
        let leaf = self.dir.join(SUPERVISOR_LEAF);
        let fail =
            |what: &str, e: io::Error| format!("{names} not available: {what} ({})", reason(&e));
        std::fs::create_dir(&leaf)
            .map_err(|e| fail("cannot create warden's own leaf cgroup", e))?;
        if let Err(e) = write(&leaf.join("cgroup.procs"), "0") {
            let _ = std::fs::remove_dir(&leaf);
            return Err(fail("cannot move warden into its own leaf cgroup", e));
        }
        let enabled: Vec<Controller> = controllers
            .iter()
            .copied()
            .filter(|c| {
                write(
                    &base.join("cgroup.subtree_control"),
                    &format!("+{}", c.name()),
                )
                .is_ok()
            })
            .collect();
        if enabled.is_empty() {
            let _ = write(&base.join("cgroup.procs"), "0");
            let _ = std::fs::remove_dir(&leaf);
            return Err(format!(
                "{names} could not be enabled below `{}`",
                base.display()
            ));
        }
        Ok(Evacuation {
            base: base.to_path_buf(),
            enabled,
        })
    }
}

/// Remove warden's subtree: kill and remove what runs are left (after warden's death),
/// undo an evacuation (moving `others` and the caller back), remove the folders.
pub(crate) fn cleanup(
    dir: &Path,
    v1: &[PathBuf],
    evacuated: Option<(&Path, &[Controller])>,
    others: &[i32],
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let runs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != SUPERVISOR_LEAF))
        .collect();
    for run in &runs {
        let _ = write(&run.join("cgroup.kill"), "1");
    }
    for run in &runs {
        retry(deadline, || remove_dir(run));
    }
    for parent in v1 {
        for child in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            if child.path().is_dir() {
                retry(deadline, || remove_dir(&child.path()));
            }
        }
        retry(deadline, || remove_dir(parent));
    }
    if let Some((base, enabled)) = evacuated {
        for c in Controller::ALL {
            let _ = write(
                &dir.join("cgroup.subtree_control"),
                &format!("-{}", c.name()),
            );
        }
        for c in enabled {
            let _ = write(
                &base.join("cgroup.subtree_control"),
                &format!("-{}", c.name()),
            );
        }
        for pid in others {
            let _ = write(&base.join("cgroup.procs"), &pid.to_string());
        }
        let _ = write(&base.join("cgroup.procs"), "0");
        retry(deadline, || remove_dir(&dir.join(SUPERVISOR_LEAF)));
    }
    retry(deadline, || remove_dir(dir));
}

/// The guard's side: `args` are what [`Cgroups::guard_args`] gave it.
pub fn guard_cleanup(args: &[String]) {
    let mut dir = None;
    let mut v1 = Vec::new();
    let mut base = None;
    let mut enabled = Vec::new();
    for arg in args {
        match arg.split_once('=') {
            Some(("cgroup", d)) => dir = Some(PathBuf::from(d)),
            Some(("v1", d)) => v1.push(PathBuf::from(d)),
            Some(("base", d)) => base = Some(PathBuf::from(d)),
            Some(("enabled", list)) => enabled.extend(
                Controller::ALL
                    .into_iter()
                    .filter(|c| list.split(',').any(|n| n == c.name())),
            ),
            _ => {}
        }
    }
    if let Some(dir) = dir {
        cleanup(
            &dir,
            &v1,
            base.as_deref().map(|b| (b, enabled.as_slice())),
            &[],
        );
    }
}

/// Call `attempt` until it succeeds or `deadline` passes, with short growing pauses (a
/// cgroup stays busy for a moment after its last process is reaped).
fn retry(deadline: std::time::Instant, mut attempt: impl FnMut() -> io::Result<()>) {
    let mut pause = std::time::Duration::from_micros(200);
    while attempt().is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

fn describe(base: &Path, places: &[(Controller, Place)], notes: &[String]) -> String {
    let list = |p: Place| {
        places
            .iter()
            .filter(|(_, pp)| *pp == p)
            .map(|(c, _)| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (v2, v1) = (list(Place::V2), list(Place::V1));
    let mut text = format!(
        "cgroup v2 at `{}` (controllers: {}",
        base.display(),
        if v2.is_empty() { "none" } else { &v2 }
    );
    if !v1.is_empty() {
        text += &format!("; {v1} from cgroup v1");
    }
    text.push(')');
    if !places.iter().any(|(c, _)| *c == Controller::Memory) {
        text += "; memory figures from the process tree";
    }
    for note in notes {
        text += "; ";
        text += note;
    }
    text
}

fn reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => "permission denied".into(),
        Some(libc::EROFS) => "it is mounted read-only".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            let mut chars = text.chars();
            chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}
