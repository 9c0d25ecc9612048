//! The deployment files stay consistent with the code: the PrometheusRule is generated
//! from the alert rules, the configuration the Kubernetes manifests mount passes
//! `pullkeeper check` at the paths the StatefulSet mounts it, and Prometheus scrapes the
//! port the settings serve `/metrics` on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::temp_dir;

const ALERTS: &str = "deploy/prometheus/alerts.yml";
const PROMETHEUS_RULE: &str = "deploy/kubernetes/common/prometheusrule.yaml";
const KUSTOMIZATION: &str = "deploy/kubernetes";
const SECRET_EXAMPLE: &str = "deploy/kubernetes/secret.example.yaml";
const DOCKERFILE: &str = "deploy/Dockerfile";

pub(crate) fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub(crate) fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The PrometheusRule wrapping `alerts` as its spec. Indenting every line of a block YAML
/// document by the same amount keeps its meaning, so the rules are the file's, verbatim.
fn render_prometheus_rule(alerts: &str) -> String {
    let mut out = String::from(
        "# GENERATED from deploy/prometheus/alerts.yml by tests/it/deploy.rs: do not edit.\n\
         # Regenerate with: UPDATE_GENERATED=1 cargo test --test it deploy::prometheus_rule\n\
         apiVersion: monitoring.coreos.com/v1\n\
         kind: PrometheusRule\n\
         metadata:\n  \
           name: pullkeeper\n  \
           labels:\n    \
             app.kubernetes.io/name: pullkeeper\n\
         spec:\n",
    );
    let body = alerts
        .lines()
        .skip_while(|l| l.starts_with('#') || l.trim().is_empty());
    for line in body {
        if !line.is_empty() {
            out.push_str("  ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[test]
fn prometheus_rule_is_generated_from_the_alert_rules() {
    let alerts = read(ALERTS);
    let rendered = render_prometheus_rule(&alerts);
    let wrapped: Value = serde_saphyr::from_str(&rendered).unwrap();
    let rules: Value = serde_saphyr::from_str(&alerts).unwrap();
    assert_eq!(
        wrapped["spec"], rules,
        "the spec must be the rule file itself"
    );
    if std::env::var_os("UPDATE_GENERATED").is_some_and(|v| v == "1") {
        std::fs::write(repo(PROMETHEUS_RULE), &rendered).unwrap();
    }
    let committed = std::fs::read_to_string(repo(PROMETHEUS_RULE)).unwrap_or_default();
    assert!(
        committed == rendered,
        "{PROMETHEUS_RULE} is not what {ALERTS} generates; run \
         `UPDATE_GENERATED=1 cargo test --test it deploy::prometheus_rule` and commit it"
    );
}

/// `kubectl kustomize deploy/kubernetes`, parsed: the objects as applied.
pub(crate) fn rendered_manifests() -> Vec<Value> {
    render(&repo(KUSTOMIZATION))
}

/// `kubectl kustomize DIR`, parsed.
pub(crate) fn render(kustomization: &Path) -> Vec<Value> {
    let out = Command::new("kubectl")
        .args(["kustomize"])
        .arg(kustomization)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "kubectl is needed to render the manifests ({e}); .ci/run provides it, \
                 this test never skips"
            )
        });
    assert!(
        out.status.success(),
        "kubectl kustomize failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

pub(crate) fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among the rendered objects"))
}

/// The JSON (exec form) argument list of the Dockerfile's `instruction` (`ENTRYPOINT`,
/// `CMD`); it must occur exactly once.
fn exec_form(dockerfile: &str, instruction: &str) -> Vec<String> {
    let prefix = format!("{instruction} ");
    let lines: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .collect();
    assert_eq!(lines.len(), 1, "one {instruction} in {DOCKERFILE}");
    serde_json::from_str(&lines[0][prefix.len()..]).unwrap_or_else(|e| {
        panic!(
            "{instruction} must be a JSON array (exec form, no shell in the image): {e}: {}",
            lines[0]
        )
    })
}

/// The `--config` path of the image's default command.
fn image_config() -> String {
    let args = exec_form(&read(DOCKERFILE), "CMD");
    let at = args.iter().position(|a| a == "--config").unwrap();
    args[at + 1].clone()
}

/// Every `FROM` pins its base image by digest after the tag it was taken for, and the
/// image runs `pullkeeper` with the subcommand as its overridable command, so
/// `docker run IMAGE check --config FILE` works.
#[test]
fn dockerfile_pins_base_images_and_takes_the_subcommand_as_its_command() {
    let dockerfile = read(DOCKERFILE);
    let mut bases = 0;
    for line in dockerfile.lines() {
        let Some(rest) = line.strip_prefix("FROM ") else {
            continue;
        };
        bases += 1;
        let image = rest
            .split_whitespace()
            .find(|w| !w.starts_with("--"))
            .unwrap_or_default();
        let (name, digest) = image
            .split_once("@sha256:")
            .unwrap_or_else(|| panic!("FROM without a digest: {line}"));
        assert!(
            digest.len() == 64
                && digest
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "not a sha256 digest: {line}"
        );
        assert!(
            name.rsplit('/').next().unwrap().contains(':'),
            "{line}: name the tag the digest was taken for"
        );
    }
    assert!(bases >= 2, "a build stage and the runtime image");
    assert_eq!(exec_form(&dockerfile, "ENTRYPOINT"), ["pullkeeper"]);
    let command = exec_form(&dockerfile, "CMD");
    assert_eq!(
        command.first().map(String::as_str),
        Some("run"),
        "{command:?}"
    );
    assert!(command.iter().any(|a| a == "--config"), "{command:?}");
}

/// The image is built from what a local build reads: the manifest, the lock file, the
/// sources and `.cargo/` (jemalloc's options are compiled in from there). Each is both
/// let through the build context's ignore file and copied into the build stage.
#[test]
fn the_image_build_sees_what_a_local_build_reads() {
    let dockerfile = read(DOCKERFILE);
    let ignore = read("deploy/Dockerfile.dockerignore");
    let allowed: Vec<&str> = ignore.lines().filter_map(|l| l.strip_prefix('!')).collect();
    assert!(
        read(".cargo/config.toml").contains("JEMALLOC_SYS_WITH_MALLOC_CONF"),
        "the allocator's options live in .cargo/config.toml"
    );
    for (path, copy) in [
        ("Cargo.toml", "COPY Cargo.toml"),
        ("Cargo.lock", "Cargo.lock"),
        ("src/", "COPY src ./src"),
        (".cargo/", "COPY .cargo ./.cargo"),
    ] {
        assert!(
            allowed.contains(&path),
            "{path} is not in the build context: add !{path} to the ignore file"
        );
        assert!(
            dockerfile
                .lines()
                .any(|l| l.starts_with("COPY") && l.contains(copy)),
            "{DOCKERFILE} does not copy {path}"
        );
    }
}

#[test]
fn kubernetes_manifests_mount_a_config_that_passes_check() {
    let objects = rendered_manifests();
    let set = find(&objects, "StatefulSet", "pullkeeper");
    assert_eq!(set["spec"]["replicas"], 1, "one supervisor per store");
    let pod = &set["spec"]["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace > pullkeeper::SHUTDOWN_GRACE.as_secs(),
        "Kubernetes must not kill pullkeeper before its own shutdown bound"
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    let security = &pod["containers"][0]["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);

    check_mounted_config(&objects, pod);
}

/// Runs `pullkeeper check` on the settings of `pod` (a rendered pod spec) exactly as the
/// pod mounts them: ConfigMaps and the Secret example's keys as files under a temporary
/// root, the settings' container paths pointed into it.
pub(crate) fn check_mounted_config(objects: &[Value], pod: &Value) {
    let container = &pod["containers"][0];
    let secret_example: Value = serde_saphyr::from_str(&read(SECRET_EXAMPLE)).unwrap();
    let volumes: HashMap<&str, &Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    // The container's file system, under a temporary root.
    let root = temp_dir("k8s-config");
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"].as_array().unwrap() {
        let name = mount["name"].as_str().unwrap();
        assert!(
            mount.get("subPath").is_none(),
            "{name}: a subPath mount never sees ConfigMap or Secret updates"
        );
        let path = mount["mountPath"].as_str().unwrap();
        let dir = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        let files: Vec<(String, String)> = match volumes.get(name) {
            Some(v) if v.get("configMap").is_some() => {
                let map = find(
                    objects,
                    "ConfigMap",
                    v["configMap"]["name"].as_str().unwrap(),
                );
                to_files(&map["data"])
            }
            Some(v) if v.get("secret").is_some() => {
                assert_eq!(
                    v["secret"]["secretName"],
                    secret_example["metadata"]["name"]
                );
                to_files(&secret_example["stringData"])
            }
            // The store's volume claim: an empty directory.
            _ => Vec::new(),
        };
        for (file, text) in files {
            std::fs::write(dir.join(file), text).unwrap();
        }
        mounts.push(path.to_string());
    }
    // The settings name container paths; point them into the temporary root.
    let config = image_config();
    let settings_file = root.join(config.trim_start_matches('/'));
    let mut settings = std::fs::read_to_string(&settings_file)
        .unwrap_or_else(|e| panic!("{config} is not in a mounted volume: {e}"));
    for path in &mounts {
        let moved = format!("{}/", root.join(path.trim_start_matches('/')).display());
        settings = settings.replace(&format!("{path}/"), &moved);
    }
    std::fs::write(&settings_file, settings).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_pullkeeper"))
        .args(["check", "--config"])
        .arg(&settings_file)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pullkeeper check failed:\n{text}");
    assert!(text.contains("ok: 1 projects, 1 scenes"), "{text}");
    let _ = std::fs::remove_dir_all(&root);
}

/// The name of the ConfigMap the StatefulSet mounts as volume `volume`.
fn mounted_config_map<'a>(objects: &'a [Value], volume: &str) -> &'a str {
    let set = find(objects, "StatefulSet", "pullkeeper");
    set["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == volume)
        .unwrap_or_else(|| panic!("no volume {volume}"))["configMap"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("volume {volume} is not a ConfigMap"))
}

/// The settings are read once at start, so a change to them must roll the pod: their
/// ConfigMap's name carries kustomize's content hash and the StatefulSet names exactly
/// that ConfigMap. The hot-reloaded scenes keep a stable name, so editing them updates the
/// mounted file in place instead.
#[test]
fn a_settings_change_renames_their_config_map_and_the_scenes_keep_theirs() {
    let objects = rendered_manifests();
    let settings = mounted_config_map(&objects, "settings");
    let hash = settings
        .strip_prefix("pullkeeper-settings-")
        .unwrap_or_else(|| panic!("{settings}: no content-hash suffix"));
    assert!(
        hash.len() == 10
            && hash
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{settings}: not a kustomize content hash"
    );
    find(&objects, "ConfigMap", settings);
    assert_eq!(mounted_config_map(&objects, "scenes"), "pullkeeper-scenes");
    find(&objects, "ConfigMap", "pullkeeper-scenes");

    // The same kustomization with one more line in the settings and in the scenes.
    let copy = temp_dir("kustomize");
    copy_tree(&repo(KUSTOMIZATION), &copy);
    for file in ["config/pullkeeper.yaml", "common/config/scenes.yaml"] {
        let mut text = std::fs::read_to_string(copy.join(file)).unwrap();
        text.push_str("# changed\n");
        std::fs::write(copy.join(file), text).unwrap();
    }
    let changed = render(&copy);
    let renamed = mounted_config_map(&changed, "settings");
    assert_ne!(renamed, settings, "a settings change must roll the pod");
    assert!(renamed.starts_with("pullkeeper-settings-"), "{renamed}");
    assert_eq!(mounted_config_map(&changed, "scenes"), "pullkeeper-scenes");
    let _ = std::fs::remove_dir_all(&copy);
}

/// Copies the directory `from` with everything below it to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The port of a `host:port` listen address in the settings.
fn listen_port(settings: &Value, key: &str) -> u64 {
    let address = settings["server"][key]
        .as_str()
        .unwrap_or_else(|| panic!("the settings set server.{key}"));
    let (_, port) = address.rsplit_once(':').unwrap();
    port.parse().unwrap()
}

/// The container port named `name`.
fn container_port(container: &Value, name: &str) -> u64 {
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no container port named {name}"))["containerPort"]
        .as_u64()
        .unwrap()
}

/// Guaranteed QoS (every request equal to its limit) keeps the kernel and the kubelet
/// from picking pullkeeper first when a node runs short, and the priority class it names
/// is one the manifests create.
#[test]
fn the_pod_is_guaranteed_qos_with_a_priority_class() {
    let objects = rendered_manifests();
    let pod = &find(&objects, "StatefulSet", "pullkeeper")["spec"]["template"]["spec"];
    for container in pod["containers"].as_array().unwrap() {
        let resources = &container["resources"];
        for resource in ["cpu", "memory"] {
            let limit = &resources["limits"][resource];
            assert!(limit.is_string(), "{resource} limit: {resources}");
            assert_eq!(
                resources["requests"][resource], *limit,
                "{resource}: request must equal limit"
            );
        }
    }
    let class = pod["priorityClassName"]
        .as_str()
        .expect("a priorityClassName");
    let created = find(&objects, "PriorityClass", class);
    assert!(
        created["value"].as_i64().is_some_and(|v| v > 0),
        "{created}"
    );
}

#[test]
fn metrics_are_scraped_on_their_own_port_and_the_webhook_port_serves_the_rest() {
    let objects = rendered_manifests();
    // Found by its key, whatever name suffix kustomize gives the ConfigMap.
    let settings_map = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["data"].get("pullkeeper.yaml").is_some())
        .expect("a ConfigMap holds pullkeeper.yaml");
    let settings: Value =
        serde_saphyr::from_str(settings_map["data"]["pullkeeper.yaml"].as_str().unwrap()).unwrap();
    let container =
        &find(&objects, "StatefulSet", "pullkeeper")["spec"]["template"]["spec"]["containers"][0];
    let metrics_port = listen_port(&settings, "metrics_listen");
    assert_eq!(container_port(container, "metrics"), metrics_port);
    assert_eq!(
        container_port(container, "http"),
        listen_port(&settings, "listen")
    );
    // The ports the README states.
    assert_eq!(
        (listen_port(&settings, "listen"), metrics_port),
        (8080, 9090)
    );

    // The ServiceMonitor scrapes the metrics Service's port that targets that port.
    let monitor = find(&objects, "ServiceMonitor", "pullkeeper");
    let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    assert_eq!(endpoints[0]["path"], "/metrics");
    let service = find(&objects, "Service", "pullkeeper-metrics");
    for (label, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][label], value, "{label}");
    }
    let scraped = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == endpoints[0]["port"])
        .expect("the ServiceMonitor's port is a port of the metrics Service");
    assert_eq!(scraped["port"], 9090);
    assert!(
        scraped["targetPort"] == "metrics" || scraped["targetPort"] == metrics_port,
        "the metrics Service targets {} instead of the metrics port",
        scraped["targetPort"]
    );

    // The webhook Service targets the HTTP port, which no longer serves /metrics.
    let webhook = find(&objects, "Service", "pullkeeper-webhook");
    for port in webhook["spec"]["ports"].as_array().unwrap() {
        assert_eq!(port["targetPort"], "http", "{port}");
        assert_eq!(port["port"], 80, "{port}");
    }
    // And Prometheus may reach the metrics port.
    let policy = find(&objects, "NetworkPolicy", "pullkeeper");
    let open: Vec<&Value> = policy["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_array().unwrap())
        .map(|p| &p["port"])
        .collect();
    assert!(open.iter().any(|p| *p == "metrics"), "{open:?}");
}

fn to_files(data: &Value) -> Vec<(String, String)> {
    data.as_object()
        .expect("a data mapping")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}
