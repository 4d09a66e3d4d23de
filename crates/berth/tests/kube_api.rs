//! `berth server` driven by kubectl (1.33, by the dispatcher at
//! /usr/bin/kubectl) and the Python `kubernetes` client: discovery,
//! output formats, apply (client-side and server-side), patches, edit,
//! diff, wait, watch, errors as kube-apiserver words them, CRDs, RBAC.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_testutil::kube::WriteStorm;
use berth_testutil::{KubeServer, have_kube_py, have_kubectl};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

/// A server for a test, or None when kubectl is missing (outside CI).
fn server(dir: &Path) -> Option<KubeServer> {
    if !have_kubectl() {
        return None;
    }
    Some(KubeServer::start(bin(), dir, &[]))
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
  labels: {app: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers:
      - name: main
        image: busybox:1
        env: [{name: A, value: "1"}, {name: B, value: "1"}]
"#;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn starts_with_a_kubeconfig_namespaces_and_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    let version = json(&s.ok(&["version", "-o", "json"]));
    assert_eq!(version["serverVersion"]["minor"], "33");
    assert!(
        version["clientVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.33."),
        "{version}"
    );

    let ns = s.ok(&["get", "namespaces"]);
    let mut lines = ns.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "AGE"]);
    let names: Vec<&str> = lines
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    assert!(ns.contains("Active"));

    // A default ServiceAccount in every namespace, also in a new one.
    s.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n");
    let sas = s.ok(&[
        "get",
        "serviceaccounts",
        "-A",
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}",
    ]);
    for ns in ["default", "kube-system", "team-a"] {
        assert!(sas.contains(&format!("{ns}/default")), "{sas}");
    }

    let resources = s.ok(&["api-resources"]);
    for needle in [
        "deployments",
        "deploy",
        "apps/v1",
        "customresourcedefinitions",
        "poddisruptionbudgets",
        "clusterroles",
        "leases",
    ] {
        assert!(
            resources.contains(needle),
            "api-resources lacks {needle}:\n{resources}"
        );
    }
    let versions = s.ok(&["api-versions"]);
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "rbac.authorization.k8s.io/v1",
        "autoscaling/v2",
        "apiextensions.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "api-versions lacks {gv}:\n{versions}"
        );
    }
    let readyz = s.ok(&["get", "--raw", "/readyz?verbose"]);
    assert!(
        readyz.contains("[+]poststarthook/bootstrap ok") && readyz.contains("readyz check passed"),
        "{readyz}"
    );
    let metrics = s.ok(&["get", "--raw", "/metrics"]);
    assert!(metrics.contains("apiserver_request_total{"), "{metrics}");
    assert!(
        metrics.contains("apiserver_storage_objects{resource=\"namespaces\"} 5"),
        "{metrics}"
    );

    // The kubeconfig holds a client certificate of system:masters; the
    // server's CA and keys are private.
    let pki = s.root.join("server/pki");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&pki).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(&s.kubeconfig)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn no_credentials_is_401_and_no_permission_is_403() {
    let dir = tempfile::tempdir().unwrap();
    if !have_kubectl() {
        return;
    }
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "bob-token,bob,1001,\"devs\"\n").unwrap();
    let s = KubeServer::start(
        bin(),
        dir.path(),
        &["--token-auth-file", tokens.to_str().unwrap()],
    );
    let server_url = format!("https://127.0.0.1:{}", s.port);
    let as_user = |token: Option<&str>, args: &[&str]| {
        let mut all = vec![
            "--kubeconfig=/dev/null",
            "--server",
            &server_url,
            "--insecure-skip-tls-verify",
        ];
        let flag;
        if let Some(t) = token {
            flag = format!("--token={t}");
            all.push(&flag);
        }
        all.extend_from_slice(args);
        Command::new("kubectl")
            .args(&all)
            .envs(s.env().into_iter().filter(|(k, _)| *k != "KUBECONFIG"))
            .output()
            .unwrap()
    };
    // Without credentials (kubectl would prompt for a password, so a
    // plain HTTPS client asks): only /version and the health checks answer.
    let anonymous = |path: &str| {
        let program = format!(
            "import ssl, urllib.request, urllib.error\nctx = ssl._create_unverified_context()\ntry:\n    r = urllib.request.urlopen('{server_url}{path}', context=ctx)\n    print(r.status, r.read().decode())\nexcept urllib.error.HTTPError as e:\n    print(e.code, e.read().decode())\n"
        );
        let out = Command::new("python3")
            .args(["-c", &program])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let answer = anonymous("/api/v1/namespaces/default/pods");
    assert!(
        answer.starts_with("401 ") && answer.contains(r#""reason":"Unauthorized""#),
        "{answer}"
    );
    assert!(anonymous("/apis").starts_with("401 "));
    assert!(anonymous("/version").starts_with("200 "));
    assert!(anonymous("/healthz").starts_with("200 ok"));
    let _ = as_user(None, &["version"]);

    let wrong = as_user(Some("nope"), &["get", "pods"]);
    let err = String::from_utf8_lossy(&wrong.stderr);
    // (a rejected token gets 401 even on /version, so the dispatcher runs
    // its default kubectl, which words it its own way)
    assert!(
        err.contains("Unauthorized") || err.contains("asked for the client to provide credentials"),
        "{err}"
    );

    let bob = as_user(Some("bob-token"), &["get", "pods"]);
    let err = String::from_utf8_lossy(&bob.stderr);
    assert!(
        err.contains(r#"pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{err}"
    );
    // Granting view through a RoleBinding lets bob list pods in default only.
    s.apply(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: bob-view, namespace: default}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}]\n",
    );
    let bob = as_user(Some("bob-token"), &["get", "pods"]);
    assert!(
        bob.status.success(),
        "{}",
        String::from_utf8_lossy(&bob.stderr)
    );
    let other = as_user(Some("bob-token"), &["get", "pods", "-n", "kube-system"]);
    assert!(String::from_utf8_lossy(&other.stderr).contains("forbidden"));
    let secrets = as_user(Some("bob-token"), &["get", "secrets"]);
    assert!(String::from_utf8_lossy(&secrets.stderr).contains(r#"cannot list resource "secrets""#));
    let write = as_user(Some("bob-token"), &["delete", "configmap", "x"]);
    assert!(
        String::from_utf8_lossy(&write.stderr).contains(r#"cannot delete resource "configmaps""#)
    );
}

#[test]
fn apply_patch_label_scale_and_server_side_apply() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    assert!(s.apply(DEPLOYMENT).contains("deployment.apps/demo created"));
    let d = json(&s.ok(&["get", "deploy", "demo", "-o", "json"]));
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(
        d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%",
        "defaulted"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert!(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    // A changed file: a strategic merge patch keyed by container and env names.
    let changed = DEPLOYMENT
        .replace("replicas: 2", "replicas: 3")
        .replace(r#"{name: B, value: "1"}"#, r#"{name: C, value: "3"}"#);
    assert!(
        s.apply(&changed)
            .contains("deployment.apps/demo configured")
    );
    let d = json(&s.ok(&["get", "deploy", "demo", "-o", "json"]));
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"],
        serde_json::json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])
    );
    assert!(s.apply(&changed).contains("deployment.apps/demo unchanged"));

    // Patches of all three kinds, label, annotate, scale.
    s.ok(&[
        "patch",
        "deploy",
        "demo",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"busybox:2"}]}}}}"#,
    ]);
    s.ok(&[
        "patch",
        "deploy",
        "demo",
        "--type=merge",
        "-p",
        r#"{"metadata":{"annotations":{"note":"merged"}}}"#,
    ]);
    s.ok(&[
        "patch",
        "deploy",
        "demo",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/tier","value":"web"}]"#,
    ]);
    s.ok(&["label", "deploy", "demo", "team=blue"]);
    s.ok(&["annotate", "deploy", "demo", "owner=ops"]);
    assert!(
        s.ok(&["scale", "deploy", "demo", "--replicas=5"])
            .contains("scaled")
    );
    let d = json(&s.ok(&["get", "deploy", "demo", "-o", "json"]));
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox:2"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"], "A",
        "the image patch kept env"
    );
    assert_eq!(d["metadata"]["annotations"]["note"], "merged");
    assert_eq!(d["metadata"]["annotations"]["owner"], "ops");
    assert_eq!(d["metadata"]["labels"]["tier"], "web");
    assert_eq!(d["metadata"]["labels"]["team"], "blue");
    let bad = s.fails(&[
        "patch",
        "deploy",
        "demo",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/nosuch"}]"#,
    ]);
    assert!(bad.contains("nosuch"), "{bad}");

    // Server-side apply: the replicas field is owned by kubectl-scale now,
    // so a different value conflicts until forced.
    let ssa = changed.replace("replicas: 3", "replicas: 4");
    let out = s.kubectl_in(&["apply", "--server-side", "-f", "-"], &ssa);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("conflict") && err.contains(".spec.replicas"),
        "{err}"
    );
    let out = s.kubectl_in(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &ssa,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("serverside-applied"));
    let d = json(&s.ok(&[
        "get",
        "deploy",
        "demo",
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    assert_eq!(d["spec"]["replicas"], 4);
    let managers: Vec<&str> = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert!(
        managers.contains(&"kubectl") && managers.contains(&"kubectl-client-side-apply"),
        "{managers:?}"
    );

    // A server-side apply creates what is missing.
    let out = s.kubectl_in(
        &["apply", "--server-side", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa-made}\ndata: {k: v}\n",
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("serverside-applied")
    );

    // diff: exit 1 with a difference, 0 without.
    let out = s.kubectl_in(
        &["diff", "-f", "-"],
        &ssa.replace("replicas: 4", "replicas: 7"),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("+  replicas: 7"));

    assert!(
        s.ok(&["delete", "deploy", "demo"])
            .contains(r#"deployment.apps "demo" deleted"#)
    );
    assert!(
        s.fails(&["get", "deploy", "demo"])
            .contains(r#"deployments.apps "demo" not found"#)
    );
}

#[test]
fn get_prints_kubectl_tables_and_every_output_format() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    s.apply(DEPLOYMENT);
    s.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1, namespace: other, labels: {tier: a}}\ndata: {x: '1', y: '2'}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c2, labels: {tier: b}}\ndata: {x: '1'}\n");
    let wide = s.ok(&["get", "deploy", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert!(
        wide.lines().nth(1).unwrap().contains("0/2")
            && wide.contains("busybox:1")
            && wide.contains("app=demo"),
        "{wide}"
    );

    let all = s.ok(&["get", "configmaps", "-A"]);
    assert!(
        all.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all}"
    );
    assert!(
        all.lines()
            .any(|l| l.starts_with("other") && l.contains("c1") && l.contains(" 2 ")),
        "{all}"
    );
    let labelled = s.ok(&["get", "cm", "-A", "-l", "tier=a", "-o", "name"]);
    assert_eq!(labelled.trim(), "configmap/c1");
    let by_field = s.ok(&[
        "get",
        "cm",
        "-A",
        "--field-selector",
        "metadata.namespace=default,metadata.name=c2",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.trim(), "configmap/c2");
    let bad = s.fails(&["get", "cm", "--field-selector", "data.x=1"]);
    assert!(bad.contains("field label not supported: data.x"), "{bad}");
    let labels = s.ok(&["get", "cm", "c2", "--show-labels"]);
    assert!(labels.contains("tier=b"), "{labels}");
    let path = s.ok(&["get", "cm", "c2", "-o", "jsonpath={.data.x}"]);
    assert_eq!(path, "1");
    let columns = s.ok(&[
        "get",
        "cm",
        "-n",
        "other",
        // every namespace also holds the cluster CA (kube-root-ca.crt)
        "--field-selector",
        "metadata.name!=kube-root-ca.crt",
        "-o",
        "custom-columns=N:.metadata.name,X:.data.x",
    ]);
    assert_eq!(
        columns.split_whitespace().collect::<Vec<_>>(),
        ["N", "X", "c1", "1"]
    );
    let yaml = s.ok(&["get", "cm", "c2", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: ConfigMap") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    let list = json(&s.ok(&["get", "cm", "-o", "json"]));
    assert_eq!(list["kind"], "List");
    // Chunked lists: kubectl pages with --chunk-size.
    for i in 0..7 {
        s.apply(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: page-{i}}}\n"
        ));
    }
    let paged = s.ok(&["get", "cm", "--chunk-size=2", "-o", "name"]);
    assert_eq!(
        paged.lines().filter(|l| l.contains("page-")).count(),
        7,
        "{paged}"
    );
    let describe = s.ok(&["describe", "deploy", "demo"]);
    assert!(
        describe.contains("Replicas:") && describe.contains("busybox:1"),
        "{describe}"
    );
}

#[test]
fn errors_are_answered_as_kube_apiserver_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    let err = s.fails(&["get", "pod", "nosuch"]);
    assert!(
        err.contains(r#"Error from server (NotFound): pods "nosuch" not found"#),
        "{err}"
    );
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dup}\n";
    let out = s.kubectl_in(&["create", "-f", "-"], cm);
    assert!(out.status.success());
    let out = s.kubectl_in(&["create", "-f", "-"], cm);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("(AlreadyExists)") && err.contains(r#"configmaps "dup" already exists"#),
        "{err}"
    );

    // Invalid: the selector does not match the template's labels.
    let bad = DEPLOYMENT.replace(
        "template:\n    metadata: {labels: {app: demo}}",
        "template:\n    metadata: {labels: {app: other}}",
    );
    let out = s.kubectl_in(&["apply", "-f", "-"], &bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            r#"The Deployment "demo" is invalid: spec.template.metadata.labels: Invalid value: "#
        ) && err.contains("`selector` does not match template `labels`"),
        "{err}"
    );
    assert!(
        s.fails(&["get", "deploy", "demo"]).contains("not found"),
        "nothing stored"
    );

    let bad_name = s.kubectl_in(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n",
    );
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("a lowercase RFC 1123 subdomain"));

    let missing_ns = s.kubectl_in(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: nowhere}\n",
    );
    assert!(
        String::from_utf8_lossy(&missing_ns.stderr).contains(r#"namespaces "nowhere" not found"#)
    );

    // A stale resourceVersion on replace is a 409 Conflict.
    let current = json(&s.ok(&["get", "cm", "dup", "-o", "json"]));
    s.ok(&["label", "cm", "dup", "changed=yes"]);
    let stale = serde_json::to_string(&current).unwrap();
    let out = s.kubectl_in(&["replace", "-f", "-"], &stale);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("(Conflict)") && err.contains("the object has been modified"),
        "{err}"
    );

    // A body over 3 MiB.
    let big = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata: {{x: \"{}\"}}\n",
        "a".repeat(3 * 1024 * 1024 + 10)
    );
    let out = s.kubectl_in(&["create", "-f", "-", "--validate=false"], &big);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("too large"), "{err}");

    // An immutable ConfigMap refuses data changes.
    s.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: frozen}\nimmutable: true\ndata: {a: '1'}\n");
    let out = s.kubectl_in(&["apply", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: frozen}\nimmutable: true\ndata: {a: '2'}\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("field is immutable when `immutable` is set")
    );
}

