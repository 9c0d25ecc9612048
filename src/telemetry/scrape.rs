//! A scrape, produced part by part while it is sent.
//!
//! Why not the registry's `gather` and one text: built whole, a scrape at 1,000
//! projects held its 10 MB of text and a protobuf copy of every registry series (about
//! 5 MB more) at the same moment, on top of whatever the process held then; a scrape
//! during a convergence burst set the process's peak (BENCHMARKS.md, scale). Made one
//! collector or one family at a time, a scrape holds its largest part, a few MB.

use std::sync::{Arc, RwLock};

use prometheus::core::Collector;
use prometheus::proto::{Metric, MetricFamily};
use prometheus::{Encoder, TextEncoder};

use super::text::TextFamilies;

/// Collectors encoded through the prometheus crate, in the order they were added.
pub type Collectors = Arc<RwLock<Vec<Box<dyn Collector>>>>;
/// Families written straight as text, after the collectors.
pub type TextWriters = Arc<RwLock<Vec<Box<dyn TextFamilies>>>>;

/// Adds `collector`, refusing a metric name another collector already has (as a
/// registry would: two families of one name make a scrape Prometheus rejects).
pub fn add_collector(collectors: &Collectors, collector: Box<dyn Collector>) {
    let mut list = collectors.write().unwrap_or_else(|e| e.into_inner());
    for desc in collector.desc() {
        let taken = list
            .iter()
            .flat_map(|c| c.desc())
            .any(|d| d.fq_name == desc.fq_name);
        assert!(!taken, "metric name {} is registered twice", desc.fq_name);
    }
    list.push(collector);
}

/// The parts of one scrape, in order; each is whole families of the text format.
pub struct Scrape {
    collectors: Collectors,
    text: TextWriters,
    /// Next collector to encode.
    collector: usize,
    /// Next text writer, once the collectors are done, and its next part.
    writer: usize,
    part: usize,
}

impl Scrape {
    pub fn new(collectors: Collectors, text: TextWriters) -> Scrape {
        Scrape {
            collectors,
            text,
            collector: 0,
            writer: 0,
            part: 0,
        }
    }

    /// The next collector's families as text, or `None` past the last collector.
    fn next_collector(&mut self) -> Option<String> {
        let families = {
            let list = self.collectors.read().unwrap_or_else(|e| e.into_inner());
            list.get(self.collector)?.collect()
        };
        self.collector += 1;
        Some(encode(families))
    }

    /// The next part of the text writers, or `None` when all are written.
    fn next_text(&mut self) -> Option<String> {
        let list = self.text.read().unwrap_or_else(|e| e.into_inner());
        loop {
            let writer = list.get(self.writer)?;
            if self.part < writer.parts() {
                let mut out = String::new();
                writer.write_part(self.part, &mut out);
                self.part += 1;
                return Some(out);
            }
            self.writer += 1;
            self.part = 0;
        }
    }
}

impl Iterator for Scrape {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        loop {
            let part = match self.next_collector() {
                Some(part) => part,
                None => self.next_text()?,
            };
            // A vector without series yet writes nothing; it is no part.
            if !part.is_empty() {
                return Some(part);
            }
        }
    }
}

/// One collector's families in the text format, each family's series sorted by label
/// values so that consecutive scrapes list them alike; families without series are
/// left out (the encoder refuses them).
fn encode(mut families: Vec<MetricFamily>) -> String {
    families.retain(|f| !f.get_metric().is_empty());
    for family in &mut families {
        family
            .mut_metric()
            .sort_by(|a, b| label_values(a).cmp(label_values(b)));
    }
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut out)
        .expect("text encoding cannot fail");
    String::from_utf8(out).expect("the text format is UTF-8")
}

fn label_values(metric: &Metric) -> impl Iterator<Item = &str> {
    metric.get_label().iter().map(|l| l.value())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::text::{gauge_header, sample};
    use prometheus::{IntCounterVec, Opts};

    /// `n` one-series families, one a part.
    struct Families(usize);

    impl TextFamilies for Families {
        fn parts(&self) -> usize {
            self.0
        }

        fn write_part(&self, part: usize, out: &mut String) {
            let name = format!("text_{part}");
            gauge_header(out, &name, "A family.");
            sample(out, &name, &[], part as i64);
        }
    }

    fn counter(name: &str) -> IntCounterVec {
        IntCounterVec::new(Opts::new(name, "A counter."), &["project"]).unwrap()
    }

    #[test]
    fn a_scrape_comes_in_parts_of_whole_families_in_order() {
        let (collectors, text) = (Collectors::default(), TextWriters::default());
        // A vector without series yet (`a_total`) and a writer without parts make no part.
        let b = counter("b_total");
        add_collector(&collectors, Box::new(b.clone()));
        add_collector(&collectors, Box::new(counter("a_total")));
        for project in ["q", "p"] {
            b.with_label_values(&[project]).inc();
        }
        text.write().unwrap().push(Box::new(Families(2)));
        text.write().unwrap().push(Box::new(Families(0)));
        text.write().unwrap().push(Box::new(Families(1)));

        let parts: Vec<String> = Scrape::new(collectors, text).collect();
        assert_eq!(
            parts,
            [
                "# HELP b_total A counter.\n# TYPE b_total counter\n\
                 b_total{project=\"p\"} 1\nb_total{project=\"q\"} 1\n",
                "# HELP text_0 A family.\n# TYPE text_0 gauge\ntext_0 0\n",
                "# HELP text_1 A family.\n# TYPE text_1 gauge\ntext_1 1\n",
                "# HELP text_0 A family.\n# TYPE text_0 gauge\ntext_0 0\n",
            ]
        );
    }

    #[test]
    #[should_panic(expected = "metric name b_total is registered twice")]
    fn a_name_registered_twice_is_refused() {
        let collectors = Collectors::default();
        add_collector(&collectors, Box::new(counter("b_total")));
        add_collector(&collectors, Box::new(counter("b_total")));
    }
}
