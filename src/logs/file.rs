//! The per-process log file: opened safely, rotated by size, reopened when moved away.
//!
//! Rules it keeps:
//! - never follow a symlink at the log path (`O_NOFOLLOW`): a planted link would have
//!   child output appended to whatever it points at;
//! - never truncate or seek an existing file (`O_APPEND`, no `O_TRUNC`): a device or a
//!   FIFO works as a log path, and is never rotated;
//! - never stop or panic on a write error (disk full, EIO, ...): the data of that write is
//!   dropped and counted, the error reported (as a notice) at most once per [`WARN_EVERY`],
//!   and the next write tries again;
//! - start warden's note about lost data on a line of its own, even when the write that
//!   failed stopped in the middle of a record;
//! - notice, at most once per [`CHECK_EVERY`] and only when writing (no timer), that the
//!   file was deleted or moved away (logrotate's `mv` + `create`) and reopen the path.
//!
//! Every call here may block (a FIFO, a hung mount): only the log writer's worker threads
//! use it (see `writer.rs`).

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memchr::{memchr, memrchr};
use nix::fcntl::OFlag;

/// Called with a line for the user (shown by `up` and `warden events`). Defined here, at
/// the bottom of the log stack, where notices start; the writer and the sink pass it down.
pub type Notices = Arc<dyn Fn(String) + Send + Sync>;

/// How often the path is compared with the open file.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// More old files than this is a config mistake; rotation renames each of them.
pub const MAX_KEEP: u32 = 1000;
/// How often a failing log file is reported.
pub const WARN_EVERY: Duration = Duration::from_secs(2);

pub struct LogFile {
    path: PathBuf,
    /// `None` only after a reopen for rotation failed; every write tries again.
    file: Option<File>,
    /// `(st_dev, st_ino)` of `file`.
    id: (u64, u64),
    /// Rotation applies to regular files only, never to a device or a FIFO.
    regular: bool,
    size: u64,
    /// 0: never rotate.
    max_size: u64,
    keep: u32,
    check_every: Duration,
    last_check: Instant,
    /// After a failed rotation, the next attempt waits until then.
    rotate_after: Option<Instant>,
    last_warn: Option<Instant>,
    /// Bytes dropped since the last write that went through whole.
    gap: u64,
    dropped: Arc<AtomicU64>,
    /// The last byte written was not a newline: a half-written record is in the file.
    mid_line: bool,
    notices: Option<Notices>,
    /// Who owns the file (and every file rotation opens): the process's user, so that
    /// it can read its own log whatever warden's umask.
    owner: Option<(Option<u32>, u32)>,
}

impl std::fmt::Debug for LogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFile")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("gap", &self.gap)
            .finish_non_exhaustive()
    }
}

impl LogFile {
    /// Opens (creating it, and its folder, if missing) the log file at `path` for
    /// appending. Fails, naming the path, if it cannot be opened or is a symlink. Lost
    /// bytes are added to `dropped`; warnings go to `notices` (else to the log).
    pub fn open(
        path: &Path,
        max_size: u64,
        keep: u32,
        dropped: Arc<AtomicU64>,
        notices: Option<Notices>,
    ) -> io::Result<LogFile> {
        let file = open_file(path)?;
        let meta = file
            .metadata()
            .map_err(|e| with_path(e, "cannot stat log file", path))?;
        Ok(LogFile {
            path: path.to_owned(),
            file: Some(file),
            id: (meta.dev(), meta.ino()),
            regular: meta.is_file(),
            size: meta.len(),
            max_size,
            keep: keep.min(MAX_KEEP),
            check_every: CHECK_EVERY,
            last_check: Instant::now(),
            rotate_after: None,
            last_warn: None,
            gap: 0,
            dropped,
            mid_line: false,
            notices,
            owner: None,
        })
    }

    /// `bytes` were lost before they reached this file (counted by the caller): the next
    /// note reports them with the file's own losses.
    pub fn lost(&mut self, bytes: u64) {
        self.gap += bytes;
    }

