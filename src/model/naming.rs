//! Deterministic player names: `{prefix}_{scene}_{slot}_{generation}`.
//!
//! The name is how pullkeeper recognises its own players in a List even with an empty
//! store, and how Agora's 409 on a duplicate name turns a retried Create into an adoption
//! instead of a second player (DESIGN "Agora is the source of truth"). The slot reads `m`
//! for the master, `b1`, `b2`, … for backups and `s` for the slate, so the Agora console
//! stays legible.
//! Scene names exclude `_` and config validation bounds the prefix and scene name, so the
//! four parts split unambiguously and a name stays within Agora's length limit.

/// The slot of a scene's slate player (named `s`), apart from master and backups.
pub const SLATE_SLOT: u32 = u32::MAX;

/// A parsed pullkeeper player name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerName {
    pub scene: String,
    pub slot: u32,
    pub generation: u64,
}

/// Formats the name of generation `generation` of `slot` in `scene`.
pub fn format_name(prefix: &str, scene: &str, slot: u32, generation: u64) -> String {
    if slot == 0 {
        format!("{prefix}_{scene}_m_{generation}")
    } else if slot == SLATE_SLOT {
        format!("{prefix}_{scene}_s_{generation}")
    } else {
        format!("{prefix}_{scene}_b{slot}_{generation}")
    }
}

/// The role of a slot, as logs, status and metrics name it.
pub fn role(slot: u32) -> &'static str {
    match slot {
        0 => "master",
        SLATE_SLOT => "slate",
        _ => "backup",
    }
}

/// Parses a name produced by [`format_name`] with this `prefix`; anything else is not ours.
pub fn parse_name(prefix: &str, name: &str) -> Option<PlayerName> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('_')?;
    let mut parts = rest.split('_');
    let (scene, slot, generation) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || scene.is_empty() {
        return None;
    }
    let slot = match slot {
        "m" => 0,
        "s" => SLATE_SLOT,
        b => {
            let n: u32 = b.strip_prefix('b')?.parse().ok()?;
            // "b0" or "b01" would alias another slot's name; only canonical forms are ours.
            if n == 0 || n == SLATE_SLOT || format!("b{n}") != b {
                return None;
            }
            n
        }
    };
    let parsed: u64 = generation.parse().ok()?;
    if parsed.to_string() != generation {
        return None;
    }
    Some(PlayerName {
        scene: scene.to_string(),
        slot,
        generation: parsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (slot, generation) in [(0, 1), (1, 7), (12, 18446744073709551615), (SLATE_SLOT, 2)] {
            let n = format_name("pk", "news-1", slot, generation);
            assert_eq!(
                parse_name("pk", &n),
                Some(PlayerName {
                    scene: "news-1".into(),
                    slot,
                    generation
                })
            );
        }
        assert_eq!(format_name("pk", "news", 0, 3), "pk_news_m_3");
        assert_eq!(format_name("pk", "news", 2, 3), "pk_news_b2_3");
        assert_eq!(format_name("pk", "news", SLATE_SLOT, 1), "pk_news_s_1");
        assert_eq!(parse_name("pk", &format!("pk_news_b{SLATE_SLOT}_1")), None);
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for name in [
            "news_101",
            "pk_news",
            "pk_news_m",
            "pkx_news_m_1",
            "other_news_m_1",
            "pk_news_b0_1",
            "pk_news_b01_1",
            "pk_news_m_01",
            "pk_news_m_1_2",
            "pk__m_1",
            "pk_news_x_1",
        ] {
            assert_eq!(parse_name("pk", name), None, "{name}");
        }
    }
}
