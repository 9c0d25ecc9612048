//! What leadership reports as it goes, for whoever turns it into metrics.

/// What the leadership reports as it goes (the wiring turns it into metrics).
pub trait LeadershipObserver: Send + Sync {
    /// A lease renewal (or grant) answered after `latency`, or failed.
    fn renewal(&self, latency: std::time::Duration, ok: bool);
    /// A term of `project` began (`true`) or ended.
    fn term(&self, project: &str, leading: bool);
}
