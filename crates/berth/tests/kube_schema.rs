//! `berth server`'s schemas driven by kubectl: `kubectl explain` over the
//! OpenAPI v3 documents (built-in kinds and CRDs), and unknown fields
//! under `--validate=strict` (kubectl's default), `warn` and `false`.

use std::path::Path;

use berth_testutil::{KubeServer, have_kubectl};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

fn server(dir: &Path) -> Option<KubeServer> {
    if !have_kubectl() {
        return None;
    }
    Some(KubeServer::start(bin(), dir, &[]))
}

const MISSPELLED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicsa: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: main, image: "busybox:1"}]
"#;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn kubectl_explain_reads_the_built_in_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    let strategy = s.ok(&["explain", "deployment.spec.strategy"]);
    for want in [
        "GROUP:      apps",
        "KIND:       Deployment",
        "FIELD: strategy <DeploymentStrategy>",
        "DeploymentStrategy describes how to replace existing pods with new ones.",
        "rollingUpdate\t<RollingUpdateDeployment>",
        "type\t<string>",
    ] {
        assert!(strategy.contains(want), "{want:?} missing:\n{strategy}");
    }
    let surge = s.ok(&["explain", "deploy.spec.strategy.rollingUpdate.maxSurge"]);
    assert!(surge.contains("FIELD: maxSurge <IntOrString>"), "{surge}");
    let pods = s.ok(&["explain", "pods", "--recursive"]);
    for want in [
        "KIND:       Pod",
        "  spec\t<PodSpec>",
        "    containers\t<[]Container> -required-",
        "      image\t<string>",
        "  status\t<PodStatus>",
    ] {
        assert!(
            pods.contains(want),
            "{want:?} missing from explain pods --recursive"
        );
    }
    let jobs = s.ok(&["explain", "jobs.spec.backoffLimit"]);
    assert!(jobs.contains("GROUP:      batch"), "{jobs}");
    assert!(jobs.contains("FIELD: backoffLimit <integer>"), "{jobs}");
    let err = s.fails(&["explain", "deployment.spec.replicsa"]);
    assert!(err.contains("field \"replicsa\" does not exist"), "{err}");
}

#[test]
fn unknown_fields_follow_field_validation() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    // kubectl's default is --validate=strict: the server refuses.
    let out = s.kubectl_in(&["apply", "-f", "-"], MISSPELLED);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        "Error from server (BadRequest): error when creating \"STDIN\": Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replicsa\""
    );
    let err = s.fails(&["get", "deployment", "web"]);
    assert!(err.contains("NotFound"), "{err}");
    // Several unknown fields, one message.
    let two = MISSPELLED.replace("image: \"busybox:1\"", "image: \"busybox:1\", imagee: x");
    let out = s.kubectl_in(&["create", "-f", "-"], &two);
    assert!(
        stderr(&out).contains("strict decoding error: unknown field \"spec.replicsa\", unknown field \"spec.template.spec.containers[0].imagee\""),
        "{}",
        stderr(&out)
    );
    // --validate=warn: created, warned, the field dropped.
    let out = s.kubectl_in(&["apply", "--validate=warn", "-f", "-"], MISSPELLED);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        "Warning: unknown field \"spec.replicsa\""
    );
    let spec = s.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec}"]);
    assert!(!spec.contains("replicsa"), "{spec}");
    assert_eq!(
        s.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "1"
    );
    s.ok(&["delete", "deployment", "web"]);
    // --validate=false: created silently, the field dropped all the same.
    let out = s.kubectl_in(&["apply", "--validate=false", "-f", "-"], MISSPELLED);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Warning"), "{}", stderr(&out));
    let spec = s.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec}"]);
    assert!(!spec.contains("replicsa"), "{spec}");
    // A correct manifest applies cleanly (no warnings) over it.
    let fixed = MISSPELLED.replace("replicsa", "replicas");
    let out = s.kubectl_in(&["apply", "-f", "-"], &fixed);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("unknown field"), "{}", stderr(&out));
    assert_eq!(
        s.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "2"
    );
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: crontabs.stable.example.com}
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        description: A CronTab runs things on a schedule.
        type: object
        properties:
          spec:
            type: object
            description: What to run and when.
            required: [cronSpec]
            properties:
              cronSpec: {type: string, description: The schedule.}
              replicas: {type: integer, minimum: 1, maximum: 10}
              mode: {type: string, enum: [a, b]}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

#[test]
fn custom_resources_are_explained_pruned_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server(dir.path()) else { return };
    s.apply(CRD);
    s.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/crontabs.stable.example.com",
        "--timeout=10s",
    ]);
    let explained = s.ok(&["explain", "crontab.spec"]);
    for want in [
        "KIND:       CronTab",
        "What to run and when.",
        "cronSpec\t<string> -required-",
        "The schedule.",
        "replicas\t<integer>",
    ] {
        assert!(explained.contains(want), "{want:?} missing:\n{explained}");
    }
    let root = s.ok(&["explain", "crontabs", "--recursive"]);
    assert!(root.contains("  metadata\t<ObjectMeta>"), "{root}");
    let cr = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: c1}\nspec: {cronSpec: '* * * * *', replicsa: 2, extra: {any: {thing: 1}}}\n";
    let out = s.kubectl_in(&["apply", "-f", "-"], cr);
    assert_eq!(
        stderr(&out).trim(),
        "Error from server (BadRequest): error when creating \"STDIN\": CronTab in version \"v1\" cannot be handled as a CronTab: strict decoding error: unknown field \"spec.replicsa\""
    );
    let out = s.kubectl_in(&["apply", "--validate=warn", "-f", "-"], cr);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        "Warning: unknown field \"spec.replicsa\""
    );
    assert_eq!(
        s.ok(&["get", "ct", "c1", "-o", "jsonpath={.spec}"]),
        r#"{"cronSpec":"* * * * *","extra":{"any":{"thing":1}}}"#
    );
    let bad = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: c2}\nspec: {replicas: 20, mode: c}\n";
    let out = s.kubectl_in(&["apply", "-f", "-"], bad);
    let err = stderr(&out);
    assert!(!out.status.success());
    for want in [
        "The CronTab \"c2\" is invalid:",
        "spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"",
        "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10",
        "spec.cronSpec: Required value",
    ] {
        assert!(err.contains(want), "{want:?} missing:\n{err}");
    }
}