#[test]
fn watch_wait_edit_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    s.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w1}\ndata: {a: '1'}\n");
    let mut watcher = Command::new("kubectl")
        .args([
            "get",
            "configmaps",
            "-w",
            "--output-watch-events",
            "-o",
            "custom-columns=E:.type,N:.object.metadata.name",
        ])
        .envs(s.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no watch line with {want}"));
            if line.contains(want) {
                return line;
            }
        }
    };
    next("w1");
    s.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w2}\n");
    assert!(next("w2").starts_with("ADDED"));

    // kubectl edit with a scripted editor.
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i \"s/a: \\\"1\\\"/a: \\\"2\\\"/\" \"$1\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("kubectl")
        .args(["edit", "cm", "w1"])
        .envs(s.env())
        .env("KUBE_EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(next("w1").starts_with("MODIFIED"));
    assert_eq!(s.ok(&["get", "cm", "w1", "-o", "jsonpath={.data.a}"]), "2");
    s.ok(&[
        "wait",
        "--for=jsonpath={.data.a}=2",
        "cm/w1",
        "--timeout=10s",
    ]);

    // wait --for=delete returns once the object is gone.
    let mut waiter = Command::new("kubectl")
        .args(["wait", "--for=delete", "cm/w2", "--timeout=20s"])
        .envs(s.env())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.ok(&["delete", "cm", "w2"]);
    assert!(next("w2").starts_with("DELETED"));
    assert!(waiter.wait().unwrap().success());
    let _ = watcher.kill();
    let _ = watcher.wait();

    // Finalizers hold a deletion until they are removed.
    s.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [example.com/hold]}\n",
    );
    s.ok(&["delete", "cm", "held", "--wait=false"]);
    let held = json(&s.ok(&["get", "cm", "held", "-o", "json"]));
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    s.ok(&[
        "patch",
        "cm",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    assert!(s.fails(&["get", "cm", "held"]).contains("not found"));
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
          status: {type: object, properties: {ready: {type: boolean}}}
"#;

#[test]
fn custom_resources_are_served_from_their_definition() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    s.apply(CRD);
    s.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ]);
    s.apply("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n");
    let table = s.ok(&["get", "widgets"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "AGE"], "{table}");
    assert!(
        table.lines().nth(1).unwrap().split_whitespace().nth(1) == Some("3"),
        "{table}"
    );
    assert!(
        s.ok(&["get", "wg", "-o", "name"])
            .contains("widget.example.com/w")
    );
    s.ok(&[
        "patch",
        "widget",
        "w",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":5}}"#,
    ]);
    assert_eq!(
        s.ok(&["get", "widget", "w", "-o", "jsonpath={.spec.size}"]),
        "5"
    );
    // A strategic merge patch of a custom resource is refused as kube does.
    let err = s.fails(&[
        "patch",
        "widget",
        "w",
        "--type=strategic",
        "-p",
        r#"{"spec":{"size":6}}"#,
    ]);
    assert!(
        err.contains("UnsupportedMediaType") || err.contains("unknown format"),
        "{err}"
    );
    // The status subresource: the main resource ignores status writes.
    s.ok(&[
        "patch",
        "widget",
        "w",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":true}}"#,
    ]);
    assert_eq!(
        s.ok(&["get", "widget", "w", "-o", "jsonpath={.status.ready}"]),
        ""
    );
    s.ok(&[
        "patch",
        "widget",
        "w",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":true}}"#,
    ]);
    assert_eq!(
        s.ok(&["get", "widget", "w", "-o", "jsonpath={.status.ready}"]),
        "true"
    );
    // Deleting the definition stops serving the resource.
    s.ok(&["delete", "crd", "widgets.example.com"]);
    let err = s.fails(&["get", "widgets.example.com"]);
    assert!(
        err.contains("the server doesn't have a resource type")
            || err.contains("NotFound")
            || err.contains("not found"),
        "{err}"
    );
}

