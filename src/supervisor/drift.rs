//! Config drift: whether the config file on disk still says what runs.
//!
//! warden reloads by itself when the file is saved, so a difference lasts only while an
//! edit is rejected (invalid) or not yet applied. The file is read again only when its
//! size or modification time changed since it was last read, so asking costs one `stat`;
//! and it is asked only when a snapshot is built for someone, or a reload read the file.

use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A fingerprint of config text (within one warden process only).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

#[derive(Debug)]
pub struct ConfigDrift {
    path: PathBuf,
    /// The text that runs; `None` if it is unknown (then no drift is ever claimed).
    running: Option<u64>,
    /// The text on disk when last read; `None` if it could not be read.
    disk: Option<u64>,
    /// Size and modification time when last read.
    seen: Option<(u64, SystemTime)>,
}

impl ConfigDrift {
    pub fn new(path: &Path, running: Option<u64>) -> ConfigDrift {
        ConfigDrift {
            path: path.to_owned(),
            running,
            disk: running,
            seen: stamp(path),
        }
    }

    /// A reload read the file (`None`: it could not be read) and applied it if `applied`.
    pub fn read(&mut self, disk: Option<u64>, applied: bool) {
        self.disk = disk;
        self.seen = stamp(&self.path);
        if applied {
            self.running = disk;
        }
    }

    /// Whether the file on disk differs from what runs, re-reading it only if it changed.
    pub fn check(&mut self) -> bool {
        let Some(running) = self.running else {
            return false;
        };
        let now = stamp(&self.path);
        if now != self.seen {
            self.seen = now;
            self.disk = std::fs::read(&self.path).ok().map(|b| fingerprint(&b));
        }
        self.disk != Some(running)
    }
}

fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let md = std::fs::metadata(path).ok()?;
    Some((md.len(), md.modified().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_follows_the_file_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let mut d = ConfigDrift::new(&path, Some(fingerprint(b"a = 1\n")));
        assert!(!d.check());
        std::fs::write(&path, "a = 22\n").unwrap(); // another size: noticed by stat
        assert!(d.check());
        // A reload applies it.
        d.read(Some(fingerprint(b"a = 22\n")), true);
        assert!(!d.check());
        // A rejected edit is drift until the file is put back.
        std::fs::write(&path, "a = [\n").unwrap();
        d.read(Some(fingerprint(b"a = [\n")), false);
        assert!(d.check());
        std::fs::remove_file(&path).unwrap();
        assert!(d.check(), "a file that is gone differs from what runs");
        assert!(!ConfigDrift::new(&path, None).check(), "unknown: no claim");
    }
}
