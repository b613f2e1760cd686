#!/usr/bin/env python3
"""`make stress`: what children, log sinks and clients can do to warden, run against the
release binary, measured from the outside.

Each scenario starts a fresh `warden up --no-tui` in a temporary folder, does something
hostile to it (floods of every shape, log files that hang or fill up, storms of clients,
SIGSTOP, a low descriptor limit) for a few seconds while a poller asks `warden status`
every 100 ms, then stops the hostile process and brings warden down. For each it reports
warden's peak RSS (VmHWM), the worst `warden status` round trip (the CLI, start to end),
how long the `stop` and the `down` took, and whether a healthy bystander was left alone.

The goals (issue #7): peak RSS under 64 MiB, every status answered within 1 s, stops
complete, nothing healthy killed. A scenario that misses one is marked FAIL and the exit
code is 1.

Everything started here carries STRESS_MARK=<token>; at the end of each scenario
whatever still carries it is SIGKILLed, so nothing outlives the script.

Usage: stress.py [--warden BIN] [--worker BIN] [--seconds N] [SCENARIO...]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

GOAL_RSS = 64 << 20
GOAL_STATUS = 1.0
TOKEN = f"stress-{os.getpid()}-{int(time.time())}"


def marked_pids():
    out = []
    needle = f"STRESS_MARK={TOKEN}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    out.append(int(entry))
        except OSError:
            pass
    return out


def kill_marked():
    for _ in range(50):
        pids = [p for p in marked_pids() if p != os.getpid()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def vm_hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Warden:
    """One `warden up` in its own folder, with a status poller."""

    def __init__(self, args, config, name, prepare=None, stdout=subprocess.DEVNULL,
                 nofile=None, wrap=None):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix=f"wstress-{name}-")
        self.config = os.path.join(self.dir, "warden.toml")
        # A socket at a known place (the default one is derived from a hash of the path).
        self.sock = os.path.join(self.dir, "ctl.sock")
        with open(self.config, "w") as f:
            f.write('[supervisor]\nsocket = "ctl.sock"\n' + config)
        if prepare:
            prepare(self.dir)
        self.env = dict(os.environ, STRESS_MARK=TOKEN, NO_COLOR="1")
        self.env["PATH"] = os.path.dirname(args.worker) + ":" + self.env.get("PATH", "")
        self.env.pop("WARDEN_SOCKET", None)
        cmd = [args.warden, "up", "--no-tui", "-c", self.config]
        if wrap:
            cmd = wrap(cmd)

        def limits():
            if nofile:
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

        self.stderr = open(os.path.join(self.dir, "up.err"), "w")
        self.proc = subprocess.Popen(cmd, cwd=self.dir, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=stdout, stderr=self.stderr, preexec_fn=limits)
        self.latencies = []
        self.socket_latencies = []
        self.failures = []
        self.peak = 0
        self._stop = threading.Event()
        self._paused = threading.Event()
        self.pid = self.proc.pid
        self.wait_socket()
        self.pid = self.warden_pid()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()

    def warden_pid(self):
        # Under a wrapper (unshare), warden is a descendant: find it by its hello.
        hello = self.request({"v": 1, "cmd": "hello"})
        return hello.get("pid", self.proc.pid) if hello else self.proc.pid

    def cli(self, *argv, timeout=60):
        return subprocess.run([self.args.warden, *argv, "-c", self.config], cwd=self.dir,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def request(self, req, timeout=5):
        """One request on the control socket, the last answer line as JSON."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(self.sock)
                s.sendall((json.dumps(req) + "\n").encode())
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                return json.loads(data.splitlines()[-1])
        except (OSError, ValueError, IndexError):
            return None

    def wait_socket(self, limit=20):
        deadline = time.time() + limit
        while time.time() < deadline:
            if self.cli("status", "--json").returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"warden exited: {open(self.stderr.name).read()}")
            time.sleep(0.05)
        raise RuntimeError("warden's socket never answered")

    def _poll(self):
        while not self._stop.is_set():
            if not self._paused.is_set():
                start = time.monotonic()
                try:
                    out = self.cli("status", "--json", timeout=30)
                    ok = out.returncode == 0
                except subprocess.TimeoutExpired:
                    ok = False
                took = time.monotonic() - start
                self.latencies.append(took)
                if not ok:
                    self.failures.append(took)
                # The same question straight on the socket: warden's own share of it.
                start = time.monotonic()
                answer = self.request({"v": 1, "cmd": "status"}, timeout=30)
                self.socket_latencies.append(time.monotonic() - start)
                if not answer or not answer.get("ok"):
                    self.failures.append(self.socket_latencies[-1])
            self.peak = max(self.peak, vm_hwm(self.pid))
            time.sleep(0.1)

    def pause_polling(self, paused):
        if paused:
            self._paused.set()
        else:
            self._paused.clear()

    def status(self):
        out = self.cli("status", "--json")
        return json.loads(out.stdout) if out.returncode == 0 else None

    def process(self, name):
        s = self.status() or {"processes": []}
        return next((p for p in s["processes"] if p["name"] == name), None)

    def timed(self, *argv, timeout=60):
        start = time.monotonic()
        try:
            out = self.cli(*argv, timeout=timeout)
            return time.monotonic() - start, out.returncode == 0
        except subprocess.TimeoutExpired:
            return time.monotonic() - start, False

    def finish(self):
        """`down`, then cleanup. Returns (down seconds, exited cleanly)."""
        self.peak = max(self.peak, vm_hwm(self.pid))
        self._stop.set()
        self._poller.join()
        took, ok = self.timed("down", timeout=120)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
            self.proc.kill()
        kill_marked()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return took, ok and code == 0


