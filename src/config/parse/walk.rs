//! The error-collecting walk over the spanned TOML tree: positions, key paths, and one
//! typed getter per kind of value.
//!
//! Every getter either returns the value or records an error at the value's position and
//! returns `None`, so a caller can go on and find the next problem. Nothing here knows
//! what a process or a probe is; the callers in the sibling modules do.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::error::{ConfigError, ConfigErrors};
use crate::config::units;

pub(super) type Span = Range<usize>;

/// Where errors go, and what turns byte offsets into lines and columns.
pub(super) struct Ctx<'s> {
    file: PathBuf,
    /// The config file's folder (absolute): relative paths start here.
    pub dir: PathBuf,
    /// The config is loaded to be run by this process (`up`, a reload), not only checked:
    /// what needs privileges warden does not have is an error too.
    pub to_run: bool,
    text: &'s str,
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
    /// Lines with a syntax error, whose other errors would only be its echoes.
    syntax_lines: Vec<usize>,
}

impl<'s> Ctx<'s> {
    pub fn new(file: &Path, dir: PathBuf, text: &'s str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Ctx {
            file: file.to_path_buf(),
            dir,
            to_run: false,
            text,
            line_starts,
            errors: Vec::new(),
            syntax_lines: Vec::new(),
        }
    }

    /// Record a syntax error. Record these before walking: later errors on the same line
    /// are dropped, as the parser's recovery makes them up (an empty key, a lost value).
    pub fn syntax_error(&mut self, span: &Span, message: String) {
        self.error(span, "", message);
        self.syntax_lines.push(self.position(span.start).0);
    }

    /// Record that something is missing, unless there was a syntax error: the parser may
    /// have stopped before the thing, or lost it while recovering.
    pub fn missing(&mut self, span: &Span, key_path: &str, message: impl Into<String>) {
        if self.syntax_lines.is_empty() {
            self.error(span, key_path, message);
        }
    }

    pub fn error(&mut self, span: &Span, key_path: &str, message: impl Into<String>) {
        let (line, col) = self.position(span.start);
        if self.syntax_lines.contains(&line) {
            return;
        }
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            col,
            key_path: key_path.to_string(),
            message: message.into(),
        });
    }

    /// The source text under `span`, for messages that quote what the user wrote.
    pub fn source(&self, span: &Span) -> &'s str {
        self.text.get(span.clone()).unwrap_or("")
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, col + 1)
    }

    /// All errors in file order, or `value` if there were none.
    pub fn finish<T>(mut self, value: Option<T>) -> Result<T, ConfigErrors> {
        // Cross-checks run after the walk; sorting puts their errors back in file order.
        self.errors.sort_by_key(|e| (e.line, e.col));
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(ConfigErrors(self.errors)),
        }
    }
}

/// `parent.key`, quoting keys that TOML would need quoted so the path can be pasted back.
pub(super) fn join(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(super) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// `` `a`, `b` and `c` ``.
pub(super) fn quoted_list<S: AsRef<str>>(items: &[S], last_sep: &str) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("`{}`", s.as_ref())).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {last_sep} {last}", rest.join(", ")),
    }
}

/// One TOML table being walked, with the key path that leads to it.
pub(super) struct Table<'t, 'i> {
    pub path: String,
    pub span: Span,
    map: &'t DeTable<'i>,
}

impl<'t, 'i> Table<'t, 'i> {
    pub fn new(path: String, span: Span, map: &'t DeTable<'i>) -> Self {
        Table { path, span, map }
    }

    pub fn field(&self, key: &str) -> Option<Field<'t, 'i>> {
        let (k, v) = self.map.get_key_value(key)?;
        Some(Field::new(&self.path, k, v))
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.get_key_value(key).is_some()
    }

