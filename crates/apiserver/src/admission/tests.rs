//! Admission through the HTTP router over an in-memory store: the wiring
//! in the create, update and delete paths, and each plugin's texts.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::podsecurity::{self, Level, LevelVersion};
use crate::api::Api;

struct Server {
    router: axum::Router,
}

struct Answer {
    status: u16,
    body: Value,
    warnings: Vec<String>,
}

impl Server {
    async fn new() -> Server {
        let api = Api::new(Arc::new(berth_kv::memory::MemoryStore::new()), None);
        let server = Server {
            router: crate::api::router(api),
        };
        server.namespace("team", json!({})).await;
        server
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        let body = match body {
            Some(b) => {
                request = request.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).expect("request"))
            .await
            .expect("response");
        let status = response.status().as_u16();
        let warnings = response
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            warnings,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(Method::GET, path, None).await.body
    }

    async fn namespace(&self, name: &str, labels: Value) {
        let a = self
            .post(
                "/api/v1/namespaces",
                json!({"metadata": {"name": name, "labels": labels}}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
    }

    async fn pod(&self, ns: &str, pod: Value) -> Answer {
        self.post(&format!("/api/v1/namespaces/{ns}/pods"), pod)
            .await
    }
}

fn pod(name: &str, container: Value) -> Value {
    let mut c = json!({"name": "main", "image": "busybox"});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), container.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    json!({"metadata": {"name": name}, "spec": {"containers": [c]}})
}

fn message(a: &Answer) -> &str {
    a.body["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn pods_get_default_tolerations_and_service_account() {
    let s = Server::new().await;
    let a = s.pod("team", pod("web", json!({}))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["spec"]["serviceAccountName"], "default");
    assert_eq!(a.body["spec"]["serviceAccount"], "default");
    let tolerations = a.body["spec"]["tolerations"].as_array().unwrap();
    assert_eq!(tolerations.len(), 2);
    assert_eq!(tolerations[0]["key"], "node.kubernetes.io/not-ready");
    assert_eq!(tolerations[1]["tolerationSeconds"], 300);

    let mut p = pod("robot", json!({}));
    p["spec"]["serviceAccountName"] = json!("robot");
    let a = s.pod("team", p).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        message(&a),
        "pods \"robot\" is forbidden: error looking up service account team/robot: serviceaccount \"robot\" not found"
    );
}

#[tokio::test]
async fn limit_ranges_default_and_bound_containers() {
    let s = Server::new().await;
    let a = s
        .post(
            "/api/v1/namespaces/team/limitranges",
            json!({"metadata": {"name": "lr"}, "spec": {"limits": [{
                "type": "Container",
                "max": {"cpu": "1", "memory": "1Gi"},
                "min": {"cpu": "100m"},
                "defaultRequest": {"cpu": "200m"},
                "maxLimitRequestRatio": {"cpu": "5"},
            }]}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    // LimitRange defaulting: default <- max, defaultRequest <- default.
    assert_eq!(
        a.body["spec"]["limits"][0]["default"],
        json!({"cpu": "1", "memory": "1Gi"})
    );
    assert_eq!(
        a.body["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "200m", "memory": "1Gi"})
    );

    let a = s.pod("team", pod("plain", json!({}))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let resources = &a.body["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"], json!({"cpu": "1", "memory": "1Gi"}));
    assert_eq!(
        resources["requests"],
        json!({"cpu": "200m", "memory": "1Gi"})
    );
    assert_eq!(
        a.body["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container main; cpu, memory limit for container main"
    );
    assert_eq!(a.body["status"]["qosClass"], "Burstable");

    let a = s
        .pod(
            "team",
            pod("big", json!({"resources": {"limits": {"cpu": "2"}}})),
        )
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        message(&a),
        "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
    );

    let a = s
        .pod(
            "team",
            pod(
                "tiny",
                json!({"resources": {"requests": {"cpu": "50m"}, "limits": {"cpu": "500m"}}}),
            ),
        )
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        message(&a),
        "pods \"tiny\" is forbidden: [minimum cpu usage per Container is 100m, but request is 50m, cpu max limit to request ratio per Container is 5, but provided ratio is 10.000000]"
    );

    let a = s
        .pod(
            "team",
            pod("ok", json!({"resources": {"requests": {"cpu": "0.25"}, "limits": {"cpu": "1000m", "memory": "512Mi"}}})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    // Requests default from the pod's own limits first: nothing is left
    // for LimitRanger to set.
    assert_eq!(
        a.body["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "0.25", "memory": "512Mi"})
    );
    assert!(a.body["metadata"]["annotations"]["kubernetes.io/limit-ranger"].is_null());
}

#[tokio::test]
async fn limit_ranges_bound_pods_and_claims() {
    let s = Server::new().await;
    let a = s
        .post(
            "/api/v1/namespaces/team/limitranges",
            json!({"metadata": {"name": "lr"}, "spec": {"limits": [
                {"type": "Pod", "max": {"memory": "1Gi"}},
                {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}},
            ]}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let mut p = pod("two", json!({"resources": {"limits": {"memory": "768Mi"}}}));
    p["spec"]["containers"].as_array_mut().unwrap().push(
        json!({"name": "side", "image": "busybox", "resources": {"limits": {"memory": "512Mi"}}}),
    );
    let a = s.pod("team", p).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        message(&a),
        "pods \"two\" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 1280Mi"
    );
    let claim = |name: &str, size: &str| {
        json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size}}}})
    };
    let a = s
        .post(
            "/api/v1/namespaces/team/persistentvolumeclaims",
            claim("small", "500Mi"),
        )
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        message(&a),
        "persistentvolumeclaims \"small\" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"
    );
    let a = s
        .post(
            "/api/v1/namespaces/team/persistentvolumeclaims",
            claim("large", "20Gi"),
        )
        .await;
    assert_eq!(
        message(&a),
        "persistentvolumeclaims \"large\" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"
    );
    let a = s
        .post(
            "/api/v1/namespaces/team/persistentvolumeclaims",
            claim("fine", "5Gi"),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    // Growing the claim past the max on update is refused too.
    let mut grown = a.body.clone();
    grown["spec"]["resources"]["requests"]["storage"] = json!("11Gi");
    let a = s
        .call(
            Method::PUT,
            "/api/v1/namespaces/team/persistentvolumeclaims/fine",
            Some(grown),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
}

#[tokio::test]
async fn bad_quantities_are_bad_requests() {
    let s = Server::new().await;
    let a = s
        .post(
            "/api/v1/namespaces/team/limitranges",
            json!({"metadata": {"name": "lr"}, "spec": {"limits": [
                {"type": "Container", "max": {"cpu": "1 core"}}]}}),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        message(&a),
        "LimitRange in version \"v1\" cannot be handled as a LimitRange: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    let a = s
        .pod(
            "team",
            pod("x", json!({"resources": {"limits": {"cpu": "２"}}})),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
}

#[tokio::test]
async fn quotas_count_and_refuse() {
    let s = Server::new().await;
    let a = s
        .post(
            "/api/v1/namespaces/team/resourcequotas",
            json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "2", "count/configmaps": "1"}}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(
        a.body["status"],
        json!({"hard": {"count/configmaps": "1", "pods": "2"}, "used": {"count/configmaps": "0", "pods": "0"}})
    );
    for name in ["a", "b"] {
        let r = s.pod("team", pod(name, json!({}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let q = s.get("/api/v1/namespaces/team/resourcequotas/q").await;
    assert_eq!(q["status"]["used"]["pods"], "2");
    let a = s.pod("team", pod("c", json!({}))).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        message(&a),
        "pods \"c\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    );
    // Deleting frees the quota, and the status follows.
    let d = s
        .call(Method::DELETE, "/api/v1/namespaces/team/pods/a", None)
        .await;
    assert_eq!(d.status, 200, "{}", d.body);
    let q = s.get("/api/v1/namespaces/team/resourcequotas/q").await;
    assert_eq!(q["status"]["used"]["pods"], "1");
    let a = s.pod("team", pod("c", json!({}))).await;
    assert_eq!(a.status, 201, "{}", a.body);

    let cm = |name: &str| json!({"metadata": {"name": name}, "data": {"k": "v"}});
    assert_eq!(
        s.post("/api/v1/namespaces/team/configmaps", cm("one"))
            .await
            .status,
        201
    );
    let a = s
        .post("/api/v1/namespaces/team/configmaps", cm("two"))
        .await;
    assert_eq!(
        message(&a),
        "configmaps \"two\" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1"
    );
    // A dry run charges nothing.
    let a = s
        .call(
            Method::DELETE,
            "/api/v1/namespaces/team/configmaps/one?dryRun=All",
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    let q = s.get("/api/v1/namespaces/team/resourcequotas/q").await;
    assert_eq!(q["status"]["used"]["count/configmaps"], "1");

    // Raising the quota: status.hard follows and used is recounted.
    let mut q2 = q.clone();
    q2["spec"]["hard"]["services"] = json!("1");
    let a = s
        .call(
            Method::PUT,
            "/api/v1/namespaces/team/resourcequotas/q",
            Some(q2),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let q = s.get("/api/v1/namespaces/team/resourcequotas/q").await;
    assert_eq!(q["status"]["hard"]["services"], "1");
    assert_eq!(q["status"]["used"]["services"], "0");
}

#[tokio::test]
async fn compute_quotas_require_and_sum_resources() {
    let s = Server::new().await;
    let a = s
        .post(
            "/api/v1/namespaces/team/resourcequotas",
            json!({"metadata": {"name": "compute"}, "spec": {"hard": {
                "requests.cpu": "1", "limits.memory": "1Gi", "limits.cpu": "2"}}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = s.pod("team", pod("bare", json!({}))).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        message(&a),
        "pods \"bare\" is forbidden: failed quota: compute: must specify limits.cpu for: main; limits.memory for: main; requests.cpu for: main"
    );
    let sized = |name: &str, cpu: &str| {
        pod(
            name,
            json!({"resources": {"limits": {"cpu": cpu, "memory": "512Mi"}}}),
        )
    };
    assert_eq!(s.pod("team", sized("one", "600m")).await.status, 201);
    let a = s.pod("team", sized("two", "600m")).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        message(&a),
        "pods \"two\" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1"
    );
    let q = s
        .get("/api/v1/namespaces/team/resourcequotas/compute")
        .await;
    assert_eq!(
        q["status"]["used"],
        json!({"limits.cpu": "600m", "limits.memory": "512Mi", "requests.cpu": "600m"})
    );
}

#[tokio::test]
async fn pod_security_enforces_and_warns() {
    let s = Server::new().await;
    s.namespace(
        "locked",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    let a = s.pod("locked", pod("x", json!({}))).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        message(&a),
        "pods \"x\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"main\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"main\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"main\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"main\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
    let mut good = pod(
        "good",
        json!({"securityContext": {"allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}),
    );
    good["spec"]["securityContext"] =
        json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
    let a = s.pod("locked", good).await;
    assert_eq!(a.status, 201, "{}", a.body);

    // Workload templates are warned about, not refused.
    let a = s
        .post(
            "/apis/apps/v1/namespaces/locked/deployments",
            json!({"metadata": {"name": "d"}, "spec": {
                "selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
    assert!(
        a.warnings[0].contains("would violate PodSecurity"),
        "{:?}",
        a.warnings
    );
    assert!(
        a.warnings[0].contains("restricted:latest"),
        "{:?}",
        a.warnings
    );

    // warn only: admitted with a warning.
    s.namespace(
        "watched",
        json!({"pod-security.kubernetes.io/warn": "baseline", "pod-security.kubernetes.io/warn-version": "v1.30"}),
    )
    .await;
    let a = s
        .pod(
            "watched",
            pod("p", json!({"securityContext": {"privileged": true}})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
    assert!(
        a.warnings[0].contains("baseline:v1.30")
            && a.warnings[0].contains(
                r#"privileged (container \"main\" must not set securityContext.privileged=true)"#
            ),
        "{:?}",
        a.warnings
    );

    // Tightening the enforce level warns about existing pods.
    let mut ns = s.get("/api/v1/namespaces/watched").await;
    ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = json!("baseline");
    let a = s
        .call(Method::PUT, "/api/v1/namespaces/watched", Some(ns))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.warnings.len(), 2, "{:?}", a.warnings);
    assert!(a.warnings[1].contains("p: privileged"), "{:?}", a.warnings);
}

#[tokio::test]
async fn pod_security_labels_are_validated() {
    let s = Server::new().await;
    let a = s
        .post(
            "/api/v1/namespaces",
            json!({"metadata": {"name": "bad", "labels": {
                "pod-security.kubernetes.io/enforce": "strict"}}}),
        )
        .await;
    assert_eq!(a.status, 422);
    assert_eq!(
        message(&a),
        "namespaces \"bad\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted"
    );
    let a = s
        .post(
            "/api/v1/namespaces",
            json!({"metadata": {"name": "bad", "labels": {
                "pod-security.kubernetes.io/warn-version": "1.30"}}}),
        )
        .await;
    assert_eq!(a.status, 422);
    assert!(
        message(&a).contains("must be \\\"latest\\\" or \\\"v1.x\\\"")
            || message(&a).contains("must be \"latest\" or \"v1.x\""),
        "{}",
        message(&a)
    );
}

fn check(level: Level, pod: Value) -> String {
    let lv = LevelVersion { level, minor: None };
    let meta = pod["metadata"].as_object().cloned().unwrap_or_default();
    podsecurity::describe(&podsecurity::evaluate(&lv, &meta, &pod["spec"]))
}

fn restricted_ok() -> Value {
    json!({"metadata": {}, "spec": {
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "main", "image": "i", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}})
}

#[test]
fn baseline_checks_each_rule() {
    use Level::Baseline;
    assert_eq!(check(Baseline, restricted_ok()), "");
    assert_eq!(
        check(Baseline, json!({"spec": {"containers": [{"name": "a"}]}})),
        ""
    );
    let cases = [
        (
            json!({"spec": {"hostNetwork": true, "hostPID": true, "containers": []}}),
            "host namespaces (hostNetwork, hostPID)",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "securityContext": {"privileged": true}},
                {"name": "b", "securityContext": {"privileged": true}}]}}),
            "privileged (containers \"a\", \"b\" must not set securityContext.privileged=true)",
        ),
        (
            json!({"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}], "containers": []}}),
            "hostPath volumes (volume \"h\")",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 80}]}]}}),
            "hostPort (container \"a\" uses hostPorts 80, 8080)",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["NET_ADMIN", "CHOWN", "SYS_ADMIN"]}}}]}}),
            "non-default capabilities (container \"a\" must not include \"NET_ADMIN\", \"SYS_ADMIN\" in securityContext.capabilities.add)",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]}}),
            "forbidden AppArmor profile (container \"a\" must not set AppArmor profile type to \"Unconfined\")",
        ),
        (
            json!({"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}}, "spec": {"containers": [{"name": "a"}]}}),
            "forbidden AppArmor profile (annotation must not set AppArmor profile type to \"container.apparmor.security.beta.kubernetes.io/a=\\\"unconfined\\\"\")",
        ),
        (
            json!({"spec": {"securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "root"}}, "containers": []}}),
            "seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type \"spc_t\"; user may not be set)",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "securityContext": {"procMount": "Unmasked"}}]}}),
            "procMount (container \"a\" must not set securityContext.procMount to \"Unmasked\")",
        ),
        (
            json!({"spec": {"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": []}}),
            "seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")",
        ),
        (
            json!({"spec": {"securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}, {"name": "kernel.msgmax", "value": "1"}]}, "containers": []}}),
            "forbidden sysctls (kernel.msgmax)",
        ),
    ];
    for (pod, want) in cases {
        assert_eq!(check(Baseline, pod), want);
    }
}

#[test]
fn restricted_checks_each_rule() {
    use Level::Restricted;
    assert_eq!(check(Restricted, restricted_ok()), "");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut p = restricted_ok();
        f(&mut p);
        check(Restricted, p)
    };
    assert_eq!(
        with(
            &|p| p["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
                json!(true)
        ),
        "allowPrivilegeEscalation != false (container \"main\" must set securityContext.allowPrivilegeEscalation=false)"
    );
    assert_eq!(
        with(
            &|p| p["spec"]["containers"][0]["securityContext"]["capabilities"] =
                json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN"]})
        ),
        "unrestricted capabilities (container \"main\" must not include \"CHOWN\" in securityContext.capabilities.add)"
    );
    assert_eq!(
        with(
            &|p| p["spec"]["volumes"] = json!([{"name": "n", "nfs": {}}, {"name": "e", "emptyDir": {}}, {"name": "g", "gitRepo": {}}])
        ),
        "restricted volume types (volumes [\"g\" \"n\"] have restricted types)"
    );
    assert_eq!(
        with(&|p| p["spec"]["securityContext"]["runAsNonRoot"] = json!(false)),
        "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)"
    );
    assert_eq!(
        with(&|p| p["spec"]["containers"][0]["securityContext"]["runAsUser"] = json!(0)),
        "runAsUser=0 (container \"main\" must not set runAsUser=0)"
    );
    assert_eq!(
        with(
            &|p| p["spec"]["containers"][0]["securityContext"]["seccompProfile"] =
                json!({"type": "Unconfined"})
        ),
        "seccompProfile (container \"main\" must not set securityContext.seccompProfile.type to \"Unconfined\")"
    );
    // A hostPath volume is a restricted volume type at restricted (the
    // baseline hostPath check is replaced).
    assert_eq!(
        with(&|p| p["spec"]["volumes"] = json!([{"name": "h", "hostPath": {"path": "/"}}])),
        "restricted volume types (volumes [\"h\"] have restricted types)"
    );
    // Older versions skip the newer checks.
    let lv = LevelVersion {
        level: Restricted,
        minor: Some(22),
    };
    let mut p = restricted_ok();
    p["spec"]["securityContext"]["runAsUser"] = json!(0);
    let meta = serde_json::Map::new();
    assert!(podsecurity::evaluate(&lv, &meta, &p["spec"]).is_empty());
}

/// A body whose kind or apiVersion does not match its URL is refused with
/// kube's texts, and nothing is stored; a body without them takes the
/// URL's (the Python client sends none).
#[tokio::test]
async fn kind_and_version_must_match_the_path() {
    let s = Server::new().await;
    let a = s
        .post(
            "/api/v1/namespaces/team/configmaps",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(
        a.body["message"],
        "the kind in the data (Secret) does not match the expected kind (ConfigMap)"
    );
    let a = s
        .post(
            "/api/v1/namespaces/team/configmaps",
            json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body["message"],
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );
    let listed = s.get("/api/v1/namespaces/team/configmaps").await;
    assert_eq!(listed["items"], json!([]), "nothing stored");
    let a = s
        .post(
            "/api/v1/namespaces/team/configmaps",
            json!({"metadata": {"name": "bare"}, "data": {"k": "v"}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["kind"], "ConfigMap");
    assert_eq!(a.body["apiVersion"], "v1");
    // A namespace in the body other than the URL's is refused.
    let a = s
        .post(
            "/api/v1/namespaces/team/configmaps",
            json!({"metadata": {"name": "y", "namespace": "other"}}),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
}

#[tokio::test]
async fn claims_without_a_class_get_the_default_one() {
    let s = Server::new().await;
    let claim = |name: &str, class: Option<&str>| {
        let mut c = json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        if let Some(class) = class {
            c["spec"]["storageClassName"] = json!(class);
        }
        c
    };
    // No default class yet: none set.
    let a = s
        .post(
            "/api/v1/namespaces/team/persistentvolumeclaims",
            claim("before", None),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(a.body["spec"]["storageClassName"].is_null());
    let a = s
        .post(
            "/apis/storage.k8s.io/v1/storageclasses",
            json!({"metadata": {"name": "local-path",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "berth.dev/local-path"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = s
        .post(
            "/api/v1/namespaces/team/persistentvolumeclaims",
            claim("after", None),
        )
        .await;
    assert_eq!(a.body["spec"]["storageClassName"], "local-path");
    // An explicit class, even "", is kept.
    let a = s
        .post(
            "/api/v1/namespaces/team/persistentvolumeclaims",
            claim("none", Some("")),
        )
        .await;
    assert_eq!(a.body["spec"]["storageClassName"], "");
    let a = s
        .post(
            "/api/v1/namespaces/team/persistentvolumeclaims",
            claim("fast", Some("fast")),
        )
        .await;
    assert_eq!(a.body["spec"]["storageClassName"], "fast");
}
