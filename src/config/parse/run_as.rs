//! `user`, `group` and `umask` of a process: who it runs as.
//!
//! The user and group are looked up in the user database (`/etc/passwd`, `/etc/group`
//! or whatever NSS is configured with) so that a typo is a located error at `check` time
//! rather than a `fatal` process later; the spec keeps the names as written, and the
//! spawner resolves them again at each spawn (a user may be created or changed while
//! warden runs). When the config is loaded to be run ([`Ctx::to_run`]), switching to
//! another user or group without being root is an error too.

use toml::de::DeValue;

use nix::unistd::{Gid, Group, Uid, User};

use super::walk::{Ctx, Field, Table};

/// What the process table says about credentials.
pub(super) struct RunAs {
    pub user: Option<String>,
    pub group: Option<String>,
    pub umask: Option<u32>,
}

pub(super) fn run_as(ctx: &mut Ctx, t: &Table) -> RunAs {
    let user_field = t.field("user");
    let group_field = t.field("group");
    let user = user_field.as_ref().and_then(|f| lookup_user(ctx, f));
    let group = group_field.as_ref().and_then(|f| lookup_group(ctx, f));
    if let (Some(f), Some(Found::Number(uid))) = (&user_field, &user)
        && group_field.is_none()
    {
        f.error(
            ctx,
            format!("uid `{uid}` has no entry in the user database, so its group is unknown; set `group` too"),
        );
    }
    if ctx.to_run {
        check_privileges(
            ctx,
            user_field.as_ref(),
            &user,
            group_field.as_ref(),
            &group,
        );
    }
    RunAs {
        user: user.and(user_field.and_then(|f| f.value.as_str().map(str::to_string))),
        group: group.and(group_field.and_then(|f| f.value.as_str().map(str::to_string))),
        umask: t.field("umask").and_then(|f| umask(ctx, &f)),
    }
}

/// A user or group as found: with a database entry, or a bare number without one.
enum Found {
    Entry(u32),
    Number(u32),
}

impl Found {
    fn id(&self) -> u32 {
        match self {
            Found::Entry(id) | Found::Number(id) => *id,
        }
    }
}

fn lookup_user(ctx: &mut Ctx, f: &Field) -> Option<Found> {
    let name = f.non_empty_str(ctx)?;
    if let Ok(uid) = name.parse::<u32>() {
        return match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(_)) => Some(Found::Entry(uid)),
            Ok(None) => Some(Found::Number(uid)),
            Err(e) => lookup_failed(ctx, f, "user", name, e),
        };
    }
    match User::from_name(name) {
        Ok(Some(u)) => Some(Found::Entry(u.uid.as_raw())),
        Ok(None) => {
            f.error(
                ctx,
                format!("no user named `{name}` on this system; create it, or fix the name"),
            );
            None
        }
        Err(e) => lookup_failed(ctx, f, "user", name, e),
    }
}

fn lookup_group(ctx: &mut Ctx, f: &Field) -> Option<Found> {
    let name = f.non_empty_str(ctx)?;
    if let Ok(gid) = name.parse::<u32>() {
        return Some(Found::Number(gid));
    }
    match Group::from_name(name) {
        Ok(Some(g)) => Some(Found::Entry(g.gid.as_raw())),
        Ok(None) => {
            f.error(
                ctx,
                format!("no group named `{name}` on this system; create it, or fix the name"),
            );
            None
        }
        Err(e) => lookup_failed(ctx, f, "group", name, e),
    }
}

fn lookup_failed(
    ctx: &mut Ctx,
    f: &Field,
    what: &str,
    name: &str,
    e: nix::errno::Errno,
) -> Option<Found> {
    f.error(
        ctx,
        format!(
            "cannot look up the {what} `{name}`: {}",
            super::lower_first(e.desc())
        ),
    );
    None
}

/// Changing uid or gid needs root; asking for the ones warden already has does not.
fn check_privileges(
    ctx: &mut Ctx,
    user_field: Option<&Field>,
    user: &Option<Found>,
    group_field: Option<&Field>,
    group: &Option<Found>,
) {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        return;
    }
    if let (Some(f), Some(u)) = (user_field, user)
        && u.id() != euid.as_raw()
    {
        let shown = f.value.as_str().unwrap_or_default().to_string();
        f.error(
            ctx,
            format!("running a process as `{shown}` needs warden to run as root, but it runs as uid {euid}; start warden as root, or remove `user`"),
        );
    }
    if let (Some(f), Some(g)) = (group_field, group)
        && g.id() != Gid::effective().as_raw()
    {
        let shown = f.value.as_str().unwrap_or_default().to_string();
        f.error(
            ctx,
            format!("running a process with group `{shown}` needs warden to run as root, but it runs as uid {euid}; start warden as root, or remove `group`"),
        );
    }
}

/// `"027"` (octal digits, as `umask` prints them) or a TOML octal integer `0o027`.
fn umask(ctx: &mut Ctx, f: &Field) -> Option<u32> {
    const HINT: &str = "write it as octal digits in a string, like `\"027\"`";
    let parsed = match f.value {
        DeValue::String(s) => {
            let valid =
                !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
            valid.then(|| u32::from_str_radix(s, 8).ok()).flatten()
        }
        DeValue::Integer(i) if i.radix() == 8 => u32::from_str_radix(i.as_str(), 8).ok(),
        DeValue::Integer(i) if i.as_str().trim_start_matches('0').is_empty() => Some(0),
        DeValue::Integer(_) => {
            let shown = f.source(ctx).to_string();
            f.error(
                ctx,
                format!("`{shown}` would be read as a decimal number; {HINT}"),
            );
            return None;
        }
        _ => {
            f.type_error(ctx, "a umask like `\"027\"`");
            return None;
        }
    };
    match parsed {
        Some(mask) if mask <= 0o777 => Some(mask),
        _ => {
            let shown = f.source(ctx).to_string();
            f.error(
                ctx,
                format!("`{shown}` is not a umask; {HINT}, at most `\"777\"`"),
            );
            None
        }
    }
}