    pub fn fields(&self) -> impl Iterator<Item = Field<'t, 'i>> + '_ {
        self.map.iter().map(|(k, v)| Field::new(&self.path, k, v))
    }

    /// Report every key not in `known`, suggesting the closest known one. `hint` may
    /// explain a key that belongs elsewhere.
    pub fn check_keys(&self, ctx: &mut Ctx, known: &[&str], hint: impl Fn(&str) -> Option<String>) {
        for f in self.fields().filter(|f| !known.contains(&f.key)) {
            let advice = match (hint(f.key), closest(f.key, known.iter().copied())) {
                (Some(hint), _) => hint,
                (None, Some(near)) => format!("did you mean `{near}`?"),
                (None, None) => format!("expected one of {}", quoted_list(known, "or")),
            };
            ctx.error(
                &f.key_span,
                &self.path,
                format!("unknown key `{}`; {advice}", f.key),
            );
        }
    }

    pub fn bool(&self, ctx: &mut Ctx, key: &str) -> Option<bool> {
        self.field(key)?.bool(ctx)
    }

    pub fn uint<T: TryFrom<i64>>(&self, ctx: &mut Ctx, key: &str, min: i64) -> Option<T> {
        self.field(key)?.uint(ctx, min)
    }

    pub fn duration(&self, ctx: &mut Ctx, key: &str) -> Option<Duration> {
        self.field(key)?.duration(ctx)
    }

    /// A duration that must be more than zero (a zero period would spin, a zero timeout
    /// would always fail).
    pub fn positive_duration(&self, ctx: &mut Ctx, key: &str) -> Option<Duration> {
        let f = self.field(key)?;
        let d = f.duration(ctx)?;
        if d.is_zero() {
            f.error(ctx, "must be more than `0s`");
            return None;
        }
        Some(d)
    }

    pub fn path(&self, ctx: &mut Ctx, key: &str) -> Option<PathBuf> {
        self.field(key)?.path(ctx)
    }

    pub fn choice<T: Copy>(
        &self,
        ctx: &mut Ctx,
        key: &str,
        what: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        self.field(key)?.choice(ctx, what, options)
    }

    pub fn table(&self, ctx: &mut Ctx, key: &str) -> Option<Table<'t, 'i>> {
        self.field(key)?.table(ctx)
    }
}

/// One key and its value, with everything needed to point an error at either.
pub(super) struct Field<'t, 'i> {
    pub key: &'t str,
    /// Key path of this value, e.g. `processes.web.backoff`.
    pub path: String,
    pub key_span: Span,
    pub span: Span,
    pub value: &'t DeValue<'i>,
}

impl<'t, 'i> Field<'t, 'i> {
    fn new(
        parent: &str,
        key: &'t Spanned<std::borrow::Cow<'i, str>>,
        value: &'t Spanned<DeValue<'i>>,
    ) -> Self {
        Field {
            key: key.get_ref(),
            path: join(parent, key.get_ref()),
            key_span: key.span(),
            span: value.span(),
            value: value.get_ref(),
        }
    }

    /// The `index`th element of an array, as a field of its own (`exec[1]`).
    pub fn item(&self, index: usize, value: &'t Spanned<DeValue<'i>>) -> Field<'t, 'i> {
        Field {
            key: self.key,
            path: format!("{}[{index}]", self.path),
            key_span: self.key_span.clone(),
            span: value.span(),
            value: value.get_ref(),
        }
    }

    pub fn error(&self, ctx: &mut Ctx, message: impl Into<String>) {
        ctx.error(&self.span, &self.path, message);
    }

