//! `pullkeeper bench`: scenario benchmarks of pullkeeper against the limits it promises.
//!
//! Each scenario runs the real assembly (the app, a sled store on disk, HTTP on
//! loopback) against the simulator, and prints every figure next to the limit it is
//! judged by, measured in the same run, and the ratio. They are commands run on a
//! release build, never timed tests: a slow machine must not fail a build. BENCHMARKS.md
//! records the latest results and what they mean. Like `cli`, this is an edge of the
//! program, so errors are `anyhow`.

mod failover;
mod intake;
mod loadgen;
mod replica;
mod report;
mod rig;
mod scale;
mod scaleout;
mod storm;
mod takeover;

use clap::ValueEnum;

pub use report::ScenarioReport;
pub use rig::BenchStore;

/// Which scenario to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Every scenario below, in this order.
    All,
    /// Failover latency with NCS, and detection by polling alone.
    Failover,
    /// 50 players of one project failing at once at Agora's limits.
    Storm,
    /// Signed webhook notices per second against a bare handler.
    Intake,
    /// 1,000 projects x 50 players: convergence, steady CPU and memory, restarts.
    Scale,
    /// Two replicas on etcd, the leader SIGKILLed: time to the new leader's first call.
    Takeover,
    /// 1,000 projects x 50 players shared by three replicas on etcd, against one.
    Scaleout,
}

/// Runs `scenario` (`quick`: smaller, for a CI smoke run; its figures are not the
/// published ones; `projects`: the scale scenario's size; `store`: where the failover
/// scenario keeps state) and prints each report as it completes. Returns how many targets were missed.
pub async fn run(
    scenario: Scenario,
    quick: bool,
    projects: usize,
    store: BenchStore,
) -> anyhow::Result<usize> {
    println!(
        "pullkeeper {} bench {:?}{} on {}",
        env!("CARGO_PKG_VERSION"),
        scenario,
        if quick { " --quick" } else { "" },
        rig::machine()
    );
    if cfg!(debug_assertions) {
        println!("  # debug build: figures are not representative; use --release");
    }
    let wanted = |s: Scenario| scenario == Scenario::All || scenario == s;
    let mut missed = 0;
    let mut done = |r: ScenarioReport| {
        r.print();
        missed += r.missed();
    };
    if wanted(Scenario::Failover) {
        done(failover::with_ncs(quick, store).await?);
        done(failover::polling_only(quick).await?);
    }
    if wanted(Scenario::Storm) {
        done(storm::run(quick).await?);
    }
    if wanted(Scenario::Intake) {
        done(intake::run(quick).await?);
    }
    if wanted(Scenario::Scale) {
        for r in scale::run(quick, projects).await? {
            done(r);
        }
    }
    if wanted(Scenario::Scaleout) {
        done(scaleout::run(quick, projects).await?);
    }
    if wanted(Scenario::Takeover) {
        done(takeover::run(quick).await?);
    }
    println!("\n{missed} target(s) missed");
    Ok(missed)
}
