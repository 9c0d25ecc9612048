//! `pullkeeper status`: the scenes of a running instance, from `/v1/scenes`, as a table,
//! a wide table (with what holds a slot back: a source down, the quota), or the JSON
//! itself; all scenes or those named.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::admin::{Admin, AdminArgs, columns};

/// Which instance, and what to show of it.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// `wide`: the table with each slot's source, `held`, over quota, the scene's
    /// `source_down` and the replica leading its project (etcd); `json`: the scenes as
    /// `/v1/scenes` answers them.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<Output>,
    /// Only these scenes (also as `--scene NAME`); an unknown name is an error.
    #[arg(value_name = "SCENE")]
    pub scenes: Vec<String>,
    #[arg(long = "scene", value_name = "SCENE")]
    pub scene: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Wide,
    Json,
}

#[derive(Debug, Deserialize)]
struct Scene {
    name: String,
    #[serde(default)]
    project: String,
    #[serde(default)]
    unauthorized: bool,
    /// The replica leading the scene's project (absent for a single replica).
    #[serde(default)]
    leader: Option<String>,
    active_slot: Option<u32>,
    over_quota_slots: Vec<u32>,
    source_down: bool,
    slots: Vec<Slot>,
    #[serde(default)]
    pinned_slot: Option<u32>,
    #[serde(default)]
    maintenance: Option<Maintenance>,
    #[serde(default)]
    drill: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Maintenance {
    since_ms: u64,
    by: String,
}

#[derive(Debug, Deserialize)]
struct Slot {
    slot: u32,
    role: String,
    uid: Option<u32>,
    status: String,
    strikes: u32,
    source: String,
    held: bool,
    #[serde(default)]
    rejected: Option<String>,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let body = Admin::connect(&args.admin)?.get("/v1/scenes").await?;
    let scenes: Vec<serde_json::Value> =
        serde_json::from_str(&body).context("the answer is not a list of scenes")?;
    let wanted: Vec<&str> = args
        .scenes
        .iter()
        .chain(&args.scene)
        .map(String::as_str)
        .collect();
    let scenes = only(scenes, &wanted)?;
    if args.output == Some(Output::Json) {
        println!("{}", serde_json::to_string_pretty(&scenes)?);
        return Ok(());
    }
    let scenes: Vec<Scene> = scenes
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .context("the answer is not a list of scenes")?;
    print!("{}", table(&scenes, args.output == Some(Output::Wide)));
    print!("{}", refusals(&scenes));
    print!("{}", operator(&scenes));
    Ok(())
}

/// The scenes named in `wanted`, in the answer's order; all of them when none is named.
fn only(scenes: Vec<serde_json::Value>, wanted: &[&str]) -> anyhow::Result<Vec<serde_json::Value>> {
    if wanted.is_empty() {
        return Ok(scenes);
    }
    let name = |s: &serde_json::Value| s["name"].as_str().unwrap_or_default().to_string();
    let unknown: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| !scenes.iter().any(|s| name(s) == *w))
        .collect();
    if !unknown.is_empty() {
        bail!("no scene named {}", unknown.join(", "));
    }
    Ok(scenes
        .into_iter()
        .filter(|s| wanted.contains(&name(s).as_str()))
        .collect())
}