def bystander():
    return '[processes.db]\ncommand = "warden-demo-worker sleep"\n'


# ----- scenarios --------------------------------------------------------------------

def flood(command, log="", extra=""):
    def run(args, name, secs, stdout=subprocess.DEVNULL):
        w = Warden(args, f'[processes.flood]\ncommand = "{command}"\n{log}\n{extra}\n{bystander()}',
                   name, stdout=stdout)
        time.sleep(secs)
        stop, stopped = w.timed("stop", "flood", timeout=120)
        db = w.process("db")
        return w, {"stop_s": stop, "stopped": stopped, "healthy_kept": db and db["run"] == 1}
    return run


def stalled_terminal(args, name, secs):
    # `up` writing to a pipe nobody reads: the terminal is stalled from the start.
    r, wfd = os.pipe()
    try:
        return flood("yes")(args, name, secs, stdout=wfd)
    finally:
        os.close(r)
        os.close(wfd)


def many_writers(args, name, secs):
    cfg = ('[processes.w]\ncommand = "warden-demo-worker chatter 10"\n'
           'replicas = 200\n' + bystander())
    w = Warden(args, cfg, name)
    time.sleep(secs)
    stop, stopped = w.timed("stop", "w", timeout=120)
    db = w.process("db")
    return w, {"stop_s": stop, "stopped": stopped, "healthy_kept": db and db["run"] == 1}


def many_floods(args, name, secs):
    cfg = '[processes.yes]\ncommand = "yes"\nreplicas = 50\n' + bystander()
    w = Warden(args, cfg, name)
    time.sleep(secs)
    stop, stopped = w.timed("stop", "yes", timeout=120)
    db = w.process("db")
    return w, {"stop_s": stop, "stopped": stopped, "healthy_kept": db and db["run"] == 1}


def ten_long_lines(args, name, secs):
    cfg = ('[processes.line]\ncommand = "sh -c \'head -c 100000000 /dev/zero | tr \\"\\\\\\\\000\\" x; exec sleep 600\'"\n'
           'replicas = 10\n' + bystander())
    w = Warden(args, cfg, name)
    time.sleep(secs)
    stop, stopped = w.timed("stop", "line", timeout=120)
    db = w.process("db")
    return w, {"stop_s": stop, "stopped": stopped, "healthy_kept": db and db["run"] == 1}


