//! What a scene asks of its players, as the spec a slot record remembers.

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::Scene;
use crate::model::{DEFAULT_VOLUME, Fixed, Live, Spec};

/// What a scene asks of the player of `slot` now (slots differ only in their source).
pub fn desired(scene: &Scene, slot: u32) -> (Live, Fixed) {
    let live = Live {
        stream_url: scene.slot_url(slot).to_string(),
        volume: scene.volume,
    };
    let fixed = Fixed {
        channel: scene.channel.clone(),
        region: scene.region,
        idle_timeout: scene.idle_timeout,
        token_sha256: scene
            .token
            .as_ref()
            .map(|t| hex::encode(Sha256::digest(t.expose_secret().as_bytes()))),
    };
    (live, fixed)
}

/// What a player created now for `slot` of `scene` runs with: the scene's spec, at
/// Agora's default volume (a different configured volume follows as an Update).
pub fn created(scene: &Scene, slot: u32) -> Spec {
    let (live, fixed) = desired(scene, slot);
    Spec {
        live: Live {
            volume: DEFAULT_VOLUME,
            ..live
        },
        fixed,
    }
}
