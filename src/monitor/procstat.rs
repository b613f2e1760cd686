//! Reading a process's `/proc/PID/stat`: the one file that holds every figure a sample
//! needs (CPU time, resident memory, state, parent, start time), parsed without
//! allocating.
//!
//! Periodic samples keep each process's file open and re-read it with one `pread`: one
//! system call per process and sample, where `sysinfo` spent about 21 (it reads `status`,
//! `stat` and `statm`, each with a size hint and a seek). An open `stat` file stays bound
//! to the process it was opened for: once that process is reaped, reading it fails
//! (`ESRCH`), so a recycled pid is never read as the old process. Descriptors are
//! budgeted (a quarter of warden's `RLIMIT_NOFILE`); beyond the budget, and after the
//! system ran short of descriptors, a file is opened, read and closed each time instead.
//!
//! This module reads and parses; it neither walks trees nor computes percentages (that
//! is the sampler's, one arithmetic for every source).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;
use std::time::Duration;

/// The figures of one `/proc/PID/stat` line that warden uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// One letter: `R`, `S`, `D`, `Z`, `T`...
    pub state: u8,
    pub ppid: i32,
    /// CPU time in user and kernel mode, all threads (`utime` + `stime`), in clock ticks.
    pub cpu_ticks: u64,
    /// When the process started, in clock ticks since boot: with the pid, it names one
    /// process (a recycled pid started later).
    pub start_ticks: u64,
    /// Resident pages.
    pub rss_pages: u64,
}

impl Stat {
    /// Parse a `stat` line. The command name (field 2) may hold spaces and parentheses,
    /// so the fields are counted from the last `)`.
    pub fn parse(line: &[u8]) -> Option<Stat> {
        let close = memchr::memrchr(b')', line)?;
        // Fields 3 (state) to 24 (rss), as numbered in proc(5).
        let mut fields = [&[][..]; 22];
        let mut words = line[close + 1..]
            .split(u8::is_ascii_whitespace)
            .filter(|w| !w.is_empty());
        for slot in &mut fields {
            *slot = words.next()?;
        }
        let at = |n: usize| fields[n - 3];
        let state = match at(3) {
            [letter] => *letter,
            _ => return None,
        };
        Some(Stat {
            state,
            ppid: number(at(4))?,
            cpu_ticks: number::<u64>(at(14))?.checked_add(number(at(15))?)?,
            start_ticks: number(at(22))?,
            rss_pages: number(at(24))?,
        })
    }

    /// A zombie: ended, not yet reaped (its children have moved to a subreaper).
    pub fn is_zombie(&self) -> bool {
        self.state == b'Z'
    }

    pub fn cpu_time(&self) -> Duration {
        ticks(self.cpu_ticks)
    }

    pub fn rss_bytes(&self) -> u64 {
        self.rss_pages.saturating_mul(page_size())
    }
}

/// The command name of a `stat` line (field 2, `comm`: at most 15 bytes, truncated).
pub fn name(line: &[u8]) -> Option<&[u8]> {
    let open = memchr::memchr(b'(', line)?;
    let close = memchr::memrchr(b')', line)?;
    line.get(open + 1..close)
}

fn number<T: std::str::FromStr>(word: &[u8]) -> Option<T> {
    std::str::from_utf8(word).ok()?.parse().ok()
}

/// Clock ticks (`USER_HZ`) as time.
pub fn ticks(n: u64) -> Duration {
    static HZ: OnceLock<u64> = OnceLock::new();
    // SAFETY: sysconf only reads a configuration value.
    let hz = *HZ.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        hz if hz > 0 => hz as u64,
        _ => 100,
    });
    Duration::from_nanos(n.saturating_mul(1_000_000_000 / hz))
}

fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    // SAFETY: sysconf only reads a configuration value.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as u64,
        _ => 4096,
    })
}

/// Why a process's figures are missing from a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The process is gone (or was never there).
    Gone,
    /// It could not be read this time (no descriptor left): try again next time.
    Unreadable,
}

/// `stat` files kept open between periodic samples, by pid.
#[derive(Default)]
pub struct StatFiles {
    /// Each file, and whether a sample kept it this round.
    held: HashMap<i32, (File, bool)>,
    /// How many files may stay open; read from `RLIMIT_NOFILE` when first needed.
    budget: Option<usize>,
}

/// A `stat` line is 52 numbers and a name of at most 15 bytes: a few hundred bytes.
const LINE: usize = 1536;

impl StatFiles {
    /// Read `pid`'s figures. `keep`: more samples follow, hold the file open (within the
    /// budget) and keep it past [`end_round`](Self::end_round). `fresh`: the pid was just
    /// found alive, so a held file that fails belongs to an older process of that pid and
    /// the pid is opened anew; otherwise the failure means the process is gone.
    pub fn read(&mut self, pid: i32, keep: bool, fresh: bool) -> Result<Stat, Missing> {
        let mut line = [0u8; LINE];
        if let Some((file, kept)) = self.held.get_mut(&pid) {
            if let Some(stat) = read_line(file, &mut line) {
                *kept |= keep;
                return Ok(stat);
            }
            self.held.remove(&pid);
            if !fresh {
                return Err(Missing::Gone);
            }
        }
        let file = match File::open(format!("/proc/{pid}/stat")) {
            Ok(file) => file,
            Err(e) => return Err(self.open_failed(&e)),
        };
        let stat = read_line(&file, &mut line).ok_or(Missing::Gone)?;
        let budget = *self.budget.get_or_insert_with(|| {
            usize::try_from(crate::process::limits::nofile_soft() / 4).unwrap_or(0)
        });
        if keep && self.held.len() < budget {
            self.held.insert(pid, (file, true));
        }
        Ok(stat)
    }

    fn open_failed(&mut self, e: &io::Error) -> Missing {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => {
                // Hold no more than now: the descriptors are needed elsewhere.
                self.budget = Some(self.held.len());
                Missing::Unreadable
            }
            _ => Missing::Gone,
        }
    }

    /// Close the files no sample kept since the previous round (their processes left the
    /// sampled trees).
    pub fn end_round(&mut self) {
        self.held.retain(|_, (_, kept)| std::mem::take(kept));
    }

    /// How many files are open.
    #[cfg(test)]
    pub(super) fn open(&self) -> usize {
        self.held.len()
    }

    #[cfg(test)]
    pub(super) fn with_budget(budget: usize) -> StatFiles {
        StatFiles {
            held: HashMap::new(),
            budget: Some(budget),
        }
    }
}

/// One `pread` of a whole `stat` file (a `stat` file is generated anew on each read from
/// offset 0). `None`: the process was reaped (`ESRCH`, or nothing to read), or the line
/// makes no sense.
fn read_line(file: &File, line: &mut [u8]) -> Option<Stat> {
    let n = loop {
        match file.read_at(line, 0) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) | Ok(0) => return None,
            Ok(n) => break n,
        }
    };
    Stat::parse(&line[..n])
}