/// One row per slot; `*` marks the slot on air. `wide` adds the slot's source, whether
/// its replacement is held for that source, whether it is over the project's quota, and
/// whether the scene has a source down.
fn table(scenes: &[Scene], wide: bool) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut header = vec![
        "SCENE", "SLOT", "ROLE", "UID", "STATUS", "STRIKES", "ACTIVE",
    ];
    if wide {
        header.extend(["SOURCE", "HELD", "OVER-QUOTA", "SOURCE-DOWN", "LEADER"]);
    }
    let mut rows: Vec<Vec<String>> = vec![header.into_iter().map(String::from).collect()];
    for scene in scenes {
        for s in &scene.slots {
            let mut row = vec![
                scene.name.clone(),
                s.slot.to_string(),
                s.role.clone(),
                s.uid.map_or("-".into(), |u| u.to_string()),
                s.status.clone(),
                s.strikes.to_string(),
                if scene.active_slot == Some(s.slot) {
                    "*"
                } else {
                    ""
                }
                .to_string(),
            ];
            if wide {
                row.extend([
                    s.source.clone(),
                    yes_no(s.held),
                    yes_no(scene.over_quota_slots.contains(&s.slot)),
                    yes_no(scene.source_down),
                    scene.leader.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            rows.push(row);
        }
    }
    columns(&rows)
}

/// Below the table, what Agora refused for good: each project whose credentials it
/// refuses, and each rejected slot with Agora's message.
fn refusals(scenes: &[Scene]) -> String {
    let mut out = String::new();
    let projects: std::collections::BTreeSet<&str> = scenes
        .iter()
        .filter(|s| s.unauthorized)
        .map(|s| s.project.as_str())
        .collect();
    for project in projects {
        let _ = writeln!(
            out,
            "project {project}: unauthorized: Agora refuses its credentials (401)"
        );
    }
    for scene in scenes {
        for s in &scene.slots {
            if let Some(message) = &s.rejected {
                let _ = writeln!(out, "{} slot {}: rejected: {message}", scene.name, s.slot);
            }
        }
    }
    out
}

/// What operators did to the scenes: maintenance (since when, by whom), pins, drills.
fn operator(scenes: &[Scene]) -> String {
    let mut out = String::new();
    for scene in scenes {
        let name = &scene.name;
        if let Some(m) = &scene.maintenance {
            let since = m.since_ms / 1000;
            let _ = writeln!(
                out,
                "{name}: in maintenance since {since} (Unix s, by {}): no create, delete or update",
                m.by
            );
        }
        if let Some(slot) = scene.pinned_slot {
            let _ = writeln!(out, "{name}: pinned on air on slot {slot}");
        }
        if let Some(id) = &scene.drill {
            let _ = writeln!(out, "{name}: drill {id} running");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_pins_and_drills_follow_the_table() {
        let scenes: Vec<Scene> = serde_json::from_str(
            r#"[{"name":"news","active_slot":1,"over_quota_slots":[],"source_down":false,"slots":[],
                 "pinned_slot":1,"maintenance":{"since_ms":1700000000123,"by":"api"},"drill":null},
               {"name":"sports","active_slot":0,"over_quota_slots":[],"source_down":false,"slots":[],
                 "drill":"sports-1"}]"#,
        )
        .unwrap();
        assert_eq!(
            operator(&scenes),
            "news: in maintenance since 1700000000 (Unix s, by api): no create, delete or update\n\
             news: pinned on air on slot 1\n\
             sports: drill sports-1 running\n"
        );
    }

    #[test]
    fn refusals_follow_the_table() {
        let scenes: Vec<Scene> = serde_json::from_str(
            r#"[{"name":"news","project":"p","unauthorized":true,"active_slot":null,"over_quota_slots":[],"source_down":false,"slots":[
                {"slot":0,"role":"master","uid":7,"status":"rejected","strikes":0,"source":"primary","held":false,
                 "rejected":"HTTP 403: This project has not enabled Cloud Player product yet."},
                {"slot":1,"role":"backup","uid":8,"status":"running","strikes":0,"source":"primary","held":false,"rejected":null}]},
               {"name":"sports","project":"p","unauthorized":true,"active_slot":null,"over_quota_slots":[],"source_down":false,"slots":[]}]"#,
        )
        .unwrap();
        assert_eq!(
            refusals(&scenes),
            "project p: unauthorized: Agora refuses its credentials (401)\n\
             news slot 0: rejected: HTTP 403: This project has not enabled Cloud Player product yet.\n"
        );
    }

    #[test]
    fn one_row_per_slot_with_the_active_one_marked() {
        let scenes: Vec<Scene> = serde_json::from_str(
            r#"[{"name":"news","project":"p","active_slot":1,"over_quota_slots":[],"source_down":false,"slots":[
                {"slot":0,"role":"master","uid":null,"status":"missing","strikes":3,"source":"primary","held":false},
                {"slot":1,"role":"backup","uid":1001,"status":"running","strikes":0,"source":"primary","held":false}]},
               {"name":"sports-hd","active_slot":null,"over_quota_slots":[],"source_down":false,"slots":[
                {"slot":0,"role":"master","uid":2000,"status":"connecting","strikes":0,"source":"primary","held":false}]}]"#,
        )
        .unwrap();
        assert_eq!(
            table(&scenes, false),
            "SCENE      SLOT  ROLE    UID   STATUS      STRIKES  ACTIVE\n\
             news       0     master  -     missing     3\n\
             news       1     backup  1001  running     0        *\n\
             sports-hd  0     master  2000  connecting  0\n"
        );
    }

    #[test]
    fn wide_adds_source_held_over_quota_source_down_and_leader() {
        let scenes: Vec<Scene> = serde_json::from_str(
            r#"[{"name":"news","leader":"pk-1","active_slot":1,"over_quota_slots":[2],"source_down":true,"slots":[
                {"slot":0,"role":"master","uid":null,"status":"missing","strikes":0,"source":"primary","held":true},
                {"slot":1,"role":"backup","uid":1001,"status":"running","strikes":0,"source":"backup1","held":false},
                {"slot":2,"role":"backup","uid":null,"status":"missing","strikes":0,"source":"primary","held":false}]}]"#,
        )
        .unwrap();
        assert_eq!(
            table(&scenes, true),
            "SCENE  SLOT  ROLE    UID   STATUS   STRIKES  ACTIVE  SOURCE   HELD  OVER-QUOTA  SOURCE-DOWN  LEADER\n\
             news   0     master  -     missing  0                primary  yes   no          yes          pk-1\n\
             news   1     backup  1001  running  0        *       backup1  no    no          yes          pk-1\n\
             news   2     backup  -     missing  0                primary  no    yes         yes          pk-1\n"
        );
    }

    #[test]
    fn named_scenes_only_and_an_unknown_name_is_an_error() {
        let scenes: Vec<serde_json::Value> =
            serde_json::from_str(r#"[{"name":"news"},{"name":"sports"},{"name":"lobby"}]"#)
                .unwrap();
        let names = |v: Vec<serde_json::Value>| -> Vec<String> {
            v.iter()
                .map(|s| s["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(only(scenes.clone(), &[]).unwrap()).len(), 3);
        assert_eq!(
            names(only(scenes.clone(), &["lobby", "news"]).unwrap()),
            ["news", "lobby"]
        );
        let e = only(scenes, &["news", "nope"]).unwrap_err();
        assert_eq!(e.to_string(), "no scene named nope");
    }
}
