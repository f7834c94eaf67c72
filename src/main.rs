//! The `regtrust` binary: parse, set up logging, dispatch, map the outcome to an exit code
//! (0 all good, 1 something needs attention, 2 usage or configuration error).

use clap::Parser;
use regtrust::cli::{Cli, Command, LogFormat};
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    // As Go runtimes do since 1.19: the soft open-file limit up to the hard limit.
    regtrust::listen::raise_nofile_limit();
    let code = match cli.command {
        Command::Sync(args) => regtrust::sync::run_cli(&args),
        Command::Probe(args) => regtrust::probe::run_cli(&args),
        Command::Aggregator(args) => regtrust::aggregator::run_cli(&args),
        Command::Report(args) => regtrust::aggregator::client::run_cli(&args),
        Command::Agent(args) => regtrust::agent::run_cli(&args),
    };
    ExitCode::from(code)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, never into a log file.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
