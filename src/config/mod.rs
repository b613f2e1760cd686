//! Config loading: TOML text → validated [`Spec`].
//!
//! Two steps, as ripgrep does with its args: a walk over the spanned TOML tree that
//! collects every problem (unknown keys, wrong types, bad durations/sizes/signals), then
//! cross-checks (dependencies, cycles, names). Every error carries file, line, column and
//! key path. Nothing here touches processes; nothing elsewhere re-validates.

mod error;
mod instances;
mod parse;
pub mod spec;
pub mod units;
pub mod watch;

pub use error::{ConfigError, ConfigErrors};
pub use instances::{InstanceSpec, instances_of, replica_of};
pub use spec::*;

use std::path::Path;

/// Read and validate the config at `path`. Relative paths inside it are resolved against
/// its folder. All errors are returned at once.
pub fn load(path: &Path) -> Result<Spec, ConfigErrors> {
    parse::load(path, false)
}

/// [`load`] for a config this process is about to run (`up`, a reload): what this
/// process lacks the privileges for (`user` when warden is not root) is an error too.
/// `check` does not ask this, as a config is often checked by someone else than the user
/// who will run it.
pub fn load_to_run(path: &Path) -> Result<Spec, ConfigErrors> {
    parse::load(path, true)
}

/// Validate config text as if it had been read from `path` (for tests and reload previews).
pub fn load_str(path: &Path, text: &str) -> Result<Spec, ConfigErrors> {
    parse::load_str(path, text, false)
}

/// [`load_to_run`], and the bytes it validated (`None` if the file could not be read), so
/// that a caller can tell later whether the file on disk still says the same.
pub fn load_with_text(path: &Path) -> (Result<Spec, ConfigErrors>, Option<Vec<u8>>) {
    match std::fs::read(path) {
        Ok(bytes) => {
            let spec = match std::str::from_utf8(&bytes) {
                Ok(text) => parse::load_str(path, text, true),
                // The full error (where the bad byte is) comes from `load`.
                Err(_) => parse::load(path, true),
            };
            (spec, Some(bytes))
        }
        Err(_) => (parse::load(path, true), None),
    }
}
