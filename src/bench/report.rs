//! What a scenario prints: each figure next to the limit it is judged by, and the ratio.

use std::time::Duration;

/// How a figure is judged.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// A target the figure must not exceed.
    AtMost(f64),
    /// A target the figure must reach.
    AtLeast(f64),
    /// A bound to compare with that is no target (e.g. the poll interval).
    Versus(f64),
}

#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub limit: Option<Limit>,
}

impl Figure {
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Figure {
        Figure {
            name: name.into(),
            value,
            unit,
            limit: None,
        }
    }

    pub fn ms(name: impl Into<String>, d: Duration) -> Figure {
        Figure::new(name, d.as_secs_f64() * 1000.0, "ms")
    }

    pub fn limit(mut self, limit: Limit) -> Figure {
        self.limit = Some(limit);
        self
    }

    /// `None` when the figure has no target.
    pub fn met(&self) -> Option<bool> {
        match self.limit? {
            Limit::AtMost(l) => Some(self.value <= l),
            Limit::AtLeast(l) => Some(self.value >= l),
            Limit::Versus(_) => None,
        }
    }

    fn line(&self) -> String {
        let head = format!("  {:<52} {:>12.3} {:<5}", self.name, self.value, self.unit);
        let Some(limit) = self.limit else {
            return head;
        };
        let (sign, l) = match limit {
            Limit::AtMost(l) => ("<=", l),
            Limit::AtLeast(l) => (">=", l),
            Limit::Versus(l) => ("vs", l),
        };
        let verdict = match self.met() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        let ratio = if l == 0.0 { f64::NAN } else { self.value / l };
        format!(
            "{head} limit {sign} {l:>10.3} {:<5} ratio {ratio:>7.3}  {verdict}",
            self.unit
        )
    }
}

/// One scenario's results.
#[derive(Debug, Clone, Default)]
pub struct ScenarioReport {
    pub title: String,
    /// Set-up and caveats, printed above the figures.
    pub notes: Vec<String>,
    pub figures: Vec<Figure>,
}

impl ScenarioReport {
    pub fn new(title: impl Into<String>) -> ScenarioReport {
        ScenarioReport {
            title: title.into(),
            ..ScenarioReport::default()
        }
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn push(&mut self, figure: Figure) {
        self.figures.push(figure);
    }

    /// p50, p99 and max of `samples` as three figures named `{what} p50` etc.
    pub fn distribution(&mut self, what: &str, samples: &[Duration], p99_limit: Option<Limit>) {
        let d = Distribution::of(samples);
        self.push(Figure::ms(format!("{what} p50"), d.p50));
        let p99 = Figure::ms(format!("{what} p99"), d.p99);
        self.push(match p99_limit {
            Some(l) => p99.limit(l),
            None => p99,
        });
        self.push(Figure::ms(format!("{what} max"), d.max));
    }

    pub fn missed(&self) -> usize {
        self.figures
            .iter()
            .filter(|f| f.met() == Some(false))
            .count()
    }

    pub fn print(&self) {
        println!("\n== {} ==", self.title);
        for n in &self.notes {
            println!("  # {n}");
        }
        for f in &self.figures {
            println!("{}", f.line());
        }
    }
}

/// Nearest-rank percentiles of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distribution {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Distribution {
    pub fn of(samples: &[Duration]) -> Distribution {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |q: f64| -> Duration {
            if sorted.is_empty() {
                return Duration::ZERO;
            }
            let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[i - 1]
        };
        Distribution {
            p50: rank(0.50),
            p99: rank(0.99),
            max: rank(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        let d = Distribution::of(&samples);
        assert_eq!(d.p50, Duration::from_millis(100));
        assert_eq!(d.p99, Duration::from_millis(198));
        assert_eq!(d.max, Duration::from_millis(200));
        assert_eq!(Distribution::of(&[]).max, Duration::ZERO);
    }

    #[test]
    fn verdicts_follow_the_limit_kind() {
        let f = Figure::new("x", 2.0, "ms");
        assert_eq!(f.clone().limit(Limit::AtMost(3.0)).met(), Some(true));
        assert_eq!(f.clone().limit(Limit::AtLeast(3.0)).met(), Some(false));
        assert_eq!(f.clone().limit(Limit::Versus(3.0)).met(), None);
        assert_eq!(f.met(), None);
        assert!(
            Figure::new("y", 60.0, "ms")
                .limit(Limit::AtMost(50.0))
                .line()
                .contains("MISSED")
        );
    }
}
