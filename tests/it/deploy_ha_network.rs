//! The HA overlay's NetworkPolicies, evaluated as Kubernetes does: a connection is
//! allowed when the source's egress policies (if any select it) and the destination's
//! ingress policies (if any select it) each have a rule admitting the peer and the port.
//! The flows the overlay needs are allowed and the ones it does not are refused.

use serde_json::{Map, Value};

use crate::deploy::find;
use crate::deploy_ha::{pod_labels, rendered_ha, selects};

/// A pod as the policies see it: its labels and its named container ports.
struct Pod<'a> {
    labels: &'a Map<String, Value>,
    container: &'a Value,
}

/// Where a connection comes from or goes to: a pod in the namespace, or anything else
/// (an ingress controller or Prometheus in another namespace, Agora, a stream origin).
enum End<'a> {
    Pod(Pod<'a>),
    Outside,
}

fn workload_pod<'a>(objects: &'a [Value], kind: &str, name: &str) -> Pod<'a> {
    let workload = find(objects, kind, name);
    Pod {
        labels: pod_labels(workload),
        container: &workload["spec"]["template"]["spec"]["containers"][0],
    }
}

/// Whether a rule's `ports` entry admits TCP `port` on `to` (a named port is looked up
/// among the destination's container ports).
fn port_matches(entry: &Value, port: u64, to: &End) -> bool {
    if entry.get("protocol").is_some_and(|p| p != "TCP") {
        return false;
    }
    match &entry["port"] {
        Value::Number(n) => n.as_u64() == Some(port),
        Value::String(name) => match to {
            End::Pod(pod) => pod.container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == name.as_str() && p["containerPort"] == port),
            End::Outside => false,
        },
        Value::Null => true,
        other => panic!("port {other}"),
    }
}

/// Whether a `from`/`to` peer list admits `end` (none: every peer). Only pod selectors in
/// the policy's own namespace are used in deploy/; an `ipBlock` admits only the outside.
fn peers_match(peers: &Value, end: &End) -> bool {
    let Some(peers) = peers.as_array() else {
        return true;
    };
    peers.iter().any(|peer| {
        assert!(peer.get("namespaceSelector").is_none(), "{peer}");
        match (peer.get("podSelector"), end) {
            (Some(selector), End::Pod(pod)) => selects(selector, pod.labels),
            (None, End::Outside) => peer.get("ipBlock").is_some(),
            _ => false,
        }
    })
}

/// Whether the policies of `side` ("Ingress" at `to`, "Egress" at `from`) let the
/// connection through.
fn side_allows(policies: &[&Value], side: &str, from: &End, to: &End, port: u64) -> bool {
    let (at, peer, rules_key, peers_key) = match side {
        "Ingress" => (to, from, "ingress", "from"),
        _ => (from, to, "egress", "to"),
    };
    let End::Pod(at) = at else {
        return true;
    };
    let applying: Vec<&&Value> = policies
        .iter()
        .filter(|p| {
            selects(&p["spec"]["podSelector"], at.labels)
                && p["spec"]["policyTypes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t == side)
        })
        .collect();
    applying.is_empty()
        || applying.iter().any(|p| {
            p["spec"][rules_key]
                .as_array()
                .into_iter()
                .flatten()
                .any(|rule| {
                    peers_match(&rule[peers_key], peer)
                        && match rule["ports"].as_array() {
                            None => true,
                            Some(ports) => ports.iter().any(|e| port_matches(e, port, to)),
                        }
                })
        })
}

fn allowed(objects: &[Value], from: &End, to: &End, port: u64) -> bool {
    let policies: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        .collect();
    side_allows(&policies, "Egress", from, to, port)
        && side_allows(&policies, "Ingress", from, to, port)
}

#[test]
fn network_policies_let_through_exactly_the_flows_the_overlay_needs() {
    let objects = rendered_ha();
    let replica = || End::Pod(workload_pod(&objects, "Deployment", "pullkeeper"));
    let member = || End::Pod(workload_pod(&objects, "StatefulSet", "etcd"));
    let stranger = Map::new();
    let nobody = Value::Null;
    let other_pod = || {
        End::Pod(Pod {
            labels: &stranger,
            container: &nobody,
        })
    };
    let needed = [
        ("replica → etcd client port", replica(), member(), 2379),
        (
            "replica → replica webhook port (hand-over)",
            replica(),
            replica(),
            8080,
        ),
        ("etcd → etcd peer port", member(), member(), 2380),
        ("ingress → webhook port", End::Outside, replica(), 8080),
        (
            "Prometheus → replica metrics",
            End::Outside,
            replica(),
            9090,
        ),
        ("Prometheus → etcd metrics", End::Outside, member(), 2381),
        (
            "replica → Agora and HTTPS origins",
            replica(),
            End::Outside,
            443,
        ),
        ("replica → RTMP origins", replica(), End::Outside, 1935),
        ("replica → HTTP origins", replica(), End::Outside, 80),
        ("replica → DNS", replica(), End::Outside, 53),
        ("etcd → DNS", member(), End::Outside, 53),
    ];
    for (what, from, to, port) in &needed {
        assert!(allowed(&objects, from, to, *port), "{what} is refused");
    }
    let refused = [
        ("replica → etcd peer port", replica(), member(), 2380),
        (
            "another pod → etcd client port",
            other_pod(),
            member(),
            2379,
        ),
        ("outside → etcd client port", End::Outside, member(), 2379),
        ("etcd → replica", member(), replica(), 8080),
        ("etcd → outside", member(), End::Outside, 443),
        ("replica → etcd metrics port", replica(), member(), 2381),
        ("replica → replica metrics port", replica(), replica(), 9090),
    ];
    for (what, from, to, port) in &refused {
        assert!(!allowed(&objects, from, to, *port), "{what} is let through");
    }
}
