//! Bodies encoded with the typed messages of the same descriptor crate
//! (rust-protobuf), decoded and compared with the JSON Kubernetes expects.

use ::protobuf::{Message, MessageField};
use k8s_rs_pb::api::{
    apps::v1 as apps, authentication::v1 as authn, authorization::v1 as authz,
    coordination::v1 as coordination, core::v1 as core, policy::v1 as policy,
};
use k8s_rs_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_rs_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_rs_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_rs_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_rs_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::protobuf::{MAGIC, ProtobufError, decode};

fn s(x: &str) -> Option<String> {
    Some(x.to_owned())
}

fn some<T: Default>(f: impl FnOnce(&mut T)) -> MessageField<T> {
    let mut v = T::default();
    f(&mut v);
    MessageField::some(v)
}

/// The magic and the `runtime.Unknown` envelope around a message, the way
/// client-go writes it (empty contentEncoding and contentType present).
pub(super) fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        typeMeta: some(|t: &mut TypeMeta| {
            t.apiVersion = s(api_version);
            t.kind = s(kind);
        }),
        raw: Some(raw),
        contentEncoding: s(""),
        contentType: s(""),
        ..Default::default()
    };
    let mut out = MAGIC.to_vec();
    out.extend(unknown.write_to_bytes().unwrap_or_default());
    out
}

fn body(api_version: &str, kind: &str, m: &impl Message) -> Vec<u8> {
    envelope(api_version, kind, m.write_to_bytes().unwrap_or_default())
}

fn decoded(b: &[u8]) -> Value {
    match decode(b) {
        Ok(v) => v,
        Err(e) => panic!("decode failed: {e}"),
    }
}

/// ObjectMeta as Go writes it: every non-pointer field present, zero or not.
fn go_meta(name: &str, namespace: &str) -> MessageField<meta::ObjectMeta> {
    some(|m: &mut meta::ObjectMeta| {
        m.name = s(name);
        m.generateName = s("");
        m.namespace = s(namespace);
        m.selfLink = s("");
        m.uid = s("");
        m.resourceVersion = s("");
        m.generation = Some(0);
        m.creationTimestamp = MessageField::some(meta::Time::default());
    })
}

fn qty(v: &str) -> Quantity {
    Quantity {
        string: s(v),
        ..Default::default()
    }
}

fn int_or_string_int(v: i32) -> MessageField<IntOrString> {
    some(|i: &mut IntOrString| {
        i.type_ = Some(0);
        i.intVal = Some(v);
        i.strVal = s("");
    })
}

fn int_or_string_str(v: &str) -> MessageField<IntOrString> {
    some(|i: &mut IntOrString| {
        i.type_ = Some(1);
        i.intVal = Some(0);
        i.strVal = s(v);
    })
}

