//! `pullkeeper switch`, `unpin`, `maintenance` and `drill`: an operator's actions on a
//! scene, through the admin API of a running instance (see the README's "Operator
//! control"). Each prints what the instance answered; a refusal (409), an unknown scene
//! or a bad request is an error with the instance's reason.

use anyhow::bail;
use reqwest::Method;
use serde_json::json;

use super::admin::{Admin, AdminArgs};

/// `switch SCENE SLOT [--pin]`.
#[derive(Debug, clap::Args)]
pub struct SwitchArgs {
    pub scene: String,
    /// The slot to put on air: 0 the master, 1.. the backups.
    pub slot: u32,
    /// Keep it there, whatever the failback policy says, until `unpin` or its player
    /// stops running.
    #[arg(long)]
    pub pin: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `unpin SCENE`.
#[derive(Debug, clap::Args)]
pub struct UnpinArgs {
    pub scene: String,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// `maintenance SCENE on|off`.
#[derive(Debug, clap::Args)]
pub struct MaintenanceArgs {
    pub scene: String,
    #[arg(value_enum)]
    pub state: OnOff,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `drill SCENE [--replace] [--hold SECONDS]`.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    pub scene: String,
    /// Replace the master as a real failure would, instead of only switching the air.
    #[arg(long)]
    pub replace: bool,
    /// Seconds the air stays on the backup (switch drills) [instance default: 30].
    #[arg(long)]
    pub hold: Option<u64>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

pub async fn switch(args: SwitchArgs) -> anyhow::Result<()> {
    let path = format!("/v1/scenes/{}/on-air", args.scene);
    let body = json!({ "slot": args.slot, "pin": args.pin });
    let answer = act(&args.admin, Method::POST, &path, Some(body)).await?;
    let pinned = if args.pin { ", pinned" } else { "" };
    println!(
        "{}: slot {} on air{pinned} (version {})",
        args.scene, args.slot, answer["active_version"]
    );
    Ok(())
}

pub async fn unpin(args: UnpinArgs) -> anyhow::Result<()> {
    let path = format!("/v1/scenes/{}/pin", args.scene);
    act(&args.admin, Method::DELETE, &path, None).await?;
    println!("{}: not pinned", args.scene);
    Ok(())
}

pub async fn maintenance(args: MaintenanceArgs) -> anyhow::Result<()> {
    let path = format!("/v1/scenes/{}/maintenance", args.scene);
    let (method, state) = match args.state {
        OnOff::On => (Method::POST, "in maintenance"),
        OnOff::Off => (Method::DELETE, "supervised"),
    };
    act(&args.admin, method, &path, None).await?;
    println!("{}: {state}", args.scene);
    Ok(())
}

pub async fn drill(args: DrillArgs) -> anyhow::Result<()> {
    let path = format!("/v1/scenes/{}/drill", args.scene);
    let mode = if args.replace { "replace" } else { "switch" };
    let mut body = json!({ "mode": mode });
    if let Some(hold) = args.hold {
        body["hold"] = json!(hold);
    }
    let answer = act(&args.admin, Method::POST, &path, Some(body)).await?;
    let id = answer["drill"].as_str().unwrap_or_default();
    println!(
        "{}: {mode} drill {id} started; its steps: GET /v1/drills/{id}",
        args.scene
    );
    Ok(())
}

/// Sends an action and returns the instance's JSON answer; anything but 200 is an error
/// carrying the instance's message.
async fn act(
    args: &AdminArgs,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let admin = Admin::connect(args)?;
    let (status, text) = admin.send(method, path, body).await?;
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or(json!({}));
    let message = answer["message"].as_str().unwrap_or(&text).to_string();
    match status {
        200 => Ok(answer),
        409 => bail!("refused: {message}"),
        code => bail!("{}{path} answered {code}: {message}", admin.url()),
    }
}
