//! A child's environment: warden's own variables, read once and shared by every run,
//! with the run's changes on top.
//!
//! A run used to carry its own copy of warden's whole environment (often 50 variables,
//! a few KiB) from the actor to the fork. During a start-up burst hundreds of copies were
//! alive at once, between the allocations that outlive the burst, and the holes they left
//! when freed stayed in the heap for good. Here a run shares warden's variables and owns
//! only what it changes. This module decides nothing about which variables a child gets:
//! its callers do.

use std::ffi::OsString;
use std::sync::{Arc, OnceLock};

/// An environment: a shared base, minus the keys `hidden`, then `own` (whose keys shadow
/// the base's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    base: Arc<[(String, String)]>,
    hidden: Vec<Box<str>>,
    own: Vec<(String, String)>,
}

impl Env {
    /// warden's own environment, as the base of every child's. Read once: warden never
    /// changes its environment, and a restart should not pay for re-reading it. The
    /// variables that describe warden's own service (sd_notify, socket activation) are
    /// left out: they are not the children's.
    pub fn inherited() -> Env {
        static BASE: OnceLock<Arc<[(String, String)]>> = OnceLock::new();
        let base = BASE.get_or_init(|| {
            std::env::vars_os()
                .filter_map(|(k, v): (OsString, OsString)| {
                    Some((k.into_string().ok()?, v.into_string().ok()?))
                })
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "NOTIFY_SOCKET"
                            | "LISTEN_FDS"
                            | "LISTEN_PID"
                            | "WATCHDOG_USEC"
                            | "WATCHDOG_PID"
                    )
                })
                .collect()
        });
        Env {
            base: Arc::clone(base),
            ..Env::default()
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.own.retain(|(k, _)| *k != key);
        self.own.push((key, value.into()));
    }

    /// Sets `key` to `value` unless `key` is already set.
    pub fn set_default(&mut self, key: &str, value: &str) {
        if self.get(key).is_none() {
            self.own.push((key.into(), value.into()));
        }
    }

    /// Unsets `key`.
    pub fn remove(&mut self, key: &str) {
        self.own.retain(|(k, _)| k != key);
        if self.base.iter().any(|(k, _)| k == key) && !self.is_hidden(key) {
            self.hidden.push(key.into());
        }
    }

    /// Every variable, each key once: the base's in their order, then the run's own in
    /// the order they were set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let shown = |k: &str| !self.is_hidden(k) && !self.own.iter().any(|(o, _)| o == k);
        self.base
            .iter()
            .filter(move |(k, _)| shown(k))
            .chain(&self.own)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn is_hidden(&self, key: &str) -> bool {
        self.hidden.iter().any(|h| **h == *key)
    }
}

impl From<Vec<(String, String)>> for Env {
    /// Exactly these variables, in this order (a later duplicate key wins).
    fn from(vars: Vec<(String, String)>) -> Env {
        let mut env = Env::default();
        for (k, v) in vars {
            env.set(k, v);
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(vars: &[(&str, &str)]) -> Env {
        Env {
            base: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Env::default()
        }
    }

    fn all(env: &Env) -> Vec<(&str, &str)> {
        env.iter().collect()
    }

    #[test]
    fn own_variables_shadow_the_base_and_come_after_it() {
        let mut env = base(&[("PATH", "/bin"), ("HOME", "/root"), ("LANG", "C")]);
        env.set("HOME", "/home/u");
        env.set("X", "1");
        env.set("X", "2");
        assert_eq!(
            all(&env),
            [
                ("PATH", "/bin"),
                ("LANG", "C"),
                ("HOME", "/home/u"),
                ("X", "2")
            ]
        );
        assert_eq!(env.get("HOME"), Some("/home/u"));
        assert_eq!(env.get("PATH"), Some("/bin"));
        assert_eq!(env.get("NOPE"), None);
    }

    #[test]
    fn removed_variables_are_gone_until_set_again() {
        let mut env = base(&[("PATH", "/bin"), ("USER", "root")]);
        env.set("OWN", "1");
        env.remove("USER");
        env.remove("OWN");
        env.remove("USER");
        assert_eq!(all(&env), [("PATH", "/bin")]);
        assert_eq!(env.hidden.len(), 1);
        env.set("USER", "u");
        assert_eq!(all(&env), [("PATH", "/bin"), ("USER", "u")]);
    }

    #[test]
    fn set_default_keeps_what_is_there() {
        let mut env = base(&[("HOME", "/root")]);
        env.remove("HOME");
        env.set_default("HOME", "/home/u");
        env.set_default("HOME", "/other");
        env.set_default("PATH", "/bin");
        assert_eq!(all(&env), [("HOME", "/home/u"), ("PATH", "/bin")]);
    }

    #[test]
    fn runs_share_the_inherited_variables() {
        let (a, b) = (Env::inherited(), Env::inherited());
        assert!(Arc::ptr_eq(&a.base, &b.base));
        assert!(a.iter().all(|(k, _)| k != "NOTIFY_SOCKET"));
    }

    #[test]
    fn from_a_list_keeps_its_order_and_the_last_duplicate() {
        let env = Env::from(vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "2".to_string()),
            ("A".to_string(), "3".to_string()),
        ]);
        assert_eq!(all(&env), [("B", "2"), ("A", "3")]);
    }
}
