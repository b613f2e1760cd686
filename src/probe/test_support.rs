//! Helpers shared by the probe tests.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::config::spec::ProbeTarget;
use crate::process::Spawner;

use super::ProbeContext;

/// How late a timed-out probe may return and still count as bounded by its timeout
/// (a loaded 2-core machine schedules late).
pub const MARGIN: Duration = Duration::from_millis(500);

/// The timeout of probes that are expected to pass.
pub const PATIENT: Duration = Duration::from_secs(5);

/// One spawner for every test of the binary: orphan reaping goes by the spawner's
/// registry, so two registries in one process could reap each other's children.
pub fn spawner() -> Spawner {
    static SPAWNER: OnceLock<Spawner> = OnceLock::new();
    SPAWNER
        .get_or_init(|| Spawner::start().expect("the spawner threads"))
        .clone()
}

pub fn ctx() -> ProbeContext {
    ctx_with_env(Vec::new())
}

pub fn ctx_with_env(extra: Vec<(String, String)>) -> ProbeContext {
    let mut env = vec![(
        "PATH".to_string(),
        "/usr/local/bin:/usr/bin:/bin".to_string(),
    )];
    env.extend(extra);
    ProbeContext {
        spawner: spawner(),
        cwd: std::env::temp_dir(),
        env: env.into(),
        run_id: Arc::from("probe-test"),
        credentials: None,
        umask: None,
    }
}

pub fn tcp(addr: &str, send: Option<&str>, expect: Option<&str>) -> ProbeTarget {
    ProbeTarget::Tcp {
        addr: addr.into(),
        send: send.map(Into::into),
        expect: expect.map(Into::into),
    }
}

/// A temp folder with a short path (socket paths are limited to 108 bytes).
pub fn short_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wp")
        .tempdir_in("/tmp")
        .expect("temp dir")
}
