//! etcd's v3 API through its JSON gateway (`/v3/…` over HTTP), the one Patroni uses:
//! reqwest is already here, so no gRPC stack and no `protoc` at build time.
//!
//! Keys and values travel base64-encoded and 64-bit integers as JSON strings. A call
//! goes to the endpoint that answered last and moves on to the next one when it cannot
//! connect or the member cannot serve (a 5xx: cut off from its peers), so one member down
//! or partitioned costs one failed call, not an outage.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::error::EtcdError;

/// A connection to one etcd cluster.
pub(super) struct Gateway {
    http: reqwest::Client,
    endpoints: Vec<String>,
    /// The endpoint that answered last.
    current: AtomicUsize,
    credentials: Option<Credentials>,
    /// The auth token of the credentials, once authenticated.
    token: Mutex<Option<String>>,
}

/// etcd user and password; the password is never printed.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: secrecy::SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ user: {:?}, password: <redacted> }}",
            self.user
        )
    }
}

/// One key as a read returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub lease: i64,
}

/// A condition of a transaction.
pub(super) enum Compare {
    /// The key does not exist.
    Absent(Vec<u8>),
    /// The key exists and is attached to this lease.
    Lease(Vec<u8>, i64),
}

/// A write (or read) of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        /// 0: no lease.
        lease: i64,
    },
    Delete(Vec<u8>),
    Get(Vec<u8>),
}

/// What a transaction did.
#[derive(Debug)]
pub(super) struct TxnOutcome {
    pub succeeded: bool,
    /// The keys the `Get` ops of the branch that ran found.
    pub read: Vec<Kv>,
}

impl Gateway {
    pub(super) fn new(
        endpoints: &[String],
        credentials: Option<Credentials>,
        timeout: Duration,
        tls: rustls::ClientConfig,
    ) -> Result<Gateway, EtcdError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| EtcdError::Setup(e.to_string()))?;
        Ok(Gateway {
            http,
            endpoints: endpoints
                .iter()
                .map(|e| e.trim_end_matches('/').to_string())
                .collect(),
            current: AtomicUsize::new(0),
            credentials,
            token: Mutex::new(None),
        })
    }

    /// The keys from `key` up to (not including) `end`; `end` empty: `key` alone.
    pub(super) async fn range(&self, key: &[u8], end: &[u8]) -> Result<Vec<Kv>, EtcdError> {
        let mut body = json!({ "key": B64.encode(key) });
        if !end.is_empty() {
            body["range_end"] = B64.encode(end).into();
        }
        let answer = self.call("/v3/kv/range", &body).await?;
        kvs(&answer["kvs"])
    }

    /// Every key starting with `prefix`.
    pub(super) async fn range_prefix(&self, prefix: &[u8]) -> Result<Vec<Kv>, EtcdError> {
        self.range(prefix, &prefix_end(prefix)).await
    }

    /// Runs `then` if every compare holds, else `otherwise`, atomically.
    pub(super) async fn txn(
        &self,
        compare: &[Compare],
        then: &[Op],
        otherwise: &[Op],
    ) -> Result<TxnOutcome, EtcdError> {
        let compare: Vec<Value> = compare
            .iter()
            .map(|c| match c {
                Compare::Absent(key) => json!({
                    "key": B64.encode(key), "target": "CREATE",
                    "result": "EQUAL", "create_revision": "0"
                }),
                Compare::Lease(key, lease) => json!({
                    "key": B64.encode(key), "target": "LEASE",
                    "result": "EQUAL", "lease": lease.to_string()
                }),
            })
            .collect();
        let body = json!({
            "compare": compare,
            "success": ops(then),
            "failure": ops(otherwise),
        });
        let answer = self.call("/v3/kv/txn", &body).await?;
        let succeeded = answer["succeeded"].as_bool().unwrap_or(false);
        let mut read = Vec::new();
        for response in answer["responses"].as_array().into_iter().flatten() {
            if let Some(range) = response.get("response_range") {
                read.extend(kvs(&range["kvs"])?);
            }
        }
        Ok(TxnOutcome { succeeded, read })
    }

    /// Puts `key` (attached to `lease`, 0 for none) unless it exists: whether it was put,
    /// and the key as it was when it existed.
    pub(super) async fn put_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
        lease: i64,
    ) -> Result<(bool, Option<Kv>), EtcdError> {
        let put = Op::Put {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
        };
        let outcome = self
            .txn(
                &[Compare::Absent(key.to_vec())],
                &[put],
                &[Op::Get(key.to_vec())],
            )
            .await?;
        Ok((outcome.succeeded, outcome.read.into_iter().next()))
    }

    /// A new lease: its id and the TTL the server chose (at least the one asked for).
    pub(super) async fn lease_grant(&self, ttl: Duration) -> Result<(i64, i64), EtcdError> {
        let answer = self
            .call(
                "/v3/lease/grant",
                &json!({ "TTL": ttl.as_secs().to_string() }),
            )
            .await?;
        if let Some(error) = answer["error"].as_str().filter(|e| !e.is_empty()) {
            return Err(EtcdError::Refused(error.to_string()));
        }
        Ok((int(&answer["ID"])?, int(&answer["TTL"])?))
    }

    /// Renews a lease once; the TTL left, 0 or less when the lease is gone.
    pub(super) async fn lease_keep_alive(&self, lease: i64) -> Result<i64, EtcdError> {
        let answer = self
            .call("/v3/lease/keepalive", &json!({ "ID": lease.to_string() }))
            .await?;
        // A gone lease answers without a TTL field (zero values are omitted).
        Ok(answer["result"]["TTL"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0))
    }

    /// Ends a lease now: its keys go at once, successors need not wait for it to expire.
    pub(super) async fn lease_revoke(&self, lease: i64) -> Result<(), EtcdError> {
        self.call("/v3/lease/revoke", &json!({ "ID": lease.to_string() }))
            .await
            .map(drop)
    }

    /// POSTs `body` to `path`, trying every endpoint once from the current one.
    async fn call(&self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for i in 0..self.endpoints.len() {
            let at = (start + i) % self.endpoints.len();
            match self.call_at(at, path, body).await {
                Ok(answer) => {
                    self.current.store(at, Ordering::Relaxed);
                    return Ok(answer);
                }
                // Another member may be fine: one cut off from its peers answers "no
                // leader" or times out (a 5xx) while the majority serves. Any other
                // answer from this one is final.
                Err(e @ EtcdError::Unreachable { .. }) => last = Some(e),
                Err(e @ EtcdError::Answer { status: 500.., .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(EtcdError::Setup("no etcd endpoint".into())))
    }

    async fn call_at(&self, at: usize, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let endpoint = &self.endpoints[at];
        let mut retried_auth = false;
        loop {
            let token = self.token(endpoint).await?;
            let (status, answer) = self.post(endpoint, path, body, token).await?;
            if status.is_success() {
                return Ok(answer);
            }
            let message = answer["error"]
                .as_str()
                .or(answer["message"].as_str())
                .unwrap_or("")
                .to_string();
            // An expired token is renewed once; wrong credentials are an error.
            if message.contains("invalid auth token") && !retried_auth {
                retried_auth = true;
                *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
                continue;
            }
            return Err(EtcdError::Answer {
                endpoint: endpoint.clone(),
                status: status.as_u16(),
                message,
            });
        }
    }

    /// POSTs `body` to `path` on `endpoint` (with `token` if any): the status and the
    /// JSON answer, or why none came.
    async fn post(
        &self,
        endpoint: &str,
        path: &str,
        body: &Value,
        token: Option<String>,
    ) -> Result<(reqwest::StatusCode, Value), EtcdError> {
        let mut request = self.http.post(format!("{endpoint}{path}")).json(body);
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(endpoint, &e))?;
        let status = response.status();
        let answer = response
            .json()
            .await
            .map_err(|e| unreachable(endpoint, &e))?;
        Ok((status, answer))
    }

    /// The auth token for calls, authenticating first when credentials are set.
    async fn token(&self, endpoint: &str) -> Result<Option<String>, EtcdError> {
        let Some(credentials) = &self.credentials else {
            return Ok(None);
        };
        if let Some(token) = self.token.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(Some(token));
        }
        let body = json!({
            "name": credentials.user,
            "password": credentials.password.expose_secret(),
        });
        let (status, answer) = self
            .post(endpoint, "/v3/auth/authenticate", &body, None)
            .await?;
        let Some(token) = answer["token"].as_str().filter(|_| status.is_success()) else {
            return Err(EtcdError::Auth {
                endpoint: endpoint.to_string(),
                user: credentials.user.clone(),
                message: answer["error"].as_str().unwrap_or("refused").to_string(),
            });
        };
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.to_string());
        Ok(Some(token.to_string()))
    }
}

