#!/usr/bin/env bash
# `make bench`: warden beside supervisord and s6, the same workloads in the same run.
#
# Builds warden (release), installs the peers (supervisord into a venv under
# target/bench, s6 from Debian; a peer that cannot be installed is skipped with a note),
# runs every workload, appends one JSON line per measurement to target/bench/results.jsonl
# and writes the tables to target/bench/results.md (BENCHMARKS.md explains them).
#
# Everything this script starts carries the environment variable BENCH_MARK=<token of
# this run>; the EXIT trap stops the supervisors it launched, then SIGKILLs whatever
# still carries the token, so nothing outlives the script, even on failure or Ctrl-C.
# Every wait is bounded; the measurements take about 5 minutes on 2 cores, plus the build.
#
# Knobs (environment): BENCH_N (500 processes), BENCH_REPS (5 start-ups per peer),
# BENCH_IDLE (30 s), BENCH_PEERS ("warden s6 supervisord"), BENCH_SPEW_REPS (5),
# BENCH_KILLS (20), BENCH_WORKLOADS ("start_idle spew restart probes status dashboard
# sampling stop_many"), BENCH_WARDEN_BEFORE (another warden binary: the spew workload runs
# it too, alternated with this one, as kinds `warden_*_before`; in results.jsonl only).
set -euo pipefail
export LC_ALL=C # `$EPOCHREALTIME` with a decimal point

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

N=${BENCH_N:-500}
REPS=${BENCH_REPS:-5}
IDLE=${BENCH_IDLE:-30}
PEERS=(${BENCH_PEERS:-warden s6 supervisord})
WORKLOADS=(${BENCH_WORKLOADS:-start_idle spew restart probes status dashboard sampling stop_many})
SPEW_LINES=2000000
SPEW_LEN=100
SPEW_BYTES=$((SPEW_LINES * SPEW_LEN))
SPEW_REPS=${BENCH_SPEW_REPS:-5}
KILLS=${BENCH_KILLS:-20}
# Seconds between a start-up and a steady-state measurement: start-up work is over by
# then (supervisord's startsecs, log files being opened), and so is warden's settling
# (the log writer threads that opened N files end 10 s after their last work).
SETTLE=12

OUT=target/bench
RESULTS=$OUT/results.jsonl
WARDEN=$ROOT/target/release/warden
WORKER=$ROOT/target/release/warden-demo-worker
SUPERVISORD=$ROOT/$OUT/venv/bin/supervisord
PY=(python3 "$ROOT/assets/bench/bench.py")

TOKEN=warden-bench-$$-$RANDOM$RANDOM
MARK=BENCH_MARK=$TOKEN
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wbench.XXXXXX")
LAUNCHED=()   # pids of everything started in the background, newest last

if [[ -t 2 ]]; then
    note() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
else
    note() { printf '[bench] %s\n' "$*" >&2; }
fi

