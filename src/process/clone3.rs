//! `clone3(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_INTO_CGROUP)`: the child is born
//! in its run's cgroup v2, so it never migrates into it.
//!
//! Why: a migration (a write to `cgroup.procs`) takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing, which waits for an RCU grace period unless the
//! hierarchy is mounted with `favordynmods`; on a busy host that is 5–20 ms per spawn. A
//! child created in its cgroup takes that lock only for reading, like any fork.
//!
//! libc has no `clone3` wrapper, and with `CLONE_VM` the child must start on a stack of
//! its own: the kernel hands it the parent's registers with the stack pointer moved, so
//! the code right after the system call runs twice, once per process, and the child's
//! copy must never return into the frame of the Rust function that made the call (that
//! frame is on the parent's stack, which the child shares). A few instructions of
//! assembly do what glibc's `clone()` does for `clone`: in the child, call the child's
//! function on the new stack and `exit` with its result. x86_64 only (the one
//! architecture this is tested on); elsewhere [`spawn`] says it is unavailable and the
//! caller keeps the `clone` path.
//!
//! This file makes the system call and nothing else: what the child does is `fork.rs`'s,
//! and so is remembering that the kernel refused.

use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;

/// `CLONE_INTO_CGROUP` (Linux 5.7). libc's constant is a `c_int` that overflows.
#[cfg(target_arch = "x86_64")]
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What `clone3` gave back.
pub(super) enum Outcome {
    /// The child's pid, in the parent, once the child has exec'd or exited
    /// (`CLONE_VFORK`).
    Child(libc::pid_t),
    /// The kernel's errno; no child exists.
    Failed(c_int),
    /// Not built for this architecture.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    Unavailable,
}

/// Create a child in the cgroup v2 whose folder `cgroup` is open (`O_PATH` or
/// `O_RDONLY`), running `child(arg)` on `stack` until it execs or exits; its pidfd is
/// stored in `pidfd`. With `share_files` the child starts on warden's descriptor table
/// (`CLONE_FILES`, see `fork.rs`). The caller blocks every signal around this call (the child shares
/// warden's memory, and a handler of warden's must never run in it).
///
/// # Safety
///
/// `stack` must stay allocated and unused by anyone else until this returns (with
/// `CLONE_VFORK` the parent is suspended until the child no longer uses it); `child` must
/// never unwind and may only make raw system calls (it runs in warden's memory, on the
/// parent thread's TLS); `arg` must stay valid as long as `stack`.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn spawn(
    cgroup: RawFd,
    share_files: bool,
    stack: &mut [u8],
    pidfd: &mut c_int,
    child: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> Outcome {
    // The kernel sets the child's stack pointer to `stack + stack_size` exactly (x86 stacks
    // grow down); the ABI wants it 16-byte aligned at a `call`, so hand over an aligned
    // base and a length that is a multiple of 16 (the assembly aligns again, for free).
    let base = stack.as_mut_ptr() as usize;
    let start = (base + 15) & !15;
    let size = (base + stack.len() - start) & !15;
    // SAFETY: an all-zero `clone_args` is valid (no tid pointers, no set_tid, no TLS).
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags =
        (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) as u64 | CLONE_INTO_CGROUP;
    if share_files {
        args.flags |= libc::CLONE_FILES as u64;
    }
    // With CLONE_PIDFD, clone3 writes the new descriptor (an int) where `pidfd` points.
    args.pidfd = pidfd as *mut c_int as u64;
    // The parent learns of the child's death through SIGCHLD and a wait, like any child
    // (0 would make it a "clone child" that a plain waitid(P_PIDFD) does not report).
    args.exit_signal = libc::SIGCHLD as u64;
    args.stack = start as u64;
    args.stack_size = size as u64;
    args.cgroup = cgroup as u64;
    let ret: i64;
    // SAFETY: see the function's contract. Registers: `syscall` returns in rax and
    // clobbers rcx (return address) and r11 (flags), nothing else; the child starts with
    // a copy of the parent's registers but rax = 0 and rsp = the new stack. So `arg` and
    // `child` ride in r12 and r13 into the child, and the parent finds rdi, rsi, r12 and
    // r13 unchanged, as the `in` operands promise. The child's path ends in `exit`, never
    // at the end of this block: it must not run the parent's epilogue on a stack it
    // shares. rbp is zeroed so that unwinders and debuggers see the end of the frame
    // chain; the direction flag is clear as the ABI wants, since the parent's was.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "and rsp, -16",
            "mov rdi, r12",
            "call r13",
            // `exit` (60), not `exit_group`: the child is alone in its thread group either
            // way; this mirrors glibc's clone.
            "mov edi, eax",
            "mov eax, 60",
            "syscall",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &mut args as *mut libc::clone_args,
            in("rsi") std::mem::size_of::<libc::clone_args>(),
            in("r12") arg,
            in("r13") child,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    match ret {
        pid if pid > 0 => Outcome::Child(pid as libc::pid_t),
        // The raw system call returns -errno (from -4095 to -1).
        err => Outcome::Failed((-err) as c_int),
    }
}

/// Not built here: the caller keeps the `clone` path.
///
/// # Safety
///
/// Always safe; `unsafe` only to match the x86_64 signature.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn spawn(
    _cgroup: RawFd,
    _share_files: bool,
    _stack: &mut [u8],
    _pidfd: &mut c_int,
    _child: extern "C" fn(*mut c_void) -> c_int,
    _arg: *mut c_void,
) -> Outcome {
    Outcome::Unavailable
}
