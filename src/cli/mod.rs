//! The command line: one file per subcommand. `main.rs` parses, this module acts.

pub mod check;
pub mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    about = "A process supervisor and health monitor"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the supervisor in the foreground.
    Up {
        /// The config file.
        #[arg(short = 'c', long = "config", default_value = "warden.toml")]
        config: PathBuf,
        /// Print every process's output with a `name │` prefix instead of the dashboard.
        #[arg(long)]
        no_tui: bool,
    },
    /// Validate the config; print every error as `FILE:LINE:COL: message`.
    Check {
        #[arg(short = 'c', long = "config", default_value = "warden.toml")]
        config: PathBuf,
    },
}

/// Whether to colour output written to a stream that is `is_terminal`.
pub fn use_color(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
