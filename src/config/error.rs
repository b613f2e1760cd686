//! Config errors as the user reads them: `FILE:LINE:COL: KEY_PATH: message`.
//!
//! This module only renders; it does not decide what is wrong. Positions are 1-based and
//! computed by the parser from byte spans. The file is shown exactly as the caller named
//! it (never canonicalized), so messages match what the user typed on the command line.

use std::fmt;
use std::path::PathBuf;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(self))]
pub struct ConfigError {
    /// The config file as given to [`crate::config::load`].
    pub file: PathBuf,
    /// 1-based; 0 when the error is about the file as a whole (e.g. it cannot be read).
    pub line: usize,
    /// 1-based, counted in characters.
    pub col: usize,
    /// Dotted path of the offending key, e.g. `processes.web.log.max_size`; may be empty
    /// for syntax errors.
    pub key_path: String,
    /// A lowercase sentence the user can act on.
    pub message: String,
}

impl ConfigError {
    /// An error about the file as a whole, rendered `FILE: message`.
    pub fn whole_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            line: 0,
            col: 0,
            key_path: String::new(),
            message: message.into(),
        }
    }
}

fn render(e: &ConfigError) -> String {
    let file = e.file.display();
    match (e.line, e.key_path.is_empty()) {
        (0, _) => format!("{file}: {}", e.message),
        (_, true) => format!("{file}:{}:{}: {}", e.line, e.col, e.message),
        (_, false) => format!("{file}:{}:{}: {}: {}", e.line, e.col, e.key_path, e.message),
    }
}

/// Every problem found in one config file, in file order. Never empty when returned as
/// an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: usize, key_path: &str) -> ConfigError {
        ConfigError {
            file: PathBuf::from("w.toml"),
            line,
            col: 7,
            key_path: key_path.into(),
            message: "bad".into(),
        }
    }

    #[test]
    fn renders_each_shape() {
        assert_eq!(
            err(3, "processes.web").to_string(),
            "w.toml:3:7: processes.web: bad"
        );
        assert_eq!(err(3, "").to_string(), "w.toml:3:7: bad");
        assert_eq!(err(0, "x").to_string(), "w.toml: bad");
        let all = ConfigErrors(vec![err(1, "a"), err(2, "b")]);
        assert_eq!(all.to_string(), "w.toml:1:7: a: bad\nw.toml:2:7: b: bad");
    }
}
