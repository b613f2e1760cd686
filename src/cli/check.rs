//! `warden check`: validate a config and report every error at once.

use std::path::Path;

/// Exit code: 0 valid, 1 invalid.
pub fn run(config: &Path) -> i32 {
    match crate::config::load(config) {
        Ok(spec) => {
            let n: u32 = spec.processes.values().map(|p| p.replicas).sum();
            println!(
                "{}: ok ({} process{}, {} instance{}, {} check{})",
                config.display(),
                spec.processes.len(),
                if spec.processes.len() == 1 { "" } else { "es" },
                n,
                if n == 1 { "" } else { "s" },
                spec.checks.len(),
                if spec.checks.len() == 1 { "" } else { "s" },
            );
            0
        }
        Err(errors) => {
            eprintln!("{errors}");
            1
        }
    }
}
