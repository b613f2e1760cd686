//! The client side of the control socket, blocking: the CLI sends one request and reads
//! the answer lines until the last one (or, for streams, until the supervisor goes).
//!
//! Finding the socket never requires reading the config: a client that cannot read it
//! (another user's folder, a config with errors) falls back to the default path, which
//! depends on the config's path only.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{Answer, Request};

/// Where a client looks for the supervisor, and how to name it in messages.
#[derive(Debug, Clone)]
pub struct Target {
    pub socket: PathBuf,
    /// `for warden.toml` or `at socket PATH` (when the socket was named explicitly).
    described: String,
    /// What to add when nothing answers: the config file named does not exist, which is
    /// the likelier mistake (run from another folder, or `-c` forgotten).
    hint: Option<String>,
}

impl Target {
    /// The socket for `config` (as the user named it), with `--socket` if given. The config
    /// is read only to learn `[supervisor] socket`, and only when nothing overrides it.
    pub fn new(config: &Path, cli_socket: Option<&Path>) -> Target {
        if super::socket_overridden(cli_socket) {
            let socket = super::socket_path(config, None, cli_socket);
            let described = format!("at socket {}", socket.display());
            return Target {
                socket,
                described,
                hint: None,
            };
        }
        let hint = (!config.exists()).then(|| {
            let here = match std::env::current_dir() {
                Ok(cwd) if config.is_relative() => format!(" (looked in {})", cwd.display()),
                _ => String::new(),
            };
            format!(
                "; and there is no `{}`{here}: name the config `warden up` runs with `-c FILE`",
                config.display()
            )
        });
        let spec_socket = std::fs::metadata(config)
            .ok()
            .filter(|m| m.is_file())
            .and_then(|_| crate::config::load(config).ok())
            .and_then(|spec| spec.supervisor.socket);
        let socket = super::socket_path(config, spec_socket.as_deref(), None);
        let described = format!("for {} (socket {})", config.display(), socket.display());
        Target {
            socket,
            described,
            hint,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no supervisor is running {target}: {reason}")]
    NotRunning { target: String, reason: String },
    #[error("cannot reach the supervisor {target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("lost the connection to the supervisor: {0}")]
    Io(#[from] io::Error),
    #[error("the supervisor closed the connection without answering")]
    Closed,
    #[error("cannot read the supervisor's answer: {0}")]
    Garbled(String),
}

/// A connection carrying one request at a time.
pub struct Connection {
    reader: BufReader<UnixStream>,
}

/// Connect to the supervisor at `target`.
pub fn connect(target: &Target) -> Result<Connection, ClientError> {
    let len = target.socket.as_os_str().len();
    if len > super::MAX_SOCKET_PATH {
        return Err(ClientError::Unreachable {
            target: target.described.clone(),
            reason: format!(
                "the path is {len} bytes long; unix sockets allow at most {}",
                super::MAX_SOCKET_PATH
            ),
        });
    }
    match UnixStream::connect(&target.socket) {
        Ok(stream) => Ok(Connection {
            reader: BufReader::new(stream),
        }),
        Err(e) => {
            let hint = target.hint.clone().unwrap_or_default();
            let target = target.described.clone();
            Err(match e.kind() {
                io::ErrorKind::NotFound => ClientError::NotRunning {
                    target,
                    reason: format!("no socket there{hint}"),
                },
                io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
                    target,
                    reason: format!("connection refused{hint}"),
                },
                io::ErrorKind::PermissionDenied => ClientError::Unreachable {
                    target,
                    reason: "permission denied".into(),
                },
                _ => ClientError::Unreachable {
                    target,
                    reason: lowercase_io(&e),
                },
            })
        }
    }
}

impl Connection {
    /// Send `request`; read its answer with [`Connection::read_answer`].
    pub fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let stream = self.reader.get_mut();
        match stream.write_all(&request.to_line()) {
            Ok(()) => Ok(()),
            // Refused before we spoke (unauthorized, busy): the reason is waiting to be read.
            Err(e)
                if e.kind() == io::ErrorKind::BrokenPipe
                    || e.kind() == io::ErrorKind::ConnectionReset =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Give up on an answer line that takes longer than `limit` (`None`: wait forever).
    pub fn set_timeout(&mut self, limit: Option<Duration>) -> Result<(), ClientError> {
        Ok(self.reader.get_ref().set_read_timeout(limit)?)
    }

    /// The next answer line. [`ClientError::Closed`] if the supervisor hung up instead.
    pub fn read_answer(&mut self) -> Result<Answer, ClientError> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) => return Err(ClientError::Closed),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ClientError::Io(io::Error::new(
                    e.kind(),
                    "the supervisor did not answer in time",
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                return Err(ClientError::Closed);
            }
            Err(e) => return Err(e.into()),
        }
        serde_json::from_slice(&line).map_err(|e| ClientError::Garbled(e.to_string()))
    }

    /// Send `request` and read its single answer: `Ok` with what it carries, or `Err`
    /// with the supervisor's reason (`ok: false`).
    pub fn call(&mut self, request: &Request) -> Result<Result<Answer, String>, ClientError> {
        self.send(request)?;
        loop {
            let answer = self.read_answer()?;
            match answer.ok {
                Some(true) => return Ok(Ok(answer)),
                Some(false) => {
                    return Ok(Err(answer
                        .error
                        .unwrap_or_else(|| "the request failed".into())));
                }
                // Not a stream request: an item line would be a server bug; skip it.
                None => continue,
            }
        }
    }

    /// Wait until the supervisor closes the connection (bounded by `limit`).
    pub fn wait_closed(&mut self, limit: Duration) -> Result<(), ClientError> {
        self.set_timeout(Some(limit))?;
        loop {
            match self.read_answer() {
                Ok(_) => continue,
                Err(ClientError::Closed) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// `Connection refused (os error 111)` → `connection refused`.
fn lowercase_io(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}