cleanup() {
    local status=$? pid
    trap - EXIT INT TERM
    for ((i = ${#LAUNCHED[@]} - 1; i >= 0; i--)); do
        pid=${LAUNCHED[i]}
        if alive "$pid" && ours "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            wait_exit "$pid" 20 || kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    "${PY[@]}" reap --marker "$MARK" >/dev/null 2>&1 || true
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT TERM

# ---- process handling ----------------------------------------------------------------

# alive PID: true while PID runs (an exited, unreaped child is not alive).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# ours PID: true if PID carries this run's marker (a reaped pid may have been reused).
ours() {
    tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | grep -qxF "$MARK"
}

# wait_exit PID SECONDS: true once PID has exited (it is then reaped), false on timeout.
wait_exit() {
    local deadline=$((SECONDS + $2))
    while alive "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.02
    done
    wait "$1" 2>/dev/null || true
}

# launch NAME CMD...: start CMD in the background with the marker; its output goes to
# $TMP/NAME.out; its pid is left in $PID. $T0 is taken right before the launch.
launch() {
    local name=$1
    shift
    T0=$EPOCHREALTIME
    env "$MARK" "$@" >"$TMP/$name.out" 2>&1 &
    PID=$!
    LAUNCHED+=("$PID")
}

# stop PID [SPARE_PIDS]: SIGTERM, up to 60 s for it and everything it started to be
# gone (all marked processes but SPARE_PIDS, comma-separated), then SIGKILL what is left.
# Prints the seconds the shutdown took (JSON).
stop() {
    local pid=$1 spare=${2:-} t0=$EPOCHREALTIME
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_exit "$pid" 60; then
        note "pid $pid ignored SIGTERM for 60 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_exit "$pid" 5 || true
    fi
    if ! "${PY[@]}" wait-gone --marker "$MARK" --t0 "$t0" --timeout 30 --spare "$spare"; then
        "${PY[@]}" reap --marker "$MARK" --spare "$spare" >/dev/null
        echo '{"error": "processes left behind after the supervisor exited"}'
    fi
}

# record WORKLOAD PEER JSON: one line of results.jsonl.
record() {
    printf '{"w": "%s", "peer": "%s", "data": %s}\n' "$1" "$2" "$3" >>"$RESULTS"
    note "$1 $2: $3"
}

# measure WORKLOAD PEER CMD...: run a bench.py measurement and record its JSON, or the
# error if it failed (the run goes on: one broken peer must not hide the others).
measure() {
    local w=$1 peer=$2 out
    shift 2
    if out=$("${PY[@]}" "$@" 2>"$TMP/err"); then
        record "$w" "$peer" "$out"
    else
        record "$w" "$peer" "$(python3 -c 'import json,sys; print(json.dumps({"error": sys.argv[1]}))' "$(tail -c 300 "$TMP/err")")"
        return 1
    fi
}

has_peer() { [[ " ${PEERS[*]} " == *" $1 "* ]]; }

# ---- setup ---------------------------------------------------------------------------

build() {
    note "building warden (release)"
    cargo build --release --bins --example dashboard_frame --example respawn_floor
}

install_supervisord() {
    [[ -x $SUPERVISORD ]] && return 0
    note "installing supervisor into $OUT/venv"
    python3 -m venv "$OUT/venv" && "$OUT/venv/bin/pip" install -q supervisor
}

install_s6() {
    command -v s6-svscan >/dev/null && command -v s6-log >/dev/null && return 0
    note "installing s6 (apt-get)"
    apt-get install -y -q s6 >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q s6 >/dev/null 2>&1; }
}

install_peers() {
    local kept=(warden)
    for peer in "${PEERS[@]}"; do
        case $peer in
        warden) ;;
        s6) if install_s6; then kept+=(s6); else note "s6 could not be installed: skipped"; record install s6 '{"error": "apt-get install s6 failed"}'; fi ;;
        supervisord) if install_supervisord; then kept+=(supervisord); else note "supervisor could not be installed: skipped"; record install supervisord '{"error": "pip install supervisor failed"}'; fi ;;
        esac
    done
    PEERS=("${kept[@]}")
}

# The machine and how busy it already is: other builds share these 2 cores.
describe_machine() {
    local busy
    busy=$(background_busy)
    python3 - "$busy" "$N" >"$OUT/machine.json" <<'EOF'
import json, os, platform, subprocess, sys
def sh(*c):
    try: return subprocess.run(c, capture_output=True, text=True).stdout.strip()
    except OSError: return ""
mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(json.dumps({
    "nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(int(mem) / 2**20, 1),
    "kernel": platform.release(), "os": sh("sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"),
    "loadavg_start": open("/proc/loadavg").read().split()[:3],
    "background_busy_start": float(sys.argv[1]),
    "warden": sh("git", "describe", "--always", "--dirty"),
    "rustc": sh("rustc", "--version"),
    "supervisord": sh("target/bench/venv/bin/supervisord", "--version"),
    "s6": sh("dpkg-query", "-W", "-f", "${Version}", "s6"),
    "python": platform.python_version(), "n": int(sys.argv[2]),
    "date": sh("date", "-u", "+%Y-%m-%d %H:%M UTC"),
}))
EOF
}

# Percentage of both cores busy over 3 s while this script runs nothing.
background_busy() {
    python3 -c '
import time
def snap():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(v), v[3] + v[4]
t1, i1 = snap(); time.sleep(3); t2, i2 = snap()
print(round(100 * (1 - (i2 - i1) / (t2 - t1)), 1))'
}

# ---- configs (generated into $TMP) ---------------------------------------------------

