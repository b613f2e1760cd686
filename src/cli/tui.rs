//! `warden tui [-c FILE | --socket PATH]`: the dashboard, attached to a running
//! supervisor over its control socket (also one forwarded over SSH). `q` closes the
//! view and leaves the supervisor alone. If the supervisor goes away, the view says so,
//! keeps its last picture and reconnects when it is back.

use super::ClientArgs;
use crate::api::client::{self, Target};
use crate::tui::app::Mode;
use crate::tui::{Exit, Source};

pub fn run(args: &ClientArgs) -> i32 {
    if !crate::tui::usable() {
        eprintln!(
            "warden: `warden tui` draws on a terminal, and stdin or stdout is not one; in scripts use `warden status --json` or `warden events --json`"
        );
        return 1;
    }
    let target = Target::new(&args.config, args.socket.as_deref());
    // Nobody there at all: say so in one line, as every client does.
    if let Err(e) = client::connect(&target) {
        return super::fail(e);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warden: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let source = Source::Remote {
        socket: target.socket.clone(),
    };
    match runtime.block_on(crate::tui::run(Mode::Attached, source)) {
        Ok(Exit::Quit | Exit::Signalled) => 0,
        Ok(Exit::TerminalGone) => 1,
        Err(e) => {
            eprintln!("warden: the dashboard failed: {e}");
            1
        }
    }
}
