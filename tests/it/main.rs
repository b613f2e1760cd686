//! Integration tests: the real `warden` binary, real processes, real signals.
//! One test binary; each module is one area of the contract.

mod cli;
mod config;
mod control;
mod harness;
mod health;
mod kill;
mod lifecycle;
mod output;
mod reload;
mod robust;