    /// What the user wrote for this value, verbatim.
    pub fn source<'c>(&self, ctx: &Ctx<'c>) -> &'c str {
        ctx.source(&self.span)
    }

    pub fn type_error(&self, ctx: &mut Ctx, expected: &str) {
        let found = describe(self.value);
        let unquote = match self.value.as_str() {
            Some(s) if expected.contains("integer") && s.trim().parse::<i64>().is_ok() => {
                "; remove the quotes"
            }
            Some(s) if expected.contains("boolean") && s.parse::<bool>().is_ok() => {
                "; remove the quotes"
            }
            _ => "",
        };
        self.error(ctx, format!("expected {expected}, found {found}{unquote}"));
    }

    pub fn str(&self, ctx: &mut Ctx) -> Option<&'t str> {
        match self.value {
            DeValue::String(s) => Some(s),
            _ => {
                self.type_error(ctx, "a string");
                None
            }
        }
    }

    /// A string that must not be empty or blank.
    pub fn non_empty_str(&self, ctx: &mut Ctx) -> Option<&'t str> {
        let s = self.str(ctx)?;
        if s.trim().is_empty() {
            self.error(ctx, "cannot be empty");
            return None;
        }
        Some(s)
    }

    pub fn bool(&self, ctx: &mut Ctx) -> Option<bool> {
        match self.value {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(ctx, "a boolean (`true` or `false`)");
                None
            }
        }
    }

    pub fn int(&self, ctx: &mut Ctx) -> Option<i64> {
        match self.value {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(ctx, format!("`{}` is too large", self.source(ctx)));
                    None
                }
            },
            _ => {
                self.type_error(ctx, "an integer");
                None
            }
        }
    }

    /// An integer of at least `min` that fits `T`.
    pub fn uint<T: TryFrom<i64>>(&self, ctx: &mut Ctx, min: i64) -> Option<T> {
        let n = self.int(ctx)?;
        if n < min {
            self.error(ctx, format!("must be at least {min}, not `{n}`"));
            return None;
        }
        let converted = T::try_from(n).ok();
        if converted.is_none() {
            self.error(ctx, format!("`{n}` is too large"));
        }
        converted
    }

    /// An integer or a float, as in `cpu = 90` or `cpu = 12.5`.
    pub fn number(&self, ctx: &mut Ctx) -> Option<f64> {
        match self.value {
            DeValue::Float(f) => {
                let n = f.as_str().parse().ok();
                if n.is_none() {
                    self.error(ctx, format!("`{f}` is not a number"));
                }
                n
            }
            DeValue::Integer(_) => self.int(ctx).map(|n| n as f64),
            _ => {
                self.type_error(ctx, "a number");
                None
            }
        }
    }

    pub fn duration(&self, ctx: &mut Ctx) -> Option<Duration> {
        self.unit_string(ctx, "duration", "10s", units::parse_duration)
    }

    pub fn size(&self, ctx: &mut Ctx) -> Option<u64> {
        self.unit_string(ctx, "size", "512MiB", units::parse_size)
    }

    /// A string parsed by `parse`. A bare number is refused with a hint, because its unit
    /// is a guess (is `10` seconds or milliseconds? bytes or megabytes?).
    fn unit_string<T>(
        &self,
        ctx: &mut Ctx,
        what: &str,
        example: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match self.value {
            DeValue::String(s) => parse(s).map_err(|m| self.error(ctx, m)).ok(),
            DeValue::Integer(_) | DeValue::Float(_) => {
                let n = self.source(ctx);
                self.error(
                    ctx,
                    format!(
                        "`{n}` has no unit; write the {what} as a string, like `\"{example}\"`"
                    ),
                );
                None
            }
            _ => {
                self.type_error(ctx, &format!("a {what} like `\"{example}\"`"));
                None
            }
        }
    }

    pub fn signal(&self, ctx: &mut Ctx) -> Option<Signal> {
        let parsed = match self.value {
            DeValue::String(s) => units::parse_signal(s),
            DeValue::Integer(_) => units::signal_from_number(self.int(ctx)?),
            _ => {
                self.type_error(ctx, "a signal name like `\"TERM\"` or a number");
                return None;
            }
        };
        parsed.map_err(|m| self.error(ctx, m)).ok()
    }

    /// A path, resolved against the config file's folder. Not canonicalized and not
    /// checked for existence: the file may appear by the time it is used.
    pub fn path(&self, ctx: &mut Ctx) -> Option<PathBuf> {
        let s = self.non_empty_str(ctx)?;
        Some(resolve(&ctx.dir, s))
    }

    pub fn choice<T: Copy>(&self, ctx: &mut Ctx, what: &str, options: &[(&str, T)]) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let Some(s) = self.value.as_str() else {
            self.type_error(ctx, &format!("one of {}", quoted_list(&names, "or")));
            return None;
        };
        if let Some((_, v)) = options.iter().find(|(n, _)| *n == s) {
            return Some(*v);
        }
        let advice = match closest(s, names.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("use {}", quoted_list(&names, "or")),
        };
        self.error(ctx, format!("`{s}` is not {what}; {advice}"));
        None
    }

    pub fn array(&self, ctx: &mut Ctx, expected: &str) -> Option<&'t [Spanned<DeValue<'i>>]> {
        match self.value {
            DeValue::Array(a) => Some(a),
            _ => {
                self.type_error(ctx, expected);
                None
            }
        }
    }

    pub fn table(&self, ctx: &mut Ctx) -> Option<Table<'t, 'i>> {
        match self.value {
            DeValue::Table(t) => Some(Table::new(self.path.clone(), self.span.clone(), t)),
            _ => {
                self.type_error(ctx, &format!("a table, like `[{}]`", self.path));
                None
            }
        }
    }

    /// A command line: an array of strings, or one string split the way a shell would
    /// (quotes group words; no variables, globs or pipes).
    pub fn argv(&self, ctx: &mut Ctx) -> Option<Vec<String>> {
        match self.value {
            DeValue::String(s) => {
                let Some(words) = shlex::split(s) else {
                    self.error(ctx, format!("`{s}` has an unbalanced quote; close it, or write the command as an array of strings"));
                    return None;
                };
                if words.is_empty() {
                    self.error(
                        ctx,
                        "cannot be empty; give the program to run, like `\"./server --port 8080\"`",
                    );
                    return None;
                }
                Some(words)
            }
            DeValue::Array(items) => self.argv_array(ctx, items),
            _ => {
                self.type_error(ctx, "a string or an array of strings");
                None
            }
        }
    }

    fn argv_array(&self, ctx: &mut Ctx, items: &'t [Spanned<DeValue<'i>>]) -> Option<Vec<String>> {
        if items.is_empty() {
            self.error(
                ctx,
                "cannot be empty; give the program to run, like `[\"./server\", \"--port\", \"8080\"]`",
            );
            return None;
        }
        let words: Vec<Option<String>> = items
            .iter()
            .enumerate()
            .map(|(i, v)| self.item(i, v).str(ctx).map(str::to_string))
            .collect();
        let words: Vec<String> = words.into_iter().collect::<Option<_>>()?;
        if words[0].trim().is_empty() {
            self.item(0, &items[0]).error(
                ctx,
                "the program to run (the first element) cannot be empty",
            );
            return None;
        }
        Some(words)
    }
}

