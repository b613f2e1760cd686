//! The config loader from the outside: every invalid fixture's rendered errors are
//! snapshotted, a config using every key loads to the expected `Spec`, and the example
//! configs in `config/` stay valid.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::run_warden;
use warden::config::{
    self, CommandSpec, DependCondition, LimitAction, ProbeTarget, RestartPolicy, Spec,
};

/// `*.toml` files in `dir` (relative to the crate root), sorted, as relative paths so
/// the rendered messages are the same on every machine.
fn fixtures(dir: &str) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read `{dir}`: {e}"));
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("readable folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn invalid_configs_report_every_error() {
    let paths = fixtures("tests/invalid_configs");
    assert!(paths.len() >= 25, "fixtures missing: {paths:?}");
    for path in paths {
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let errors = match config::load(&path) {
            Ok(_) => panic!("{} loaded, but it is meant to be invalid", path.display()),
            Err(errors) => errors,
        };
        for e in &errors {
            assert!(e.line > 0 && e.col > 0, "{stem}: no position in {e}");
            let first = e.message.chars().next().unwrap();
            assert!(!first.is_uppercase(), "{stem}: message not lowercase: {e}");
        }
        insta::assert_snapshot!(stem, errors.to_string());
    }
}

#[test]
fn an_unreadable_file_is_one_whole_file_error() {
    let errors = config::load(Path::new("tests/invalid_configs/nope.toml")).unwrap_err();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        errors.to_string(),
        format!(
            "tests/invalid_configs/nope.toml: no such file (looked in {}); create it, or name the config with `-c FILE`",
            cwd.display()
        )
    );
}

#[test]
fn only_a_regular_file_of_a_sane_size_is_read() {
    for path in ["/dev/zero", "/dev/null", "/"] {
        let errors = config::load(Path::new(path)).unwrap_err();
        assert_eq!(
            errors.to_string(),
            format!(
                "{path}: not a regular file (a folder, a device or a FIFO?); give the path of a TOML file"
            )
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; 2 << 20]).unwrap();
    let errors = config::load(&big).unwrap_err();
    assert!(
        errors
            .to_string()
            .ends_with(": larger than 1024 KiB: not a config file"),
        "{errors}"
    );
    // `check` answers at once instead of reading forever.
    let (code, _, err) = run_warden(Path::new("/"), &["check", "-c", "/dev/zero"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn syntax_and_semantic_errors_come_together_in_file_order() {
    let text = "[processes.web]\ncommand = \"./web\"\nreplicas = 0\nstop_timeout = 5\n= 1\n";
    let errors = config::load_str(Path::new("w.toml"), text).unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 4, 5], "{errors}");
}

#[test]
fn an_empty_file_runs_nothing() {
    let spec = config::load_str(Path::new("/etc/warden/warden.toml"), "").unwrap();
    assert!(spec.processes.is_empty() && spec.checks.is_empty());
    assert_eq!(spec.path, Path::new("/etc/warden/warden.toml"));
    assert_eq!(spec.supervisor.log_dir, Path::new("/etc/warden/logs"));
    assert_eq!(spec.supervisor.socket, None);
    assert_eq!(spec.supervisor.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(spec.supervisor.sample_interval, Duration::from_secs(1));
    assert!(!spec.supervisor.control_fifo);
    assert_eq!(spec.supervisor.cgroup, config::CgroupMode::Auto);
}

fn load_full() -> (Spec, PathBuf) {
    let path = Path::new("tests/valid_configs/full.toml");
    let spec = config::load(path).unwrap_or_else(|e| panic!("full.toml is invalid:\n{e}"));
    let dir = std::path::absolute("tests/valid_configs").unwrap();
    (spec, dir)
}

#[test]
fn full_config_supervisor_and_order() {
    let (spec, dir) = load_full();
    assert_eq!(spec.path, dir.join("full.toml"));
    let names: Vec<&str> = spec.processes.keys().map(String::as_str).collect();
    assert_eq!(names, ["db", "web", "crawler", "migrate"]);
    let s = &spec.supervisor;
    assert_eq!(s.log_dir, dir.join("var/log"));
    assert_eq!(s.socket, Some(dir.join("run/warden.sock")));
    assert_eq!(s.shutdown_timeout, Duration::from_secs(45));
    assert_eq!(s.sample_interval, Duration::from_secs(2));
    assert_eq!(s.metrics.as_deref(), Some("127.0.0.1:9900"));
    assert!(s.control_fifo);
    assert_eq!(s.cgroup, config::CgroupMode::Required);
}

#[test]
fn full_config_process_keys() {
    let (spec, dir) = load_full();
    let web = &spec.processes["web"];
    assert_eq!(web.name, "web");
    let argv = [
        "python3",
        "-m",
        "http.server",
        "8080",
        "--bind",
        "127.0.0.1",
    ];
    assert_eq!(
        web.command,
        CommandSpec::Argv(argv.map(String::from).to_vec())
    );
    assert_eq!(web.cwd, dir.join("site"));
    let env: Vec<(&str, &str)> = web
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("PORT", "9090"),
            ("DATABASE_URL", "postgres://localhost/app"),
            ("GREETING", "hello world"),
            ("EXTRA", "yes"),
        ],
        "env_file first, `env` on top"
    );
    assert!(!web.autostart);
    assert_eq!(web.replicas, 3);
    let deps: Vec<(&str, DependCondition)> = web
        .depends_on
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        deps,
        [
            ("db", DependCondition::Ready),
            ("postgres", DependCondition::Started),
            ("migrate", DependCondition::Completed),
        ]
    );
    assert_eq!(web.restart, RestartPolicy::Never);
    assert_eq!(web.success_exit_codes, [0, 2]);
    assert_eq!(web.backoff, Duration::from_millis(250));
    assert_eq!(web.backoff_max, Duration::from_secs(60));
    assert_eq!(web.min_uptime, Duration::from_secs(5));
    assert_eq!(web.max_restarts, 4);
    assert_eq!(web.stop_signal, Signal::SIGINT);
    assert_eq!(web.stop_timeout, Duration::from_secs(3));
    assert!(web.notify);
    assert_eq!(web.watchdog, Some(Duration::from_secs(20)));
    assert_eq!(web.stdin_from.as_deref(), Some("crawler"));
    assert_eq!(web.output.silence, Some(Duration::from_secs(60)));
    assert_eq!(web.output.hung_on.as_deref(), Some("deadlock detected"));
    assert_eq!(web.log.file, Some(dir.join("logs/web.log")));
    assert_eq!(web.log.max_size, 512 * 1024 * 1024);
    assert_eq!(web.log.keep, 2);
    assert!(!web.log.timestamps);
    assert_eq!(web.log.buffer_lines, 50);
    let limits = web.limits.as_ref().unwrap();
    assert_eq!(limits.memory, Some(1 << 30));
    assert_eq!(limits.cpu, Some(90.5));
    assert_eq!(limits.cpu_for, Duration::from_secs(10));
    assert_eq!(limits.action, LimitAction::Warn);
    assert_eq!(limits.memory_max, Some(2 << 30));
    assert_eq!(limits.cpu_max, Some(1.5));
    assert_eq!(limits.pids_max, Some(64));
}

