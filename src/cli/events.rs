//! `pullkeeper events SCENE`: a scene's event history from `/v1/scenes/{name}/events`,
//! newest first, as a table or as the JSON itself.

use anyhow::Context;
use serde_json::Value;

use super::admin::{Admin, AdminArgs, columns};

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// `json`: the answer of `/v1/scenes/{name}/events` as it is.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<Output>,
    /// At most this many events, newest first [default: 100; at most events.per_scene].
    #[arg(long)]
    pub limit: Option<u32>,
    pub scene: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Json,
}

pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let mut path = format!("/v1/scenes/{}/events", args.scene);
    if let Some(limit) = args.limit {
        path.push_str(&format!("?limit={limit}"));
    }
    let body = Admin::connect(&args.admin)?.get(&path).await?;
    let answer: Value = serde_json::from_str(&body).context("the answer is not JSON")?;
    if args.output == Some(Output::Json) {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let events = answer["events"]
        .as_array()
        .context("the answer holds no events")?;
    print!("{}", table(events));
    Ok(())
}

/// The fields every event has, in the table's own columns; the rest go to DETAIL.
const COMMON: [&str; 7] = ["at", "at_ms", "kind", "scene", "slot", "uid", "player"];

/// One row per event: time, kind, slot, UID, player, and the kind's own fields.
fn table(events: &[Value]) -> String {
    let header = ["TIME", "KIND", "SLOT", "UID", "PLAYER", "DETAIL"];
    let mut rows: Vec<Vec<String>> = vec![header.into_iter().map(String::from).collect()];
    let cell = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for e in events {
        let detail = e
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !COMMON.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={}", cell(v)))
            .collect::<Vec<_>>()
            .join(" ");
        rows.push(vec![
            cell(&e["at"]),
            cell(&e["kind"]),
            cell(&e["slot"]),
            cell(&e["uid"]),
            cell(&e["player"]),
            detail,
        ]);
    }
    columns(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_event_with_the_kinds_fields_as_detail() {
        let events: Vec<Value> = serde_json::from_str(
            r#"[{"at":"2026-12-03T16:00:01.500Z","at_ms":1,"scene":"news","slot":1,"uid":1001,
                 "kind":"switched","from_slot":0,"from_uid":1000,"to_slot":1,"to_uid":1001,
                 "reason":"failover","version":4},
                {"at":"2026-12-03T16:00:01.000Z","at_ms":0,"scene":"news","slot":0,"uid":1000,
                 "player":"pk_news_m_1","kind":"failure_detected","signal":"ncs_status",
                 "detail":"failed"},
                {"at":"2026-12-03T15:00:00.000Z","at_ms":0,"scene":"news","kind":"maintenance","on":true}]"#,
        )
        .unwrap();
        assert_eq!(
            table(&events),
            "TIME                      KIND              SLOT  UID   PLAYER       DETAIL\n\
             2026-12-03T16:00:01.500Z  switched          1     1001  -            from_slot=0 from_uid=1000 reason=failover to_slot=1 to_uid=1001 version=4\n\
             2026-12-03T16:00:01.000Z  failure_detected  0     1000  pk_news_m_1  detail=failed signal=ncs_status\n\
             2026-12-03T15:00:00.000Z  maintenance       -     -     -            on=true\n"
        );
    }
}