/// `dir/path` with `.` components dropped; absolute `path`s are kept as they are.
pub(super) fn resolve(dir: &Path, path: &str) -> PathBuf {
    dir.join(path).components().collect()
}

/// A short description of a value for "expected X, found Y".
fn describe(value: &DeValue) -> String {
    match value {
        DeValue::String(s) => {
            let shown: String = s.chars().take(40).collect();
            let more = if shown.len() < s.len() { "…" } else { "" };
            format!("the string `{shown:?}{more}`")
        }
        DeValue::Integer(i) => format!("the integer `{i}`"),
        DeValue::Float(f) => format!("the number `{f}`"),
        DeValue::Boolean(b) => format!("`{b}`"),
        DeValue::Datetime(d) => format!("the date `{d}`"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known = ["command", "cwd", "env", "env_file", "restart"];
        assert_eq!(closest("comand", known), Some("command"));
        assert_eq!(closest("Command", known), Some("command"));
        assert_eq!(closest("env_files", known), Some("env_file"));
        assert_eq!(closest("frobnicate", known), None);
    }

    #[test]
    fn positions_are_one_based_chars() {
        let text = "a = 1\nbé = \"x\"\n";
        let ctx = Ctx::new(Path::new("f"), PathBuf::from("/"), text);
        assert_eq!(ctx.position(0), (1, 1));
        assert_eq!(ctx.position(6), (2, 1));
        assert_eq!(ctx.position(text.find('=').unwrap()), (1, 3));
        assert_eq!(ctx.position(text.rfind('=').unwrap()), (2, 4));
    }

    #[test]
    fn key_paths_quote_odd_keys() {
        assert_eq!(join("", "processes"), "processes");
        assert_eq!(join("processes", "web"), "processes.web");
        assert_eq!(join("processes", "web.0"), "processes.\"web.0\"");
    }

    #[test]
    fn lists() {
        assert_eq!(quoted_list(&["a"], "or"), "`a`");
        assert_eq!(quoted_list(&["a", "b", "c"], "or"), "`a`, `b` or `c`");
    }
}