    /// Give the file, and every file opened later at the path, to `uid` (`None`: keep
    /// the owner) and `gid`. Best effort, like every write.
    pub fn set_owner(&mut self, uid: Option<u32>, gid: u32) {
        self.owner = Some((uid, gid));
        self.chown();
    }

    fn chown(&self) {
        if let (Some(file), Some((uid, gid)), true) = (&self.file, self.owner, self.regular) {
            let _ = std::os::unix::fs::fchown(file, uid, Some(gid));
        }
    }

    #[cfg(test)]
    pub(crate) fn dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }

    /// Bytes dropped since the last write that went through whole (0 when healthy).
    pub fn gap(&self) -> u64 {
        self.gap
    }

    #[cfg(test)]
    pub(crate) fn set_check_interval(&mut self, every: Duration) {
        self.check_every = every;
    }

    /// Appends `data`, rotating first if it would not fit. Never fails: see the module
    /// documentation for what happens on errors.
    pub fn write(&mut self, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let now = Instant::now();
        if self.file.is_none() {
            self.reopen(now);
        } else if now.duration_since(self.last_check) >= self.check_every {
            self.check(now);
        }
        let mut just_rotated = false;
        while self.rotates() && self.size.saturating_add(data.len() as u64) > self.max_size {
            // Cut at the last newline that fits, so that records are not split between
            // files when it can be helped.
            let room = self
                .max_size
                .saturating_sub(self.size)
                .min(data.len() as u64) as usize;
            let cut = match memrchr(b'\n', &data[..room]) {
                Some(i) => i + 1,
                None if self.size > 0 && !just_rotated => 0,
                // An empty file and not one line fits: the line goes in whole.
                None => memchr(b'\n', data).map_or(data.len(), |i| i + 1),
            };
            self.write_raw(&data[..cut], now);
            data = &data[cut..];
            if data.is_empty() || !self.rotate(now) {
                break;
            }
            just_rotated = true;
        }
        self.write_raw(data, now);
    }

    fn rotates(&self) -> bool {
        self.regular
            && self.max_size > 0
            && self.file.is_some()
            && self.rotate_after.is_none_or(|t| Instant::now() >= t)
    }

    /// Writes warden's own note (about data lost earlier) if the file takes it, on a line
    /// of its own; the note itself is not counted as lost if it does not go in.
    pub fn write_note(&mut self, note: &[u8]) {
        if self.mid_line && self.try_write(b"\n").is_err() {
            return;
        }
        let _ = self.try_write(note);
    }

    fn write_raw(&mut self, data: &[u8], now: Instant) {
        if let Err((unwritten, error)) = self.try_write(data) {
            self.lose(unwritten, &error, now);
        }
    }

    /// On error: how many bytes were not written, and why.
    fn try_write(&mut self, data: &[u8]) -> Result<(), (usize, io::Error)> {
        if data.is_empty() {
            return Ok(());
        }
        let Some(file) = &mut self.file else {
            return Err((
                data.len(),
                io::Error::new(io::ErrorKind::NotFound, "log file is not open"),
            ));
        };
        let mut written = 0;
        let error = loop {
            if written == data.len() {
                break None;
            }
            match file.write(&data[written..]) {
                Ok(0) => break Some(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        self.size += written as u64;
        if written > 0 {
            self.mid_line = data[written - 1] != b'\n';
        }
        if let Some(error) = error {
            return Err((data.len() - written, error));
        }
        if self.gap > 0 {
            self.say(format!(
                "log file `{}` is writable again ({} bytes were lost)",
                self.path.display(),
                self.gap
            ));
            self.gap = 0;
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn replace_file(&mut self, file: File) {
        self.file = Some(file);
    }

    fn lose(&mut self, bytes: usize, error: &io::Error, now: Instant) {
        self.gap += bytes as u64;
        let total = self.dropped.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        if self
            .last_warn
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            self.last_warn = Some(now);
            self.say(format!(
                "cannot write log file `{}`: {}; its output is dropped ({total} bytes so far) until a write works again",
                self.path.display(),
                describe(error)
            ));
        }
    }

    /// A warning for the user: a notice (shown by `up` and `events`) when someone listens.
    fn say(&self, text: String) {
        match &self.notices {
            Some(notices) => notices(text),
            None => tracing::warn!("{text}"),
        }
    }

    fn warn(&mut self, now: Instant, what: &str, error: &io::Error) {
        if self
            .last_warn
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            self.last_warn = Some(now);
            self.say(format!(
                "{what} `{}`: {}",
                self.path.display(),
                describe(error)
            ));
        }
    }

    /// Reopens the path if the open file is no longer the one at the path.
    fn check(&mut self, now: Instant) {
        self.last_check = now;
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.id => {
                // Someone may have truncated it (copytruncate).
                if let Some(Ok(meta)) = self.file.as_ref().map(File::metadata) {
                    self.size = meta.len();
                }
            }
            Ok(_) => {
                self.reopen(now);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.reopen(now);
            }
            // The folder may have become unreadable: keep writing where we are.
            Err(_) => {}
        }
    }

    /// Opens the path afresh. On failure the current file, if any, is kept: its data
    /// is not lost, and the next check tries again.
    fn reopen(&mut self, now: Instant) -> bool {
        self.last_check = now;
        match open_file(&self.path).and_then(|f| f.metadata().map(|m| (f, m))) {
            Ok((file, meta)) => {
                self.file = Some(file);
                self.id = (meta.dev(), meta.ino());
                self.regular = meta.is_file();
                self.size = meta.len();
                self.mid_line = false;
                self.chown();
                true
            }
            Err(e) => {
                self.warn(now, "cannot reopen log file", &e);
                false
            }
        }
    }

    /// Shifts `x.1..x.keep-1` up by one, moves `x` to `x.1` and opens a new `x`; with
    /// `keep = 0`, removes `x` and opens a new one. Returns whether a fresh file is open.
    fn rotate(&mut self, now: Instant) -> bool {
        if let Err(e) = self.shift_old_files() {
            self.warn(now, "cannot rotate log file", &e);
            self.rotate_after = Some(now + WARN_EVERY);
            return false;
        }
        self.rotate_after = None;
        // The old file is gone from the path: nothing more may go into it.
        self.file = None;
        self.size = 0;
        self.reopen(now)
    }

    fn shift_old_files(&self) -> io::Result<()> {
        let ignore_missing = |r: io::Result<()>| match r {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        };
        if self.keep == 0 {
            return ignore_missing(fs::remove_file(&self.path));
        }
        // Files beyond `keep`, left by a config that kept more.
        for k in self.keep + 1..=MAX_KEEP + 1 {
            if fs::remove_file(self.numbered(k)).is_err() {
                break;
            }
        }
        for k in (1..self.keep).rev() {
            ignore_missing(fs::rename(self.numbered(k), self.numbered(k + 1)))?;
        }
        // Already gone (deleted since the last check): nothing to move.
        ignore_missing(fs::rename(&self.path, self.numbered(1)))
    }

    /// `x.log` → `x.log.k`.
    fn numbered(&self, k: u32) -> PathBuf {
        let mut name = OsString::from(self.path.as_os_str());
        name.push(format!(".{k}"));
        PathBuf::from(name)
    }
}

fn open_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY).bits());
    let opened = match options.open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .map_err(|e| with_path(e, "cannot create log folder", parent))?;
                options.open(path)
            }
            _ => Err(e),
        },
        opened => opened,
    };
    opened.map_err(|e| {
        let is_symlink = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if e.raw_os_error() == Some(libc::ELOOP) && is_symlink {
            io::Error::new(
                e.kind(),
                format!(
                    "log file `{}` is a symlink: refusing to follow it",
                    path.display()
                ),
            )
        } else {
            with_path(e, "cannot open log file", path)
        }
    })
}