# warden_sleep_config DIR [EXTRA_SUPERVISOR_LINES [PROBE_PORT [MEMORY_RULE]]]
warden_sleep_config() {
    local dir=$1 extra=${2:-} port=${3:-} memory=${4:-}
    rm -rf "$dir" && mkdir -p "$dir"
    {
        printf '[supervisor]\nlog_dir = "logs"\n%s\n' "$extra"
        for ((i = 0; i < N; i++)); do
            printf '\n[processes.s%03d]\ncommand = "sleep 3600"\n' "$i"
            if [[ -n $port ]]; then
                printf '[processes.s%03d.liveness]\ntcp = "127.0.0.1:%s"\nperiod = "1s"\ntimeout = "1s"\n' "$i" "$port"
            fi
            if [[ -n $memory ]]; then
                printf '[processes.s%03d.limits]\nmemory = "%s"\n' "$i" "$memory"
            fi
        done
    } >"$dir/warden.toml"
    "$WARDEN" check -c "$dir/warden.toml" >/dev/null
}

s6_sleep_config() {
    local dir=$1
    rm -rf "$dir" && mkdir -p "$dir/scan"
    for ((i = 0; i < N; i++)); do
        mkdir "$dir/scan/s$i"
        printf '#!/bin/sh\nexec sleep 3600\n' >"$dir/scan/s$i/run"
        chmod +x "$dir/scan/s$i/run"
    done
}

supervisord_header() {
    printf '[supervisord]\nnodaemon=true\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\nchildlogdir=%s\nminfds=4096\n' "$1" "$1" "$1"
}

supervisord_sleep_config() {
    local dir=$1
    rm -rf "$dir" && mkdir -p "$dir"
    {
        supervisord_header "$dir"
        for ((i = 0; i < N; i++)); do
            printf '\n[program:s%03d]\ncommand=sleep 3600\n' "$i"
        done
    } >"$dir/supervisord.conf"
}

# ---- workloads 1 and 2: start N sleeps; then the supervisor idle ---------------------

# The floor, no supervisor: a loop of posix_spawn; and one loop per core, as warden has
# one spawner thread per core (up to 4).
floor_sleep_config() { :; }
start_floor() { launch floor "${PY[@]}" spawn-many --count "$N" -- sleep 3600; }
floor-parallel_sleep_config() { :; }
start_floor-parallel() {
    local cores
    cores=$(nproc)
    launch floor-parallel "${PY[@]}" spawn-many --count "$N" --workers "$((cores < 4 ? cores : 4))" -- sleep 3600
}

# start_PEER DIR: launch the peer on the config made by PEER_sleep_config DIR.
start_warden() { launch warden "$WARDEN" up --no-tui -c "$1/warden.toml"; }
start_s6() { launch s6 s6-svscan "$1/scan"; }
start_supervisord() { launch supervisord "$SUPERVISORD" -c "$1/supervisord.conf"; }

# Which descendants count as the supervisor itself (the children never do).
supervisor_parts() {
    case $1 in
    warden) echo warden ;;            # the guard, `warden __guard`
    s6) echo s6-supervise ;;          # one per service
    supervisord | floor | floor-parallel) echo '' ;;
    esac
}

# start_and_idle PEER REP MEASURE_IDLE
start_and_idle() {
    local peer=$1 rep=$2 idle=$3 dir=$TMP/$1-sleep pid
    "${peer}_sleep_config" "$dir"
    "start_$peer" "$dir"
    pid=$PID
    measure start "$peer" wait-procs --marker "$MARK" --comm sleep --count "$N" \
        --t0 "$T0" --timeout 60 --ignore-comm s6-supervise s6-svscan || true
    if [[ $idle == yes ]] && alive "$pid"; then
        sleep "$SETTLE"
        measure idle "$peer" usage --roots "$pid" --desc "$(supervisor_parts "$peer")" \
            --seconds "$IDLE" || true
    fi
    record stop "$peer" "$(stop "$pid")"
}

workload_start_idle() {
    note "workloads 1+2: start $N sleeps ($REPS times per peer, interleaved); idle ${IDLE}s on the last"
    local last
    for ((rep = 1; rep <= REPS; rep++)); do
        last=$([[ $rep == "$REPS" ]] && echo yes || echo no)
        for peer in "${PEERS[@]}"; do
            start_and_idle "$peer" "$rep" "$last"
        done
        start_and_idle floor "$rep" no
        start_and_idle floor-parallel "$rep" no
    done
}

# ---- workload 3: one child writing 200 MB of 100-byte lines --------------------------

SPEW=("$WORKER" stamp STAMP spew "$SPEW_LINES" "$SPEW_LEN")

# spew_cmd STAMPFILE: the writer's command line, quoted for sh and supervisord.
spew_cmd() {
    local argv=("${SPEW[@]/STAMP/$1}")
    printf '%q ' "${argv[@]}"
}

