//! The pullkeeper binary: parse the command line, run the chosen command, exit.

use clap::Parser;

/// glibc's malloc was a quarter of pullkeeper's steady CPU at 1,000 projects (bin walks
/// in `_int_malloc` over arenas fragmented by the start-up burst) and kept that burst's
/// memory resident (BENCHMARKS.md, scale); mimalloc's size-segregated pages fix both.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = pullkeeper::Cli::parse();
    pullkeeper::execute(cli)
}
