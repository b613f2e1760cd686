"""Turns target/bench/results.jsonl into the Markdown tables of BENCHMARKS.md.

Every number comes from the results file; the verdicts compare them with the targets of
the issues mechanically, so a regression shows up as a failed verdict, not as a stale
sentence.
"""

import json
import statistics
from collections import defaultdict

TARGET_START_VS_S6 = 3.0  # warden at least 3x faster than s6
TARGET_PSS_MIB = 10
TARGET_IDLE_CPU_PERCENT = 0.1  # "about zero": under 0.1% of one core
TARGET_RESTART_MS = 1.3  # issue #11: where a bare spawn of the same child takes 0.9 ms
TARGET_SPEW_RAW = 0.9  # issue #11: no tee, no timestamps, against the writer piped into `cat`
TARGET_SPEW_TS = 0.75
TARGET_PROBE_CPU_PERCENT = 2
TARGET_STATUS_P99_MS = 50
TARGET_SAMPLING_CGROUP_PERCENT = 1
TARGET_SAMPLING_PROC_PERCENT = 2
TARGET_DASH_CPU_PERCENT = 2
TARGET_FRAME_MS = 5
PEER_ORDER = ["warden", "warden-nocgroup", "s6", "supervisord", "floor", "floor-parallel", "respawn-floor"]
TARGET_START_VS_FLOOR = 1.05
FLOOR_LABEL = {
    "start": "floor: a posix_spawn loop, no supervisor",
    "start-parallel": "parallel floor: a posix_spawn loop per core (up to 4), no supervisor",
    "restart": "floor: posix_spawn to stamp, no supervisor",
    "respawn": "respawn floor: kill, pidfd, reap, posix_spawn, no supervisor",
}


def load(path):
    by = defaultdict(list)
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                by[(r["w"], r["peer"])].append(r["data"])
    return by


def ok(runs):
    return [r for r in runs if "error" not in r and "skipped" not in r]


def errors(runs):
    return [r["error"] for r in runs if "error" in r]


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, digits=3):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def ratio(a, b):
    if a is None or not b:
        return "–"
    r = a / b
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def verdict(passed, text):
    return f"**Verdict: {'meets' if passed else 'misses'} the target.** {text}"


def peers_in(by, w):
    return [p for p in PEER_ORDER if (w, p) in by]


