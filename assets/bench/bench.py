#!/usr/bin/env python3
"""Measurement glue for assets/bench/run.sh: it measures, it never starts a supervisor.

run.sh starts and stops every process; each subcommand here watches /proc or files,
prints one JSON object on stdout, and exits non-zero (with the reason on stderr) when
what it waits for does not happen in time. Nothing here sleeps to "let things settle":
every wait is a poll with a deadline.
"""

import argparse
import hashlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def fail(msg):
    print(f"bench.py: {msg}", file=sys.stderr)
    sys.exit(1)


def emit(obj):
    print(json.dumps(obj))


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def proc_stat(pid):
    """(comm, ppid, utime+stime ticks) of a process, all its threads included."""
    s = read(f"/proc/{pid}/stat")
    comm = s[s.index("(") + 1 : s.rindex(")")]
    rest = s[s.rindex(")") + 2 :].split()
    return comm, int(rest[1]), int(rest[11]) + int(rest[12])


def pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def has_marker(pid, marker):
    try:
        return marker in read(f"/proc/{pid}/environ", "rb").split(b"\0")
    except OSError:
        return False


def never_marked(pid, marker):
    """True if `pid` is not ours and cannot become ours. An empty environment proves
    nothing: in the middle of an exec the kernel has switched to the new memory but not
    yet placed the environment in it (and the name is still the old one), so a process
    of ours reads as unmarked for a moment. Kernel threads have no executable."""
    try:
        env = read(f"/proc/{pid}/environ", "rb")
    except OSError:
        return False
    if env:
        return marker not in env.split(b"\0")
    try:
        os.readlink(f"/proc/{pid}/exe")
        return False
    except OSError:
        return os.path.exists(f"/proc/{pid}")


def percentile(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# ---- workload 1: how long until N processes are running ------------------------------


def cmd_wait_procs(a):
    """Poll /proc until `count` processes named `comm` carry the marker variable."""
    marker = a.marker.encode()
    found, ignored = set(), set()
    deadline = time.monotonic() + a.timeout
    forget = time.monotonic() + 1
    while True:
        if time.monotonic() > forget:
            # An ignored pid may have been reused since (pids wrap): look again.
            ignored.clear()
            forget = time.monotonic() + 1
        for pid in pids():
            if pid in found or pid in ignored:
                continue
            try:
                comm = read(f"/proc/{pid}/comm").strip()
            except OSError:
                continue
            if comm == a.comm:
                if has_marker(pid, marker):
                    found.add(pid)
            elif comm in a.ignore_comm or never_marked(pid, marker):
                # Without the marker now, never with it: exec keeps the environment
                # we gave, and processes outside the run never get it.
                ignored.add(pid)
        if len(found) >= a.count:
            elapsed = time.time() - a.t0
            emit({"seconds": round(elapsed, 4), "count": len(found)})
            return
        if time.monotonic() > deadline:
            fail(f"only {len(found)} of {a.count} `{a.comm}` processes after {a.timeout}s")
        time.sleep(a.interval)


def marked(marker, spare):
    """Pids that carry the marker, but for ourselves and the pids in `spare`."""
    spare = {os.getpid(), os.getppid(), *spare}
    return [p for p in pids() if p not in spare and has_marker(p, marker)]


def spared(text):
    return [int(p) for p in text.split(",") if p]


def cmd_wait_gone(a):
    """Wait until no process carries the marker (but the --spare ones); print how long
    it took from --t0."""
    marker = a.marker.encode()
    deadline = time.monotonic() + a.timeout
    while True:
        left = marked(marker, spared(a.spare))
        if not left:
            emit({"seconds": round(time.time() - a.t0, 4)})
            return
        if time.monotonic() > deadline:
            fail(f"{len(left)} marked processes still alive after {a.timeout}s: {left[:10]}")
        time.sleep(0.02)


def cmd_reap(a):
    """SIGKILL every process that carries this run's marker (only this run's processes
    have it). The last line of defence of run.sh's trap."""
    marker = a.marker.encode()
    killed = []
    for _ in range(3):
        for pid in marked(marker, spared(a.spare)):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
        time.sleep(0.05)
    emit({"killed": len(set(killed))})


def cmd_spawn_many(a):
    """The floor of workload 1, no supervisor: posix_spawn `argv` `count` times as fast
    as possible, hold the children until SIGTERM (or --timeout), then kill and reap them.
    With `--workers K`, K forked processes share the count, each a loop of its own (a
    posix_spawn waits for its child's `execve`, so a loop starts one child at a time;
    Python's posix_spawn holds the GIL, so threads would not overlap)."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    shares = [a.count // a.workers + (i < a.count % a.workers) for i in range(a.workers)]
    workers = []
    for share in shares[1:]:
        pid = os.fork()
        if pid == 0:
            try:
                kids = [os.posix_spawnp(a.argv[0], a.argv, os.environ) for _ in range(share)]
                hold_then_kill(kids, stop, a.timeout)
            finally:
                os._exit(0)
        workers.append(pid)
    kids = [os.posix_spawnp(a.argv[0], a.argv, os.environ) for _ in range(shares[0])]
    hold_then_kill(kids, stop, a.timeout)
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    for pid in workers:
        os.waitpid(pid, 0)


def hold_then_kill(kids, stop, timeout):
    """Wait for SIGTERM (`stop` filled by its handler) or `timeout`, then kill and reap
    `kids`."""
    end = time.monotonic() + timeout
    while not stop and time.monotonic() < end:
        time.sleep(0.05)
    for pid in kids:
        os.kill(pid, signal.SIGKILL)
    for pid in kids:
        os.waitpid(pid, 0)


def cmd_spawn_many_piped(a):
    """The floor with a supervisor's stdio shape: like spawn-many, but each child gets
    stdin from /dev/null, stdout and stderr on pipes of its own (whose read ends this
    process holds until the end, as a supervisor holds them) and a session of its own.
    posix_spawn copies this process's descriptor table into each child and closes it at
    `execve`, so with hundreds of pipes held each start costs a little more than the last."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    kids, held = [], []
    for _ in range(a.count):
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                   (os.POSIX_SPAWN_DUP2, err_w, 2)]
        kids.append(os.posix_spawnp(a.argv[0], a.argv, os.environ, file_actions=actions,
                                    setsid=True))
        os.close(out_w)
        os.close(err_w)
        held += [out_r, err_r]
    hold_then_kill(kids, stop, a.timeout)
    for fd in held:
        os.close(fd)