# toml_argv ARG...: a TOML array of strings (paths here never hold `"` or `\`).
toml_argv() {
    local sep=''
    printf '['
    for a in "$@"; do
        printf '%s"%s"' "$sep" "$a"
        sep=', '
    done
    printf ']'
}

# spew_PEER DIR: start the writer under the peer; sets LOG (the file to watch).
# The two baselines have no supervisor: the writer's stdout is the file, or a pipe
# into `cat` (which is what a supervisor's capture is at best).
spew_direct() {
    LOG=$1/direct.out
    launch direct-spew sh -c 'exec "$@" >"$0"' "$LOG" "${SPEW[@]/STAMP/$1/stamp}"
}

spew_pipe() {
    LOG=$1/pipe.out
    launch pipe-spew sh -c '"$@" | cat >"$0"' "$LOG" "${SPEW[@]/STAMP/$1/stamp}"
}

# warden without a terminal tee (`up --detach`: the log file and the ring only), with
# and without timestamps; then `up --no-tui`, whose tee of every line goes to a file or
# to /dev/null (the tee may drop, the file must not).
spew_warden_raw() { spew_warden "$1" false detach; }
spew_warden_ts() { spew_warden "$1" true detach; }
spew_warden_tee() { spew_warden "$1" false tee; }
spew_warden_tee_null() { spew_warden "$1" false null; }
# The same with BENCH_WARDEN_BEFORE, to compare two builds in one run.
spew_warden_raw_before() { local WARDEN=$BENCH_WARDEN_BEFORE; spew_warden "$1" false detach; }
spew_warden_ts_before() { local WARDEN=$BENCH_WARDEN_BEFORE; spew_warden "$1" true detach; }
spew_warden_tee_before() { local WARDEN=$BENCH_WARDEN_BEFORE; spew_warden "$1" false tee; }
spew_warden_tee_null_before() { local WARDEN=$BENCH_WARDEN_BEFORE; spew_warden "$1" false null; }
spew_warden() {
    LOG=$1/logs/spew.log
    printf '[processes.spew]\ncommand = %s\nrestart = "never"\n[processes.spew.log]\ntimestamps = %s\nmax_size = "1GB"\n' \
        "$(toml_argv "${SPEW[@]/STAMP/$1/stamp}")" "$2" >"$1/warden.toml"
    case $3 in
    detach)
        # The client returns once the daemon answers; `spew_once` stops it with `down`.
        DOWN=$1/warden.toml
        launch warden-spew "$WARDEN" up --detach -c "$1/warden.toml"
        ;;
    tee) launch warden-spew "$WARDEN" up --no-tui -c "$1/warden.toml" ;;
    null) launch warden-spew sh -c 'exec "$@" >/dev/null 2>&1' sh "$WARDEN" up --no-tui -c "$1/warden.toml" ;;
    esac
}

spew_supervisord() {
    LOG=$1/spew.log
    {
        supervisord_header "$1"
        printf '[program:spew]\ncommand=%s\nautorestart=false\nstartsecs=0\nredirect_stderr=true\n' "$(spew_cmd "$1/stamp")"
        printf 'stdout_logfile=%s\nstdout_logfile_maxbytes=0\n' "$LOG"
    } >"$1/supervisord.conf"
    launch supervisord-spew "$SUPERVISORD" -c "$1/supervisord.conf"
}

spew_s6() {
    LOG=$1/logdir/current
    mkdir -p "$1/scan/spew/log" "$1/logdir"
    # `s6-svc -O .`: run once, do not restart when the writer is done.
    printf '#!/bin/sh\ns6-svc -O .\nexec %s\n' "$(spew_cmd "$1/stamp")" >"$1/scan/spew/run"
    printf '#!/bin/sh\nexec s6-log n1 s250000000 %q\n' "$1/logdir" >"$1/scan/spew/log/run"
    chmod +x "$1/scan/spew/run" "$1/scan/spew/log/run"
    launch s6-spew s6-svscan "$1/scan"
}

# spew_stop KIND PID: a detached warden is asked to go with `down` (bounded), then the
# usual `stop` makes sure nothing of the run is left.
spew_stop() {
    if [[ -n $DOWN ]]; then
        timeout 60 "$WARDEN" down -c "$DOWN" >/dev/null 2>&1 || true
    fi
    record spew-stop "$1" "$(stop "$2")"
}

