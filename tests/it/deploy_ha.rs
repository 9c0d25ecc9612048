//! The HA overlay (`deploy/kubernetes/ha`) as applied: three pullkeeper replicas without
//! a volume on etcd, spread over nodes, with disruption budgets; a three-member etcd whose
//! flags, Services and the replicas' endpoints agree; the single replica's container; and
//! the alert that waits for 2 × the overlay's `leader.ttl`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::deploy::{check_mounted_config, find, read, render, rendered_manifests, repo};

const HA: &str = "deploy/kubernetes/ha";

pub(crate) fn rendered_ha() -> Vec<Value> {
    render(&repo(HA))
}

/// The settings the overlay's ConfigMap holds, parsed.
fn ha_settings(objects: &[Value]) -> Value {
    let map = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["data"].get("pullkeeper.yaml").is_some())
        .expect("a ConfigMap holds pullkeeper.yaml");
    serde_saphyr::from_str(map["data"]["pullkeeper.yaml"].as_str().unwrap()).unwrap()
}

/// The labels of the pods `workload` makes.
pub(crate) fn pod_labels(workload: &Value) -> &serde_json::Map<String, Value> {
    workload["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .unwrap()
}

/// Whether a `matchLabels` selector selects pods labelled `labels` (an empty one selects
/// every pod). Other selector forms are not used in deploy/ and fail here.
pub(crate) fn selects(selector: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    assert!(
        selector.get("matchExpressions").is_none(),
        "matchExpressions are not checked: {selector}"
    );
    selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether a Service's `selector` (a plain label map) selects pods labelled `labels`.
fn service_selects(service: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    let selector = service["spec"]["selector"].as_object().expect("a selector");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The pod spec of `workload` (a Deployment or StatefulSet).
fn pod(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]
}

/// `--flag=value` arguments of a container, by flag.
fn flags(container: &Value) -> BTreeMap<String, String> {
    container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            let (k, v) = a
                .strip_prefix("--")
                .and_then(|a| a.split_once('='))
                .unwrap_or_else(|| panic!("{a}: not --flag=value"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The number of a container port by its name.
fn port(container: &Value, name: &str) -> u64 {
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no container port {name}"))["containerPort"]
        .as_u64()
        .unwrap()
}

#[test]
fn the_ha_overlay_runs_three_replicas_on_etcd_without_a_volume() {
    let objects = rendered_ha();
    assert!(
        !objects
            .iter()
            .any(|o| o["kind"] == "StatefulSet" && o["metadata"]["name"] == "pullkeeper"),
        "the single replica's StatefulSet is not part of the HA overlay"
    );
    let deployment = find(&objects, "Deployment", "pullkeeper");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let spec = pod(deployment);
    for volume in spec["volumes"].as_array().unwrap() {
        assert!(
            volume.get("persistentVolumeClaim").is_none() && volume.get("emptyDir").is_none(),
            "a replica keeps nothing of its own: {volume}"
        );
    }
    assert!(deployment["spec"].get("volumeClaimTemplates").is_none());
    let settings = ha_settings(&objects);
    assert_eq!(settings["store"]["backend"], "etcd");
    assert!(
        settings["leader"].get("replica").is_none(),
        "each pod names itself ($HOSTNAME): a fixed replica name would be shared by all three"
    );
    check_mounted_config(&objects, spec);

    // The single replica's container and pod security, less the store volume, so the two
    // deployments cannot drift apart.
    let single = rendered_manifests();
    let set = find(&single, "StatefulSet", "pullkeeper");
    let mut container = pod(set)["containers"][0].clone();
    let mounts = container["volumeMounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["name"] != "data");
    assert_eq!(spec["containers"][0], container);
    for key in [
        "securityContext",
        "serviceAccountName",
        "priorityClassName",
        "automountServiceAccountToken",
        "terminationGracePeriodSeconds",
    ] {
        assert_eq!(spec[key], pod(set)[key], "{key}");
    }
}

/// Required anti-affinity on the node (one replica or member per node), a zone spread,
/// and a PodDisruptionBudget of `maxUnavailable: 1` selecting exactly the workload's pods.
#[test]
fn replicas_and_members_spread_over_nodes_with_disruption_budgets() {
    let objects = rendered_ha();
    let deployment = find(&objects, "Deployment", "pullkeeper");
    let etcd = find(&objects, "StatefulSet", "etcd");
    // With one pod per node required, a surge pod would find no node in a three-node
    // cluster: a rollout replaces one pod at a time instead.
    let rolling = &deployment["spec"]["strategy"]["rollingUpdate"];
    assert_eq!(rolling["maxSurge"], 0);
    assert_eq!(rolling["maxUnavailable"], 1);
    for (workload, other) in [(deployment, etcd), (etcd, deployment)] {
        let name = workload["metadata"]["name"].as_str().unwrap();
        let labels = pod_labels(workload);
        assert!(
            workload["spec"]["replicas"].as_u64().unwrap() >= 3,
            "{name}"
        );
        let anti = pod(workload)["affinity"]["podAntiAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no required pod anti-affinity"));
        assert!(
            anti.iter()
                .any(|t| t["topologyKey"] == "kubernetes.io/hostname"
                    && selects(&t["labelSelector"], labels)),
            "{name}: no anti-affinity against its own pods per node: {anti:?}"
        );
        let spread = pod(workload)["topologySpreadConstraints"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no topology spread"));
        assert!(
            spread
                .iter()
                .all(|c| selects(&c["labelSelector"], labels) && c["maxSkew"] == 1),
            "{name}: {spread:?}"
        );
        let budgets: Vec<&Value> = objects
            .iter()
            .filter(|o| {
                o["kind"] == "PodDisruptionBudget" && selects(&o["spec"]["selector"], labels)
            })
            .collect();
        assert_eq!(budgets.len(), 1, "{name}: one PodDisruptionBudget");
        assert_eq!(budgets[0]["spec"]["maxUnavailable"], 1, "{name}");
        assert!(
            !selects(&budgets[0]["spec"]["selector"], pod_labels(other)),
            "{name}'s budget also selects the other workload's pods"
        );
    }
}

/// The member list etcd bootstraps from has one entry per replica, named as the
/// StatefulSet names its pods, at the peer port under the headless Service; and the
/// replicas' endpoints are those members' client URLs.
#[test]
fn etcd_flags_agree_with_the_member_count_the_services_and_the_settings() {
    let objects = rendered_ha();
    let set = find(&objects, "StatefulSet", "etcd");
    let members = set["spec"]["replicas"].as_u64().unwrap();
    assert_eq!(
        members % 2,
        1,
        "an odd member count: an even one adds no fault tolerance"
    );
    let set_name = set["metadata"]["name"].as_str().unwrap();
    let headless_name = set["spec"]["serviceName"].as_str().unwrap();
    let headless = find(&objects, "Service", headless_name);
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(
        headless["spec"]["publishNotReadyAddresses"], true,
        "members find each other by name before any is ready"
    );
    assert!(service_selects(headless, pod_labels(set)));
    assert_eq!(set["spec"]["podManagementPolicy"], "Parallel");

    let container = &pod(set)["containers"][0];
    let (peer, client) = (port(container, "peer"), port(container, "client"));
    let f = flags(container);
    let initial: Vec<&str> = f["initial-cluster"].split(',').collect();
    let expected: Vec<String> = (0..members)
        .map(|i| format!("{set_name}-{i}=http://{set_name}-{i}.{headless_name}:{peer}"))
        .collect();
    assert_eq!(initial, expected, "--initial-cluster");
    assert_eq!(f["name"], "$(POD_NAME)");
    assert_eq!(
        container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name",
        "POD_NAME is the pod's name"
    );
    assert_eq!(
        f["initial-advertise-peer-urls"],
        format!("http://$(POD_NAME).{headless_name}:{peer}")
    );
    assert_eq!(
        f["advertise-client-urls"],
        format!("http://$(POD_NAME).{headless_name}:{client}")
    );
    assert_eq!(f["listen-peer-urls"], format!("http://0.0.0.0:{peer}"));
    assert_eq!(f["listen-client-urls"], format!("http://0.0.0.0:{client}"));
    assert_eq!(
        f["listen-metrics-urls"],
        format!("http://0.0.0.0:{}", port(container, "metrics"))
    );
    assert_eq!(f["initial-cluster-state"], "new");
    // The README's figures: three members, one hour of history, a 2 GiB quota on an
    // 8 GiB volume.
    assert_eq!(members, 3);
    assert_eq!(f["auto-compaction-mode"], "periodic");
    assert_eq!(f["auto-compaction-retention"], "1h");
    // The quota fits the volume several times over (database, WAL, snapshots) and stays
    // within etcd's suggested 8 GiB.
    let quota: u64 = f["quota-backend-bytes"].parse().unwrap();
    let volume = set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        .as_str()
        .unwrap();
    let volume_bytes = volume.strip_suffix("Gi").unwrap().parse::<u64>().unwrap() << 30;
    assert!(
        quota <= 8 << 30 && quota * 3 <= volume_bytes,
        "{quota} in {volume}"
    );
    let data_dir = &f["data-dir"];
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert!(
        data_dir.starts_with(&format!("{mount}/")),
        "the data directory {data_dir} is on the volume {mount}"
    );
    let image = container["image"].as_str().unwrap();
    let (name, digest) = image.split_once("@sha256:").expect("pinned by digest");
    assert_eq!(digest.len(), 64, "{image}");
    assert!(
        name.rsplit('/').next().unwrap().contains(':'),
        "{image}: name the tag"
    );

    let settings = ha_settings(&objects);
    let endpoints: Vec<&str> = settings["store"]["etcd"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let members: Vec<String> = (0..members)
        .map(|i| format!("http://{set_name}-{i}.{headless_name}:{client}"))
        .collect();
    assert_eq!(endpoints, members, "the replicas know every member");
    for name in ["client", "peer"] {
        assert!(
            headless["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == name && p["targetPort"] == name),
            "the headless Service has the {name} port"
        );
    }
}

/// etcd's metrics are scraped where it serves them, and the webhook and metrics Services
/// reach every replica and no etcd member.
#[test]
fn services_route_to_the_replicas_and_etcd_metrics_are_scraped() {
    let objects = rendered_ha();
    let replicas = pod_labels(find(&objects, "Deployment", "pullkeeper"));
    let etcd = find(&objects, "StatefulSet", "etcd");
    for name in ["pullkeeper-webhook", "pullkeeper-metrics"] {
        let service = find(&objects, "Service", name);
        assert!(service_selects(service, replicas), "{name}");
        assert!(!service_selects(service, pod_labels(etcd)), "{name}");
    }
    let monitor = find(&objects, "ServiceMonitor", "etcd");
    let services: Vec<&Value> = objects
        .iter()
        .filter(|o| {
            o["kind"] == "Service"
                && o["metadata"]["labels"]
                    .as_object()
                    .is_some_and(|l| selects(&monitor["spec"]["selector"], l))
        })
        .collect();
    assert_eq!(
        services.len(),
        1,
        "the etcd ServiceMonitor selects one Service"
    );
    let scraped = services[0]["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == monitor["spec"]["endpoints"][0]["port"])
        .expect("the monitored port is the Service's");
    assert_eq!(scraped["targetPort"], "metrics");
    assert!(service_selects(services[0], pod_labels(etcd)));
    assert_eq!(monitor["spec"]["jobLabel"], "app.kubernetes.io/name");
    assert_eq!(
        services[0]["metadata"]["labels"]["app.kubernetes.io/name"], "etcd",
        "job=\"etcd\", which the etcd alerts' descriptions name"
    );
}

/// The overlay runs the single replica's image.
#[test]
fn the_overlay_and_the_single_replica_run_the_same_image() {
    let ha = find(&rendered_ha(), "Deployment", "pullkeeper").clone();
    let single = rendered_manifests();
    let set = find(&single, "StatefulSet", "pullkeeper");
    assert_eq!(
        pod(&ha)["containers"][0]["image"],
        pod(set)["containers"][0]["image"]
    );
}

/// PullkeeperProjectWithoutLeader waits 2 × the overlay's `leader.ttl`: a takeover takes
/// at most ttl + ttl/3, so it never fires for one.
#[test]
fn the_without_leader_alert_waits_two_ttls_of_the_overlay() {
    let settings = ha_settings(&rendered_ha());
    let ttl = settings["leader"]["ttl"]
        .as_str()
        .expect("leader.ttl is set");
    let ttl: u64 = ttl.strip_suffix('s').unwrap().parse().unwrap();
    let rules: Value = serde_saphyr::from_str(&read("deploy/prometheus/alerts.yml")).unwrap();
    let rule = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .find(|r| r["alert"] == "PullkeeperProjectWithoutLeader")
        .expect("the alert exists");
    assert_eq!(rule["for"], format!("{}s", 2 * ttl));
    assert!(
        rule["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains(&format!("{} seconds", 2 * ttl))
    );
}
