//! The operator's hand on a scene, as input to the plan: maintenance, a pin, a one-shot
//! request (a manual switch, a drill's switch), a drill's hold and a drill's failed
//! master. The plan honours or refuses each request here, so the on-air choice stays
//! the plan's alone.
//!
//! - A **manual switch** goes to the slot asked for if its player runs, and is refused
//!   with the reason otherwise.
//! - A **pin** (and a drill's **hold**, until it ends) keeps the air on its slot while
//!   that slot's player runs, whatever the failback policy says; when it stops running,
//!   the air fails over as it always does and the pin is released.
//! - A **drill** starts only from a scene on its master, neither pinned nor in
//!   maintenance, with a running backup: the air goes to the first running backup
//!   (one whose source is not probed down first).

use crate::model::{OnAir, SLATE_SLOT, SwitchReason};

use super::actions::OnAirDecision;
use super::desired::FailbackPolicy;
use super::onair::{SlotView, choose, next_change_at, views};
use super::{BySlot, DesiredScene, PlanInput};

/// The operator's hand on one scene.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Steering {
    /// No create, delete or update for the scene; its players keep running and the
    /// on-air choice goes on.
    pub maintenance: bool,
    /// The slot pinned on air.
    pub pinned: Option<u32>,
    /// A request this plan honours or refuses (see [`OnAirDecision::request`]).
    ///
    /// [`OnAirDecision::request`]: super::OnAirDecision::request
    pub request: Option<OnAirRequest>,
    /// A drill keeps the air on this slot until this instant (Unix ms).
    pub hold: Option<(u32, u64)>,
    /// A replace drill's master: this player counts as failed, as if Agora said so.
    pub failed: Option<String>,
}

/// A one-shot request about the on-air player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnAirRequest {
    /// Put this slot on air now.
    Manual { slot: u32 },
    /// Start a drill: the air goes to the best running backup.
    Drill,
}

/// The on-air decision with the operator's hand on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Steered {
    pub onair: OnAir,
    pub reason: Option<SwitchReason>,
    pub request: Option<Result<(), String>>,
    pub pin_released: bool,
    /// When a drill's hold ends: the decision may change then.
    pub hold_until_ms: Option<u64>,
}

/// The on-air decision for `scene`, and when (Unix ms) it falls due again with nothing
/// else changing.
pub(super) fn decide(
    input: &PlanInput<'_>,
    scene: &DesiredScene,
    by_slot: &BySlot<'_>,
) -> (OnAirDecision, Option<u64>) {
    let steering = input.steering.get(&scene.name);
    let views = views(input, scene, by_slot);
    let previous = input.onair.get(&scene.name).copied().unwrap_or_default();
    let Steered {
        onair,
        reason,
        request,
        pin_released,
        hold_until_ms,
    } = steer(&previous, &views, scene.failback, input.now_ms, steering);
    let due = [
        next_change_at(&onair, &views, scene.failback),
        hold_until_ms,
    ]
    .into_iter()
    .flatten()
    .min();
    let healthy = views
        .iter()
        .filter(|v| v.running_since_ms.is_some())
        .count() as u32;
    let decision = OnAirDecision {
        scene: scene.name.clone(),
        previous,
        onair,
        reason,
        healthy,
        request,
        pin_released,
    };
    (decision, due)
}

pub(super) fn steer(
    previous: &OnAir,
    slots: &[SlotView],
    policy: FailbackPolicy,
    now_ms: u64,
    steering: Option<&Steering>,
) -> Steered {
    let unsteered = |request, pin_released| {
        let (onair, reason) = choose(previous, slots, policy, now_ms);
        Steered {
            onair,
            reason,
            request,
            pin_released,
            hold_until_ms: None,
        }
    };
    let Some(steering) = steering else {
        return unsteered(None, false);
    };
    let mut request = None;
    if let Some(asked) = steering.request {
        match target(previous, slots, steering, asked) {
            Ok(view) => {
                let reason = match asked {
                    OnAirRequest::Manual { .. } => SwitchReason::Manual,
                    OnAirRequest::Drill => SwitchReason::Drill,
                };
                let (onair, reason) = switch_to(previous, view, reason, now_ms);
                return Steered {
                    onair,
                    reason,
                    request: Some(Ok(())),
                    pin_released: false,
                    hold_until_ms: None,
                };
            }
            Err(why) => request = Some(Err(why)),
        }
    }
    let hold = steering
        .hold
        .filter(|&(_, until)| now_ms < until)
        .map(|(slot, _)| slot);
    let Some(kept) = steering.pinned.or(hold) else {
        return unsteered(request, false);
    };
    match slots.iter().find(|s| s.slot == kept && s.running()) {
        Some(view) => {
            // The pinned slot's player replaced in place (a rollout): same slot, new UID.
            let reason = if previous.slot == Some(kept) {
                SwitchReason::Replaced
            } else {
                SwitchReason::Manual
            };
            let (onair, reason) = switch_to(previous, view, reason, now_ms);
            Steered {
                onair,
                reason,
                request,
                pin_released: false,
                hold_until_ms: steering
                    .hold
                    .map(|(_, until)| until)
                    .filter(|&u| now_ms < u),
            }
        }
        // A pin never keeps viewers on a player that does not run.
        None => unsteered(request, steering.pinned.is_some()),
    }
}

/// The slot a request asks for, or why it cannot have it.
fn target<'s>(
    previous: &OnAir,
    slots: &'s [SlotView],
    steering: &Steering,
    asked: OnAirRequest,
) -> Result<&'s SlotView, String> {
    match asked {
        OnAirRequest::Manual { slot } => {
            let view = slots
                .iter()
                .find(|s| s.slot == slot)
                .ok_or_else(|| format!("the scene has no slot {slot}"))?;
            if view.running() {
                Ok(view)
            } else {
                Err(format!("slot {slot} has no running player"))
            }
        }
        OnAirRequest::Drill => {
            if steering.maintenance {
                return Err("the scene is in maintenance".to_string());
            }
            if steering.pinned.is_some() {
                return Err("the scene is pinned on air; unpin it first".to_string());
            }
            if previous.slot != Some(0) {
                return Err("the scene is not on air on its master".to_string());
            }
            let backups = || slots.iter().filter(|s| s.slot != 0 && s.slot != SLATE_SLOT);
            backups()
                .filter(|s| s.sound())
                .min_by_key(|s| s.slot)
                .or_else(|| backups().filter(|s| s.running()).min_by_key(|s| s.slot))
                .ok_or_else(|| "the scene has no running backup".to_string())
        }
    }
}

/// On air to `view` (no change if it is there already).
fn switch_to(
    previous: &OnAir,
    view: &SlotView,
    reason: SwitchReason,
    now_ms: u64,
) -> (OnAir, Option<SwitchReason>) {
    if previous.slot == Some(view.slot) && previous.uid == view.uid {
        return (*previous, None);
    }
    let failed_over = match reason {
        // The pinned slot replaced in place keeps what brought it on air.
        SwitchReason::Replaced => previous.failed_over,
        _ => view.slot != 0,
    };
    let onair = OnAir {
        slot: Some(view.slot),
        uid: view.uid,
        version: previous.version + 1,
        switches: previous.switches + 1,
        since_ms: now_ms,
        failed_over,
        reason: Some(reason),
    };
    (onair, Some(reason))
}

#[cfg(test)]
mod tests;
