//! Configuration: the settings file (process settings and Agora projects) and the scenes
//! file it points to.
//!
//! Loading never stops at the first problem: it returns a [`ConfigError`] listing every
//! problem found, each with file, line, column and field path, so `pullkeeper check` can be
//! run once per edit rather than once per mistake.

mod diagnostic;
mod duration;
mod env;
#[cfg(test)]
mod fuzz_tests;
mod limits;
mod scene;
mod scenes;
mod secret;
mod settings;
mod validate;
mod yaml;

use std::path::{Path, PathBuf};

pub use diagnostic::{ConfigError, Diagnostic, Severity};
pub use duration::parse_duration;
pub use env::{Env, NoSecrets, ProcessEnv};
pub use limits::{Limits, QpsLimits, Rate};
pub use scene::{Failback, Scene, UidRange};
pub use settings::{
    ApiSettings, AppWebhook, DEFAULT_EVENT_MAX_AGE, DEFAULT_EVENTS_PER_SCENE, EtcdSettings,
    EventSettings, LeaderSettings, MAX_EVENTS_PER_SCENE, MIN_LEADER_TTL, NcsAllowlist,
    PrimaryDomain, Project, ReconcileSettings, ReportSettings, ServerSettings, Settings,
    SourceProbeSettings, StoreBackend, StoreSettings, TlsFiles,
};
pub use yaml::MAX_FILE_BYTES;

use diagnostic::Diags;

/// Exit status of `check` when the configuration is invalid (64, `EX_USAGE` in sysexits.h).
pub const EXIT_INVALID: i32 = 64;

/// A fully checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub scenes: Vec<Scene>,
    pub settings_path: PathBuf,
    pub scenes_path: PathBuf,
    /// Problems that did not stop the load (see [`Severity::Warning`]).
    pub warnings: Vec<Diagnostic>,
}

/// Loads the settings file, its secrets (from the process environment) and its scenes file.
pub fn load(settings_path: &Path) -> Result<Config, ConfigError> {
    load_with_env(settings_path, &ProcessEnv)
}

/// Like [`load`], with `{ env: NAME }` secrets looked up in `env`.
pub fn load_with_env(settings_path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
    let mut out = Vec::new();
    let raw = yaml::read_text(settings_path)
        .and_then(|text| yaml::parse::<settings::RawSettings>(settings_path, &text, ""))
        .map_err(|d| ConfigError::from(vec![d]))?;
    let settings = settings::build(
        raw,
        settings_path,
        env,
        &mut Diags {
            file: settings_path,
            out: &mut out,
        },
    );
    let scenes_path = settings.scenes_file.clone();
    let scenes = match yaml::read_text(&scenes_path) {
        Ok(text) => scenes::parse_into(&scenes_path, &text, &settings, env, &mut out),
        Err(d) => {
            out.push(d);
            Vec::new()
        }
    };
    let (warnings, errors): (Vec<_>, Vec<_>) = out.into_iter().partition(Diagnostic::is_warning);
    if !errors.is_empty() {
        return Err(ConfigError::from(errors));
    }
    Ok(Config {
        settings,
        scenes,
        settings_path: settings_path.to_path_buf(),
        scenes_path,
        warnings,
    })
}

/// Parses and checks scenes text (for hot reload) against already-loaded settings; token
/// secrets come from the process environment.
pub fn parse_scenes(
    file: &Path,
    text: &str,
    settings: &Settings,
) -> Result<Vec<Scene>, ConfigError> {
    parse_scenes_with_env(file, text, settings, &ProcessEnv)
}

/// Like [`parse_scenes`], with `{ env: NAME }` tokens looked up in `env`.
pub fn parse_scenes_with_env(
    file: &Path,
    text: &str,
    settings: &Settings,
    env: &dyn Env,
) -> Result<Vec<Scene>, ConfigError> {
    let mut out = Vec::new();
    let scenes = scenes::parse_into(file, text, settings, env, &mut out);
    // Warnings were shown by `check` and logged at start; a reload acts on the scenes.
    out.retain(|d| !d.is_warning());
    if out.is_empty() {
        Ok(scenes)
    } else {
        Err(ConfigError::from(out))
    }
}

/// `pullkeeper check`: prints every diagnostic, one per line, and returns [`EXIT_INVALID`];
/// or prints the warnings, if any, and a one-line summary, and returns 0. With
/// [`NoSecrets`] as `env`, secrets are checked for their shape only. A failed write to
/// `out` is ignored: the exit
/// status still tells the caller the outcome.
pub fn check(settings_path: &Path, env: &dyn Env, out: &mut dyn std::io::Write) -> i32 {
    match load_with_env(settings_path, env) {
        Ok(config) => {
            for w in &config.warnings {
                let _ = writeln!(out, "{w}");
            }
            let unread = if env.reads_secrets() {
                ""
            } else {
                " (secrets not read)"
            };
            let _ = writeln!(
                out,
                "ok: {} projects, {} scenes{unread}",
                config.settings.projects.len(),
                config.scenes.len()
            );
            0
        }
        Err(e) => {
            for d in &e.diagnostics {
                let _ = writeln!(out, "{d}");
            }
            EXIT_INVALID
        }
    }
}