COMMANDS = {
    "start": "`warden up --no-tui -c warden.toml` with {n} × `[processes.sNNN] command = \"sleep 3600\"`; "
             "`s6-svscan scan` over {n} service folders whose `run` is `#!/bin/sh` + `exec sleep 3600`; "
             "`supervisord -c supervisord.conf` with {n} × `[program:sNNN] command=sleep 3600`; the floor is "
             "`bench.py spawn-many --count {n} -- sleep 3600`, the parallel floor the same with `--workers` "
             "(one forked loop per core, up to 4, as warden has one spawner thread per core). Timed by `bench.py wait-procs`, which polls "
             "/proc every 5 ms for `sleep` processes that carry this run's marker variable.",
    "idle": "the same supervisors after their last start-up, left 12 s to settle, then `bench.py usage --seconds 30`: "
            "utime+stime of /proc/PID/stat (every thread, exited ones too), the threads' schedstat run "
            "time, voluntary context switches as wake-ups, and PSS from /proc/PID/smaps_rollup, summed "
            "over the supervisor's own processes.",
    "spew": "the writer is `warden-demo-worker stamp STAMP spew 2000000 100` under: warden "
            "(`restart = \"never\"`, `[processes.spew.log] timestamps = false|true, max_size = \"1GB\"`; "
            "started with `up --detach`, so no terminal tee, or with `up --no-tui` and its tee to a file or "
            "to /dev/null); "
            "supervisord (`startsecs=0 autorestart=false redirect_stderr=true stdout_logfile=… "
            "stdout_logfile_maxbytes=0`); s6 (`run`: `s6-svc -O .` + `exec` the writer; `log/run`: "
            "`exec s6-log n1 s250000000 LOGDIR`). Timed by `bench.py spew-wait` (file size polled every "
            "1 ms), then `bench.py verify`: byte count and sha256 against the `direct` file (with "
            "timestamps, of the `out|` records' text).",
    "restart": "the child is `warden-demo-worker stamp FILE` (appends CLOCK_REALTIME ns and its pid, "
               "then sleeps). warden: `backoff = \"0s\"` (restart at once); s6: `run` = "
               "`exec warden-demo-worker stamp FILE`; supervisord: `startsecs=0 autorestart=true`. "
               "`bench.py restart --kills 20 --uptime 0.5`; the floor is `bench.py spawn-floor`, the "
               "respawn floor `examples/respawn_floor.rs` (the death seen on a pidfd, reap, "
               "`posix_spawn` the same child: a restart with no supervisor logic), killed and timed "
               "by `bench.py restart` as the supervisors are.",
    "probes": "{n} × `sleep 3600`, each with `[processes.sNNN.liveness] tcp = \"127.0.0.1:PORT\"`, "
              "`period = \"1s\"`, `timeout = \"1s\"`, against `bench.py listen` (accepts, closes, counts); "
              "`bench.py usage --seconds 30` over warden and its guard. Measured only if a liveness probe "
              "on a closed port makes warden restart a process (checked first).",
    "dashboard": "frames: `target/release/examples/dashboard_frame {n} 1000` (the views at 120×40 with {n} "
                 "processes, 5,000 log lines and 2,000 events held, each frame after a clock tick, drawn "
                 "through the crossterm backend into a sink). Idle: `bench.py pty-run --rows 40 --cols 120 -- "
                 "warden up -c warden.toml` ({n} × `sleep 3600`; a pseudo-terminal whose output is read and "
                 "dropped), nothing pressed, then `bench.py usage --seconds 30` over warden (supervisor and "
                 "dashboard, one process) and its guard. Attached: `warden up --no-tui` and `bench.py "
                 "pty-run -- warden tui`, both measured over the same 30 s.",
    "sampling": "{n} × `sleep 3600`, each with `[processes.sNNN.limits] memory = \"1GB\"` (a rule, so "
                "warden samples every `sample_interval = \"1s\"`), once with `cgroup = \"auto\"` (figures "
                "from each run's cgroup) and once with `cgroup = \"off\"` (figures from each process's "
                "`/proc/PID/stat`); `bench.py usage --seconds 30` over warden and its guard, 12 s after the start-up (once warden has settled).",
    "stop_many": "one process with `replicas = {n}` of `sleep 3600`, in cgroup mode (`cgroup = \"auto\"`), "
                 "with `cgroup = \"off\"`, and with `cgroup = \"off\"` where each replica also leaves an "
                 "escapee behind (`sh -c \"(setsid sleep 3600 &); exec sleep 3600\"`: adopted by warden, "
                 "found by its `WARDEN_RUN_ID`); `warden stop p` timed from the command to its return (it "
                 "returns once nothing of the runs is alive), then checked: nothing marked left but warden "
                 "and its guard.",
    "status": "`warden status --json -c warden.toml` run 200 times in a row by `bench.py status-latency` "
              "(a new client process each time, so its start-up is included), {n} × `sleep 3600` running, "
              "`[supervisor] socket` set; then again while 200 connections to the socket stay open "
              "and silent.",
}


def command(key, n):
    return "Command: " + COMMANDS[key].replace("{n}", str(n)) + "\n"


def render_stop_many(by, n, w, summary):
    """Workload 9: `warden stop` of n processes, in each tracking mode."""
    w(f"\n### 9. `warden stop` of {n} running processes\n")
    w(command("stop_many", n))
    labels = {"warden-cgroup": "cgroup mode", "warden-proc": "/proc mode (`cgroup = \"off\"`)",
              "warden-proc-escapees": "/proc mode, an escapee per replica"}
    rows = [(p, ok(by.get(("stop_many", p), []))) for p in labels]
    rows = [(p, runs) for p, runs in rows if runs]
    if not rows:
        w("Not run in this run.")
        return
    w("| tracking | processes | stop, median s | min–max s | runs | left behind | load average |")
    w("|---|---|---|---|---|---|---|")
    for p, runs in rows:
        secs = [r["seconds"] for r in runs]
        left = sum(r["left_behind"] for r in runs)
        w(f"| {labels[p]} | {runs[-1]['processes']} | {fmt(med(secs))} | {fmt(min(secs))}–{fmt(max(secs))} | "
          f"{len(runs)} | {left} | {runs[0]['loadavg']} … {runs[-1]['loadavg']} |")
        summary.append((f"`warden stop` of {n}: {labels[p]}", "≈ 1 s or less, nothing left",
                        f"{fmt(med(secs))} s", "–", med(secs) <= 1.0 and left == 0))
    w("")


