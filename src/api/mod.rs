//! The control API: how clients (`warden status`, `restart`, `logs -f`, ...) and scripts
//! (the control FIFO) talk to a running supervisor.
//!
//! - [`protocol`]: the wire format, version 1: one JSON request per line in, JSON lines out.
//! - [`bind`]: claiming the socket path for `warden up`: the private folder, the lock
//!   that keeps a second supervisor out, stale-socket recovery, owner-only modes.
//! - [`server`]: the accept loop and one task per connection, with limits on everything a
//!   client controls (request size, idle time, number of connections, peer uid).
//! - [`fifo`]: the control FIFO (`control_fifo = true`): the same verbs, one per line.
//! - [`dispatch`]: requests with one answer, as `Control` messages to the actor, for the
//!   server, the FIFO and the in-process dashboard alike; `streams` (`logs -f`, `events`,
//!   `subscribe`) and `conn` (a connection's answers, deadlines and hang-ups) serve the
//!   server, none of them importing another front end.
//! - [`client`]: the blocking client the CLI commands use; [`tree`]: the `tree` answer
//!   as clients read it and order it, for `warden tree` and the dashboard alike.
//!
//! What this module must not do: decide anything about processes. Every verb becomes a
//! [`crate::supervisor::Control`] message to the actor, whose reply is forwarded as is.
//! The set of verbs is closed: nothing here runs a command or reads a path a client names.
//!
//! # Where the socket lives
//!
//! [`socket_path`]: `--socket` > `WARDEN_SOCKET` > `[supervisor] socket` > a default
//! derived from the config file, so that `warden status` run beside `warden.toml` finds
//! the supervisor that `warden up` started there. The default is
//! `$XDG_RUNTIME_DIR/warden/<hash>.sock`, or `/tmp/warden-<euid>/<hash>.sock` without
//! `XDG_RUNTIME_DIR`, where `<hash>` is FNV-1a 64 of the absolute config path in 16 hex
//! digits (stable across builds and versions, unlike `DefaultHasher`). Beside the socket:
//! `<hash>.lock` (held by the running supervisor, holds its pid) and, with
//! `control_fifo = true`, the FIFO `<hash>.control`.

pub mod bind;
pub mod client;
mod conn;
pub mod dispatch;
pub mod fifo;
mod lines;
pub mod metrics;
pub mod protocol;
pub mod server;
mod streams;
pub mod tree;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use bind::{BindError, Bound};
pub use server::Server;

/// The environment variable that names the socket, below `--socket` and above the config.
pub const SOCKET_ENV: &str = "WARDEN_SOCKET";

/// The longest socket path a `sockaddr_un` takes (108 bytes with the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// The control socket for the config at `config_path`: `cli` (`--socket`), else
/// `$WARDEN_SOCKET`, else `spec_socket` (`[supervisor] socket`), else the default
/// (see the module docs). Pure apart from reading the environment and the cwd.
pub fn socket_path(config_path: &Path, spec_socket: Option<&Path>, cli: Option<&Path>) -> PathBuf {
    if let Some(p) = cli {
        return p.to_owned();
    }
    if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|v| !v.is_empty()) {
        return p.into();
    }
    if let Some(p) = spec_socket {
        return p.to_owned();
    }
    default_socket_path(config_path)
}

/// Whether the socket path is chosen by the user (`--socket` or `WARDEN_SOCKET`) rather
/// than derived from a config file; clients word their errors accordingly.
pub fn socket_overridden(cli: Option<&Path>) -> bool {
    cli.is_some() || std::env::var_os(SOCKET_ENV).is_some_and(|v| !v.is_empty())
}

/// `<default_dir>/<hash of the absolute config path>.sock`.
pub fn default_socket_path(config_path: &Path) -> PathBuf {
    let hash = fnv1a64(absolute(config_path).as_os_str().as_bytes());
    default_dir().join(format!("{hash:016x}.sock"))
}

/// `$XDG_RUNTIME_DIR/warden` if that variable holds an absolute path, else
/// `/tmp/warden-<euid>`. Created by `warden up` with mode 0700.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join("warden"),
        _ => PathBuf::from(format!("/tmp/warden-{}", nix::unistd::geteuid())),
    }
}

/// The FIFO of `control_fifo = true`: the socket path with `.sock` replaced by `.control`
/// (or `.control` appended when the socket name does not end in `.sock`).
pub fn fifo_path(socket: &Path) -> PathBuf {
    sibling(socket, "control")
}

/// The lock file the running supervisor holds: the socket path with `.sock` replaced by
/// `.lock` (or `.lock` appended).
pub fn lock_path(socket: &Path) -> PathBuf {
    sibling(socket, "lock")
}

fn sibling(socket: &Path, ext: &str) -> PathBuf {
    let bytes = socket.as_os_str().as_bytes();
    let stem = bytes.strip_suffix(b".sock").unwrap_or(bytes);
    let mut name = OsString::from(std::ffi::OsStr::from_bytes(stem));
    name.push(".");
    name.push(ext);
    name.into()
}

/// The absolute form of `path` without `.` components or doubled slashes; symlinks and
/// `..` are kept (this must agree between a supervisor and a client that cannot read the
/// config, so it never touches the file system beyond the cwd).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .components()
        .collect()
}

/// FNV-1a, 64 bits: tiny, and its output never changes between Rust releases.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_default_path_depends_on_the_absolute_config_path_only() {
        let cwd = std::env::current_dir().unwrap();
        let a = default_socket_path(Path::new("warden.toml"));
        assert_eq!(a, default_socket_path(Path::new("./warden.toml")));
        assert_eq!(a, default_socket_path(&cwd.join("warden.toml")));
        assert_eq!(a, default_socket_path(&cwd.join(".//warden.toml")));
        assert_ne!(a, default_socket_path(Path::new("other.toml")));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), "0123456789abcdef.sock".len(), "{name}");
        assert!(a.as_os_str().len() <= MAX_SOCKET_PATH);
    }

    #[test]
    fn explicit_paths_win_in_order() {
        let cli = Path::new("/run/cli.sock");
        let spec = Path::new("/run/spec.sock");
        // WARDEN_SOCKET is not touched here: tests run in parallel in one process.
        assert_eq!(socket_path(Path::new("w.toml"), Some(spec), Some(cli)), cli);
        if std::env::var_os(SOCKET_ENV).is_none() {
            assert_eq!(socket_path(Path::new("w.toml"), Some(spec), None), spec);
            assert_eq!(
                socket_path(Path::new("w.toml"), None, None),
                default_socket_path(Path::new("w.toml"))
            );
        }
    }

    #[test]
    fn siblings_replace_the_sock_extension() {
        assert_eq!(fifo_path(Path::new("/a/b.sock")), Path::new("/a/b.control"));
        assert_eq!(lock_path(Path::new("/a/b.sock")), Path::new("/a/b.lock"));
        assert_eq!(fifo_path(Path::new("/a/ctl")), Path::new("/a/ctl.control"));
    }
}