#[test]
fn the_python_client_lists_creates_patches_watches_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    if !have_kube_py() {
        return;
    }
    let program = r#"
import json
from kubernetes.client.rest import ApiException
v1 = client.CoreV1Api()
apps = client.AppsV1Api()
pods = v1.list_namespaced_pod("default")
print("pods", len(pods.items), bool(pods.metadata.resource_version))
body = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="py"),
    spec=client.V1DeploymentSpec(
        replicas=1,
        selector=client.V1LabelSelector(match_labels={"app": "py"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "py"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="busybox:1")]))))
made = apps.create_namespaced_deployment("default", body)
print("created", made.metadata.name, made.metadata.uid is not None)
patched = apps.patch_namespaced_deployment("py", "default", {"spec": {"replicas": 2}})
print("patched", patched.spec.replicas, patched.metadata.generation)
try:
    v1.read_namespaced_pod("nosuch", "default")
except ApiException as e:
    print("missing", e.status, json.loads(e.body)["reason"])
w = watch.Watch()
seen = []
v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="pycm"), data={"a": "1"}))
for event in w.stream(v1.list_namespaced_config_map, "default", field_selector="metadata.name=pycm", timeout_seconds=2):
    seen.append((event["type"], event["object"].metadata.name))
print("watched", seen)
rv = v1.list_namespaced_config_map("default").metadata.resource_version
v1.delete_namespaced_config_map("pycm", "default")
events = []
for event in w.stream(v1.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=2):
    events.append((event["type"], event["object"].metadata.name))