#[test]
fn deployment_with_intstr_quantities_env_probe_and_volume() {
    let container = core::Container {
        name: s("web"),
        image: s("nginx:1.27"),
        ports: vec![core::ContainerPort {
            name: s(""),
            hostPort: Some(0),
            containerPort: Some(80),
            protocol: s("TCP"),
            hostIP: s(""),
            ..Default::default()
        }],
        env: vec![
            core::EnvVar {
                name: s("A"),
                value: s("1"),
                ..Default::default()
            },
            core::EnvVar {
                name: s("B"),
                value: s(""),
                valueFrom: some(|v: &mut core::EnvVarSource| {
                    v.secretKeyRef = some(|k: &mut core::SecretKeySelector| {
                        k.localObjectReference =
                            some(|l: &mut core::LocalObjectReference| l.name = s("creds"));
                        k.key = s("token");
                        k.optional = Some(false);
                    })
                }),
                ..Default::default()
            },
        ],
        resources: some(|r: &mut core::ResourceRequirements| {
            r.limits.insert("cpu".into(), qty("500m"));
            r.limits.insert("memory".into(), qty("128Mi"));
            r.requests.insert("cpu".into(), qty("250m"));
        }),
        readinessProbe: some(|p: &mut core::Probe| {
            p.handler = some(|h: &mut core::ProbeHandler| {
                h.httpGet = some(|g: &mut core::HTTPGetAction| {
                    g.path = s("/healthz");
                    g.port = int_or_string_str("http");
                    g.host = s("");
                    g.scheme = s("HTTP");
                })
            });
            p.initialDelaySeconds = Some(5);
            p.timeoutSeconds = Some(0);
            p.periodSeconds = Some(0);
        }),
        stdin: Some(false),
        tty: Some(false),
        terminationMessagePath: s(""),
        ..Default::default()
    };
    let deployment = apps::Deployment {
        metadata: some(|m: &mut meta::ObjectMeta| {
            *m = go_meta("web", "default").unwrap_or_default();
            m.labels.insert("app".into(), "web".into());
        }),
        spec: some(|spec: &mut apps::DeploymentSpec| {
            spec.replicas = Some(0);
            spec.selector = some(|l: &mut meta::LabelSelector| {
                l.matchLabels.insert("app".into(), "web".into());
            });
            spec.template = some(|t: &mut core::PodTemplateSpec| {
                t.metadata = some(|m: &mut meta::ObjectMeta| {
                    *m = go_meta("", "").unwrap_or_default();
                    m.labels.insert("app".into(), "web".into());
                });
                t.spec = some(|p: &mut core::PodSpec| {
                    p.containers = vec![container];
                    p.volumes = vec![core::Volume {
                        name: s("cfg"),
                        volumeSource: some(|v: &mut core::VolumeSource| {
                            v.configMap = some(|c: &mut core::ConfigMapVolumeSource| {
                                c.localObjectReference =
                                    some(|l: &mut core::LocalObjectReference| l.name = s("cm"));
                                c.defaultMode = Some(420);
                            })
                        }),
                        ..Default::default()
                    }];
                    p.terminationGracePeriodSeconds = Some(0);
                    p.hostNetwork = Some(false);
                    p.dnsPolicy = s("");
                });
            });
            spec.strategy = some(|st: &mut apps::DeploymentStrategy| {
                st.type_ = s("RollingUpdate");
                st.rollingUpdate = some(|r: &mut apps::RollingUpdateDeployment| {
                    r.maxUnavailable = int_or_string_int(0);
                    r.maxSurge = int_or_string_str("25%");
                });
            });
            spec.minReadySeconds = Some(0);
            spec.paused = Some(false);
        }),
        status: MessageField::some(apps::DeploymentStatus::default()),
        ..Default::default()
    };
    let got = decoded(&body("apps/v1", "Deployment", &deployment));
    let want = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [
                            {"name": "A", "value": "1"},
                            {"name": "B", "valueFrom": {"secretKeyRef": {
                                "name": "creds", "key": "token", "optional": false}}}
                        ],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m"}
                        },
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                            "initialDelaySeconds": 5
                        }
                    }],
                    "volumes": [{"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420}}],
                    "terminationGracePeriodSeconds": 0
                }
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}
            }
        },
        "status": {}
    });
    assert_eq!(got, want);
}

#[test]
fn secret_bytes_are_base64() {
    let secret = core::Secret {
        metadata: go_meta("s1", ""),
        data: [
            ("bin".to_owned(), vec![0u8, 0xff]),
            ("user".to_owned(), b"admin".to_vec()),
            ("empty".to_owned(), Vec::new()),
        ]
        .into_iter()
        .collect(),
        type_: s("Opaque"),
        ..Default::default()
    };
    assert_eq!(
        decoded(&body("v1", "Secret", &secret)),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s1"},
            "data": {"bin": "AP8=", "user": "YWRtaW4=", "empty": ""},
            "type": "Opaque"
        })
    );
}

#[test]
fn configmap_with_binary_data_and_managed_fields() {
    let cm = core::ConfigMap {
        metadata: some(|m: &mut meta::ObjectMeta| {
            m.name = s("cm");
            m.creationTimestamp = some(|t: &mut meta::Time| t.seconds = Some(1_700_000_000));
            m.managedFields = vec![meta::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Update"),
                apiVersion: s("v1"),
                time: some(|t: &mut meta::Time| t.seconds = Some(1_700_000_000)),
                fieldsType: s("FieldsV1"),
                fieldsV1: some(|f: &mut meta::FieldsV1| {
                    f.Raw = Some(br#"{"f:data":{"f:a":{}}}"#.to_vec())
                }),
                subresource: s(""),
                ..Default::default()
            }];
        }),
        data: [("a".to_owned(), "b".to_owned())].into_iter().collect(),
        binaryData: [("raw".to_owned(), vec![1u8, 2, 3])].into_iter().collect(),
        immutable: Some(false),
        ..Default::default()
    };
    assert_eq!(
        decoded(&body("v1", "ConfigMap", &cm)),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "cm",
                "creationTimestamp": "2023-11-14T22:13:20Z",
                "managedFields": [{
                    "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                    "time": "2023-11-14T22:13:20Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {"f:a": {}}}
                }]
            },
            "data": {"a": "b"},
            "binaryData": {"raw": "AQID"},
            "immutable": false
        })
    );
}

