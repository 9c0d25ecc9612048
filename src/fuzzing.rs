//! Shared set-up of the fuzz (property) tests, whose names all start with `fuzz_`.
//!
//! CI runs each target with a small case count so the whole suite stays within about a
//! minute on two cores; `PULLKEEPER_FUZZ_CASES=N` runs N cases per target instead, which
//! is how the long runs recorded in RELIABILITY.md were made:
//!
//! ```sh
//! PULLKEEPER_FUZZ_CASES=200000 cargo test --release --lib fuzz_
//! ```

use proptest::test_runner::Config;

/// The environment variable that overrides the CI case count of every fuzz target.
pub const CASES_VAR: &str = "PULLKEEPER_FUZZ_CASES";

/// A proptest configuration with `ci_cases` cases, or `PULLKEEPER_FUZZ_CASES` when set.
/// Failures are not persisted to files: every finding becomes a named regression test.
pub fn config(ci_cases: u32) -> Config {
    let cases = std::env::var(CASES_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ci_cases);
    Config {
        cases,
        failure_persistence: None,
        // Shrinking a failure of a million-case run must not take longer than the run.
        max_shrink_iters: 10_000,
        ..Config::default()
    }
}

/// A JSON scalar of any kind, including the status and token values Agora uses.
pub fn json_leaf() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::Value;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        prop_oneof![
            Just("running"),
            Just("failed"),
            Just("connecting"),
            Just(""),
            Just("0")
        ]
        .prop_map(Value::from),
    ]
}

/// Arbitrary JSON, biased towards the keys Agora's bodies use so that decoders get past
/// their first field often enough to be exercised.
pub fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::Value;
    let key = prop_oneof![
        3 => prop_oneof![
            Just("id"), Just("name"), Just("lts"), Just("player"), Just("status"),
            Just("uid"), Just("channelName"), Just("destroyReason"), Just("players"),
            Just("nextPageToken"), Just("totalSize"), Just("createTs"), Just("streamUrl"),
        ]
        .prop_map(str::to_string),
        1 => any::<String>(),
    ];
    json_leaf().prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