/// `No space left on device (os error 28)` → `no space left on device`.
fn describe(error: &io::Error) -> String {
    let text = match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => error.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// `error`, said with what was being done and to which path. The system error stays
/// readable through [`os_error`], so that callers can still tell "out of descriptors"
/// (worth another try) from "permission denied".
fn with_path(error: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(
        error.kind(),
        Located {
            text: format!("{what} `{}`: {error}", path.display()),
            errno: error.raw_os_error(),
        },
    )
}

#[derive(Debug)]
struct Located {
    text: String,
    errno: Option<i32>,
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Located {}

/// The system error number behind `error`, also when [`with_path`] put it in words.
pub fn os_error(error: &io::Error) -> Option<i32> {
    error.raw_os_error().or_else(|| {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Located>())
            .and_then(|located| located.errno)
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    impl LogFile {
        fn open_test(path: &Path, max_size: u64, keep: u32) -> io::Result<LogFile> {
            LogFile::open(path, max_size, keep, Arc::default(), None)
        }
    }

    fn read(path: &Path) -> Vec<u8> {
        fs::read(path).unwrap_or_default()
    }

    /// `x.log.keep`, ..., `x.log.1`, `x.log` concatenated: the whole history, oldest first.
    fn history(file: &LogFile, keep: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for k in (1..=keep).rev() {
            out.extend(read(&file.numbered(k)));
        }
        out.extend(read(&file.path));
        out
    }

    fn lines(count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| format!("line {i:05} {}\n", "x".repeat(i % 37)).into_bytes())
            .collect()
    }

    #[test]
    fn creates_the_folder_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/web.log");
        fs::create_dir(dir.path().join("a")).unwrap();
        fs::write(dir.path().join("a/existing"), b"").unwrap();
        let mut file = LogFile::open_test(&path, 0, 0).unwrap();
        file.write(b"one\n");
        drop(file);
        let mut file = LogFile::open_test(&path, 0, 0).unwrap();
        file.write(b"two\n");
        assert_eq!(read(&path), b"one\ntwo\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("a/b")), 0o755 & !umask());
        assert_eq!(mode(&path), 0o644 & !umask());
    }

    fn umask() -> u32 {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
    }

    #[test]
    fn a_symlink_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious.conf");
        fs::write(&target, b"precious").unwrap();
        let link = dir.path().join("web.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let error = LogFile::open_test(&link, 0, 0).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("symlink"), "{message}");
        assert!(message.contains(&link.display().to_string()), "{message}");
        assert_eq!(read(&target), b"precious");
    }

    #[test]
    fn rotation_keeps_keep_files_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let mut file = LogFile::open_test(&path, 1000, 3).unwrap();
        let mut written = Vec::new();
        for line in lines(120) {
            file.write(&line);
            written.extend(line);
        }
        assert!(
            written.len() > 2000 && written.len() < 3800,
            "{}",
            written.len()
        );
        assert_eq!(history(&file, 3), written);
        for k in 1..=3 {
            let size = fs::metadata(file.numbered(k)).unwrap().len();
            assert!(size <= 1000 && size > 900, "{k}: {size}");
        }
        assert!(!file.numbered(4).exists());

        // More than keep + 1 files' worth: the oldest are dropped, the newest kept whole.
        for line in lines(400) {
            file.write(&line);
            written.extend(line);
        }
        let kept = history(&file, 3);
        assert!(written.ends_with(&kept) && kept.len() > 3000);
        assert!(!file.numbered(4).exists());
        assert_eq!(file.dropped_counter().load(Ordering::Relaxed), 0);
    }

    #[test]
    fn rotation_splits_a_big_write_at_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let mut file = LogFile::open_test(&path, 100, 9).unwrap();
        let chunk: Vec<u8> = lines(20).concat();
        file.write(&chunk);
        assert_eq!(history(&file, 9), chunk);
        for k in 1..=4 {
            let old = read(&file.numbered(k));
            assert!(
                old.len() <= 100 && old.ends_with(b"\n"),
                "{k}: {}",
                old.len()
            );
        }
    }

    #[test]
    fn a_line_longer_than_max_size_goes_in_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let mut file = LogFile::open_test(&path, 10, 2).unwrap();
        file.write(b"short\n");
        file.write(b"a line much longer than ten bytes\nnext\n");
        assert_eq!(read(&file.numbered(2)), b"short\n");
        assert_eq!(
            read(&file.numbered(1)),
            b"a line much longer than ten bytes\n"
        );
        assert_eq!(read(&path), b"next\n");
    }

    #[test]
    fn rotation_with_keep_zero_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let mut file = LogFile::open_test(&path, 1000, 0).unwrap();
        let mut written = Vec::new();
        for line in lines(300) {
            file.write(&line);
            written.extend(line);
        }
        let kept = read(&path);
        assert!(!kept.is_empty() && kept.len() <= 1000);
        assert!(written.ends_with(&kept));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn rotation_removes_files_beyond_keep() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        for k in 1..=5 {
            fs::write(format!("{}.{k}", path.display()), b"old\n").unwrap();
        }
        let mut file = LogFile::open_test(&path, 10, 2).unwrap();
        file.write(b"0123456789\n");
        file.write(b"again\n");
        assert!(file.numbered(2).exists() && !file.numbered(3).exists());
        assert!(!file.numbered(5).exists());
    }

    #[test]
    fn a_deleted_file_is_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let mut file = LogFile::open_test(&path, 0, 0).unwrap();
        file.set_check_interval(Duration::ZERO);
        file.write(b"before\n");
        fs::remove_file(&path).unwrap();
        file.write(b"after\n");
        assert_eq!(read(&path), b"after\n");
    }

    #[test]
    fn a_deleted_folder_is_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/web.log");
        let mut file = LogFile::open_test(&path, 0, 0).unwrap();
        file.set_check_interval(Duration::ZERO);
        fs::remove_dir_all(dir.path().join("logs")).unwrap();
        file.write(b"after\n");
        assert_eq!(read(&path), b"after\n");
    }

    #[test]
    fn a_moved_file_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let moved = dir.path().join("web.log.moved");
        let mut file = LogFile::open_test(&path, 0, 0).unwrap();
        file.set_check_interval(Duration::ZERO);
        file.write(b"one\n");
        fs::rename(&path, &moved).unwrap();
        fs::write(&path, b"").unwrap();
        file.write(b"two\n");
        assert_eq!(read(&moved), b"one\n");
        assert_eq!(read(&path), b"two\n");
    }

    #[test]
    fn the_check_waits_for_its_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let mut file = LogFile::open_test(&path, 0, 0).unwrap();
        file.set_check_interval(Duration::from_secs(3600));
        fs::remove_file(&path).unwrap();
        file.write(b"into the unlinked file\n");
        assert!(!path.exists());
    }

    #[test]
    fn a_failing_write_is_counted_not_fatal() {
        // /dev/full fails every write with ENOSPC; a device is never rotated.
        let mut file = LogFile::open_test(Path::new("/dev/full"), 10, 2).unwrap();
        file.write(b"hello\n");
        file.write(b"this is longer than ten bytes\n");
        assert_eq!(file.dropped_counter().load(Ordering::Relaxed), 36);
        assert_eq!(file.gap(), 36);
        assert!(Path::new("/dev/full").exists());
    }

    #[test]
    fn a_device_is_written_not_rotated() {
        let mut file = LogFile::open_test(Path::new("/dev/null"), 10, 2).unwrap();
        file.write(b"0123456789abcdef\n");
        file.write(b"0123456789abcdef\n");
        assert_eq!(file.dropped_counter().load(Ordering::Relaxed), 0);
        assert!(Path::new("/dev/null").exists());
    }
}
