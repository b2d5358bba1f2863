//! The `gatehouse` binary: argument parsing, printing, progress and exit codes. Everything
//! else lives in gatehouse-core.

mod cli;
mod commands;
mod exit;
mod print;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let serving = matches!(cli.command, cli::Command::Qa(cli::QaCommand::Serve(_)));
    init_logging(cli.global.verbose, serving);
    // Ctrl-C: stop at once with 130. Every write gatehouse makes is either a draft or
    // create-only, so stopping mid-run never leaves a half-published release.
    let _ = ctrlc::set_handler(|| std::process::exit(exit::INTERRUPTED));
    match commands::run(&cli) {
        Ok(code) => code.into(),
        Err(err) => {
            print::error(&err);
            exit::Code::Error.into()
        }
    }
}

fn init_logging(verbose: u8, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        // The reviewer app logs one line per request (never content).
        0 if serving => "warn,gatehouse_review=info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env(gatehouse_core::config::env::LOG)
        .unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
