//! `warden completions SHELL` and the hidden `warden manpage`: both generated from the
//! clap definition in [`super::Cli`], so they never disagree with what the binary takes.

use std::path::Path;

use clap::CommandFactory;

/// Print the completion script for `shell` (`bash`, `zsh`, `fish`, …) on stdout.
pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = super::Cli::command();
    clap_complete::generate(shell, &mut cmd, "warden", &mut std::io::stdout());
    0
}

/// Without `dir`, print `warden(1)` on stdout; with it, write `warden.1` and one page per
/// subcommand (`warden-up.1`, …) there.
pub fn manpage(dir: Option<&Path>) -> i32 {
    let cmd = super::Cli::command();
    let result = match dir {
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout()),
        Some(dir) => std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cmd, dir)),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("warden: cannot write the manual page: {e}");
            1
        }
    }
}