# ---- workload 2: the supervisor's own CPU and memory ---------------------------------


def members(roots, desc_re):
    """The supervisor: the root pids, plus their descendants whose name matches
    `desc_re` (warden's guard, s6's per-service s6-supervise), never the children."""
    table = {}
    for pid in pids():
        try:
            comm, ppid, _ = proc_stat(pid)
        except (OSError, ValueError):
            continue
        table[pid] = (comm, ppid)
    kids = {}
    for pid, (_, ppid) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = set(roots), list(roots)
    while todo:
        for kid in kids.get(todo.pop(), []):
            if desc_re and re.fullmatch(desc_re, table[kid][0]) and kid not in out:
                out.add(kid)
            todo.append(kid)
    return sorted(out)


def sample(pid):
    """CPU ticks (dead threads included), per-thread run time in ns and context
    switches (live threads), PSS and RSS in bytes."""
    _, _, ticks = proc_stat(pid)
    threads = 0
    # Per thread, keyed (pid, tid): a thread's counts die with it, so sums over the
    # threads alive at each end would go negative when threads end in between.
    run_ns, switches = {}, {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            run_ns[(pid, tid)] = int(read(f"/proc/{pid}/task/{tid}/schedstat").split()[0])
            for line in read(f"/proc/{pid}/task/{tid}/status").splitlines():
                # Voluntary switches: each one is the thread going to sleep, so
                # over a quiet period they count its wake-ups.
                if line.startswith("voluntary_ctxt_switches:"):
                    switches[(pid, tid)] = int(line.split()[1])
            threads += 1
        except OSError:
            pass
    pss = rss = 0
    for line in read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1]) * 1024
        elif line.startswith("Rss:"):
            rss = int(line.split()[1]) * 1024
    return {"ticks": ticks, "run_ns": run_ns, "switches": switches,
            "threads": threads, "pss": pss, "rss": rss}


def total(pids_):
    acc = {"ticks": 0, "run_ns": {}, "switches": {}, "threads": 0, "pss": 0, "rss": 0}
    for pid in pids_:
        for k, v in sample(pid).items():
            if k in ("run_ns", "switches"):
                acc[k].update(v)
            else:
                acc[k] += v
    return acc