def fifo_sink(reader):
    def run(args, name, secs):
        def prepare(d):
            os.mkfifo(os.path.join(d, "pipe.log"))
        cfg = ('[processes.stuck]\ncommand = "warden-demo-worker chatter 1"\nlog = { file = "pipe.log" }\n'
               '[processes.crashy]\ncommand = "warden-demo-worker crash 100 1"\nbackoff = "100ms"\nbackoff_max = "100ms"\n'
               + bystander())
        w = Warden(args, cfg, name, prepare=prepare)
        held = None
        if reader:
            held = os.open(os.path.join(w.dir, "pipe.log"), os.O_RDONLY | os.O_NONBLOCK)
        before = (w.process("crashy") or {}).get("restarts", 0)
        time.sleep(secs)
        after = (w.process("crashy") or {}).get("restarts", 0)
        stuck = w.process("stuck") or {}
        stop, stopped = w.timed("stop", "stuck", timeout=120)
        if held is not None:
            os.close(held)
        db = w.process("db")
        return w, {"stop_s": stop, "stopped": stopped, "healthy_kept": db and db["run"] == 1,
                   "note": f"crashy restarted {after - before}x in {secs}s; "
                           f"stuck dropped {stuck.get('log_dropped_bytes', 0)} bytes"}
    return run


def full_disk_tmpfs(args, name, secs):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return None, {"note": "skipped: needs root and unshare for a private tmpfs"}
    def wrap(cmd):
        inner = " ".join(f"'{c}'" for c in cmd)
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                f"mkdir -p logs && mount -t tmpfs -o size=256k tmpfs logs && exec {inner}"]
    cfg = '[processes.flood]\ncommand = "warden-demo-worker chatter 1"\n' + bystander()
    w = Warden(args, cfg, name, wrap=wrap)
    time.sleep(secs)
    flood_p = w.process("flood") or {}
    stop, stopped = w.timed("stop", "flood", timeout=120)
    db = w.process("db")
    return w, {"stop_s": stop, "stopped": stopped, "healthy_kept": db and db["run"] == 1,
               "note": f"dropped {flood_p.get('log_dropped_bytes', 0)} bytes"}


def client_storm(kind):
    def run(args, name, secs):
        cfg = '[processes.flood]\ncommand = "warden-demo-worker chatter 1"\n' + bystander()
        w = Warden(args, cfg, name)
        path = w.sock
        held = []
        def conn():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            held.append(s)
            return s
        if kind == "followers":
            for _ in range(300):
                conn().sendall(b'{"v":1,"cmd":"logs","names":["flood"],"follow":true}\n')
        else:
            for _ in range(300):
                conn().sendall(b'{"v":1,"cmd":"events"}\n')
            for _ in range(200):
                conn()
            for _ in range(100):
                conn().sendall(b'{"v":1,"cmd":"sta')
        time.sleep(secs)
        stop, stopped = w.timed("stop", "flood", timeout=120)
        db = w.process("db")
        for s in held:
            s.close()
        return w, {"stop_s": stop, "stopped": stopped, "healthy_kept": db and db["run"] == 1}
    return run


def stall(args, name, secs):
    cfg = ('[processes.talker]\ncommand = "warden-demo-worker chatter 200"\noutput = { silence = "2s" }\n'
           '[processes.pinger]\ncommand = "warden-demo-worker sd-notify"\nnotify = true\nwatchdog = "2s"\n'
           + bystander())
    w = Warden(args, cfg, name)
    time.sleep(1)
    w.pause_polling(True)
    os.kill(w.pid, signal.SIGSTOP)
    time.sleep(max(secs, 8))
    os.kill(w.pid, signal.SIGCONT)
    w.pause_polling(False)
    time.sleep(3)
    runs = {n: (w.process(n) or {}).get("run") for n in ("talker", "pinger", "db")}
    stop, stopped = w.timed("stop", "talker", timeout=120)
    return w, {"stop_s": stop, "stopped": stopped, "healthy_kept": all(r == 1 for r in runs.values()),
               "note": f"stopped {max(secs, 8)}s; runs after: {runs}"}