#[test]
fn namespace() {
    let ns = core::Namespace {
        metadata: go_meta("team-a", ""),
        spec: MessageField::some(core::NamespaceSpec::default()),
        status: some(|st: &mut core::NamespaceStatus| st.phase = s("")),
        ..Default::default()
    };
    assert_eq!(
        decoded(&body("v1", "Namespace", &ns)),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"},
               "spec": {}, "status": {}})
    );
}

#[test]
fn self_subject_access_review() {
    let review = authz::SelfSubjectAccessReview {
        metadata: go_meta("", ""),
        spec: some(|spec: &mut authz::SelfSubjectAccessReviewSpec| {
            spec.resourceAttributes = some(|r: &mut authz::ResourceAttributes| {
                r.namespace = s("default");
                r.verb = s("list");
                r.group = s("apps");
                r.version = s("");
                r.resource = s("deployments");
                r.subresource = s("scale");
                r.name = s("");
            });
        }),
        status: some(|st: &mut authz::SubjectAccessReviewStatus| {
            st.allowed = Some(false);
            st.denied = Some(false);
            st.reason = s("");
            st.evaluationError = s("");
        }),
        ..Default::default()
    };
    assert_eq!(
        decoded(&body(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &review
        )),
        json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "list",
                     "group": "apps", "resource": "deployments", "subresource": "scale"}},
            "status": {"allowed": false}
        })
    );
}

#[test]
fn self_subject_review_with_extra() {
    let review = authn::SelfSubjectReview {
        metadata: go_meta("", ""),
        status: some(|st: &mut authn::SelfSubjectReviewStatus| {
            st.userInfo = some(|u: &mut authn::UserInfo| {
                u.username = s("alice");
                u.uid = s("");
                u.groups = vec!["system:authenticated".into()];
                u.extra.insert(
                    "scopes".into(),
                    authn::ExtraValue {
                        items: vec!["a".into(), "b".into()],
                        ..Default::default()
                    },
                );
            });
        }),
        ..Default::default()
    };
    assert_eq!(
        decoded(&body(
            "authentication.k8s.io/v1",
            "SelfSubjectReview",
            &review
        )),
        json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
            "metadata": {},
            "status": {"userInfo": {"username": "alice", "groups": ["system:authenticated"],
                                    "extra": {"scopes": ["a", "b"]}}}
        })
    );
}

#[test]
fn token_request() {
    let request = authn::TokenRequest {
        metadata: go_meta("sa1", "default"),
        spec: some(|spec: &mut authn::TokenRequestSpec| {
            spec.audiences = vec!["https://kubernetes.default.svc".into()];
            spec.expirationSeconds = Some(3600);
            spec.boundObjectRef = some(|b: &mut authn::BoundObjectReference| {
                b.kind = s("Pod");
                b.apiVersion = s("v1");
                b.name = s("p1");
                b.uID = s("u-1");
            });
        }),
        status: some(|st: &mut authn::TokenRequestStatus| {
            st.token = s("");
            st.expirationTimestamp = MessageField::some(meta::Time::default());
        }),
        ..Default::default()
    };
    assert_eq!(
        decoded(&body("authentication.k8s.io/v1", "TokenRequest", &request)),
        json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "metadata": {"name": "sa1", "namespace": "default"},
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600,
                     "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p1", "uid": "u-1"}},
            "status": {"token": ""}
        })
    );
}

fn delete_options() -> meta::DeleteOptions {
    meta::DeleteOptions {
        gracePeriodSeconds: Some(0),
        preconditions: some(|p: &mut meta::Preconditions| p.uid = s("u-1")),
        propagationPolicy: s("Foreground"),
        dryRun: vec!["All".into()],
        ..Default::default()
    }
}

