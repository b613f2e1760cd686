//! The dashboard inside `warden up`: on a thread of its own with its own small runtime,
//! so that drawing never competes with the supervisor's tasks and a busy supervisor
//! never freezes the view. warden's own messages (normally on stderr) go to a file
//! meanwhile, since they would scribble over the screen.

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use super::app::Mode;
use super::backend::Source;
use super::runner::{Exit, run};
use crate::supervisor::{Control, Handle};

/// The dashboard thread of `warden up`.
pub struct Embedded {
    thread: JoinHandle<()>,
}

impl Embedded {
    /// Start the dashboard on `handle`'s supervisor. However it ends (the user stops
    /// everything, the terminal goes away, a panic), the supervisor is asked to stop
    /// everything: nobody would be left to watch it otherwise.
    pub fn start(handle: Handle, config: &Path) -> std::io::Result<Embedded> {
        let source = Source::Local {
            handle: handle.clone(),
            config: config.display().to_string(),
        };
        let thread = std::thread::Builder::new()
            .name("warden-dashboard".into())
            .spawn(move || {
                let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(run(Mode::InProcess, source))
                }));
                super::terminal::restore();
                let finished = matches!(ended, Ok(Ok(Exit::Quit)));
                if !finished {
                    if let Ok(Err(e)) = &ended {
                        tracing::error!("the dashboard stopped: {e}");
                    }
                    let _ = handle.control.send(Control::Shutdown { reply: None });
                }
            })?;
        Ok(Embedded { thread })
    }

    /// Wait for the dashboard to finish (it does once the supervisor has).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// stderr sent to a file until dropped.
pub struct StderrToFile {
    saved: OwnedFd,
    pub path: PathBuf,
    /// The file's length when the redirection began.
    start: u64,
}

impl StderrToFile {
    pub fn new(path: &Path) -> std::io::Result<StderrToFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let start = file.metadata()?.len();
        let saved = nix::fcntl::fcntl(std::io::stderr(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
            .map_err(std::io::Error::from)?;
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
        let saved = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(saved) };
        nix::unistd::dup2_stderr(&file)?;
        Ok(StderrToFile {
            saved,
            path: path.to_owned(),
            start,
        })
    }

    /// Put stderr back; whether anything was written to the file meanwhile.
    pub fn finish(self) -> bool {
        let start = self.start;
        let path = self.path.clone();
        drop(self);
        std::fs::metadata(path).is_ok_and(|m| m.len() > start)
    }
}

impl Drop for StderrToFile {
    fn drop(&mut self) {
        let _ = nix::unistd::dup2_stderr(&self.saved);
    }
}
