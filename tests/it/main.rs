//! Integration tests: the real `warden` binary, real processes, real signals.
//! One test binary; each module is one area of the contract.

mod cli;
mod config;
mod control;
mod dashboard;
mod detach;
mod events;
mod harness;
mod health;
mod imports;
mod init;
mod kill;
mod lifecycle;
mod metrics;
mod observe;
mod output;
mod reload;
mod render;
mod resources;
mod robust;
mod scale;
mod schedule;
mod shell;
mod tree;
mod users;
mod watch;
