//! `describe NAME`: how one instance is run (command, folder, environment, log file,
//! policies), for the dashboard's detail view. Asked for on demand, so that snapshots
//! stay small and environments do not travel with every one of them.
//!
//! Values that look secret (a key named like a password or token, a URL with a
//! password in it) are masked here, in the supervisor: they never leave it.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::core::Instance;
use crate::config::{CommandSpec, RestartPolicy};

/// What replaces a secret value.
pub const MASK: &str = "••••••";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Description {
    pub name: String,
    /// The declared process this is an instance of.
    pub process: String,
    #[serde(default)]
    pub replica: Option<u32>,
    /// The argv as executed (`/bin/sh -c …` with `shell = true`).
    pub command: Vec<String>,
    #[serde(default)]
    pub shell: bool,
    pub cwd: String,
    /// The declared environment (`env_file`, then `env`), secret-looking values masked.
    /// The child also inherits warden's own environment and gets `WARDEN_*` variables.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// The keys whose values were masked.
    #[serde(default)]
    pub masked: Vec<String>,
    pub log_file: String,
    pub restart: String,
    #[serde(default)]
    pub depends_on: IndexMap<String, String>,
    pub stop_signal: String,
    pub stop_timeout_ms: u64,
}

pub(super) fn describe(inst: &Instance, log_file: &std::path::Path) -> Description {
    let spec = &inst.spec;
    let (command, shell) = match &spec.command {
        CommandSpec::Argv(argv) => (argv.clone(), false),
        CommandSpec::Shell(s) => (vec!["/bin/sh".into(), "-c".into(), s.clone()], true),
    };
    let mut masked = Vec::new();
    let env = spec
        .env
        .iter()
        .map(|(k, v)| {
            let shown = mask(k, v);
            if shown != *v {
                masked.push(k.clone());
            }
            (k.clone(), shown)
        })
        .collect();
    Description {
        name: inst.name.clone(),
        process: inst.process.clone(),
        replica: inst.replica,
        command: command
            .iter()
            .map(|a| mask_url_password(a).unwrap_or_else(|| a.clone()))
            .collect(),
        shell,
        cwd: spec.cwd.display().to_string(),
        env,
        masked,
        log_file: log_file.display().to_string(),
        restart: match spec.restart {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Never => "never",
        }
        .into(),
        depends_on: spec
            .depends_on
            .iter()
            .map(|(k, c)| (k.clone(), format!("{c:?}").to_lowercase()))
            .collect(),
        stop_signal: spec.stop_signal.as_str().into(),
        stop_timeout_ms: spec.stop_timeout.as_millis() as u64,
    }
}

/// The value as it may be shown: masked whole if the key looks secret, else with any
/// URL password masked.
pub fn mask(key: &str, value: &str) -> String {
    if looks_secret(key) && !value.is_empty() {
        return MASK.into();
    }
    mask_url_password(value).unwrap_or_else(|| value.to_string())
}

/// Whether an environment variable's name says it holds a secret: one of its words
/// (split at `_`, `-`, `.` and lower→upper case changes) is a secret word.
pub fn looks_secret(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PASSPHRASE",
        "SECRET",
        "SECRETS",
        "TOKEN",
        "TOKENS",
        "KEY",
        "APIKEY",
        "PRIVATE",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "AUTH",
        "COOKIE",
        "SESSION",
        "SIGNATURE",
        "SALT",
        "DSN",
        "PIN",
        "OTP",
    ];
    let mut words = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if matches!(c, '_' | '-' | '.') {
            words.push(std::mem::take(&mut word));
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower {
            words.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase();
        word.extend(c.to_uppercase());
    }
    words.push(word);
    words.iter().any(|w| WORDS.contains(&w.as_str()))
}

/// `scheme://user:password@host…` with the password masked; `None` if there is none.
fn mask_url_password(value: &str) -> Option<String> {
    let scheme_end = value.find("://")? + 3;
    let rest = &value[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some(format!(
        "{}{}:{MASK}{}",
        &value[..scheme_end],
        &rest[..colon],
        &rest[at..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised_by_their_words() {
        for key in [
            "PASSWORD",
            "DB_PASSWORD",
            "api-key",
            "AWS_SECRET_ACCESS_KEY",
            "GITHUB_TOKEN",
            "apiKey",
            "session.cookie",
            "SENTRY_DSN",
        ] {
            assert!(looks_secret(key), "{key} should look secret");
        }
        for key in [
            "PATH",
            "PWD",
            "MONKEY",
            "KEYBOARD_LAYOUT",
            "PORT",
            "TOKENIZER_PATH2",
        ] {
            assert!(!looks_secret(key), "{key} is not a secret");
        }
    }

    #[test]
    fn values_are_masked_by_key_or_url_password() {
        assert_eq!(mask("DB_PASSWORD", "hunter2"), MASK);
        assert_eq!(mask("DB_PASSWORD", ""), "", "nothing to hide");
        assert_eq!(mask("PORT", "8080"), "8080");
        assert_eq!(
            mask("DATABASE_URL", "postgres://app:s3cr3t@db:5432/app?x=1"),
            format!("postgres://app:{MASK}@db:5432/app?x=1")
        );
        assert_eq!(
            mask("UPSTREAM", "http://user@host/a:b@c"),
            "http://user@host/a:b@c",
            "no password, and `@` in the path is not an authority"
        );
    }
}
