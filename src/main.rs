//! The `warden` binary: parse arguments, call into the library, map results to exit codes.

use clap::Parser;
use warden::cli::{Cli, Cmd};

fn main() {
    // The guard is warden re-executed; it must not go through argument parsing.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(warden::process::guard::GUARD_ARG) {
        warden::process::guard::run(args.get(2).map(String::as_str).unwrap_or(""));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Cmd::Up { config, no_tui } => warden::cli::up::run(&config, no_tui),
        Cmd::Check { config } => warden::cli::check::run(&config),
    };
    std::process::exit(code);
}
