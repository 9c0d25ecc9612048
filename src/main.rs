//! The pullkeeper binary: parse the command line, run the chosen command, exit.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = pullkeeper::cli::Cli::parse();
    pullkeeper::cli::main(cli)
}
