//! Where the protobuf schema of a kind comes from: descriptors that the
//! build script compiles from the Kubernetes 1.33 `generated.proto` files
//! shipped in the `k8s-rs-pb` package (whose packages are named like
//! `api.core.v1`). Nothing here restates a field number: this file maps an
//! `apiVersion` to the descriptor file of that group-version.

use std::sync::OnceLock;

use ::protobuf::Message as _;
use ::protobuf::descriptor::FileDescriptorSet;
use ::protobuf::reflect::{FileDescriptor, MessageDescriptor};

/// The Kubernetes version whose `.proto` files the descriptors come from.
pub const KUBERNETES_VERSION: &str = "1.33";

/// The descriptor set written by `build.rs`.
static DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/k8s-protos.fds"));

/// Kinds that every group-version registers (`metav1.AddToGroupVersion`):
/// a client sends them with the group-version of the resource they act on.
const META_KINDS: &[&str] = &[
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "GetOptions",
    "ListOptions",
    "Status",
    "WatchEvent",
];

/// The protobuf package of a group-version.
fn package_for(api_version: &str) -> Option<&'static str> {
    Some(match api_version {
        "v1" => "api.core.v1",
        "meta.k8s.io/v1" => "apimachinery.pkg.apis.meta.v1",
        "meta.k8s.io/v1beta1" => "apimachinery.pkg.apis.meta.v1beta1",
        "admission.k8s.io/v1" => "api.admission.v1",
        "admissionregistration.k8s.io/v1" => "api.admissionregistration.v1",
        "admissionregistration.k8s.io/v1beta1" => "api.admissionregistration.v1beta1",
        "apiextensions.k8s.io/v1" => "apiextensions_apiserver.pkg.apis.apiextensions.v1",
        "apiextensions.k8s.io/v1beta1" => "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1",
        "apiregistration.k8s.io/v1" => "kube_aggregator.pkg.apis.apiregistration.v1",
        "apps/v1" => "api.apps.v1",
        "authentication.k8s.io/v1" => "api.authentication.v1",
        "authentication.k8s.io/v1beta1" => "api.authentication.v1beta1",
        "authorization.k8s.io/v1" => "api.authorization.v1",
        "autoscaling/v1" => "api.autoscaling.v1",
        "autoscaling/v2" => "api.autoscaling.v2",
        "batch/v1" => "api.batch.v1",
        "certificates.k8s.io/v1" => "api.certificates.v1",
        "certificates.k8s.io/v1beta1" => "api.certificates.v1beta1",
        "coordination.k8s.io/v1" => "api.coordination.v1",
        "discovery.k8s.io/v1" => "api.discovery.v1",
        "events.k8s.io/v1" => "api.events.v1",
        "flowcontrol.apiserver.k8s.io/v1" => "api.flowcontrol.v1",
        "networking.k8s.io/v1" => "api.networking.v1",
        "networking.k8s.io/v1beta1" => "api.networking.v1beta1",
        "node.k8s.io/v1" => "api.node.v1",
        "policy/v1" => "api.policy.v1",
        "rbac.authorization.k8s.io/v1" => "api.rbac.v1",
        "resource.k8s.io/v1beta1" => "api.resource.v1beta1",
        "resource.k8s.io/v1beta2" => "api.resource.v1beta2",
        "scheduling.k8s.io/v1" => "api.scheduling.v1",
        "storage.k8s.io/v1" => "api.storage.v1",
        "storage.k8s.io/v1beta1" => "api.storage.v1beta1",
        _ => return None,
    })
}

/// Every descriptor file, built once from [`DESCRIPTOR_SET`].
fn files() -> &'static [FileDescriptor] {
    static FILES: OnceLock<Vec<FileDescriptor>> = OnceLock::new();
    FILES.get_or_init(|| {
        FileDescriptorSet::parse_from_bytes(DESCRIPTOR_SET)
            .ok()
            .and_then(|set| FileDescriptor::new_dynamic_fds(set.file, &[]).ok())
            .unwrap_or_default()
    })
}

/// A message by protobuf package and name.
fn message_in(package: &str, name: &str) -> Option<MessageDescriptor> {
    files()
        .iter()
        .filter(|f| f.package() == package)
        .find_map(|f| f.message_by_package_relative_name(name))
}

