//! `env_file`: `KEY=VALUE` lines, read when the config is loaded.
//!
//! The format is the common subset of docker's and dotenv's: blank lines and lines
//! starting with `#` are skipped, an `export ` prefix is allowed, and one pair of matching
//! quotes around a value is removed. Nothing else is interpreted: no `$VAR` expansion,
//! no escapes, no inline comments, so a value means what it looks like. This module
//! does not know about TOML; the caller points errors at the `env_file` key.

use std::io::ErrorKind;
use std::path::Path;

/// The entries of the env file at `path`, in file order (a later duplicate wins when
/// collected into a map). `shown` is the path as the user wrote it, for messages.
pub(super) fn read(path: &Path, shown: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => {
            format!("env file `{shown}` does not exist (relative paths start at the config file's folder)")
        }
        ErrorKind::InvalidData => format!("env file `{shown}` is not valid utf-8"),
        _ => format!("env file `{shown}` cannot be read: {}", super::io_reason(&e)),
    })?;
    parse(&text).map_err(|(line, why)| format!("line {line} of env file `{shown}` {why}"))
}

/// Entries, or the 1-based number of the first bad line and what is wrong with it.
fn parse(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            return Err((i + 1, format!("is not `KEY=VALUE`: `{line}`")));
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err((i + 1, format!("has no valid name before `=`: `{line}`")));
        }
        let value = unquote(value.trim()).map_err(|why| (i + 1, why))?;
        entries.push((key.to_string(), value.to_string()));
    }
    Ok(entries)
}

fn unquote(value: &str) -> Result<&str, String> {
    let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return Ok(value);
    };
    match value[1..].strip_suffix(quote) {
        Some(inner) => Ok(inner),
        None => Err(format!("has an unclosed {quote} quote: `{value}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap()
    }

    #[test]
    fn reads_the_common_forms() {
        let text = "# comment\n\nA=1\nexport B = two words \nC=\"quoted # not a comment\"\nD='x'\nE=\nF=a=b\n";
        let got = pairs(text);
        let want = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "quoted # not a comment"),
            ("D", "x"),
            ("E", ""),
            ("F", "a=b"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn reports_the_bad_line() {
        assert_eq!(parse("A=1\n\njust words\n").unwrap_err().0, 3);
        assert_eq!(parse("=1\n").unwrap_err().0, 1);
        assert_eq!(parse("MY KEY=1\n").unwrap_err().0, 1);
        assert_eq!(parse("A=\"open\n").unwrap_err().0, 1);
        assert_eq!(pairs("A=\"\"\n"), vec![("A".to_string(), String::new())]);
        assert!(
            parse("A=\"\n").is_err(),
            "a lone quote is not a quoted empty value"
        );
    }
}
