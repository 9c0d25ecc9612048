//! The NetworkPolicy lets out what the shipped settings need: with source probing on
//! (the default), the stream origins' RTMP (1935), HTTP (80) and HTTPS (443) ports.

use serde_json::Value;

use crate::deploy::{find, rendered_manifests};

#[test]
fn the_network_policy_lets_source_probes_reach_the_origins() {
    let objects = rendered_manifests();
    let settings_map = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["data"].get("pullkeeper.yaml").is_some())
        .expect("a ConfigMap holds pullkeeper.yaml");
    let settings: Value =
        serde_saphyr::from_str(settings_map["data"]["pullkeeper.yaml"].as_str().unwrap()).unwrap();
    assert_ne!(
        settings["source_probe"]["enabled"],
        Value::Bool(false),
        "the shipped settings probe sources"
    );
    let policy = find(&objects, "NetworkPolicy", "pullkeeper");
    let egress = policy["spec"]["egress"].as_array().unwrap();
    for port in [1935, 80, 443] {
        let open = egress.iter().any(|rule| {
            rule.get("to").is_none()
                && rule["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["port"] == port && p["protocol"] == "TCP")
        });
        assert!(open, "TCP {port} is not let out to any address: {egress:?}");
    }
}