#[test]
fn full_config_probes() {
    let (spec, dir) = load_full();
    let web = &spec.processes["web"];
    let startup = web.startup.as_ref().unwrap();
    let argv = ["pg_isready", "-h", "127.0.0.1"].map(String::from).to_vec();
    assert_eq!(startup.target, ProbeTarget::Exec { argv });
    assert_eq!(startup.initial_delay, Duration::from_secs(1));
    assert_eq!(startup.period, Duration::from_secs(2));
    assert_eq!(startup.timeout, Duration::from_millis(500));
    assert_eq!(
        (startup.success_threshold, startup.failure_threshold),
        (2, 30)
    );

    let readiness = web.readiness.as_ref().unwrap();
    assert_eq!(
        readiness.target,
        ProbeTarget::Http {
            url: "http://127.0.0.1:808{replica}/ready".into(),
            status: (200, 204),
            expect: Some("ok".into()),
        }
    );
    // Defaults when the timing keys are absent.
    assert_eq!(readiness.initial_delay, Duration::ZERO);
    assert_eq!(readiness.period, Duration::from_secs(10));
    assert_eq!(readiness.timeout, Duration::from_secs(1));
    assert_eq!(
        (readiness.success_threshold, readiness.failure_threshold),
        (1, 3)
    );

    let udp = &web.liveness.as_ref().unwrap().target;
    let want = ProbeTarget::Udp {
        addr: "127.0.0.1:9000".into(),
        send: "ping".into(),
        expect: Some("PING".into()),
    };
    assert_eq!(udp, &want);

    let crawler = &spec.processes["crawler"];
    let unix = &crawler.liveness.as_ref().unwrap().target;
    let want = ProbeTarget::Unix {
        path: dir.join("run/crawler.sock"),
        send: Some("status\n".into()),
        expect: None,
    };
    assert_eq!(unix, &want);

    let migrate = &spec.processes["migrate"];
    let tcp = &migrate.readiness.as_ref().unwrap().target;
    let want = ProbeTarget::Tcp {
        addr: "127.0.0.1:638{replica}".into(),
        send: Some("PING\r\n".into()),
        expect: Some("+PONG".into()),
    };
    assert_eq!(tcp, &want);

    let api = &spec.checks["api"].probe.target;
    let want = ProbeTarget::Http {
        url: "http://127.0.0.1:9000/healthz".into(),
        status: (204, 204),
        expect: None,
    };
    assert_eq!(api, &want, "an integer status is a range of one");

    let postgres = &spec.checks["postgres"];
    assert_eq!(postgres.name, "postgres");
    assert_eq!(postgres.probe.period, Duration::from_secs(5));
    assert_eq!(
        postgres.probe.target,
        ProbeTarget::Tcp {
            addr: "127.0.0.1:5432".into(),
            send: None,
            expect: None,
        }
    );
}

