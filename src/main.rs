//! The `warden` binary: parse arguments, call into the library, map results to exit codes.

use clap::Parser;
use warden::cli::{Cli, Cmd};

fn main() {
    // The guard is warden re-executed; it must not go through argument parsing.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(warden::process::guard::GUARD_ARG) {
        warden::process::guard::run(
            args.get(2).map(String::as_str).unwrap_or(""),
            args.get(3..).unwrap_or_default(),
        );
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(warden::cli::use_color(std::io::IsTerminal::is_terminal(
            &std::io::stderr(),
        )))
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Cmd::Up {
            config,
            socket,
            init,
            detach: true,
            ..
        } => warden::cli::daemon::detach(&config, socket.as_deref(), init),
        Cmd::Up {
            config,
            no_tui,
            socket,
            init,
            daemon,
            ..
        } => warden::cli::up::run(&config, no_tui, socket.as_deref(), init, daemon),
        Cmd::Check { config } => warden::cli::check::run(&config),
        Cmd::Status {
            client,
            json,
            names,
        } => warden::cli::status::run(&client, json, &names),
        Cmd::Start {
            client,
            names,
            timeout,
        } => warden::cli::action::start(&client, names, timeout),
        Cmd::Stop {
            client,
            names,
            timeout,
        } => warden::cli::action::stop(&client, names, timeout),
        Cmd::Restart {
            client,
            names,
            timeout,
        } => warden::cli::action::restart(&client, names, timeout),
        Cmd::Scale {
            client,
            name,
            replicas,
            timeout,
        } => warden::cli::scale::run(&client, name, replicas, timeout),
        Cmd::Signal {
            client,
            name,
            signal,
        } => warden::cli::signal::run(&client, name, signal),
        Cmd::Logs {
            client,
            names,
            lines,
            follow,
        } => warden::cli::logs::run(&client, names, lines, follow),
        Cmd::Events {
            client,
            json,
            since,
        } => warden::cli::events::run(&client, json, since),
        Cmd::Reload { client, dry_run } => warden::cli::reload::run(&client, dry_run),
        Cmd::Tui { client } => warden::cli::tui::run(&client),
        Cmd::Down { client } => warden::cli::down::run(&client),
        Cmd::History {
            client,
            names,
            json,
        } => warden::cli::history::run(&client, names, json),
        Cmd::Tree {
            client,
            names,
            json,
        } => warden::cli::tree::run(&client, names, json),
        Cmd::Completions { shell } => warden::cli::shell::completions(shell),
        Cmd::Manpage { dir } => warden::cli::shell::manpage(dir.as_deref()),
    };
    std::process::exit(code);
}