# spew_once KIND: time one 200 MB run, then check the bytes in the log.
spew_once() {
    local kind=$1 dir=$TMP/spew-$1 size=$SPEW_BYTES flags=() verify=() pid v
    rm -rf "$dir" && mkdir -p "$dir"
    DOWN=
    "spew_$kind" "$dir"
    pid=$PID
    if [[ $kind == warden_ts || $kind == warden_ts_before ]]; then
        size=$((SPEW_BYTES + SPEW_LINES * 30)) # `2026-11-22T10:15:30.123Z out| ` per line
        flags=(--first-marker)
        verify=(--timestamps)
    fi
    if measure spew "$kind" spew-wait --stamp "$dir/stamp" --file "$LOG" --size "$size" \
        --payload "$SPEW_BYTES" --timeout 60 "${flags[@]}"; then
        spew_stop "$kind" "$pid"
        v=$("${PY[@]}" verify --file "$LOG" "${verify[@]}")
        record spew-verify "$kind" "$v"
    else
        spew_stop "$kind" "$pid"
    fi
    rm -rf "$dir"
}

workload_spew() {
    note "workload 3: 200 MB of 100-byte lines into the log file ($SPEW_REPS times each)"
    local kinds=(direct pipe)
    for peer in "${PEERS[@]}"; do
        case $peer in
        warden)
            kinds+=(warden_raw warden_ts warden_tee warden_tee_null)
            [[ -z ${BENCH_WARDEN_BEFORE:-} ]] ||
                kinds+=(warden_raw_before warden_ts_before warden_tee_before warden_tee_null_before)
            ;;
        *) kinds+=("$peer") ;;
        esac
    done
    for ((rep = 1; rep <= SPEW_REPS; rep++)); do
        for kind in "${kinds[@]}"; do
            spew_once "$kind"
        done
    done
}

# ---- workload 4: restart latency after SIGKILL --------------------------------------

restart_warden() {
    # `backoff = "0s"`: restart at once, as the issue's workload asks.
    printf '[supervisor]\ncgroup = "%s"\n[processes.k]\ncommand = %s\nbackoff = "0s"\n' \
        "${CGROUP:-auto}" "$(toml_argv "$WORKER" stamp "$1/stamp")" >"$1/warden.toml"
    launch warden-restart "$WARDEN" up --no-tui -c "$1/warden.toml"
}

# The same without a cgroup per run: what placing the child in its cgroup costs.
restart_warden-nocgroup() { CGROUP=off restart_warden "$@"; }
restart_respawn-floor() {
    launch respawn-floor "$ROOT/target/release/examples/respawn_floor" "$WORKER" stamp "$1/stamp"
}

restart_s6() {
    mkdir -p "$1/scan/k"
    printf '#!/bin/sh\nexec %q stamp %q\n' "$WORKER" "$1/stamp" >"$1/scan/k/run"
    chmod +x "$1/scan/k/run"
    launch s6-restart s6-svscan "$1/scan"
}

restart_supervisord() {
    {
        supervisord_header "$1"
        printf '[program:k]\ncommand=%q stamp %q\nstartsecs=0\nautorestart=true\nstartretries=100\n' "$WORKER" "$1/stamp"
    } >"$1/supervisord.conf"
    launch supervisord-restart "$SUPERVISORD" -c "$1/supervisord.conf"
}

# restart_latency PEER UPTIME KILLS [LABEL]
restart_latency() {
    local peer=$1 dir=$TMP/restart-$1 pid
    rm -rf "$dir" && mkdir -p "$dir"
    "restart_$peer" "$dir"
    pid=$PID
    measure "${4:-restart}" "$peer" restart --stamp "$dir/stamp" --kills "$3" \
        --uptime "$2" --timeout 20 || true
    record restart-stop "$peer" "$(stop "$pid")"
}

workload_restart() {
    note "workload 4: SIGKILL the child $KILLS times, 0.5 s after each start"
    # The floor, no supervisor: posix_spawn to the child's stamp (exec, dynamic loading).
    mkdir -p "$TMP/floor"
    measure restart floor spawn-floor --stamp "$TMP/floor/stamp" --times "$KILLS" -- "$WORKER" stamp || true
    # The respawn floor, no supervisor: the death on a pidfd, reap, posix_spawn.
    restart_latency respawn-floor 0.5 "$KILLS"
    for peer in "${PEERS[@]}"; do
        restart_latency "$peer" 0.5 "$KILLS"
        if [[ $peer == warden ]]; then
            restart_latency warden-nocgroup 0.5 "$KILLS"
        fi
    done
    # s6 spaces launches of a service at least 1 s apart; a child that has run longer
    # than that is restarted at once. Show that case too.
    if has_peer s6; then
        restart_latency s6 1.2 5 restart-long
    fi
}