print("after", events)
apps.delete_namespaced_deployment("py", "default")
try:
    apps.read_namespaced_deployment("py", "default")
except ApiException as e:
    print("deleted", e.status)
"#;
    let out = s.python(program);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "pods 0 True",
        "created py True",
        "patched 2 2",
        "missing 404 NotFound",
        "watched [('ADDED', 'pycm')]",
        "after [('DELETED', 'pycm')]",
        "deleted 404",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_and_a_watch_resumes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut s) = server(dir.path()) else {
        return;
    };
    if !have_kube_py() {
        return;
    }
    // A writer storm: every create printed once acknowledged.
    let mut storm = WriteStorm::start(&s);
    storm.wait_for(150);
    s.kill();
    let acked = storm.finish();
    s.restart();
    let stored = s.configmap_versions();
    for (name, rv) in &acked {
        assert_eq!(
            stored.get(name),
            Some(rv),
            "acknowledged {name} at {rv} is missing after kill -9"
        );
    }
    // A watch from the last acknowledged revision sees every later change
    // exactly once: the writes after it (acknowledged or not) and new ones.
    let (_, last) = acked.iter().max_by_key(|(_, rv)| *rv).unwrap().clone();
    s.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-restart}\n");
    let out = s.kubectl(&["get", "--raw", &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={last}&timeoutSeconds=2")]);
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = text.lines().map(json).collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap())
        .collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "an event came twice: {names:?}");
    assert_eq!(names.last(), Some(&"after-restart"), "{names:?}");
    let expected_before: Vec<&str> = stored
        .iter()
        .filter(|(_, rv)| **rv > last)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        names.len(),
        expected_before.len() + 1,
        "{names:?} vs {expected_before:?}"
    );
    let revisions: Vec<i64> = events
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "events out of order: {revisions:?}"
    );
}

