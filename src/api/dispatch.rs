//! Requests with a single answer, performed by sending [`Control`] messages to the actor
//! and shaping its reply into an [`Answer`]: one place for the socket, the control FIFO
//! and the in-process dashboard alike.
//!
//! It owns no connection and does no I/O with a client (streams, deadlines and hang-ups
//! are the server's and `streams`'), so every front end can use it without importing
//! another.

use tokio::sync::oneshot;

use super::protocol::{Answer, Request, VERSION};
use crate::supervisor::{Control, Handle};

/// Perform a request that has a single answer (everything but the streams `logs`,
/// `events` and `subscribe`), for the socket, the FIFO and the in-process dashboard alike.
pub async fn act(handle: &Handle, config: &str, request: Request) -> Answer {
    let result = match request {
        Request::Hello => Ok(Answer {
            version: Some(VERSION),
            pid: Some(std::process::id()),
            config: Some(config.to_string()),
            ..Answer::success()
        }),
        Request::Status => ask(handle, |reply| Control::Status { reply })
            .await
            .map(|report| Answer {
                status: Some(
                    serde_json::value::to_raw_value(&report).expect("a status report serializes"),
                ),
                ..Answer::success()
            }),
        Request::Start { names } => ask(handle, |reply| Control::Start { names, reply })
            .await
            .and_then(reply),
        Request::Stop { names } => ask(handle, |reply| Control::Stop { names, reply })
            .await
            .and_then(reply),
        Request::Restart { names } => ask(handle, |reply| Control::Restart { names, reply })
            .await
            .and_then(reply),
        Request::Signal { names, signal } => match crate::config::units::parse_signal(&signal) {
            Ok(signal) => ask(handle, |reply| Control::Signal {
                names,
                signal,
                reply,
            })
            .await
            .and_then(reply),
            Err(e) => Err(e),
        },
        Request::Reload { dry_run } => ask(handle, |reply| Control::Reload { dry_run, reply })
            .await
            .and_then(|r| r)
            .map(|plan| Answer {
                message: Some(plan.describe()),
                plan: Some(
                    serde_json::value::to_raw_value(&plan).expect("a reload plan serializes"),
                ),
                ..Answer::success()
            }),
        Request::Tree { names } => ask(handle, |reply| Control::Tree { names, reply })
            .await
            .and_then(|r| r)
            .map(|trees| {
                #[derive(serde::Serialize)]
                struct Tree {
                    name: String,
                    processes: Vec<crate::monitor::Figures>,
                }
                let trees: Vec<Tree> = trees
                    .into_iter()
                    .map(|(name, processes)| Tree { name, processes })
                    .collect();
                Answer {
                    trees: Some(
                        serde_json::value::to_raw_value(&trees).expect("a tree serializes"),
                    ),
                    ..Answer::success()
                }
            }),
        Request::Down => ask(handle, |reply| Control::Shutdown { reply: Some(reply) })
            .await
            .map(|()| Answer::message("stopped")),
        Request::Scale { name, replicas } => ask(handle, |reply| Control::Scale {
            process: name,
            replicas,
            reply,
        })
        .await
        .and_then(reply),
        Request::History { names } => ask(handle, |reply| Control::History { names, reply })
            .await
            .and_then(|r| r)
            .map(|history| Answer {
                history: Some(
                    serde_json::value::to_raw_value(&history).expect("a history serializes"),
                ),
                ..Answer::success()
            }),
        Request::Describe { name } => ask(handle, |reply| Control::Describe { name, reply })
            .await
            .and_then(|r| r)
            .map(|d| Answer {
                description: Some(
                    serde_json::value::to_raw_value(&d).expect("a description serializes"),
                ),
                ..Answer::success()
            }),
        Request::Logs { .. } | Request::Events { .. } | Request::Subscribe { .. } => Err(format!(
            "`{}` streams: it cannot be used here",
            request.verb()
        )),
    };
    result.unwrap_or_else(Answer::error)
}

fn reply(result: Result<String, String>) -> Result<Answer, String> {
    result.map(Answer::message)
}

/// Send a control message and wait for its reply.
pub async fn ask<T>(
    handle: &Handle,
    make: impl FnOnce(oneshot::Sender<T>) -> Control,
) -> Result<T, String> {
    let (tx, rx) = oneshot::channel();
    handle
        .control
        .send(make(tx))
        .map_err(|_| "the supervisor has stopped".to_string())?;
    rx.await
        .map_err(|_| "the supervisor stopped before answering".to_string())
}
