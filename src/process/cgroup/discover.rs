//! Where warden's own cgroups are: its path in each hierarchy (`/proc/self/cgroup`) and
//! where each hierarchy is mounted (`/proc/self/mountinfo`). Pure parsing; nothing here
//! assumes `/sys/fs/cgroup`, because containers and hybrid hosts mount things elsewhere.

use std::path::{Path, PathBuf};

/// The resource controllers warden uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Controller {
    Memory,
    Cpu,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 3] = [Controller::Memory, Controller::Cpu, Controller::Pids];

    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }
}

/// One cgroup filesystem mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The cgroup the mount shows at its mount point (`/` unless a subtree is bind-mounted).
    pub root: String,
    pub point: PathBuf,
    /// `None` for cgroup v2; the bound controllers (`memory`, `cpu,cpuacct`…) for v1.
    pub v1_controllers: Option<Vec<String>>,
}

/// One line of `/proc/self/cgroup`: `ID:CONTROLLERS:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Empty for the v2 hierarchy (`0::/path`).
    pub controllers: Vec<String>,
    pub path: String,
}

/// The cgroup mounts of a `mountinfo` text.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        // `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER`
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let tail: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(point), Some(fstype)) = (fields.get(3), fields.get(4), tail.first())
        else {
            continue;
        };
        let v1_controllers = match *fstype {
            "cgroup2" => None,
            "cgroup" => Some(
                tail.get(2)
                    .unwrap_or(&"")
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                    .map(str::to_owned)
                    .collect(),
            ),
            _ => continue,
        };
        out.push(Mount {
            root: unescape(root),
            point: PathBuf::from(unescape(point)),
            v1_controllers,
        });
    }
    out
}

/// The lines of a `/proc/PID/cgroup` text.
pub fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some(Membership {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// The v2 path of a process (`0::/a/b` → `/a/b`).
pub fn v2_path(memberships: &[Membership]) -> Option<&str> {
    memberships
        .iter()
        .find(|m| m.controllers.is_empty())
        .map(|m| m.path.as_str())
}

/// The folder of the v2 cgroup at `path`, through the first mount that shows it.
pub fn v2_dir(mounts: &[Mount], path: &str) -> Option<PathBuf> {
    mounts
        .iter()
        .filter(|m| m.v1_controllers.is_none())
        .find_map(|m| under(m, path))
}

/// The folder of warden's own cgroup in the v1 hierarchy that has `controller`.
pub fn v1_dir(
    mounts: &[Mount],
    memberships: &[Membership],
    controller: Controller,
) -> Option<PathBuf> {
    let name = controller.name();
    let path = &memberships
        .iter()
        .find(|m| m.controllers.iter().any(|c| c == name))?
        .path;
    mounts
        .iter()
        .filter(|m| {
            m.v1_controllers
                .as_ref()
                .is_some_and(|cs| cs.iter().any(|c| c == name))
        })
        .find_map(|m| under(m, path))
}

/// `path` seen through `mount`, if the mount shows it.
fn under(mount: &Mount, path: &str) -> Option<PathBuf> {
    let root = mount.root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(join(&mount.point, rest))
}

/// `dir` + a cgroup path (`/a/b`), without letting the path climb out of `dir`.
pub fn join(dir: &Path, path: &str) -> PathBuf {
    let mut out = dir.to_path_buf();
    for part in path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
    {
        out.push(part);
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let n = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hybrid host like the one CI runs on: v2 without controllers beside v1 hierarchies.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_SELF: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/sessions/abc
1:cpu:/
0::/
";

    #[test]
    fn a_hybrid_host() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(mounts.len(), 5);
        let me = parse_proc_cgroup(HYBRID_SELF);
        let path = v2_path(&me).unwrap();
        assert_eq!(path, "/");
        assert_eq!(
            v2_dir(&mounts, path).unwrap(),
            Path::new("/sys/fs/cgroup/unified")
        );
        assert_eq!(
            v1_dir(&mounts, &me, Controller::Memory).unwrap(),
            Path::new("/sys/fs/cgroup/memory/sessions/abc")
        );
        assert_eq!(
            v1_dir(&mounts, &me, Controller::Pids).unwrap(),
            Path::new("/sys/fs/cgroup/pids")
        );
    }

    #[test]
    fn a_systemd_host_with_a_delegated_scope() {
        let mounts = parse_mountinfo(
            "29 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
        );
        let me = parse_proc_cgroup(
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope\n",
        );
        assert_eq!(
            v2_dir(&mounts, v2_path(&me).unwrap()).unwrap(),
            Path::new(
                "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope"
            )
        );
        assert_eq!(v1_dir(&mounts, &me, Controller::Memory), None);
    }

    #[test]
    fn a_bind_mounted_subtree_and_escaped_mount_points() {
        let mounts = parse_mountinfo(
            "50 40 0:26 /docker/abc /sys/fs/cgroup\\040x ro,nosuid - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(mounts[0].point, Path::new("/sys/fs/cgroup x"));
        assert_eq!(
            v2_dir(&mounts, "/docker/abc/sub").unwrap(),
            Path::new("/sys/fs/cgroup x/sub")
        );
        // A cgroup outside the mounted subtree is not visible through it.
        assert_eq!(v2_dir(&mounts, "/docker/abcd"), None);
        assert_eq!(v2_dir(&mounts, "/other"), None);
    }

    #[test]
    fn paths_cannot_climb_out() {
        assert_eq!(
            join(Path::new("/sys/fs/cgroup"), "/a/../../b/./c"),
            Path::new("/sys/fs/cgroup/a/b/c")
        );
    }
}
