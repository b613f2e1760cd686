//! The respawn floor of `make bench`'s restart workload: what any supervisor has to do
//! after a SIGKILL and nothing more, with no supervisor. A child is spawned; `UPTIME_MS`
//! after its stamp it is killed, its death is seen on the pidfd held since its spawn, it
//! is reaped, and the same child is spawned again with `posix_spawn`. The latency, as in
//! `bench.py restart`, is from right before `kill()` to the new child's stamp (the
//! `CLOCK_REALTIME` nanoseconds it appends to `STAMP` first thing in `main`).
//!
//! Unlike the spawn floor, this pays for the death itself and for waking up after it,
//! which on an idle machine (a virtual one above all) is a good part of any restart.
//! Prints one JSON object: every latency in ms, the median and the 90th percentile.
//!
//! `cargo run --release --example respawn_floor -- TIMES UPTIME_MS STAMP -- COMMAND [ARG...]`
//! (the stamp file is appended to the command's arguments).

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: respawn_floor TIMES UPTIME_MS STAMP -- COMMAND [ARG...]";
    let (Some(times), Some(uptime), Some(stamp), Some("--")) = (
        args.get(1).and_then(|a| a.parse::<usize>().ok()),
        args.get(2).and_then(|a| a.parse::<u64>().ok()),
        args.get(3),
        args.get(4).map(String::as_str),
    ) else {
        fail(usage)
    };
    let mut argv: Vec<String> = args[5..].to_vec();
    if argv.is_empty() {
        fail(usage);
    }
    argv.push(stamp.clone());
    let stamp = Path::new(stamp);

    let mut child = Child::spawn(&argv);
    let mut latencies = Vec::with_capacity(times);
    for i in 0..times {
        let started = wait_stamps(stamp, i + 1, &child)[i];
        let at = UNIX_EPOCH + Duration::from_nanos(started) + Duration::from_millis(uptime);
        if let Ok(wait) = at.duration_since(SystemTime::now()) {
            std::thread::sleep(wait);
        }
        let t_kill = now_ns();
        child = child.kill_and_respawn(&argv);
        let new = wait_stamps(stamp, i + 2, &child)[i + 1];
        latencies.push(new.saturating_sub(t_kill) as f64 / 1e6);
    }
    child.kill();

    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    let p90 = sorted[((sorted.len() as f64 * 0.9).ceil() as usize).clamp(1, sorted.len()) - 1];
    let ms: Vec<String> = latencies.iter().map(|x| format!("{x:.3}")).collect();
    println!(
        "{{\"ms\": [{}], \"median_ms\": {median:.3}, \"p90_ms\": {p90:.3}, \"uptime_s\": {}}}",
        ms.join(", "),
        uptime as f64 / 1000.0
    );
}

struct Child {
    pid: libc::pid_t,
    pidfd: OwnedFd,
}

impl Child {
    fn spawn(argv: &[String]) -> Child {
        let c_args: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).expect("no NUL in arguments"))
            .collect();
        let mut ptrs: Vec<*mut libc::c_char> =
            c_args.iter().map(|a| a.as_ptr().cast_mut()).collect();
        ptrs.push(std::ptr::null_mut());
        let env: Vec<CString> = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).expect("no NUL in the environment")
            })
            .collect();
        let mut envp: Vec<*mut libc::c_char> = env.iter().map(|e| e.as_ptr().cast_mut()).collect();
        envp.push(std::ptr::null_mut());
        let mut pid = 0;
        // SAFETY: every pointer is to a NUL-terminated string that outlives the call, and
        // both arrays end with a null pointer.
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                ptrs[0],
                std::ptr::null(),
                std::ptr::null(),
                ptrs.as_ptr(),
                envp.as_ptr(),
            )
        };
        if rc != 0 {
            fail(&format!(
                "posix_spawn: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            fail(&format!("pidfd_open: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: a descriptor just returned to us and owned by nobody else.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Child { pid, pidfd }
    }

    /// SIGKILL, the death seen on the pidfd, the reap, then the same command again.
    fn kill_and_respawn(self, argv: &[String]) -> Child {
        self.kill();
        Child::spawn(argv)
    }

    fn kill(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: plain system calls on our own child, which is not reaped before waitpid.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut pfd = libc::pollfd {
                fd: self.pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            while libc::poll(&mut pfd, 1, -1) < 0 {}
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The stamps of `stamp` once it holds at least `count` of them (5 s at most; then the
/// running `child` is killed, so that nothing outlives the failure).
fn wait_stamps(stamp: &Path, count: usize, child: &Child) -> Vec<u64> {
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<u64> = std::fs::read_to_string(stamp)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        if found.len() >= count {
            return found;
        }
        if Instant::now() > give_up {
            child.kill();
            fail("the stamping child never stamped");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

fn fail(message: &str) -> ! {
    eprintln!("respawn_floor: {message}");
    std::process::exit(1)
}