#[test]
fn eviction() {
    let eviction = policy::Eviction {
        metadata: go_meta("p1", "default"),
        deleteOptions: MessageField::some(delete_options()),
        ..Default::default()
    };
    assert_eq!(
        decoded(&body("policy/v1", "Eviction", &eviction)),
        json!({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": "p1", "namespace": "default"},
            "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "u-1"},
                              "propagationPolicy": "Foreground", "dryRun": ["All"]}
        })
    );
}

#[test]
fn delete_options_in_any_group_version() {
    for gv in ["v1", "apps/v1", "batch/v1", "meta.k8s.io/v1"] {
        assert_eq!(
            decoded(&body(gv, "DeleteOptions", &delete_options())),
            json!({
                "apiVersion": gv, "kind": "DeleteOptions",
                "gracePeriodSeconds": 0, "preconditions": {"uid": "u-1"},
                "propagationPolicy": "Foreground", "dryRun": ["All"]
            })
        );
    }
}

#[test]
fn lease_micro_times() {
    let lease = coordination::Lease {
        metadata: go_meta("node-1", "kube-node-lease"),
        spec: some(|spec: &mut coordination::LeaseSpec| {
            spec.holderIdentity = s("");
            spec.leaseDurationSeconds = Some(40);
            spec.renewTime = some(|t: &mut meta::Time| {
                *t = Default::default();
                t.seconds = Some(1_700_000_000);
                t.nanos = Some(123_456_789);
            });
        }),
        ..Default::default()
    };
    assert_eq!(
        decoded(&body("coordination.k8s.io/v1", "Lease", &lease)),
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "", "leaseDurationSeconds": 40,
                     "renewTime": "2023-11-14T22:13:20.123456Z"}
        })
    );
}

fn raw_json(text: &str) -> apiext::JSON {
    apiext::JSON {
        raw: Some(text.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn props(ty: &str) -> apiext::JSONSchemaProps {
    apiext::JSONSchemaProps {
        type_: s(ty),
        ..Default::default()
    }
}

#[test]
fn custom_resource_definition_schema() {
    let mut root = props("object");
    root.properties.insert(
        "spec".into(),
        apiext::JSONSchemaProps {
            xKubernetesPreserveUnknownFields: Some(true),
            ..props("object")
        },
    );
    root.properties.insert(
        "size".into(),
        apiext::JSONSchemaProps {
            default: MessageField::some(raw_json("3")),
            minimum: Some(0.0),
            maximum: Some(10.5),
            enum_: vec![raw_json("1"), raw_json("3")],
            ..props("integer")
        },
    );
    root.properties.insert(
        "tags".into(),
        apiext::JSONSchemaProps {
            items: some(|i: &mut apiext::JSONSchemaPropsOrArray| {
                i.schema = MessageField::some(props("string"))
            }),
            xKubernetesListType: s("set"),
            ..props("array")
        },
    );
    root.properties.insert(
        "labels".into(),
        apiext::JSONSchemaProps {
            additionalProperties: some(|a: &mut apiext::JSONSchemaPropsOrBool| {
                a.allows = Some(true);
                a.schema = MessageField::some(props("string"));
            }),
            ..props("object")
        },
    );
    root.properties.insert(
        "closed".into(),
        apiext::JSONSchemaProps {
            additionalProperties: some(|a: &mut apiext::JSONSchemaPropsOrBool| {
                a.allows = Some(false)
            }),
            ref_: s("#/definitions/x"),
            ..props("object")
        },
    );
    let crd = apiext::CustomResourceDefinition {
        metadata: go_meta("widgets.example.com", ""),
        spec: some(|spec: &mut apiext::CustomResourceDefinitionSpec| {
            spec.group = s("example.com");
            spec.names = some(|n: &mut apiext::CustomResourceDefinitionNames| {
                n.plural = s("widgets");
                n.kind = s("Widget");
            });
            spec.scope = s("Namespaced");
            spec.versions = vec![apiext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(true),
                deprecated: Some(false),
                schema: some(|v: &mut apiext::CustomResourceValidation| {
                    v.openAPIV3Schema = MessageField::some(root)
                }),
                ..Default::default()
            }];
            spec.preserveUnknownFields = Some(false);
        }),
        ..Default::default()
    };
    assert_eq!(
        decoded(&body(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            &crd
        )),
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"plural": "widgets", "kind": "Widget"},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                            "size": {"type": "integer", "default": 3, "minimum": 0, "maximum": 10.5,
                                     "enum": [1, 3]},
                            "tags": {"type": "array", "items": {"type": "string"},
                                     "x-kubernetes-list-type": "set"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "closed": {"type": "object", "additionalProperties": false,
                                       "$ref": "#/definitions/x"}
                        }
                    }}
                }]
            }
        })
    );
}