/// The message descriptor of `kind` in `api_version`, if berth decodes it.
pub(crate) fn kind_descriptor(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    // Kind names are Go identifiers: never a dotted or nested name.
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    if META_KINDS.contains(&kind) {
        return message_in("apimachinery.pkg.apis.meta.v1", kind);
    }
    message_in(package_for(api_version)?, kind)
}

/// The descriptor of `runtime.Unknown`, the envelope of every body.
pub(crate) fn unknown_descriptor() -> Option<MessageDescriptor> {
    message_in("apimachinery.pkg.runtime", "Unknown")
}

/// What a message is, for the conversion to JSON: most are plain objects,
/// a few have a JSON form of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// A plain object: one JSON member per field.
    None,
    /// `metav1.Time`: RFC 3339, seconds.
    Time,
    /// `metav1.MicroTime`: RFC 3339, microseconds.
    MicroTime,
    /// `metav1.Duration`: a Go duration string.
    Duration,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`, `metav1.FieldsV1`, `apiextensions.JSON`:
    /// embedded JSON bytes.
    RawJson,
    /// `JSONSchemaPropsOrBool`: a schema or a boolean.
    SchemaOrBool,
    /// `JSONSchemaPropsOrArray`: a schema or an array of schemas.
    SchemaOrArray,
    /// `JSONSchemaPropsOrStringArray`: a schema or an array of strings.
    SchemaOrStringArray,
    /// A named `[]string` (`ExtraValue`, `metav1.Verbs`): a JSON array.
    StringList,
}

/// Classifies a message by its full protobuf name.
pub(crate) fn special(desc: &MessageDescriptor) -> Special {
    let full = desc.full_name();
    let (package, name) = full.rsplit_once('.').unwrap_or(("", full));
    match (package, name) {
        ("apimachinery.pkg.apis.meta.v1", "Time") => Special::Time,
        ("apimachinery.pkg.apis.meta.v1", "MicroTime") => Special::MicroTime,
        ("apimachinery.pkg.apis.meta.v1", "Duration") => Special::Duration,
        ("apimachinery.pkg.apis.meta.v1", "FieldsV1") => Special::RawJson,
        ("apimachinery.pkg.apis.meta.v1", "Verbs") => Special::StringList,
        ("apimachinery.pkg.api.resource", "Quantity") => Special::Quantity,
        ("apimachinery.pkg.util.intstr", "IntOrString") => Special::IntOrString,
        ("apimachinery.pkg.runtime", "RawExtension") => Special::RawJson,
        (p, n) if p.starts_with("apiextensions_apiserver.pkg.apis.apiextensions.") => match n {
            "JSON" => Special::RawJson,
            "JSONSchemaPropsOrBool" => Special::SchemaOrBool,
            "JSONSchemaPropsOrArray" => Special::SchemaOrArray,
            "JSONSchemaPropsOrStringArray" => Special::SchemaOrStringArray,
            _ => Special::None,
        },
        (p, "ExtraValue") if p.starts_with("api.") => Special::StringList,
        _ => Special::None,
    }
}

/// Whether a message is `apiextensions` `JSONSchemaProps`, whose JSON names
/// differ from its protobuf names (`$ref`, `x-kubernetes-*`).
pub(crate) fn is_json_schema_props(desc: &MessageDescriptor) -> bool {
    desc.name() == "JSONSchemaProps"
        && desc
            .full_name()
            .starts_with("apiextensions_apiserver.pkg.apis.apiextensions.")
}

/// Fields that Go embeds with `json:",inline"`: their members are merged
/// into the parent object. The pair is (field name, message name).
const INLINE: &[(&str, &str)] = &[
    ("volumeSource", "VolumeSource"),
    ("persistentVolumeSource", "PersistentVolumeSource"),
    ("handler", "ProbeHandler"),
    ("ephemeralContainerCommon", "EphemeralContainerCommon"),
    ("localObjectReference", "LocalObjectReference"),
    ("ingressRuleValue", "IngressRuleValue"),
    ("ruleWithOperations", "RuleWithOperations"),
];

/// Whether `field` of type `message` is embedded inline in its parent.
pub(crate) fn is_inline(field: &str, message: &MessageDescriptor) -> bool {
    INLINE
        .iter()
        .any(|(f, m)| *f == field && *m == message.name())
        || (field == "rule"
            && message.name() == "Rule"
            && message
                .full_name()
                .starts_with("api.admissionregistration."))
}