# ---- workload 5: 500 TCP liveness probes at 1 s -------------------------------------

# Do liveness probes restart a process? (a probe on a port nobody listens on)
probes_work() {
    local dir=$TMP/probe-check pid port ok=1
    rm -rf "$dir" && mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf '[processes.p]\ncommand = "sleep 3600"\n[processes.p.liveness]\ntcp = "127.0.0.1:%s"\nperiod = "200ms"\ntimeout = "200ms"\nfailure_threshold = 1\n' \
        "$port" >"$dir/warden.toml"
    "$WARDEN" check -c "$dir/warden.toml" >/dev/null 2>&1 || return 1
    launch warden-probe-check "$WARDEN" up --no-tui -c "$dir/warden.toml"
    pid=$PID
    for _ in $(seq 100); do # 10 s
        if grep -q liveness "$TMP/warden-probe-check.out" && grep -q 'run 2 started' "$TMP/warden-probe-check.out"; then
            ok=0
            break
        fi
        sleep 0.1
    done
    stop "$pid" >/dev/null
    return $ok
}

workload_probes() {
    note "workload 5: $N TCP liveness probes at a 1 s period"
    if ! probes_work; then
        record probes warden '{"skipped": "not measured: probes not yet functional (a liveness probe on a closed port did not restart the process within 10 s)"}'
        return
    fi
    local dir=$TMP/probes pid listener port
    mkdir -p "$dir"
    launch listener "${PY[@]}" listen --port-file "$dir/port" --count-file "$dir/count" --timeout 120
    listener=$PID
    for _ in $(seq 50); do [[ -s $dir/port ]] && break; sleep 0.1; done
    port=$(cat "$dir/port")
    warden_sleep_config "$dir" '' "$port"
    start_warden "$dir"
    pid=$PID
    measure probes-start warden wait-procs --marker "$MARK" --comm sleep --count "$N" --t0 "$T0" --timeout 60 || true
    sleep "$SETTLE"
    local before after
    before=$(cat "$dir/count" 2>/dev/null || echo 0)
    measure probes warden usage --roots "$pid" --desc warden --seconds "$IDLE" || true
    after=$(cat "$dir/count" 2>/dev/null || echo 0)
    record probes-connections warden "{\"per_second\": $(((after - before) / IDLE)), \"restarts\": $(grep -c 'run 2 started' "$TMP/warden.out" || true)}"
    record probes-stop warden "$(stop "$pid" "$listener")"
    stop "$listener" >/dev/null
}

# ---- workload 6: `warden status --json` latency -------------------------------------

workload_status() {
    note "workload 6: warden status --json with $N processes"
    local dir=$TMP/status pid sock
    sock=$TMP/w.sock
    # An explicit socket path, so that idle clients can connect to it.
    if ! warden_sleep_config "$dir" "socket = \"$sock\"" 2>/dev/null; then
        record status warden '{"skipped": "not measured yet: the config with a socket path is refused"}'
        return
    fi
    start_warden "$dir"
    pid=$PID
    measure status-start warden wait-procs --marker "$MARK" --comm sleep --count "$N" --t0 "$T0" --timeout 60 || true
    if ! "$WARDEN" status --json -c "$dir/warden.toml" >"$TMP/status.json" 2>&1 ||
        ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))["processes"]' "$TMP/status.json" 2>/dev/null; then
        record status warden "$(python3 -c 'import json,sys; print(json.dumps({"skipped": "not measured yet: `warden status --json` does not work: " + open(sys.argv[1]).read()[:200]}))' "$TMP/status.json")"
    else
        measure status warden status-latency --calls 200 -- "$WARDEN" status --json -c "$dir/warden.toml" || true
        if [[ -S $sock ]]; then
            measure status-idle warden status-latency --calls 200 --idle-conns 200 --socket "$sock" \
                -- "$WARDEN" status --json -c "$dir/warden.toml" || true
        else
            record status-idle warden '{"skipped": "the socket is not at the configured path"}'
        fi
    fi
    record status-stop warden "$(stop "$pid")"
}

# ---- workload 7: the dashboard ------------------------------------------------------

# child_of PID COMM: the pid of PID's child named COMM, once it exists (up to 10 s).
child_of() {
    local c
    for _ in $(seq 200); do
        c=$(pgrep -P "$1" -x "$2" | head -1) && [[ -n $c ]] && { echo "$c"; return 0; }
        sleep 0.05
    done
    return 1
}

