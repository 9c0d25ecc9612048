//! Injected faults: canned failures for the next matching REST requests.
//!
//! Tests of retry and failover logic need Agora to misbehave on demand: a 503 on the
//! next Create, a slow List, a connection that dies mid-request. A rule matches on the
//! method (optional) and a substring of the path and query, and is used up after
//! `count` matches. Rules are tried in the order they were added.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::duration;

/// Answer the next `count` requests matching `method` and `path_contains` with `action`.
///
/// JSON: `{"method":"POST","path_contains":"/players","count":1,"action":{"status":503}}`;
/// other actions are `{"delay":1500}` (ms), `"drop"` and `"cut"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP method, case-insensitive; `None` matches every method.
    #[serde(default)]
    pub method: Option<String>,
    /// Substring of the path and query (e.g. `"/cloud-player/players"`).
    #[serde(default)]
    pub path_contains: String,
    pub count: u32,
    pub action: FaultAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status and the §1.9 message for it, without acting.
    Status(u16),
    /// Wait this long (real time), then handle the request normally.
    Delay(#[serde(with = "duration")] Duration),
    /// Close the connection without sending any response.
    Drop,
    /// Handle the request normally, then close the connection halfway through the answer:
    /// the operation happened, but the client never reads the whole response.
    Cut,
}

/// The active rules.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<FaultRule>,
}

impl Faults {
    pub fn add(&mut self, rule: FaultRule) {
        if rule.count > 0 {
            self.rules.push(rule);
        }
    }

    /// Forgets every rule, used up or not: the misbehaviour ends now.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The action for this request, using up one match of the first matching rule.
    pub fn take(&mut self, method: &str, path_and_query: &str) -> Option<FaultAction> {
        let pos = self.rules.iter().position(|r| {
            r.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && path_and_query.contains(&r.path_contains)
        })?;
        let rule = &mut self.rules[pos];
        let action = rule.action;
        rule.count -= 1;
        if rule.count == 0 {
            self.rules.remove(pos);
        }
        Some(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_used_up_in_order() {
        let mut f = Faults::default();
        f.add(FaultRule {
            method: Some("post".into()),
            path_contains: "/players".into(),
            count: 2,
            action: FaultAction::Status(503),
        });
        f.add(FaultRule {
            method: None,
            path_contains: "".into(),
            count: 1,
            action: FaultAction::Drop,
        });
        assert_eq!(f.take("GET", "/v1/x"), Some(FaultAction::Drop));
        assert_eq!(f.take("GET", "/v1/players"), None);
        assert_eq!(
            f.take("POST", "/na/players"),
            Some(FaultAction::Status(503))
        );
        assert_eq!(
            f.take("POST", "/na/players"),
            Some(FaultAction::Status(503))
        );
        assert_eq!(f.take("POST", "/na/players"), None);
        f.add(FaultRule {
            method: None,
            path_contains: "".into(),
            count: 1000,
            action: FaultAction::Status(503),
        });
        f.clear();
        assert_eq!(f.take("GET", "/v1/players"), None);
    }

    #[test]
    fn json_shape() {
        let r: FaultRule = serde_json::from_str(
            r#"{"method":"GET","path_contains":"/players","count":1,"action":{"delay":250}}"#,
        )
        .expect("valid rule");
        assert_eq!(r.action, FaultAction::Delay(Duration::from_millis(250)));
        let r: FaultRule =
            serde_json::from_str(r#"{"path_contains":"x","count":1,"action":"drop"}"#)
                .expect("valid");
        assert_eq!(r.action, FaultAction::Drop);
        let r: FaultRule = serde_json::from_str(r#"{"count":1,"action":"cut"}"#).expect("valid");
        assert_eq!(r.action, FaultAction::Cut);
    }
}
