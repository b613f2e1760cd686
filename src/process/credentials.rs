//! Who a child runs as: `user` and `group` resolved in the user database, before the fork.
//!
//! The child side of a spawn runs in warden's memory until `execve` and may only make raw
//! system calls, so everything is looked up here, in the parent: the uid, the primary
//! gid, the supplementary groups (`getgrouplist`, as `initgroups` would set them) and the
//! variables a login sets (`HOME`, `USER`, `LOGNAME`). Lookups may block (NSS can reach
//! the network), so callers run [`Credentials::resolve`] off the supervisor's loop.
//! This module decides nothing: whether switching is allowed was checked with the config.

/// The identity a child takes before `execve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `None`: keep warden's uid (a `group` without a `user`).
    pub uid: Option<u32>,
    pub gid: u32,
    /// The complete supplementary group list.
    pub groups: Vec<u32>,
    /// `HOME`, `USER` and `LOGNAME` from the user's entry (empty without a `user`). The
    /// process's own `env` wins over them.
    pub env: Vec<(String, String)>,
    /// How to name this identity in messages: `user nobody`, `group www-data`.
    pub described: String,
}

impl Credentials {
    /// Look up `user` (a name or a uid in digits) and `group` (a name or a gid). With a
    /// user and no group, the group is the user's own. Blocking.
    pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Credentials, String> {
        let gid = group.map(resolve_group).transpose()?;
        let Some(user) = user else {
            let gid = gid.ok_or("neither a user nor a group to run as")?;
            return Ok(Credentials {
                uid: None,
                gid,
                groups: vec![gid],
                env: Vec::new(),
                described: format!("group `{}`", group.unwrap_or_default()),
            });
        };
        let entry = match user.parse::<u32>() {
            Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
            Err(_) => nix::unistd::User::from_name(user),
        }
        .map_err(|e| format!("cannot look up user `{user}`: {}", e.desc()))?;
        let described = format!("user `{user}`");
        let Some(entry) = entry else {
            // A bare uid without an entry (the config requires `group` then).
            let uid = user
                .parse::<u32>()
                .map_err(|_| format!("no user named `{user}` on this system"))?;
            let gid = gid.ok_or_else(|| {
                format!("uid `{uid}` has no entry in the user database and no `group` was given")
            })?;
            return Ok(Credentials {
                uid: Some(uid),
                gid,
                groups: vec![gid],
                env: login_env("/", user),
                described,
            });
        };
        let gid = gid.unwrap_or(entry.gid.as_raw());
        let name = std::ffi::CString::new(entry.name.as_bytes())
            .map_err(|_| format!("the name of user `{user}` contains a NUL byte"))?;
        let groups = nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid))
            .map_err(|e| format!("cannot list the groups of user `{user}`: {}", e.desc()))?
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        Ok(Credentials {
            uid: Some(entry.uid.as_raw()),
            gid,
            groups,
            env: login_env(&entry.dir.to_string_lossy(), &entry.name),
            described,
        })
    }

    /// Whether `key` is one of the variables these credentials set.
    pub fn sets(&self, key: &str) -> bool {
        self.env.iter().any(|(k, _)| k == key)
    }
}

/// The variables a process started on behalf of a user expects (systemd's `User=` sets
/// the same, minus `SHELL`).
pub const LOGIN_VARS: [&str; 3] = ["HOME", "USER", "LOGNAME"];

fn login_env(home: &str, name: &str) -> Vec<(String, String)> {
    vec![
        ("HOME".into(), home.into()),
        ("USER".into(), name.into()),
        ("LOGNAME".into(), name.into()),
    ]
}

fn resolve_group(group: &str) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("no group named `{group}` on this system")),
        Err(e) => Err(format!("cannot look up group `{group}`: {}", e.desc())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_with_its_groups_and_home() {
        let c = Credentials::resolve(Some("root"), None).unwrap();
        assert_eq!(c.uid, Some(0));
        assert_eq!(c.gid, 0);
        assert!(c.groups.contains(&0), "{:?}", c.groups);
        assert!(c.sets("HOME") && c.sets("USER") && c.sets("LOGNAME"));
        assert!(c.env.contains(&("USER".into(), "root".into())));
    }

    #[test]
    fn a_group_overrides_the_primary_one() {
        let c = Credentials::resolve(Some("0"), Some("12345")).unwrap();
        assert_eq!((c.uid, c.gid), (Some(0), 12345));
        assert!(c.groups.contains(&12345));
        let g = Credentials::resolve(None, Some("12345")).unwrap();
        assert_eq!((g.uid, g.gid, g.groups), (None, 12345, vec![12345]));
        assert!(g.env.is_empty());
    }

    #[test]
    fn unknown_names_are_explained() {
        let e = Credentials::resolve(Some("no-such-user-here"), None).unwrap_err();
        assert_eq!(e, "no user named `no-such-user-here` on this system");
        let e = Credentials::resolve(None, Some("no-such-group-here")).unwrap_err();
        assert_eq!(e, "no group named `no-such-group-here` on this system");
    }
}