workload_dashboard() {
    note "workload 7: the dashboard with $N processes (frame cost; idle, in process and attached)"
    local dir=$TMP/dash pty wpid sup tui
    # One frame, drawn to a sink: the views at 120x40 with N processes, 1000 frames each.
    measure dashboard-frame warden run-json -- "$ROOT/target/release/examples/dashboard_frame" "$N" 1000 || true

    # `warden up` on a terminal: supervisor and dashboard in one process, nothing pressed.
    warden_sleep_config "$dir"
    launch warden-dash "${PY[@]}" pty-run --rows 40 --cols 120 -- "$WARDEN" up -c "$dir/warden.toml"
    pty=$PID
    measure dashboard-start warden wait-procs --marker "$MARK" --comm sleep --count "$N" --t0 "$T0" --timeout 60 || true
    if wpid=$(child_of "$pty" warden); then
        sleep "$SETTLE"
        measure dashboard-idle warden usage --roots "$wpid" --desc warden --seconds "$IDLE" || true
    else
        record dashboard-idle warden '{"error": "no warden under the pseudo-terminal"}'
    fi
    record dashboard-stop warden "$(stop "$pty")"

    # `warden up --no-tui` and a `warden tui` attached to it: both measured at once.
    warden_sleep_config "$dir"
    start_warden "$dir"
    sup=$PID
    measure dashboard-start-attached warden wait-procs --marker "$MARK" --comm sleep --count "$N" --t0 "$T0" --timeout 60 || true
    launch warden-tui "${PY[@]}" pty-run --rows 40 --cols 120 -- "$WARDEN" tui -c "$dir/warden.toml"
    pty=$PID
    if tui=$(child_of "$pty" warden); then
        sleep "$SETTLE"
        measure dashboard-attached-supervisor warden usage --roots "$sup" --desc warden --seconds "$IDLE" &
        local both=$!
        measure dashboard-attached-tui warden usage --roots "$tui" --seconds "$IDLE" || true
        # That measurement only: a bare `wait` would wait for the supervisors too.
        wait "$both" || true
    else
        record dashboard-attached-tui warden '{"error": "no warden tui under the pseudo-terminal"}'
    fi
    # The view alone first (the supervisor's children are still meant to run).
    kill -TERM "$pty" 2>/dev/null || true
    wait_exit "$pty" 20 || kill -KILL "$pty" 2>/dev/null || true
    record dashboard-attached-stop warden "$(stop "$sup")"
}

# ---- workload 8: sampling N idle processes every second -----------------------------

# A `memory` rule on every process keeps warden sampling every `sample_interval`; the
# same config in cgroup mode (figures from each run's cgroup) and with `cgroup = "off"`
# (figures from each process's /proc/PID/stat).
workload_sampling() {
    note "workload 8: $N idle processes sampled every second, cgroup mode then /proc"
    local mode peer dir pid
    for mode in auto off; do
        peer=$([[ $mode == auto ]] && echo warden-cgroup || echo warden-proc)
        dir=$TMP/sampling-$mode
        warden_sleep_config "$dir" "cgroup = \"$mode\"
sample_interval = \"1s\"" "" 1GB
        start_warden "$dir"
        pid=$PID
        measure sampling-start "$peer" wait-procs --marker "$MARK" --comm sleep --count "$N" \
            --t0 "$T0" --timeout 60 || true
        record sampling-mode "$peer" "$("$WARDEN" status --json -c "$dir/warden.toml" 2>/dev/null |
            python3 -c 'import json,sys; c=json.load(sys.stdin)["supervisor"]["cgroups"]; print(json.dumps({"mode": c["mode"], "detail": c["detail"]}))' ||
            echo '{"error": "no status report"}')"
        sleep "$SETTLE"
        measure sampling "$peer" usage --roots "$pid" --desc warden --seconds "$IDLE" || true
        record sampling-stop "$peer" "$(stop "$pid")"
    done
}

# ---- workload 9: `warden stop` of N running processes -------------------------------