/// The end of the range of keys starting with `prefix` (etcd's "prefix end").
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff: to the end of the keyspace.
    vec![0]
}

fn ops(ops: &[Op]) -> Vec<Value> {
    ops.iter()
        .map(|op| match op {
            Op::Put { key, value, lease } => json!({ "request_put": {
                "key": B64.encode(key), "value": B64.encode(value), "lease": lease.to_string()
            }}),
            Op::Delete(key) => json!({ "request_delete_range": { "key": B64.encode(key) } }),
            Op::Get(key) => json!({ "request_range": { "key": B64.encode(key) } }),
        })
        .collect()
}

fn kvs(list: &Value) -> Result<Vec<Kv>, EtcdError> {
    let mut out = Vec::new();
    for kv in list.as_array().into_iter().flatten() {
        out.push(Kv {
            key: bytes(&kv["key"])?,
            value: bytes(&kv["value"])?,
            lease: kv.get("lease").map_or(Ok(0), int)?,
        });
    }
    Ok(out)
}

fn bytes(v: &Value) -> Result<Vec<u8>, EtcdError> {
    match v.as_str() {
        None => Ok(Vec::new()),
        Some(s) => B64
            .decode(s)
            .map_err(|e| EtcdError::Malformed(format!("base64: {e}"))),
    }
}

fn int(v: &Value) -> Result<i64, EtcdError> {
    match v {
        Value::String(s) => s
            .parse()
            .map_err(|_| EtcdError::Malformed(format!("integer {s:?}"))),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| EtcdError::Malformed(format!("integer {n}"))),
        other => Err(EtcdError::Malformed(format!("integer {other}"))),
    }
}

fn unreachable(endpoint: &str, e: &reqwest::Error) -> EtcdError {
    use std::error::Error;
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause = format!("{cause}: {s}");
        source = s.source();
    }
    EtcdError::Unreachable {
        endpoint: endpoint.to_string(),
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn the_prefix_end_is_the_first_key_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"a/b"), b"a/c");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