#[test]
fn deleting_a_namespace_deletes_its_content_then_the_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    s.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: doomed}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: doomed}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: doomed}\nstringData: {k: v}\n");
    s.apply(&DEPLOYMENT.replace(
        "name: demo\n  labels",
        "name: demo\n  namespace: doomed\n  labels",
    ));
    assert!(
        s.ok(&["delete", "namespace", "doomed", "--timeout=30s"])
            .contains(r#"namespace "doomed" deleted"#)
    );
    assert!(
        s.fails(&["get", "namespace", "doomed"])
            .contains("not found")
    );
    let left = s.ok(&[
        "get",
        "configmaps,secrets,deployments,serviceaccounts",
        "-n",
        "doomed",
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "left behind: {left}");
    // New content is refused while a namespace terminates.
    s.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: held}\nspec: {}\n");
    s.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pin, namespace: held, finalizers: [example.com/pin]}\n");
    s.ok(&["delete", "namespace", "held", "--wait=false"]);
    let phase = s.ok(&["get", "ns", "held", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Terminating");
    let out = s.kubectl_in(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late, namespace: held}\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("because it is being terminated"), "{err}");
    s.ok(&[
        "patch",
        "cm",
        "pin",
        "-n",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    s.ok(&["wait", "--for=delete", "namespace/held", "--timeout=30s"]);
}

#[test]
fn service_account_tokens_authenticate_until_the_account_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    if !have_kube_py() {
        return;
    }
    s.apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: robot-view}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{kind: ServiceAccount, name: robot}]\n");
    let out = s.python(
        "v1 = client.CoreV1Api()\nreq = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))\nr = v1.create_namespaced_service_account_token('robot', 'default', req)\nprint(r.status.token)\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let server_url = format!("https://127.0.0.1:{}", s.port);
    let as_robot = |args: &[&str]| {
        let flag = format!("--token={token}");
        let mut all = vec![
            "--kubeconfig=/dev/null",
            "--server",
            &server_url,
            "--insecure-skip-tls-verify",
            &flag,
        ];
        all.extend_from_slice(args);
        Command::new("kubectl")
            .args(&all)
            .envs(s.env().into_iter().filter(|(k, _)| *k != "KUBECONFIG"))
            .output()
            .unwrap()
    };
    let ok = as_robot(&["get", "configmaps"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let denied = as_robot(&["get", "secrets"]);
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains(
            r#"User "system:serviceaccount:default:robot" cannot list resource "secrets""#
        )
    );
    // whoami through the review API (JSON, as the Python client sends it).
    let out = s.python("a = client.AuthenticationV1Api()\nr = a.create_self_subject_review(client.V1SelfSubjectReview())\nprint(r.status.user_info.username, sorted(r.status.user_info.groups))\n");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("system:admin")
            || String::from_utf8_lossy(&out.stdout)
                .contains("admin ['system:authenticated', 'system:masters']"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    s.ok(&["delete", "serviceaccount", "robot"]);
    let gone = as_robot(&["get", "configmaps"]);
    let err = String::from_utf8_lossy(&gone.stderr);
    assert!(
        err.contains("Unauthorized") || err.contains("provide credentials"),
        "{err}"
    );
}

#[test]
fn events_are_one_set_through_both_event_apis() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    s.apply("apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {name: e1}\neventTime: \"2026-12-03T07:40:00.000000Z\"\nreportingController: example.com/ctl\nreportingInstance: i1\naction: Test\nreason: Tested\ntype: Normal\nnote: hello\nregarding: {kind: ConfigMap, name: x, namespace: default}\n");
    assert_eq!(
        s.ok(&[
            "get",
            "events",
            "e1",
            "-o",
            "jsonpath={.message} {.involvedObject.name} {.reportingComponent}"
        ]),
        "hello x example.com/ctl"
    );
    let table = s.ok(&["get", "events"]);
    assert!(
        table.contains("configmap/x") && table.contains("hello"),
        "{table}"
    );
    s.apply("apiVersion: v1\nkind: Event\nmetadata: {name: e2}\ninvolvedObject: {kind: Pod, name: web}\nreason: Started\nmessage: core event\ntype: Warning\n");
    assert_eq!(
        s.ok(&[
            "get",
            "events.v1.events.k8s.io",
            "e2",
            "-o",
            "jsonpath={.note} {.regarding.name}"
        ]),
        "core event web"
    );
    let out = s.kubectl_in(
        &["apply", "-f", "-"],
        "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {name: e3}\neventTime: \"2026-12-03T07:40:00.000000Z\"\nreportingController: c\nreportingInstance: i\naction: A\nreason: R\ntype: Normal\nbogus: 1\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(r#"unknown field "bogus""#), "{err}");
    let by_uid = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
        "-o",
        "name",
    ]);
    assert_eq!(by_uid.trim(), "event/e2");
}