def render(results, machine_path):
    by = load(results)
    m = json.load(open(machine_path))
    end = (by.get(("end", "all")) or [{}])[-1]
    n = m["n"]
    out = []
    w = out.append

    w(f"Run of {m['date']}, warden `{m['warden']}`, {end.get('seconds', '?')} s in all.\n")
    w("| machine | |")
    w("|---|---|")
    w(f"| CPU | {m['nproc']} × {m['cpu']} |")
    w(f"| memory | {m['mem_gib']} GiB |")
    w(f"| kernel / OS | {m['kernel']} / {m['os']} |")
    w(f"| toolchain | {m['rustc']}, Python {m['python']} |")
    w(f"| peers | supervisord {m['supervisord'] or '–'}, s6 {m['s6'] or '–'} |")
    w(f"| other load (both cores busy, % over 3 s, nothing of ours running) | "
      f"{m['background_busy_start']} % at start, {end.get('background_busy_end', '?')} % at end |")
    w(f"| load average | {' '.join(m['loadavg_start'])} at start, {end.get('loadavg_end', '?')} at end |")
    w("")
    for (wk, peer), runs in sorted(by.items()):
        for e in errors(runs):
            w(f"- error in `{wk}` for {peer}: `{e.strip()[:200]}`")
    w("")
    summary_at = len(out)
    summary = []  # (workload, target, warden, peers, met)

    # 1. start
    w(f"### 1. Start {n} `sleep 3600` children\n")
    w(command("start", n))
    if not any(w_ == "start" for w_, _ in by):
        w("Not run in this run.\n")
    else:
        w("Seconds from launching the supervisor until all of them run (median of the "
          "repetitions; min–max beside it). Stop: SIGTERM until nothing is left.\n")
        w("| peer | start, median s | min–max | runs | stop, median s | warden/peer (start) |")
        w("|---|---|---|---|---|---|")
        times = {p: [r["seconds"] for r in ok(by[("start", p)])] for p in peers_in(by, "start")}
        start = {p: med(xs) for p, xs in times.items()}
        for p, xs in times.items():
            stops = [r["seconds"] for r in ok(by.get(("stop", p), []))]
            rel = ratio(start.get("warden"), start[p]) if p != "warden" else "–"
            span = f"{fmt(min(xs))}–{fmt(max(xs))}" if xs else "–"
            label = {"floor": FLOOR_LABEL["start"], "floor-parallel": FLOOR_LABEL["start-parallel"]}.get(p, p)
            w(f"| {label} | {fmt(start[p])} | {span} | {len(xs)} | {fmt(med(stops))} | {rel} |")
        if start.get("warden"):
            summary.append((f"start {n}", f"≥ {TARGET_START_VS_S6:g}× as fast as s6", f"{start['warden']:.2f} s",
                            ", ".join(f"{p} {start[p]:.2f} s" for p in start if p != "warden"),
                            start.get("s6") and start["s6"] / start["warden"] >= TARGET_START_VS_S6))
        if start.get("warden") and start.get("s6"):
            speedup = start["s6"] / start["warden"]
            w("\n" + verdict(speedup >= TARGET_START_VS_S6,
                             f"warden starts {n} children {speedup:.1f}× as fast as s6 (target ≥ {TARGET_START_VS_S6:g}×)."))
        if start.get("warden") and start.get("floor"):
            vs_floor = start["warden"] / start["floor"]
            beside = (f"; the parallel floor {start['floor-parallel']:.2f} s" if start.get("floor-parallel") else "")
            summary.append((f"start {n} against the floor", f"≤ {TARGET_START_VS_FLOOR:g}× a posix_spawn loop",
                            f"{vs_floor:.2f}×", f"floor {start['floor']:.2f} s{beside}",
                            vs_floor <= TARGET_START_VS_FLOOR))
            w("\n" + verdict(vs_floor <= TARGET_START_VS_FLOOR,
                             f"warden takes {vs_floor:.2f}× the time of a posix_spawn loop (target ≤ "
                             f"{TARGET_START_VS_FLOOR:g}×); it forks on one thread per core, the loop on one"
                             f"{beside}."))
        w("")

    # 2. idle
    w(f"### 2. {n} idle children for the measured period\n")
    w(command("idle", n))
    if not any(w_ == "idle" for w_, _ in by):
        w("Not run in this run.\n")
    else:
        w("The supervisor's own processes (warden + `warden __guard`; s6-svscan + every "
          "s6-supervise; supervisord), never the children.\n")
        w("| peer | supervisor processes / threads | CPU ms (ticks) | run time ms (schedstat) | % of one core | wake-ups | PSS MiB | RSS MiB | warden/peer PSS |")
        w("|---|---|---|---|---|---|---|---|---|")
        idle = {p: ok(by[("idle", p)])[-1] for p in peers_in(by, "idle") if ok(by[("idle", p)])}
        for p, r in idle.items():
            rp = ratio(idle["warden"]["pss_mib"], r["pss_mib"]) if p != "warden" and "warden" in idle else "–"
            w(f"| {p} | {r['processes']} / {r['threads']} | {fmt(r['cpu_ms'])} | {fmt(r['run_ms'])} | "
              f"{r['cpu_percent']:.3f} | {r['wakeups']} | {fmt(r['pss_mib'])} | {fmt(r['rss_mib'])} | {rp} |")
        if "warden" in idle:
            r = idle["warden"]
            cpu_ok = r["cpu_percent"] < TARGET_IDLE_CPU_PERCENT
            pss_ok = r["pss_mib"] < TARGET_PSS_MIB
            others = [p for p in idle if p != "warden"]
            summary.append((f"idle {n}: CPU", "≈ 0", f"{r['cpu_percent']:.3f} %",
                            ", ".join(f"{p} {idle[p]['cpu_percent']:.3f} %" for p in others), cpu_ok))
            summary.append((f"idle {n}: memory (PSS)", f"< {TARGET_PSS_MIB} MiB", f"{r['pss_mib']:.1f} MiB",
                            ", ".join(f"{p} {idle[p]['pss_mib']:.1f} MiB" for p in others), pss_ok))
            w(f"\nMeasured over {r['seconds']} s. **Verdict: CPU {'meets' if cpu_ok else 'misses'} the "
              f"target, memory {'meets' if pss_ok else 'misses'} it.** warden: {r['cpu_percent']:.3f} % "
              f"of a core and {r['wakeups']} wake-ups (target ≈ 0, read as < {TARGET_IDLE_CPU_PERCENT} %); "
              f"{r['pss_mib']:.1f} MiB PSS (target < {TARGET_PSS_MIB} MiB).")
        w("")

    # 3. spew
    w("### 3. One child writing 200 MB of 100-byte lines\n")
    w(command("spew", n))
    if not any(w_ == "spew" for w_, _ in by):
        w("Not run in this run.\n")
    else:
        w("Seconds from the writer's start (its stamp) until the log file holds "
          "every byte; MB/s of payload (10^6 bytes). Two baselines without a supervisor: "
          "`direct`, the writer's stdout is the file (one thread formats and writes), and "
          "`pipe`, the writer piped into `cat > file` (a reader on the other core, as a "
          "supervisor has).\n")
        w("| capture | median s | MB/s (median) | MB/s min–max | runs | bytes checked | warden (raw)/this | this/pipe |")
        w("|---|---|---|---|---|---|---|---|")
        direct_sha = {r["sha256"] for r in by.get(("spew-verify", "direct"), [])}
        labels = {"direct": "no supervisor: direct to file", "pipe": "no supervisor: pipe to `cat`",
                  "warden_raw": "warden, timestamps = false (detached: no tee)",
                  "warden_ts": "warden, timestamps = true (detached: no tee)",
                  "warden_tee": "warden `up --no-tui`, tee to a file, timestamps = false",
                  "warden_tee_null": "warden `up --no-tui`, tee to /dev/null, timestamps = false",
                  "supervisord": "supervisord", "s6": "s6 + s6-log"}
        spews = {k: ok(by[("spew", k)]) for k in labels if ok(by.get(("spew", k), []))}
        speed = {k: med([r["mb_per_s"] for r in runs]) for k, runs in spews.items()}
        for k, runs in spews.items():
            mbs = [r["mb_per_s"] for r in runs]
            checks = by.get(("spew-verify", k), [])
            good = sum(1 for c in checks if c["bytes"] == 200_000_000 and c["sha256"] in direct_sha)
            check = f"{good}/{len(checks)} identical"
            if k == "warden_ts":
                check += f" payload ({checks[0]['records'] if checks else 0:,} records)"
            rel = ratio(speed.get("warden_raw"), speed[k]) if k != "warden_raw" else "–"
            pipe = ratio(speed[k], speed.get("pipe")) if k != "pipe" else "–"
            w(f"| {labels[k]} | {fmt(med([r['seconds'] for r in runs]))} | {fmt(speed[k])} | "
              f"{fmt(min(mbs))}–{fmt(max(mbs))} | {len(runs)} | {check} | {rel} | {pipe} |")
        if "warden_raw" in speed and "pipe" in speed:
            raw, ts, pipe = speed["warden_raw"], speed.get("warden_ts", 0), speed["pipe"]
            good = raw >= TARGET_SPEW_RAW * pipe and ts >= TARGET_SPEW_TS * pipe
            summary.append(("200 MB log, MB/s (no tee)",
                            f"≥ {TARGET_SPEW_RAW}× pipe, {TARGET_SPEW_TS}× with timestamps",
                            f"{raw:.0f} ({ts:.0f} with timestamps)",
                            ", ".join(f"{labels[k].split(':')[0].replace('no supervisor', k)} {v:.0f}"
                                      for k, v in speed.items() if not k.startswith("warden")),
                            good))
            tee = "; ".join(f"{labels[k]} {speed[k]:.0f} MB/s ({speed[k] / pipe:.2f}×)"
                            for k in ("warden_tee", "warden_tee_null") if k in speed)
            w("\n" + verdict(good, f"warden without a tee {raw:.0f} MB/s = {raw / pipe:.2f}× the pipe's "
                             f"{pipe:.0f} MB/s (target ≥ {TARGET_SPEW_RAW}×); with timestamps {ts:.0f} MB/s = "
                             f"{ts / pipe:.2f}× (target ≥ {TARGET_SPEW_TS}×). {tee}."))
        w("")

    # 4. restart
    w("### 4. Restart latency after SIGKILL\n")
    w(command("restart", n))
    if not any(w_ == "restart" for w_, _ in by):
        w("Not run in this run.\n")
    else:
        w("Milliseconds from right before kill() to the start of the new child's `main` "
          "(its stamp), each kill 0.5 s after the child started; s6 once more with kills "
          "1.2 s after the start. The floor is the same child spawned with no supervisor; the respawn floor "
          "kills it and spawns it again, with no supervisor either.\n")
        w("| peer | kills | median ms | p90 ms | min–max ms | warden/peer (median) |")
        w("|---|---|---|---|---|---|")
        rest = {}
        rows = [(p, "restart", "warden, `cgroup = \"off\"`" if p == "warden-nocgroup" else p)
                for p in peers_in(by, "restart") if not p.endswith("floor")]
        rows += [(p, "restart-long", f"{p} (killed after 1.2 s)") for p in peers_in(by, "restart-long")]
        floors = {"floor": FLOOR_LABEL["restart"], "respawn-floor": FLOOR_LABEL["respawn"]}
        rows += [(p, "restart", floors[p]) for p in peers_in(by, "restart") if p in floors]
        for p, wk, label in rows:
            runs = ok(by[(wk, p)])
            if not runs:
                continue
            r = runs[-1]
            rest[label] = r["median_ms"]
            w(f"| {label} | {len(r['ms'])} | {fmt(r['median_ms'])} | {fmt(r['p90_ms'])} | "
              f"{fmt(min(r['ms']))}–{fmt(max(r['ms']))} | "
              f"{ratio(rest.get('warden'), r['median_ms']) if p != 'warden' else '–'} |")
        if "warden" in rest:
            short = {label: p.replace("-", " ") for p, label in floors.items()}
            summary.append(("restart after SIGKILL, median", f"< {TARGET_RESTART_MS} ms", f"{rest['warden']:.2f} ms",
                            ", ".join(f"{short.get(k, k)} {v:,.2f} ms"
                                      for k, v in rest.items() if k != "warden"),
                            rest["warden"] < TARGET_RESTART_MS))
            w("\n" + verdict(rest["warden"] < TARGET_RESTART_MS,
                             f"warden's median is {rest['warden']:.2f} ms (target < {TARGET_RESTART_MS} ms)."))
        w("")

    # 5. probes
    w(f"### 5. {n} TCP liveness probes at a 1 s period\n")
    w(command("probes", n))
    runs = by.get(("probes", "warden"), [])
    if not runs:
        w("Not run in this run.")
    elif "skipped" in runs[-1]:
        w(runs[-1]["skipped"] + ".")
    elif ok(runs):
        r = ok(runs)[-1]
        conn = (by.get(("probes-connections", "warden")) or [{}])[-1]
        w("| CPU ms | % of one core | wake-ups | PSS MiB | connections/s at the listener | restarts |")
        w("|---|---|---|---|---|---|")
        w(f"| {fmt(r['cpu_ms'])} | {r['cpu_percent']:.3f} | {r['wakeups']} | {fmt(r['pss_mib'])} | "
          f"{conn.get('per_second', '?')} | {conn.get('restarts', '?')} |")
        summary.append((f"{n} TCP probes at 1 s: CPU", f"< {TARGET_PROBE_CPU_PERCENT} %",
                        f"{r['cpu_percent']:.2f} %", "–", r["cpu_percent"] < TARGET_PROBE_CPU_PERCENT))
        w("\n" + verdict(r["cpu_percent"] < TARGET_PROBE_CPU_PERCENT,
                         f"{r['cpu_percent']:.2f} % of a core (target < {TARGET_PROBE_CPU_PERCENT} %)."))
    else:
        w("not measured: " + "; ".join(errors(runs)))
    w("")

    # 6. status
    w(f"### 6. `warden status --json` with {n} processes\n")
    w(command("status", n))
    runs = by.get(("status", "warden"), [])
    if not runs:
        w("Not run in this run.")
    elif "skipped" in runs[-1]:
        w(runs[-1]["skipped"].split(":")[0] + ".")
    elif ok(runs):
        w("| clients | calls | p50 ms | p99 ms | max ms |")
        w("|---|---|---|---|---|")
        rows = [("none idle", ok(runs)[-1])]
        idle_runs = ok(by.get(("status-idle", "warden"), []))
        if idle_runs:
            rows.append((f"{idle_runs[-1]['idle_conns']} idle connections "
                         f"({idle_runs[-1]['idle_conns_still_open']} still open after)", idle_runs[-1]))
        for label, r in rows:
            w(f"| {label} | {r['calls']} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['max_ms'])} |")
        worst = max(r["p99_ms"] for _, r in rows)
        summary.append((f"`status --json`, {n} processes: p99", f"< {TARGET_STATUS_P99_MS} ms",
                        " / ".join(f"{r['p99_ms']:.1f} ms" for _, r in rows) + " (plain / 200 idle clients)",
                        "–", worst < TARGET_STATUS_P99_MS))
        w("\n" + verdict(worst < TARGET_STATUS_P99_MS,
                         f"worst p99 {worst:.1f} ms, client start-up included (target < {TARGET_STATUS_P99_MS} ms)."))
    else:
        w("not measured yet: " + "; ".join(errors(runs)))
    w("")

    # 7. dashboard
    w(f"### 7. The dashboard with {n} processes\n")
    w(command("dashboard", n))
    frame = ok(by.get(("dashboard-frame", "warden"), []))
    idle = ok(by.get(("dashboard-idle", "warden"), []))
    tui = ok(by.get(("dashboard-attached-tui", "warden"), []))
    sup = ok(by.get(("dashboard-attached-supervisor", "warden"), []))
    if not (frame or idle or tui):
        w("Not run in this run.")
        for key in ("dashboard-frame", "dashboard-idle", "dashboard-attached-tui"):
            for e in errors(by.get((key, "warden"), [])):
                w(f"- {key}: `{e.strip()[:200]}`")
    if frame:
        f = frame[-1]
        w(f"Frame time, ms ({f['frames']} frames per view, {f['size']}):\n")
        w("| view | mean | p50 | p99 | max |")
        w("|---|---|---|---|---|")
        views = [("main", "table (scrolled to the middle), logs, events"), ("logs_zoomed", "logs, full screen"),
                 ("connectivity", f"connectivity ({n} probes)"), ("detail", "details of a process")]
        for key, label in views:
            r = f[key]
            w(f"| {label} | {fmt(r['mean_ms'])} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['max_ms'])} |")
        worst = max(f[k]["mean_ms"] for k, _ in views)
        summary.append((f"dashboard frame, {n} processes (mean, slowest view)", f"< {TARGET_FRAME_MS} ms",
                        f"{worst:.2f} ms", "–", worst < TARGET_FRAME_MS))
        w("\n" + verdict(worst < TARGET_FRAME_MS,
                         f"the slowest view's mean frame is {worst:.2f} ms (target < {TARGET_FRAME_MS} ms); "
                         f"the p99 and max include whatever else the two shared cores were doing."))
        w("")
    if idle or tui:
        w("| what | % of one core | wake-ups | PSS MiB | RSS MiB |")
        w("|---|---|---|---|---|")
        rows = []
        if idle:
            rows.append(("`warden up` with the dashboard (supervisor and view, one process)", idle[-1]))
        if tui:
            rows.append(("`warden tui` attached (the view alone)", tui[-1]))
        if sup:
            rows.append(("the `--no-tui` supervisor it is attached to", sup[-1]))
        for label, r in rows:
            w(f"| {label} | {r['cpu_percent']:.3f} | {r['wakeups']} | {fmt(r['pss_mib'])} | {fmt(r['rss_mib'])} |")
        worst = max(r["cpu_percent"] for label, r in rows if "supervisor it is" not in label)
        summary.append((f"idle dashboard, {n} processes: CPU", f"< {TARGET_DASH_CPU_PERCENT} %",
                        " / ".join(f"{r['cpu_percent']:.2f} %" for l, r in rows if "supervisor it is" not in l)
                        + " (in process / attached)", "–", worst < TARGET_DASH_CPU_PERCENT))
        w("\n" + verdict(worst < TARGET_DASH_CPU_PERCENT,
                         f"at most {worst:.2f} % of a core (target < {TARGET_DASH_CPU_PERCENT} %): one wake-up a "
                         "second to move the uptimes, and only the cells that changed are sent."))
    idle2 = ok(by.get(("idle", "warden"), []))
    if idle2:
        r = idle2[-1]
        summary.append((f"idle {n}, nobody watching: wake-ups", "0", str(r["wakeups"]), "–", r["wakeups"] == 0))
    w("")

    # 8. sampling
    w(f"### 8. Sampling {n} idle processes every second\n")
    w(command("sampling", n))
    rows = [(p, ok(by.get(("sampling", p), []))) for p in ("warden-cgroup", "warden-proc")]
    rows = [(p, runs[-1]) for p, runs in rows if runs]
    if not rows:
        w("Not run in this run.")
    else:
        w("| figures from | cgroup mode warden chose | CPU ms | % of one core | wake-ups | PSS MiB |")
        w("|---|---|---|---|---|---|")
        targets = {"warden-cgroup": TARGET_SAMPLING_CGROUP_PERCENT,
                   "warden-proc": TARGET_SAMPLING_PROC_PERCENT}
        labels = {"warden-cgroup": "each run's cgroup", "warden-proc": "/proc/PID/stat"}
        for p, r in rows:
            mode = (by.get(("sampling-mode", p)) or [{}])[-1]
            shown = f"{mode.get('mode', '?')}: {mode.get('detail', mode.get('error', ''))}"
            w(f"| {labels[p]} | {shown} | {fmt(r['cpu_ms'])} | {r['cpu_percent']:.3f} | "
              f"{r['wakeups']} | {fmt(r['pss_mib'])} |")
            if p == "warden-cgroup" and mode.get("mode") != "v2":
                w("\nThe cgroup row ran without cgroups (see the mode): it measures /proc again.\n")
            summary.append((f"sample {n} idle at 1 s: {labels[p]}", f"< {targets[p]} %",
                            f"{r['cpu_percent']:.2f} %", "–", r["cpu_percent"] < targets[p]))
        w("\n" + " ".join(verdict(r["cpu_percent"] < targets[p],
                                   f"{labels[p]}: {r['cpu_percent']:.2f} % of a core (target < {targets[p]} %).")
                           for p, r in rows))
    render_stop_many(by, n, w, summary)
    table = ["### Summary\n", "| workload | target | warden | others | target met |",
             "|---|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} | {'yes' if e else '**no**'} |" for a, b, c, d, e in summary]
    out[summary_at:summary_at] = table + [""]
    return "\n".join(out)
