//! How the CLI reaches a running instance's admin API: the URL and token resolution
//! every admin command shares (`status`, `events`, `switch`, `unpin`, `maintenance`,
//! `drill`), one request with the answers every command reads the same way, and the
//! columns of their tables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::ExposeSecret;

/// Where to ask and with which token; explicit flags win over the settings file.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Base URL of the instance [default: from --config, else http://127.0.0.1:8080].
    #[arg(long)]
    pub url: Option<String>,
    /// File holding the admin token [default: $PULLKEEPER_ADMIN_TOKEN, else from --config].
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The instance's settings file: its server.listen and server.admin_token.
    #[arg(long, env = "PULLKEEPER_CONFIG")]
    pub config: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for an https URL with a private certificate.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

/// A connection to one instance's admin API.
pub struct Admin {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Admin {
    /// The URL comes from `--url`, else `server.listen` of `--config`, else
    /// `http://127.0.0.1:8080`; the token from `--token-file`, else
    /// `$PULLKEEPER_ADMIN_TOKEN`, else `--config`.
    pub fn connect(args: &AdminArgs) -> anyhow::Result<Admin> {
        let loaded = match &args.config {
            Some(path) => Some(crate::config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?),
            None => None,
        };
        let url = match (&args.url, &loaded) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some(c)) => base_url(c.settings.server.listen),
            (None, None) => "http://127.0.0.1:8080".to_string(),
        };
        let token = match (
            &args.token_file,
            std::env::var("PULLKEEPER_ADMIN_TOKEN"),
            &loaded,
        ) {
            (Some(file), _, _) => read_token(file)?,
            (None, Ok(token), _) => token,
            (None, Err(_), Some(c)) => c
                .settings
                .server
                .admin_token
                .as_ref()
                .map(|t| t.expose_secret().to_string())
                .unwrap_or_default(),
            (None, Err(_), None) => String::new(),
        };
        crate::crypto::install_provider();
        // Above the 10 s an instance waits for its controller's answer.
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(15));
        if let Some(ca) = &args.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            client = client.tls_certs_merge([reqwest::Certificate::from_pem(&pem)?]);
        }
        Ok(Admin {
            client: client.build()?,
            url,
            token,
        })
    }

    /// Sends `method path` (with `body` as JSON, if any) and returns the answer's status
    /// and body. A refused token or a closed admin API is an error here.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(u16, String)> {
        let url = &self.url;
        let mut request = self
            .client
            .request(method, format!("{url}{path}"))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach pullkeeper at {url}"))?;
        let status = response.status().as_u16();
        // A replica answering for others (etcd) names those it could not ask.
        if let Some(replicas) = response.headers().get(crate::http::scenes::UNANSWERED) {
            let replicas = replicas.to_str().unwrap_or("?");
            eprintln!(
                "warning: incomplete: replica(s) {replicas} did not answer for the projects they lead"
            );
        }
        let body = response.text().await.context("the answer broke off")?;
        match status {
            401 => bail!(
                "{url} refused the admin token: pass --token-file, set PULLKEEPER_ADMIN_TOKEN, or --config"
            ),
            403 => bail!("the admin API of {url} is off: it has no server.admin_token"),
            _ => Ok((status, body)),
        }
    }

    /// GETs `path`; the body of a 200, else an error with the answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<String> {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await?;
        if status != 200 {
            bail!("{}{path} answered {status}: {body}", self.url);
        }
        Ok(body)
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

fn read_token(file: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the token file {}", file.display()))?;
    Ok(text.trim().to_string())
}

/// The URL of an instance listening on `listen`, reached from the same host.
fn base_url(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        ip if ip.is_ipv6() => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", listen.port())
}

/// Lays `rows` (the first is the header) out in columns two spaces apart.
pub fn columns(rows: &[Vec<String>]) -> String {
    use std::fmt::Write as _;
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_comes_from_the_listen_address() {
        assert_eq!(
            base_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(base_url("[::]:8080".parse().unwrap()), "http://[::1]:8080");
        assert_eq!(
            base_url("10.0.0.5:9000".parse().unwrap()),
            "http://10.0.0.5:9000"
        );
        assert_eq!(
            base_url("[fd00::5]:80".parse().unwrap()),
            "http://[fd00::5]:80"
        );
    }
}