def wakeups(before, after):
    """Wake-ups between two samples, per thread: a thread born meanwhile counts all of
    its switches, one that ended counts one (its last wake-up; the kernel drops its
    count with it), so threads that come and go never make the sum negative."""
    born_or_kept = sum(n - before.get(t, 0) for t, n in after.items())
    ended = sum(1 for t in before if t not in after)
    return born_or_kept + ended, ended


def run_time_ns(before, after):
    """Run time between two samples, summed over the threads alive at the end (a thread
    born meanwhile counts all of it). What threads that ended ran after the first sample
    is lost with them, so this is a lower bound when threads end; `cpu_ms` (ticks, which
    keep ended threads) is the figure to read then."""
    return sum(n - before.get(t, 0) for t, n in after.items())


def cmd_usage(a):
    roots = [int(p) for p in a.roots.split(",")]
    group = members(roots, a.desc)
    before = total(group)
    t0 = time.monotonic()
    time.sleep(a.seconds)
    after = total(group)
    wall = time.monotonic() - t0
    cpu_ms = (after["ticks"] - before["ticks"]) * 1000 / CLK_TCK
    woke, ended = wakeups(before["switches"], after["switches"])
    emit({
        "processes": len(group),
        "threads": after["threads"],
        "seconds": round(wall, 2),
        "cpu_ms": cpu_ms,
        "run_ms": round(run_time_ns(before["run_ns"], after["run_ns"]) / 1e6, 2),
        "cpu_percent": round(cpu_ms / 10 / wall, 3),
        "wakeups": woke,
        "threads_ended": ended,
        "pss_mib": round(after["pss"] / 2**20, 2),
        "rss_mib": round(after["rss"] / 2**20, 2),
    })


# ---- workload 3: log throughput ------------------------------------------------------


def first_stamp(path, deadline):
    while True:
        try:
            line = read(path).split("\n")[0].split()
            if len(line) == 2:
                return int(line[0]) / 1e9
        except OSError:
            pass
        if time.monotonic() > deadline:
            fail(f"no stamp in {path}")
        time.sleep(0.001)


def cmd_spew_wait(a):
    """Seconds from the writer's stamp until `file` holds `size` bytes."""
    deadline = time.monotonic() + a.timeout
    t0 = first_stamp(a.stamp, deadline)
    size = a.size
    while True:
        try:
            if os.stat(a.file).st_size >= size:
                if not a.first_marker:
                    break
                # warden with timestamps opens the file with a `---| run 1 started`
                # line: the data is all there once the file holds that too.
                with open(a.file, "rb") as f:
                    first = f.readline()
                if b"---| " in first and size == a.size:
                    size += len(first)
                    continue
                break
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            fail(f"{a.file} did not reach {a.size} bytes in {a.timeout}s")
        time.sleep(0.001)
    seconds = time.time() - t0
    emit({"seconds": round(seconds, 4), "mb_per_s": round(a.payload / 1e6 / seconds, 1)})


def cmd_verify(a):
    """Byte count and sha256 of what a log file holds. With --timestamps, only the
    payload of `out|` records, each record's line restored."""
    h = hashlib.sha256()
    size = records = 0
    with open(a.file, "rb") as f:
        if not a.timestamps:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
        else:
            for line in f:
                _, _, rest = line.partition(b" ")
                if rest.startswith(b"out| "):
                    payload = rest[5:]
                    h.update(payload)
                    size += len(payload)
                    records += 1
    emit({"bytes": size, "sha256": h.hexdigest(), "records": records})


# ---- workload 4: restart latency -----------------------------------------------------


def stamps(path):
    try:
        lines = read(path).splitlines()
    except FileNotFoundError:
        return []
    return [(int(ns), int(pid)) for ns, pid in (l.split() for l in lines if l.count(" ") == 1)]