#[test]
fn server_side_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    let out = s.kubectl_in(&["apply", "--dry-run=server", "-f", "-"], DEPLOYMENT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created (server dry run)"));
    assert!(s.fails(&["get", "deploy", "demo"]).contains("not found"));
    s.apply(DEPLOYMENT);
    // The generation, not the resourceVersion: the Deployment controller
    // writes status meanwhile, which is no change of the object's spec.
    let before = s.ok(&[
        "get",
        "deploy",
        "demo",
        "-o",
        "jsonpath={.metadata.generation}",
    ]);
    let out = s.kubectl_in(
        &["apply", "--dry-run=server", "-f", "-"],
        &DEPLOYMENT.replace("replicas: 2", "replicas: 9"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.ok(&["delete", "deploy", "demo", "--dry-run=server"]);
    s.ok(&[
        "scale",
        "deploy",
        "demo",
        "--replicas=7",
        "--dry-run=server",
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "demo",
            "-o",
            "jsonpath={.metadata.generation} {.spec.replicas}"
        ]),
        format!("{before} 2")
    );
    // An invalid object is refused by a dry run too.
    let bad = s.kubectl_in(
        &["apply", "--dry-run=server", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad}\n",
    );
    assert!(!bad.status.success());
}

#[test]
fn kubectl_generators_and_auth_commands_send_protobuf_that_is_understood() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    for args in [
        &["create", "namespace", "gen"][..],
        &[
            "create",
            "configmap",
            "cm",
            "-n",
            "gen",
            "--from-literal=a=1",
            "--from-literal=b=2",
        ],
        &[
            "create",
            "secret",
            "generic",
            "sec",
            "-n",
            "gen",
            "--from-literal=password=s3cr3t",
        ],
        &["create", "serviceaccount", "bot", "-n", "gen"],
        &[
            "create",
            "role",
            "reader",
            "-n",
            "gen",
            "--verb=get,list",
            "--resource=configmaps",
        ],
        &[
            "create",
            "rolebinding",
            "bot-reads",
            "-n",
            "gen",
            "--role=reader",
            "--serviceaccount=gen:bot",
        ],
        &[
            "create",
            "clusterrole",
            "gen-nodes",
            "--verb=get",
            "--resource=nodes",
        ],
        &[
            "create",
            "deployment",
            "web",
            "-n",
            "gen",
            "--image=busybox:1",
            "--replicas=2",
            "--port=80",
        ],
        &[
            "create",
            "job",
            "once",
            "-n",
            "gen",
            "--image=busybox:1",
            "--",
            "true",
        ],
        &[
            "create",
            "cronjob",
            "tick",
            "-n",
            "gen",
            "--image=busybox:1",
            "--schedule=*/5 * * * *",
            "--",
            "true",
        ],
        &["create", "priorityclass", "high", "--value=1000"],
        &["create", "quota", "q", "-n", "gen", "--hard=pods=10"],
        &[
            "create",
            "poddisruptionbudget",
            "pdb",
            "-n",
            "gen",
            "--selector=app=web",
            "--min-available=1",
        ],
    ] {
        let out = s.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        s.ok(&[
            "get",
            "cm",
            "cm",
            "-n",
            "gen",
            "-o",
            "jsonpath={.data.a}{.data.b}"
        ]),
        "12"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "secret",
            "sec",
            "-n",
            "gen",
            "-o",
            "jsonpath={.data.password}"
        ]),
        "czNjcjN0"
    );
    let deploy = json(&s.ok(&["get", "deploy", "web", "-n", "gen", "-o", "json"]));
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    assert_eq!(
        s.ok(&[
            "get",
            "cronjob",
            "tick",
            "-n",
            "gen",
            "-o",
            "jsonpath={.spec.schedule}"
        ]),
        "*/5 * * * *"
    );
    let job = json(&s.ok(&["get", "job", "once", "-n", "gen", "-o", "json"]));
    assert!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"].is_string(),
        "{job}"
    );

    // auth whoami / can-i, as the admin and as the ServiceAccount.
    let whoami = s.ok(&["auth", "whoami"]);
    assert!(
        whoami.contains("admin") && whoami.contains("system:masters"),
        "{whoami}"
    );
    assert_eq!(
        s.ok(&["auth", "can-i", "create", "deployments"]).trim(),
        "yes"
    );
    let sa = ["--as=system:serviceaccount:gen:bot", "-n", "gen"];
    assert_eq!(
        s.kubectl(&["auth", "can-i", "list", "configmaps", sa[0], sa[1], sa[2]])
            .status
            .code(),
        Some(0)
    );
    let no = s.kubectl(&["auth", "can-i", "delete", "configmaps", sa[0], sa[1], sa[2]]);
    assert_eq!(String::from_utf8_lossy(&no.stdout).trim(), "no");
    let list = s.ok(&["auth", "can-i", "--list", sa[0], sa[1], sa[2]]);
    assert!(
        list.contains("configmaps") && list.contains("[get list]"),
        "{list}"
    );

    // create token: a TokenRequest, then the token works.
    let token = s.ok(&["create", "token", "bot", "-n", "gen"]);
    assert_eq!(token.trim().split('.').count(), 3, "{token}");
}

