//! The pullkeeper binary: parse the command line, run the chosen command, exit.

use clap::Parser;

/// The allocator decides much of the process's memory: at 1,000 projects mimalloc kept
/// about 110 MiB resident beyond what was allocated (pages pinned by a few live objects),
/// jemalloc about 45 MiB at the same steady CPU; glibc's malloc cost a quarter of the
/// steady CPU in bin walks. Figures in BENCHMARKS.md (scale); options in
/// `.cargo/config.toml`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = pullkeeper::Cli::parse();
    pullkeeper::execute(cli)
}
