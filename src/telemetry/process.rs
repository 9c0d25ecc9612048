//! The process's own CPU and memory, read from `/proc` when scraped, and the container's
//! memory limit from its cgroup: what the memory alert compares, and what the bench
//! measures.
//!
//! Why not the prometheus crate's `process` feature: it brings `procfs` and `rustix`
//! (four crates) for the two numbers read here in a few lines, and it does not know the
//! cgroup limit the alert needs.

use std::io;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, Opts};

/// Linux reports CPU times in `/proc` in hundredths of a second (USER_HZ) on every
/// architecture.
const USER_HZ: f64 = 100.0;

/// Where cgroup v2, and else v1, say how much memory the container may use.
const CGROUP_LIMITS: [&str; 2] = [
    "/sys/fs/cgroup/memory.max",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
];

/// cgroup v1 says "no limit" with a number near `i64::MAX` rounded to pages; anything
/// above this is no limit.
const NO_LIMIT_ABOVE: u64 = 1 << 62;

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`.
pub fn cpu_seconds() -> io::Result<f64> {
    cpu_seconds_in("/proc/self/stat")
}

/// [`cpu_seconds`] of another process (a benchmark's replicas, its etcd).
pub fn cpu_seconds_of(pid: u32) -> io::Result<f64> {
    cpu_seconds_in(&format!("/proc/{pid}/stat"))
}

fn cpu_seconds_in(file: &str) -> io::Result<f64> {
    let stat = std::fs::read_to_string(file)?;
    // Fields after the command name, which is in parentheses and may hold spaces; utime
    // and stime are fields 14 and 15 of the line, 12 and 13 after the ')'.
    let ticks = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().skip(11).take(2))
        .into_iter()
        .flatten()
        .map(|f| f.parse::<u64>().ok())
        .collect::<Option<Vec<u64>>>()
        .filter(|t| t.len() == 2)
        .ok_or_else(|| unexpected(file, "utime and stime"))?;
    Ok(ticks.iter().sum::<u64>() as f64 / USER_HZ)
}

/// A `/proc/self/status` memory value in bytes: `VmRSS` (resident now) or `VmHWM`
/// (the peak of the resident size).
pub fn status_bytes(field: &str) -> io::Result<u64> {
    status_bytes_in("/proc/self/status", field)
}

/// [`status_bytes`] of another process.
pub fn status_bytes_of(pid: u32, field: &str) -> io::Result<u64> {
    status_bytes_in(&format!("/proc/{pid}/status"), field)
}

fn status_bytes_in(file: &str, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(file)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| unexpected(file, field))
}

/// The container's memory limit in bytes; `None` outside a container or without a limit.
pub fn memory_limit_bytes() -> Option<u64> {
    CGROUP_LIMITS
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&limit| limit < NO_LIMIT_ABOVE)
}

fn unexpected(file: &str, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("no {what} in {file}"))
}

/// `process_cpu_seconds_total` and `process_resident_memory_bytes` under the names every
/// Prometheus client uses, `pullkeeper_memory_peak_bytes` (the peak of the resident size
/// since the start, which a scrape every 30 s misses) and `pullkeeper_memory_limit_bytes`
/// (only when there is a limit).
pub struct ProcessCollector {
    cpu: Counter,
    resident: Gauge,
    peak: Gauge,
    limit: Gauge,
    descs: Vec<Desc>,
}

impl ProcessCollector {
    pub fn new() -> ProcessCollector {
        let cpu = Counter::with_opts(Opts::new(
            "process_cpu_seconds_total",
            "CPU time (user and system) the process has used, in seconds.",
        ))
        .expect("valid metric");
        let gauge =
            |name: &str, help: &str| Gauge::with_opts(Opts::new(name, help)).expect("valid metric");
        let resident = gauge(
            "process_resident_memory_bytes",
            "Resident memory of the process, in bytes.",
        );
        let peak = gauge(
            "pullkeeper_memory_peak_bytes",
            "Highest resident memory of the process since it started, in bytes.",
        );
        let limit = gauge(
            "pullkeeper_memory_limit_bytes",
            "Memory limit of the container (cgroup), in bytes; absent when there is none.",
        );
        let descs = [&cpu as &dyn Collector, &resident, &peak, &limit]
            .iter()
            .flat_map(|c| c.desc().into_iter().cloned())
            .collect();
        ProcessCollector {
            cpu,
            resident,
            peak,
            limit,
            descs,
        }
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        ProcessCollector::new()
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    /// A value `/proc` cannot give (not Linux) is left out of the scrape, not reported
    /// as 0.
    fn collect(&self) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        if let Ok(seconds) = cpu_seconds() {
            // The counter only goes up; the kernel's figure does too.
            self.cpu.inc_by((seconds - self.cpu.get()).max(0.0));
            out.extend(self.cpu.collect());
        }
        for (gauge, field) in [(&self.resident, "VmRSS"), (&self.peak, "VmHWM")] {
            if let Ok(bytes) = status_bytes(field) {
                gauge.set(bytes as f64);
                out.extend(gauge.collect());
            }
        }
        if let Some(bytes) = memory_limit_bytes() {
            self.limit.set(bytes as f64);
            out.extend(self.limit.collect());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_has_this_process_cpu_and_memory() {
        let collector = ProcessCollector::new();
        // Resident pages the scrape must see: every page of the buffer written.
        let mut buffer = vec![0u8; 32 << 20];
        buffer.iter_mut().for_each(|b| *b = 1);
        let families = collector.collect();
        let value = |name: &str| {
            let f = families
                .iter()
                .find(|f| f.name() == name)
                .unwrap_or_else(|| panic!("{name} in the scrape"));
            let m = &f.get_metric()[0];
            if name.ends_with("_total") {
                m.get_counter().get_value()
            } else {
                m.get_gauge().get_value()
            }
        };
        assert!(value("process_cpu_seconds_total") > 0.0);
        let resident = value("process_resident_memory_bytes");
        assert!(resident >= f64::from(32u32 << 20), "{resident}");
        assert!(value("pullkeeper_memory_peak_bytes") >= resident);
        assert_eq!(
            buffer.iter().map(|&b| usize::from(b)).sum::<usize>(),
            32 << 20
        );
        let limit = families
            .iter()
            .any(|f| f.name() == "pullkeeper_memory_limit_bytes");
        assert_eq!(limit, memory_limit_bytes().is_some());
    }
}
