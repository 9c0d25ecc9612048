//! When an acknowledged NCS notice counts as applied: once what it caused is durable.
//!
//! Folding a notice into the picture is not enough. A `failed` or destroy notice about a
//! slot's current player calls for a replacement that may be held back (a queued create
//! waiting for the create rate, the replacement back-off, a source hold, the quota, a
//! rejection's pause), and nothing durable says so meanwhile: a store that forgot the
//! notice then would restart with a player it believes alive, found out only by List's
//! strikes. So a notice stays in the store while a slot record still names its player
//! and the picture does not show that player alive; once the slot moved on (the
//! replacement's intent is written) or the player is seen alive, it is forgotten. The
//! notice log forgets it only once a store flush after this has made the intent durable
//! (`NoticeLog::settle`).

use std::collections::HashSet;

use super::ProjectController;
use crate::model::is_dead;

impl ProjectController {
    /// Tells the store which acknowledged notices no longer wait for anything.
    pub(super) fn settle_notices(&mut self) {
        if self.unapplied.is_empty() {
            return;
        }
        let Ok(records) = self.ctx.executor.slots() else {
            return;
        };
        let current: HashSet<&str> = records.values().filter_map(|r| r.id.as_deref()).collect();
        let alive: HashSet<&str> = self
            .observed
            .players()
            .iter()
            .filter(|p| !is_dead(p.status))
            .map(|p| p.id.as_str())
            .collect();
        let waits = |player: &str| current.contains(player) && !alive.contains(player);
        let (waiting, settled): (Vec<_>, Vec<_>) = std::mem::take(&mut self.unapplied)
            .into_iter()
            .partition(|a| waits(&a.player_id));
        self.unapplied = waiting;
        let keys: Vec<String> = settled.into_iter().map(|a| a.key).collect();
        self.ctx.executor.notices_applied(keys);
    }
}