#[test]
fn unknown_kinds_and_envelope_errors_are_clear() {
    let err = decode(&envelope("example.com/v1", "Widget", Vec::new()));
    assert_eq!(
        err,
        Err(ProtobufError::UnsupportedKind {
            api_version: "example.com/v1".into(),
            kind: "Widget".into()
        })
    );
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("not supported yet: protobuf body of kind Widget (example.com/v1); send JSON".into())
    );
    assert!(matches!(
        decode(&envelope("v1", "NoSuchKind", Vec::new())),
        Err(ProtobufError::UnsupportedKind { .. })
    ));
    assert!(matches!(
        decode(&envelope("", "", Vec::new())),
        Err(ProtobufError::Malformed { .. })
    ));
    assert!(matches!(
        decode(b"{\"kind\":\"ConfigMap\"}"),
        Err(ProtobufError::Malformed { .. })
    ));
    let gzip = Unknown {
        typeMeta: some(|t: &mut TypeMeta| {
            t.apiVersion = s("v1");
            t.kind = s("ConfigMap");
        }),
        contentEncoding: s("gzip"),
        ..Default::default()
    };
    let mut b = MAGIC.to_vec();
    b.extend(gzip.write_to_bytes().unwrap_or_default());
    assert!(matches!(decode(&b), Err(ProtobufError::Unsupported(_))));
}

#[test]
fn a_wrong_wire_type_names_the_field() {
    // ConfigMap.metadata (field 1) as a varint.
    let err = decode(&envelope("v1", "ConfigMap", vec![0x08, 0x01]));
    assert!(
        matches!(&err, Err(ProtobufError::Malformed { path, .. }) if path == "metadata"),
        "{err:?}"
    );
    // metadata.name (field 1 of ObjectMeta) as a varint.
    let err = decode(&envelope("v1", "ConfigMap", vec![0x0a, 0x02, 0x08, 0x01]));
    assert!(
        matches!(&err, Err(ProtobufError::Malformed { path, .. }) if path == "metadata.name"),
        "{err:?}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // JSONSchemaProps.not (field 28) nested 5 000 times.
    let mut raw: Vec<u8> = Vec::new();
    for _ in 0..5_000 {
        let mut next = vec![0xe2, 0x01]; // field 28, wire type 2
        let mut len = raw.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                next.push(byte);
                break;
            }
            next.push(byte | 0x80);
        }
        next.extend_from_slice(&raw);
        raw = next;
    }
    let err = decode(&envelope("apiextensions.k8s.io/v1", "JSONSchemaProps", raw));
    assert!(
        matches!(err, Err(ProtobufError::Malformed { .. })),
        "{err:?}"
    );
}

#[test]
fn truncated_and_mutated_bodies_never_panic() {
    let cm = core::ConfigMap {
        metadata: go_meta("cm", "default"),
        data: [("a".to_owned(), "b".to_owned())].into_iter().collect(),
        ..Default::default()
    };
    let good = body("v1", "ConfigMap", &cm);
    assert!(decode(&good).is_ok());
    // Every strict prefix either fails or decodes to less; none panics.
    let mut failures = 0;
    for n in 0..good.len() {
        if decode(good.get(..n).unwrap_or_default()).is_err() {
            failures += 1;
        }
    }
    assert!(
        failures > good.len() / 2,
        "{failures} of {} prefixes failed",
        good.len()
    );
    // Cut inside the object: the envelope's raw length runs past the end.
    assert!(matches!(
        decode(good.get(..good.len() - 10).unwrap_or_default()),
        Err(ProtobufError::Malformed { .. })
    ));
    // Every byte replaced by a few values.
    for i in MAGIC.len()..good.len() {
        for v in [0x00, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x1a] {
            let mut b = good.clone();
            if let Some(x) = b.get_mut(i) {
                *x = v;
            }
            let _ = decode(&b);
        }
    }
    // Garbage after the magic.
    let mut seed: u32 = 12345;
    for _ in 0..2000 {
        let mut b = MAGIC.to_vec();
        for _ in 0..64 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            b.push((seed >> 16) as u8);
        }
        let _ = decode(&b);
    }
}