#[test]
fn cascade_modes_prune_and_crd_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    let owned = |owner: &str, child: &str| {
        s.apply(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {owner}}}\n"
        ));
        let uid = s.ok(&["get", "cm", owner, "-o", "jsonpath={.metadata.uid}"]);
        s.apply(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {child}\n  ownerReferences: [{{apiVersion: v1, kind: ConfigMap, name: {owner}, uid: {uid}}}]\n"
        ));
    };
    // Orphan: the owner goes, the dependent stays without its reference.
    owned("o1", "c1");
    assert!(
        s.ok(&["delete", "cm", "o1", "--cascade=orphan", "--timeout=20s"])
            .contains("deleted")
    );
    assert!(s.fails(&["get", "cm", "o1"]).contains("not found"));
    assert_eq!(
        s.ok(&[
            "get",
            "secret",
            "c1",
            "-o",
            "jsonpath={.metadata.ownerReferences}"
        ]),
        ""
    );
    // Foreground: the dependents go first, then the owner.
    owned("o2", "c2");
    assert!(
        s.ok(&[
            "delete",
            "cm",
            "o2",
            "--cascade=foreground",
            "--timeout=20s"
        ])
        .contains("deleted")
    );
    assert!(s.fails(&["get", "secret", "c2"]).contains("not found"));
    assert!(s.fails(&["get", "cm", "o2"]).contains("not found"));

    // apply --prune removes what left the file.
    let both = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pa, labels: {set: p}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: pb, labels: {set: p}}\n";
    let out = s.kubectl_in(&["apply", "--prune", "-l", "set=p", "-f", "-"], both);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.kubectl_in(
        &["apply", "--prune", "-l", "set=p", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pa, labels: {set: p}}\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configmap/pb pruned"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(s.fails(&["get", "cm", "pb"]).contains("not found"));

    // A CRD's schema defaults fill absent fields.
    s.apply(&CRD.replace("spec: {type: object, properties: {size: {type: integer}}}", "spec: {type: object, properties: {size: {type: integer, default: 7}, mode: {type: string, default: fast}}}"));
    s.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ]);
    s.apply("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: d}\nspec: {mode: slow}\n");
    assert_eq!(
        s.ok(&[
            "get",
            "widget",
            "d",
            "-o",
            "jsonpath={.spec.size} {.spec.mode}"
        ]),
        "7 slow"
    );
}