# stop_many_config DIR MODE ESCAPE: one process with `replicas = N` of `sleep 3600`; with
# ESCAPE=yes each replica also leaves an escapee behind (a `setsid` sleep whose parent
# exits, so warden adopts it, found by its WARDEN_RUN_ID).
stop_many_config() {
    local dir=$1 mode=$2 escape=$3 cmd='"sleep 3600"'
    [[ $escape == yes ]] && cmd='["sh", "-c", "(setsid sleep 3600 &); exec sleep 3600"]'
    rm -rf "$dir" && mkdir -p "$dir"
    printf '[supervisor]\nlog_dir = "logs"\ncgroup = "%s"\n\n[processes.p]\ncommand = %s\nreplicas = %s\n' \
        "$mode" "$cmd" "$N" >"$dir/warden.toml"
    "$WARDEN" check -c "$dir/warden.toml" >/dev/null
}

# `warden stop p` returns once nothing of the N runs is alive: timed from the command to
# its return, then checked (nothing marked may be left but warden and its guard). s6 and
# supervisord stop their N children in workload 1's shutdown column.
workload_stop_many() {
    note "workload 9: warden stop of $N processes ($REPS times per variant, interleaved)"
    local rep variant mode escape dir pid guard count t0 secs left
    for ((rep = 1; rep <= REPS; rep++)); do
        for variant in cgroup proc proc-escapees; do
            mode=$([[ $variant == cgroup ]] && echo auto || echo off)
            escape=$([[ $variant == proc-escapees ]] && echo yes || echo no)
            count=$([[ $escape == yes ]] && echo $((2 * N)) || echo "$N")
            dir=$TMP/stop-$variant
            stop_many_config "$dir" "$mode" "$escape"
            start_warden "$dir"
            pid=$PID
            measure stop_many-start "warden-$variant" wait-procs --marker "$MARK" --comm sleep \
                --count "$count" --t0 "$T0" --timeout 120 || true
            guard=$(child_of "$pid" warden || true)
            sleep 1
            t0=$EPOCHREALTIME
            if "$WARDEN" stop p -c "$dir/warden.toml" >/dev/null 2>"$TMP/stop.err"; then
                secs=$(python3 -c "print(round($EPOCHREALTIME - $t0, 4))")
                left=$("${PY[@]}" wait-gone --marker "$MARK" --t0 "$t0" --timeout 0.2 \
                    --spare "$pid,$guard" >/dev/null 2>&1 && echo 0 || echo 1)
                record stop_many "warden-$variant" "{\"seconds\": $secs, \"processes\": $count, \"left_behind\": $left, \"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
            else
                record stop_many "warden-$variant" "$(python3 -c 'import json,sys; print(json.dumps({"error": "warden stop failed: " + sys.argv[1]}))' "$(tail -c 200 "$TMP/stop.err")")"
            fi
            record stop_many-down "warden-$variant" "$(stop "$pid")"
        done
    done
}

# The tables of BENCHMARKS.md are this run's: replaced between their two markers.
update_benchmarks_md() {
    python3 - "$OUT/results.md" BENCHMARKS.md <<'EOF'
import sys
results, doc = sys.argv[1], sys.argv[2]
begin, end = "<!-- results:begin -->", "<!-- results:end -->"
text = open(doc).read()
if begin not in text or end not in text:
    sys.exit(f"{doc} has no {begin} … {end} markers: left as it is")
head, rest = text.split(begin, 1)
tail = rest.split(end, 1)[1]
open(doc, "w").write(f"{head}{begin}\n{open(results).read().strip()}\n{end}{tail}")
EOF
    note "BENCHMARKS.md: tables replaced by this run's (the analysis below them is not)"
}

# ---- main ----------------------------------------------------------------------------

main() {
    local started=$SECONDS
    mkdir -p "$OUT"
    : >"$RESULTS"
    build
    install_peers
    note "peers: ${PEERS[*]}; N=$N; temp dir $TMP"
    describe_machine
    for w in "${WORKLOADS[@]}"; do
        "workload_$w"
    done
    record end all "{\"background_busy_end\": $(background_busy), \"loadavg_end\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"seconds\": $((SECONDS - started))}"
    "${PY[@]}" report --results "$RESULTS" --machine "$OUT/machine.json" >"$OUT/results.md"
    cat "$OUT/results.md"
    if [[ -z "${BENCH_N:-}${BENCH_REPS:-}${BENCH_IDLE:-}${BENCH_PEERS:-}${BENCH_SPEW_REPS:-}${BENCH_KILLS:-}${BENCH_WORKLOADS:-}" ]]; then
        update_benchmarks_md || true
    else
        note "a BENCH_ knob is set: BENCHMARKS.md keeps the tables of a full run"
    fi
    note "done in $((SECONDS - started)) s: $OUT/results.md, $RESULTS"
}

main "$@"
