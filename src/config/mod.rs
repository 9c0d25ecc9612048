//! TEMPORARY STAND-IN, replaced by the config branch before merge.
use crate::agora::model::Region;
use secrecy::SecretString;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Scene {
    pub name: String,
    pub project: String,
    pub channel: String,
    pub stream_url: String,
    pub region: Region,
    pub backups: u32,
    pub priority: i32,
    pub idle_timeout: u32,
    pub token: Option<SecretString>,
    pub uids: UidRange,
}
#[derive(Debug, Clone, Copy)]
pub struct UidRange {
    pub start: u32,
    pub end: u32,
}
#[derive(Debug, Clone)]
pub struct Rate {
    pub per_second: u32,
    pub per_minute: Option<u32>,
}
#[derive(Debug, Clone)]
pub struct QpsLimits {
    pub create_with_name: Rate,
    pub create_without_name: Rate,
    pub delete: Rate,
    pub list: Rate,
    pub list_filtered: Rate,
    pub update: Rate,
}
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_players: u32,
    pub qps: QpsLimits,
}
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub primary_domain: PrimaryDomain,
    pub base_url: Option<String>,
    pub timeout: Duration,
}
#[derive(Debug, Clone, Copy)]
pub enum PrimaryDomain {
    AgoraIo,
    SdRtn,
}
impl PrimaryDomain {
    pub fn host(&self) -> &'static str {
        match self {
            PrimaryDomain::AgoraIo => "api.agora.io",
            PrimaryDomain::SdRtn => "api.sd-rtn.com",
        }
    }
}
#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub app_id: String,
    pub customer_id: SecretString,
    pub customer_secret: SecretString,
    pub ncs_secret: SecretString,
    pub api: ApiSettings,
    pub limits: Limits,
    pub name_prefix: String,
}
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: std::net::SocketAddr,
}
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub path: std::path::PathBuf,
}
#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    pub poll_interval: Duration,
    pub list_lag: Duration,
}
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub reconcile: ReconcileSettings,
    pub scenes_file: std::path::PathBuf,
    pub projects: Vec<Project>,
}
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub scenes: Vec<Scene>,
    pub settings_path: std::path::PathBuf,
    pub scenes_path: std::path::PathBuf,
}