def cmd_restart(a):
    """Kill the stamping child `kills` times, each `uptime` seconds after it started;
    latency = the new child's stamp minus the time taken right before kill()."""
    deadline = time.monotonic() + a.timeout
    while not stamps(a.stamp):
        if time.monotonic() > deadline:
            fail(f"the first child never stamped {a.stamp}")
        time.sleep(0.005)
    lat = []
    for _ in range(a.kills):
        seen = stamps(a.stamp)
        start_ns, pid = seen[-1]
        wait = start_ns / 1e9 + a.uptime - time.time()
        if wait > 0:
            time.sleep(wait)
        t_kill = time.time_ns()
        os.kill(pid, signal.SIGKILL)
        give_up = time.monotonic() + a.per_kill_timeout
        while len(now := stamps(a.stamp)) == len(seen):
            if time.monotonic() > give_up:
                fail(f"no restart within {a.per_kill_timeout}s of kill #{len(lat) + 1}")
            time.sleep(0.001)
        lat.append((now[len(seen)][0] - t_kill) / 1e6)
    emit({"ms": [round(x, 3) for x in lat],
          "median_ms": round(statistics.median(lat), 3),
          "p90_ms": round(percentile(lat, 0.9), 3),
          "uptime_s": a.uptime})


# ---- workload 5: the probe target -----------------------------------------------------