#[test]
fn full_config_defaults_and_other_forms() {
    let (spec, dir) = load_full();
    let db = &spec.processes["db"];
    let argv = ["postgres", "-D", "data dir"].map(String::from).to_vec();
    assert_eq!(db.command, CommandSpec::Argv(argv));
    assert_eq!(db.restart, RestartPolicy::OnFailure);
    // Everything db leaves out takes its default.
    assert_eq!(db.cwd, dir);
    assert!(db.env.is_empty());
    assert!(db.autostart);
    assert_eq!(db.replicas, 1);
    assert!(db.depends_on.is_empty());
    assert_eq!(db.success_exit_codes, [0]);
    assert_eq!(db.backoff, Duration::from_millis(500));
    assert_eq!(db.backoff_max, Duration::from_secs(30));
    assert_eq!(db.min_uptime, Duration::from_secs(10));
    assert_eq!(db.max_restarts, 0);
    assert_eq!(db.stop_signal, Signal::SIGTERM);
    assert_eq!(db.stop_timeout, Duration::from_secs(10));
    assert!(!db.notify);
    assert_eq!(db.watchdog, None);
    assert_eq!(db.stdin_from, None);
    assert_eq!(db.output, config::OutputRules::default());
    assert_eq!(db.log.file, None);
    assert_eq!(db.log.max_size, 10_000_000);
    assert_eq!(db.log.keep, 5);
    assert!(db.log.timestamps);
    assert_eq!(db.log.buffer_lines, 1000);
    assert!(db.startup.is_none() && db.readiness.is_none() && db.liveness.is_none());
    assert!(db.limits.is_none());

    let crawler = &spec.processes["crawler"];
    assert_eq!(
        crawler.command,
        CommandSpec::Shell("exec ./crawl --forever".into())
    );
    assert_eq!(crawler.stop_signal, Signal::SIGKILL);
    let limits = crawler.limits.as_ref().unwrap();
    assert_eq!(limits.memory, Some(100_000_000));
    assert_eq!(limits.cpu, None);
    assert_eq!(limits.cpu_for, Duration::from_secs(30));
    assert_eq!(limits.action, LimitAction::Restart);
    assert_eq!(
        (limits.memory_max, limits.cpu_max, limits.pids_max),
        (None, None, None)
    );

    let migrate = &spec.processes["migrate"];
    assert_eq!(migrate.depends_on["db"], DependCondition::Started);
}

#[test]
fn full_config_who_runs_it() {
    let (spec, _) = load_full();
    let web = &spec.processes["web"];
    assert_eq!(web.user.as_deref(), Some("nobody"));
    assert_eq!(web.group.as_deref(), Some("65534"));
    assert_eq!(web.umask, Some(0o027));
    let db = &spec.processes["db"];
    assert_eq!((&db.user, &db.group, db.umask), (&None, &None, None));
    assert!(db.schedule.is_none());
    let migrate = spec.processes["migrate"].schedule.as_ref().unwrap();
    assert_eq!(migrate.text, "30 3 * * 1-5");
    let crawler = spec.processes["crawler"].watch.as_ref().unwrap();
    assert_eq!(crawler.patterns, ["crawl/**/*.rb", "Gemfile"]);
    assert_eq!(crawler.ignore, ["tmp/"]);
    assert_eq!(crawler.delay, Duration::from_millis(500));
    let dir = std::path::absolute("tests/valid_configs").unwrap();
    assert!(crawler.matches(&dir.join("crawl/lib/x.rb"), false));
    assert!(!crawler.matches(&dir.join("crawl/tmp/x.rb"), false));
    assert!(spec.processes["db"].watch.is_none());
    let monday = humantime::parse_rfc3339("2026-01-05T12:00:00Z").unwrap();
    let next = migrate.next_after(monday).unwrap();
    let ahead = next.duration_since(monday).unwrap().as_secs();
    // Tuesday 03:30 in the local zone: between 3h30 and 39h30 ahead, whatever the zone.
    assert!((3 * 3600..40 * 3600).contains(&ahead), "{ahead}");
}

/// Users copy these; a broken example is a bug. The demo config must be among them, so
/// an emptied or misplaced folder fails instead of passing with nothing checked.
#[test]
fn example_configs_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let examples = fixtures(dir);
    assert!(
        examples.iter().any(|p| p.ends_with("demo.toml")),
        "config/ holds no demo.toml: {examples:?}"
    );
    let mut invalid = Vec::new();
    for path in examples {
        if let Err(errors) = config::load(&path) {
            invalid.push(errors.to_string());
        }
    }
    assert!(
        invalid.is_empty(),
        "invalid example configs:\n{}",
        invalid.join("\n")
    );
}