def descriptors(args, name, secs):
    cfg = ('[processes.p]\ncommand = "warden-demo-worker sleep"\nreplicas = 500\n'
           'backoff = "100ms"\nbackoff_max = "1s"\n')
    w = Warden(args, cfg, name, nofile=(1024, 20000))
    deadline = time.time() + max(secs, 30)
    running = 0
    while time.time() < deadline:
        s = w.status() or {"processes": []}
        running = sum(p["state"] == "running" for p in s["processes"])
        if running == 500:
            break
        time.sleep(0.5)
    fatal = sum(p["state"] == "fatal" for p in (w.status() or {"processes": []})["processes"])
    stop, stopped = w.timed("stop", "p", timeout=120)
    return w, {"stop_s": stop, "stopped": stopped, "healthy_kept": running == 500 and fatal == 0,
               "note": f"{running}/500 running, {fatal} fatal (soft limit 1024, hard 20000)"}


SCENARIOS = {
    "yes": ("`yes`, logged with timestamps", flood("yes")),
    "yes-terminal": ("`yes`, terminal stalled", stalled_terminal),
    "huge-line": ("one line without newline, as long as it gets",
                  flood("sh -c 'tr \\\\\\\\000 a < /dev/zero'")),
    "binary": ("binary flood (/dev/urandom)", flood("cat /dev/urandom")),
    "stderr": ("`yes` on stderr", flood("sh -c 'yes >&2'")),
    "many-writers": ("200 processes, a line each per 10 ms", many_writers),
    "many-floods": ("50 × `yes`, logged with timestamps", many_floods),
    "long-lines": ("10 × one 100 MB line", ten_long_lines),
    "fifo-no-reader": ("log file a FIFO nobody opens", fifo_sink(False)),
    "fifo-stuck-reader": ("log file a FIFO whose reader never reads", fifo_sink(True)),
    "dev-full": ("`yes` logged to /dev/full", flood("yes", log='log = { file = "/dev/full" }')),
    "tmpfs-full": ("log folder a 256 KiB tmpfs", full_disk_tmpfs),
    "followers": ("300 `logs -f` that never read", client_storm("followers")),
    "clients": ("300 `events` that never read, 200 idle, 100 half-open", client_storm("mixed")),
    "sigstop": ("warden SIGSTOPped 8 s (silence, watchdog 2 s)", stall),
    "emfile": ("500 processes, `ulimit -Sn 1024`", descriptors),
}


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--warden", default=os.path.join(target, "release", "warden"))
    p.add_argument("--worker", default=os.path.join(target, "release", "warden-demo-worker"))
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--out", default=os.path.join(target, "stress", "results.md"))
    p.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    args = p.parse_args()
    rows = []
    failed = False
    for key in args.scenarios:
        title, run = SCENARIOS[key]
        print(f"[stress] {key}: {title}", file=sys.stderr, flush=True)
        w = None
        try:
            w, extra = run(args, key, args.seconds)
        except Exception as e:  # a scenario that cannot run is reported, not hidden
            extra = {"note": f"error: {e}"}
        if w is None:
            kill_marked()
            rows.append((key, title, None, None, None, None, None, None, extra.get("note", "")))
            if "error" in extra.get("note", ""):
                failed = True
            continue
        down, clean = w.finish()
        worst = max(w.latencies) if w.latencies else None
        worst_socket = max(w.socket_latencies) if w.socket_latencies else None
        ok = (w.peak < GOAL_RSS and worst is not None and worst < GOAL_STATUS and not w.failures
              and extra.get("stopped") and clean and extra.get("healthy_kept"))
        failed |= not ok
        rows.append((key, title, w.peak, worst, worst_socket, extra.get("stop_s"), down, ok,
                     extra.get("note", "")))
    lines = ["| scenario | what | peak RSS | worst `status` (CLI / socket) | stop | down | verdict | notes |",
             "|---|---|---|---|---|---|---|---|"]
    for key, title, peak, worst, worst_socket, stop, down, ok, note in rows:
        mib = f"{peak / (1 << 20):.1f} MiB" if peak else "-"
        lat = (f"{worst * 1000:.0f} / {worst_socket * 1000:.0f} ms"
               if worst is not None and worst_socket is not None else "-")
        st = f"{stop:.2f} s" if stop is not None else "-"
        dn = f"{down:.2f} s" if down is not None else "-"
        verdict = "-" if ok is None else ("ok" if ok else "FAIL")
        lines.append(f"| {key} | {title} | {mib} | {lat} | {st} | {dn} | {verdict} | {note} |")
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(table + "\n")
    kill_marked()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
