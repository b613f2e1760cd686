//! Replicas in the dashboard: which declared process an instance row belongs to, how
//! many replicas it runs against how many the file declares, and the `+`/`-` keys, which
//! send the same `scale` request as `warden scale NAME N`.

use super::*;
use crate::supervisor::status::ProcessStatus;

/// The declared process an instance belongs to: `worker` for `worker.2` (replicas are
/// always indexed once scaled), the name itself for a process that runs alone.
pub fn declared_name(p: &ProcessStatus) -> &str {
    let replicated = p.replicas_declared > 1 || p.replicas_wanted > 1 || p.drift;
    match p.name.rsplit_once('.') {
        Some((base, index)) if replicated && index.parse::<u32>().is_ok() => base,
        _ => &p.name,
    }
}

/// How many replicas `p`'s process runs now: what status says, or (from a supervisor too
/// old to say) how many instances of it the snapshot has.
pub fn wanted(snapshot: &Snapshot, p: &ProcessStatus) -> u32 {
    if p.replicas_wanted > 0 {
        return p.replicas_wanted;
    }
    let base = declared_name(p);
    snapshot
        .processes
        .iter()
        .filter(|q| declared_name(q) == base)
        .count() as u32
}

/// Processes scaled away from the file: `(process, wanted, declared)`, once each, in
/// config order.
pub fn drifted(snapshot: &Snapshot) -> Vec<(&str, u32, u32)> {
    let mut out: Vec<(&str, u32, u32)> = Vec::new();
    for p in snapshot.processes.iter().filter(|p| p.drift) {
        let base = declared_name(p);
        if !out.iter().any(|(b, ..)| *b == base) {
            out.push((base, p.replicas_wanted, p.replicas_declared));
        }
    }
    out
}

/// One replica more (`delta` 1) or fewer (-1) of the selected process (in the detail or
/// tree view, the one shown). Fewer asks first: it stops the highest index.
pub(super) fn scale(app: &mut App, delta: i32, cmds: &mut Vec<Cmd>) {
    let name = match (app.screen, &app.detail, &app.tree) {
        (Screen::Tree, _, Some(tv)) => Some(tv.name.clone()),
        (Screen::Detail, Some(d), _) => Some(d.name.clone()),
        _ => app.selected.clone(),
    };
    let Some(p) = name.and_then(|n| app.snapshot.process(&n)) else {
        return;
    };
    let base = declared_name(p).to_string();
    let now = match app.scaling.get(&base) {
        Some((asked, _)) => *asked,
        None => wanted(&app.snapshot, p),
    };
    let Some(to) = now.checked_add_signed(delta).filter(|n| *n >= 1) else {
        app.say(
            Level::Bad,
            &format!("`{base}` runs 1 replica, the fewest there can be (x stops it)"),
        );
        return;
    };
    let what = format!("scale {base} to {to}");
    let act = Cmd::Act {
        what: what.clone(),
        request: Request::Scale {
            name: base.clone(),
            replicas: to,
        },
    };
    if delta > 0 {
        app.say(Level::Info, &format!("{what}…"));
        sent(app, &act);
        cmds.push(act);
        return;
    }
    // Replicas are `base.0` … `base.{now-1}` once scaled; the last one goes.
    app.overlay = Some(Overlay::Confirm(Confirm {
        title: format!("Scale {base} down to {to}?"),
        body: vec![format!(
            "  {base}.{} stops (the highest index first)",
            now - 1
        )],
        yes: format!("Enter/y: scale to {to}"),
        no: "Esc/n: cancel".into(),
        doing: format!("{what}…"),
        then: vec![act],
    }));
}

/// A scale request is on its way (sent, or confirmed): count further presses from it.
pub(super) fn sent(app: &mut App, cmd: &Cmd) {
    if let Cmd::Act {
        request: Request::Scale { name, replicas },
        ..
    } = cmd
    {
        app.scaling.insert(name.clone(), (*replicas, false));
    }
}

/// An action's answer came: a failed scale is forgotten at once, a done one once the
/// next snapshot (which has it) arrives.
pub(super) fn answered(app: &mut App, what: &str, ok: bool) {
    let Some(name) = what
        .strip_prefix("scale ")
        .and_then(|rest| rest.rsplit_once(" to "))
        .map(|(name, _)| name.to_string())
    else {
        return;
    };
    if ok {
        if let Some(entry) = app.scaling.get_mut(&name) {
            entry.1 = true;
        }
    } else {
        app.scaling.remove(&name);
    }
}
