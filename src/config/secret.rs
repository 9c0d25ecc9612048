//! Secrets are references, never values: `{ env: NAME }` or `{ file: PATH }`.
//!
//! Inline secrets end up in git, in `kubectl describe` output and in bug reports, so they are
//! refused outright. Diagnostics name the variable or path, never the value.

use std::fmt;
use std::io::Read;
use std::path::Path;

use secrecy::SecretString;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::diagnostic::Diags;
use super::env::Env;

/// The message for an inline secret.
pub const INLINE_SECRET: &str =
    "secrets must come from env or file: write { env: NAME } or { file: PATH }";

/// Secret files are a token or a key; anything bigger is the wrong file.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Where a secret is read from, as written in YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretRef {
    Env(String),
    File(String),
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretRefVisitor)
    }
}

struct SecretRefVisitor;

impl SecretRefVisitor {
    fn inline<E: de::Error>() -> Result<SecretRef, E> {
        Err(E::custom(INLINE_SECRET))
    }
}

impl<'de> Visitor<'de> for SecretRefVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{ env: NAME } or { file: PATH }")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
        Self::inline()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretRef, E> {
        Self::inline()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretRef, E> {
        Self::inline()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretRef, E> {
        Self::inline()
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretRef, E> {
        Self::inline()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
        let one_key = "a secret reference has exactly one key: env or file";
        let Some(kind) = map.next_key::<String>()? else {
            return Err(de::Error::custom(one_key));
        };
        let value: String = map.next_value()?;
        if map.next_key::<String>()?.is_some() {
            return Err(de::Error::custom(one_key));
        }
        match kind.as_str() {
            "env" => Ok(SecretRef::Env(value)),
            "file" => Ok(SecretRef::File(value)),
            other => Err(de::Error::custom(format!(
                "unknown secret source `{other}`, expected `env` or `file`"
            ))),
        }
    }
}

/// Reads the secret; on failure records a diagnostic and returns an empty placeholder (the
/// load fails anyway because a diagnostic exists). With an `env` that reads no secrets,
/// the placeholder without a diagnostic.
pub(crate) fn resolve(
    secret: &Spanned<SecretRef>,
    base_dir: &Path,
    env: &dyn Env,
    path: &str,
    diags: &mut Diags<'_>,
) -> SecretString {
    if !env.reads_secrets() {
        return SecretString::from(String::new());
    }
    match read(&secret.value, base_dir, env) {
        Ok(value) => SecretString::from(value),
        Err(message) => {
            diags.push(secret.referenced, path, message);
            SecretString::from(String::new())
        }
    }
}

fn read(secret: &SecretRef, base_dir: &Path, env: &dyn Env) -> Result<String, String> {
    match secret {
        SecretRef::Env(name) => match env.var(name) {
            None => Err(format!("environment variable {name} is not set")),
            Some(v) if v.is_empty() => Err(format!("environment variable {name} is empty")),
            Some(v) => Ok(v),
        },
        SecretRef::File(relative) => {
            let file = base_dir.join(relative);
            let shown = file.display();
            let mut bytes = Vec::new();
            std::fs::File::open(&file)
                .and_then(|f| f.take(MAX_SECRET_BYTES + 1).read_to_end(&mut bytes))
                .map_err(|e| format!("cannot read secret file {shown}: {e}"))?;
            if bytes.len() as u64 > MAX_SECRET_BYTES {
                return Err(format!(
                    "secret file {shown} is larger than {MAX_SECRET_BYTES} bytes"
                ));
            }
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("secret file {shown} is not valid UTF-8"))?;
            // Editors add a final newline; it is never part of the secret.
            let trimmed = text.trim_end_matches(['\n', '\r']);
            if trimmed.is_empty() {
                return Err(format!("secret file {shown} is empty"));
            }
            Ok(trimmed.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::diagnostic::Diagnostic;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Holder {
        s: Spanned<SecretRef>,
    }

    fn parse(text: &str) -> Result<Holder, Diagnostic> {
        crate::config::yaml::parse(Path::new("f.yaml"), text, "")
    }

    fn resolve_one(text: &str, env: &dyn Env, dir: &Path) -> (String, Vec<Diagnostic>) {
        let h = parse(text).unwrap();
        let mut out = Vec::new();
        let mut diags = Diags {
            file: Path::new("f.yaml"),
            out: &mut out,
        };
        let v = resolve(&h.s, dir, env, "s", &mut diags);
        (v.expose_secret().to_string(), out)
    }

    #[test]
    fn inline_secrets_are_refused_with_location() {
        for text in ["s: hunter2\n", "s: 12345\n"] {
            let d = parse(text).unwrap_err();
            assert_eq!(d.message, INLINE_SECRET);
            assert_eq!(d.path, "s");
            assert_eq!(d.line, Some(1));
        }
    }

    #[test]
    fn reference_shapes() {
        assert_eq!(
            parse("s: {env: X}\n").unwrap().s.value,
            SecretRef::Env("X".into())
        );
        assert_eq!(
            parse("s: {file: a/b}\n").unwrap().s.value,
            SecretRef::File("a/b".into())
        );
        assert!(
            parse("s: {vault: X}\n")
                .unwrap_err()
                .message
                .contains("`env` or `file`")
        );
        assert!(
            parse("s: {env: X, file: Y}\n")
                .unwrap_err()
                .message
                .contains("exactly one")
        );
        assert!(
            parse("s: {}\n")
                .unwrap_err()
                .message
                .contains("exactly one")
        );
    }

    #[test]
    fn env_secrets_never_echo_values() {
        let env = HashMap::from([("SET".to_string(), "v4lue".to_string())]);
        let dir = Path::new(".");
        assert_eq!(
            resolve_one("s: {env: SET}\n", &env, dir),
            ("v4lue".into(), vec![])
        );
        let (_, d) = resolve_one("s: {env: UNSET}\n", &env, dir);
        assert_eq!(d[0].message, "environment variable UNSET is not set");
        assert_eq!((d[0].line, d[0].column), (Some(1), Some(4)));
    }

    #[test]
    fn file_secrets_are_trimmed_and_relative_to_the_settings_dir() {
        let dir = std::env::temp_dir().join(format!("pk-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("id"), "abc\r\n").unwrap();
        std::fs::write(dir.join("empty"), "\n").unwrap();
        let env = HashMap::new();
        assert_eq!(resolve_one("s: {file: id}\n", &env, &dir).0, "abc");
        let (_, d) = resolve_one("s: {file: empty}\n", &env, &dir);
        assert!(d[0].message.ends_with("is empty"), "{}", d[0].message);
        let (_, d) = resolve_one("s: {file: missing}\n", &env, &dir);
        assert!(
            d[0].message.starts_with("cannot read secret file"),
            "{}",
            d[0].message
        );
        assert!(d[0].message.contains("missing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_reading_secrets_any_reference_resolves_to_a_placeholder() {
        let dir = Path::new("/nonexistent");
        for text in ["s: {env: UNSET}\n", "s: {file: missing}\n"] {
            assert_eq!(
                resolve_one(text, &crate::config::NoSecrets, dir),
                (String::new(), vec![])
            );
        }
        // The shape is still checked: an inline secret is refused either way.
        assert_eq!(parse("s: hunter2\n").unwrap_err().message, INLINE_SECRET);
    }
}