def cmd_listen(a):
    """A TCP listener for warden's probes: accept, close, count. Writes its port to
    --port-file, and the number of connections so far to --count-file every second.
    Stops by itself after --timeout."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)
    srv.settimeout(0.5)

    def publish(path, value):
        with open(path + ".tmp", "w") as f:
            f.write(f"{value}\n")
        os.replace(path + ".tmp", path)

    publish(a.port_file, srv.getsockname()[1])
    count, last = 0, time.monotonic()
    end = last + a.timeout
    while time.monotonic() < end:
        try:
            conn, _ = srv.accept()
            conn.close()
            count += 1
        except socket.timeout:
            pass
        if time.monotonic() - last >= 1:
            publish(a.count_file, count)
            last = time.monotonic()


def cmd_spawn_floor(a):
    """The floor of workload 4, no supervisor: posix_spawn the stamping child and time
    its stamp against the time taken right before the spawn."""
    lat = []
    for i in range(a.times):
        path = f"{a.stamp}.{i}"
        t = time.time_ns()
        pid = os.posix_spawn(a.argv[0], [*a.argv, path], os.environ)
        give_up = time.monotonic() + 5
        while not stamps(path):
            if time.monotonic() > give_up:
                fail("the stamping child never stamped")
            time.sleep(0.0005)
        lat.append((stamps(path)[0][0] - t) / 1e6)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.unlink(path)
    emit({"ms": [round(x, 3) for x in lat],
          "median_ms": round(statistics.median(lat), 3),
          "p90_ms": round(percentile(lat, 0.9), 3)})


# ---- workload 6: control socket latency ----------------------------------------------


def cmd_status_latency(a):
    """Time `calls` runs of a status command (client start-up included)."""
    held = []
    if a.idle_conns:
        for _ in range(a.idle_conns):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(a.socket)
            held.append(s)
    lat, processes = [], None
    for _ in range(a.calls):
        t = time.perf_counter()
        r = subprocess.run(a.cmd, capture_output=True, timeout=10)
        lat.append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            fail(f"{a.cmd} exited {r.returncode}: {r.stderr.decode(errors='replace')[:300]}")
        if processes is None:
            processes = len(json.loads(r.stdout).get("processes", []))
    # Still connected? A server that dropped our idle clients would make this moot.
    alive = 0
    for s in held:
        s.setblocking(False)
        try:
            alive += s.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
        s.close()
    emit({"p50_ms": round(percentile(lat, 0.5), 2), "p99_ms": round(percentile(lat, 0.99), 2),
          "max_ms": round(max(lat), 2), "calls": a.calls, "processes": processes,
          "idle_conns": a.idle_conns, "idle_conns_still_open": alive})


# ---- the report ----------------------------------------------------------------------


# ---- workload 7: the dashboard ------------------------------------------------------


def cmd_pty_run(a):
    """Run a command on a pseudo-terminal of ROWS x COLS and read everything it draws,
    as a terminal would, until it exits; SIGTERM is passed on to it."""
    import fcntl
    import pty
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:
        # Size the terminal before the program can ask for it.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", a.rows, a.cols, 0, 0))
        os.execvp(a.argv[0], a.argv)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
    drawn = 0
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the program and its terminal are gone
            break
        if not data:
            break
        drawn += len(data)
    _, status = os.waitpid(pid, 0)
    emit({"bytes_drawn": drawn, "exit": os.waitstatus_to_exitcode(status)})


def cmd_run_json(a):
    """Run a measuring program that prints one JSON object; pass it on."""
    out = subprocess.run(a.argv, capture_output=True, text=True, timeout=a.timeout)
    if out.returncode != 0:
        fail(f"{a.argv[0]} exited {out.returncode}: {out.stderr[-300:]}")
    emit(json.loads(out.stdout))


def cmd_report(a):
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    import report  # beside this file

    print(report.render(a.results, a.machine))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("wait-procs")
    s.add_argument("--marker", required=True)
    s.add_argument("--comm", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--t0", type=float, required=True, help="launch time, epoch seconds")
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--interval", type=float, default=0.005)
    s.add_argument("--ignore-comm", nargs="*", default=[])
    s.set_defaults(fn=cmd_wait_procs)

    s = sub.add_parser("wait-gone")
    s.add_argument("--marker", required=True)
    s.add_argument("--t0", type=float, required=True)
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--spare", default="", help="comma-separated pids still meant to run")
    s.set_defaults(fn=cmd_wait_gone)

    s = sub.add_parser("reap")
    s.add_argument("--marker", required=True)
    s.add_argument("--spare", default="", help="comma-separated pids to leave alone")
    s.set_defaults(fn=cmd_reap)

    s = sub.add_parser("spawn-many")
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--timeout", type=float, default=300)
    s.add_argument("argv", nargs="+")
    s.set_defaults(fn=cmd_spawn_many)

    s = sub.add_parser("spawn-many-piped")
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--timeout", type=float, default=300)
    s.add_argument("argv", nargs="+")
    s.set_defaults(fn=cmd_spawn_many_piped)

    s = sub.add_parser("spawn-floor")
    s.add_argument("--stamp", required=True, help="stamp file prefix")
    s.add_argument("--times", type=int, default=20)
    s.add_argument("argv", nargs="+", help="the stamping command, without its file")
    s.set_defaults(fn=cmd_spawn_floor)

    s = sub.add_parser("usage")
    s.add_argument("--roots", required=True, help="comma-separated pids")
    s.add_argument("--desc", default="", help="regex: descendants that count as the supervisor")
    s.add_argument("--seconds", type=float, default=30)
    s.set_defaults(fn=cmd_usage)

    s = sub.add_parser("spew-wait")
    s.add_argument("--stamp", required=True)
    s.add_argument("--file", required=True)
    s.add_argument("--size", type=int, required=True, help="bytes the file must reach")
    s.add_argument("--payload", type=int, required=True, help="bytes the child wrote")
    s.add_argument("--first-marker", action="store_true",
                   help="add the length of a leading `---|` marker line to --size")
    s.add_argument("--timeout", type=float, default=60)
    s.set_defaults(fn=cmd_spew_wait)

    s = sub.add_parser("verify")
    s.add_argument("--file", required=True)
    s.add_argument("--timestamps", action="store_true")
    s.set_defaults(fn=cmd_verify)

    s = sub.add_parser("restart")
    s.add_argument("--stamp", required=True)
    s.add_argument("--kills", type=int, default=20)
    s.add_argument("--uptime", type=float, default=0.5)
    s.add_argument("--timeout", type=float, default=20)
    s.add_argument("--per-kill-timeout", type=float, default=10)
    s.set_defaults(fn=cmd_restart)

    s = sub.add_parser("listen")
    s.add_argument("--port-file", required=True)
    s.add_argument("--count-file", required=True)
    s.add_argument("--timeout", type=float, default=300)
    s.set_defaults(fn=cmd_listen)

    s = sub.add_parser("status-latency")
    s.add_argument("--calls", type=int, default=200)
    s.add_argument("--idle-conns", type=int, default=0)
    s.add_argument("--socket", default="")
    s.add_argument("cmd", nargs="+")
    s.set_defaults(fn=cmd_status_latency)

    s = sub.add_parser("pty-run")
    s.add_argument("--rows", type=int, default=40)
    s.add_argument("--cols", type=int, default=120)
    s.add_argument("argv", nargs="+")
    s.set_defaults(fn=cmd_pty_run)

    s = sub.add_parser("run-json")
    s.add_argument("--timeout", type=float, default=300)
    s.add_argument("argv", nargs="+")
    s.set_defaults(fn=cmd_run_json)

    s = sub.add_parser("report")
    s.add_argument("--results", required=True)
    s.add_argument("--machine", required=True)
    s.set_defaults(fn=cmd_report)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
