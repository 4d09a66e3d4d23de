//! OCI image-spec 1.1 and Docker v2.2 manifests, indexes (manifest lists)
//! and image configurations, with the media types that name them. The
//! Docker and OCI forms share these structures; unknown fields are kept
//! where berth may need to write a document back.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::Digest;

/// Media types.
pub mod media {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image configuration.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI layer, uncompressed.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI layer, gzip.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI layer, zstd.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// OCI non-distributable layer (deprecated).
    pub const OCI_LAYER_NONDIST_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    /// The OCI empty descriptor's content (`{}`).
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// Docker image manifest v2, schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image configuration.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker layer (gzip).
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker layer (uncompressed, seen in some archives).
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// Docker foreign (non-distributable) layer.
    pub const DOCKER_FOREIGN_LAYER: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Docker schema 1 (unsupported).
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    /// Docker schema 1, signed (unsupported).
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// Whether `m` names an image manifest (OCI or Docker).
    pub fn is_manifest(m: &str) -> bool {
        m == OCI_MANIFEST || m == DOCKER_MANIFEST
    }

    /// Whether `m` names an index / manifest list.
    pub fn is_index(m: &str) -> bool {
        m == OCI_INDEX || m == DOCKER_MANIFEST_LIST
    }

    /// Whether `m` names a layer berth can unpack.
    pub fn is_layer(m: &str) -> bool {
        matches!(
            m,
            OCI_LAYER
                | OCI_LAYER_GZIP
                | OCI_LAYER_ZSTD
                | OCI_LAYER_NONDIST_GZIP
                | DOCKER_LAYER_GZIP
                | DOCKER_LAYER
                | DOCKER_FOREIGN_LAYER
        ) || m == "application/vnd.oci.image.layer.nondistributable.v1.tar"
            || m == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
    }
}

/// Largest manifest or index berth reads or accepts (as registries do).
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Foreign layer locations (never fetched by default).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub urls: Vec<String>,
    /// Annotations.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Platform (in an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor with no optional fields.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }
}

/// A platform.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// OS version.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub os_features: Vec<String>,
    /// CPU variant (`v8`, `v7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform berth itself runs on.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            architecture: arch.to_owned(),
            os: "linux".to_owned(),
            variant: (arch == "arm64").then(|| "v8".to_owned()),
            ..Default::default()
        }
    }

    /// `os/arch[/variant]`.
    pub fn display(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next()?.to_owned();
        let architecture = parts.next()?.to_owned();
        let variant = parts.next().map(str::to_owned);
        if parts.next().is_some() || os.is_empty() || architecture.is_empty() {
            return None;
        }
        Some(Platform {
            architecture,
            os,
            variant,
            ..Default::default()
        })
    }

    /// Whether an index entry for `other` can run here (variant must match
    /// when both name one; arm64's default variant is v8).
    pub fn matches(&self, other: &Platform) -> bool {
        if self.os != other.os || self.architecture != other.architecture {
            return false;
        }
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_owned()),
            (_, v) => v.map(str::to_owned),
        };
        match (norm(self), norm(other)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

/// An image manifest (OCI or Docker v2.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// Media type (optional in OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image configuration.
    pub config: Descriptor,
    /// The layers, base first.
    #[serde(deserialize_with = "null_as_default")]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// Media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests.
    #[serde(deserialize_with = "null_as_default")]
    pub manifests: Vec<Descriptor>,
    /// Subject (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    /// The entry for `platform`, if any.
    pub fn select(&self, platform: &Platform) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .filter(|d| media::is_manifest(&d.media_type) || d.media_type.is_empty())
            .find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
    }
}

/// A parsed manifest document.
// (parsed one at a time, never stored in bulk: the size difference is fine)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestDoc {
    /// An image manifest.
    Manifest(Manifest),
    /// An index / manifest list.
    Index(Index),
}

/// Why a manifest document was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidManifest(pub String);

impl std::fmt::Display for InvalidManifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid manifest: {}", self.0)
    }
}

impl std::error::Error for InvalidManifest {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
}

/// Parses a manifest or index. `content_type` is the media type the
/// document came with (a registry's `Content-Type`), if known.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<ManifestDoc, InvalidManifest> {
    if bytes.len() > MAX_MANIFEST_SIZE {
        return Err(InvalidManifest(format!(
            "{} bytes is over the {MAX_MANIFEST_SIZE}-byte limit",
            bytes.len()
        )));
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| InvalidManifest(e.to_string()))?;
    let mt = probe
        .media_type
        .clone()
        .or_else(|| content_type.map(str::to_owned))
        .unwrap_or_default();
    if mt == media::DOCKER_SCHEMA1
        || mt == media::DOCKER_SCHEMA1_SIGNED
        || probe.schema_version == Some(1)
    {
        return Err(InvalidManifest(
            "Docker image manifest schema 1 is not supported (it was deprecated in 2019; re-push the image)".into(),
        ));
    }
    if probe.schema_version != Some(2) {
        return Err(InvalidManifest(format!(
            "schemaVersion must be 2, not {:?}",
            probe.schema_version
        )));
    }
    let is_index = media::is_index(&mt)
        || (mt.is_empty() && probe.manifests.is_some() && probe.config.is_none());
    let is_manifest = media::is_manifest(&mt) || (mt.is_empty() && probe.config.is_some());
    if let (Some(declared), Some(ct)) = (&probe.media_type, content_type) {
        let norm = |s: &str| s.split(';').next().unwrap_or("").trim().to_owned();
        if norm(ct) != *declared && (media::is_index(&norm(ct)) || media::is_manifest(&norm(ct))) {
            return Err(InvalidManifest(format!(
                "the document says {declared}, the transport says {ct}"
            )));
        }
    }
    if is_index {
        let idx: Index =
            serde_json::from_slice(bytes).map_err(|e| InvalidManifest(e.to_string()))?;
        Ok(ManifestDoc::Index(idx))
    } else if is_manifest {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| InvalidManifest(e.to_string()))?;
        Ok(ManifestDoc::Manifest(m))
    } else {
        Err(InvalidManifest(format!(
            "unknown manifest media type {mt:?}"
        )))
    }
}

/// An image configuration (OCI and Docker).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// How containers run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// The layers' uncompressed digests.
    pub rootfs: RootFs,
    /// Build history.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub history: Vec<History>,
    /// Other fields (Docker's `container_config`, `docker_version`, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `rootfs` of an image configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Uncompressed layer digests, base first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub diff_ids: Vec<Digest>,
}

/// One history entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// No layer was created by this step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The part of an image config that says how containers run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `user[:group]`.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub user: String,
    /// Ports (`"80/tcp": {}`).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// `KEY=value`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub env: Vec<String>,
    /// Entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Default command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Volumes (`"/data": {}`).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub volumes: BTreeMap<String, serde_json::Value>,
    /// Working directory.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub working_dir: String,
    /// Labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub labels: BTreeMap<String, String>,
    /// Stop signal.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub stop_signal: String,
    /// Health check (Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// Shell for shell-form instructions (Docker).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub shell: Vec<String>,
    /// ONBUILD triggers (Docker).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub on_build: Vec<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A Docker health check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub test: Vec<String>,
    /// Nanoseconds between checks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    /// Nanoseconds before a check times out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// Nanoseconds of start-up grace.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    /// Nanoseconds between checks during start-up.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    /// Failures before unhealthy.
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u(v: &i64) -> bool {
    *v == 0
}

/// Parses an image configuration.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig, String> {
    let c: ImageConfig =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid image configuration: {e}"))?;
    if c.rootfs.kind != "layers" && !c.rootfs.kind.is_empty() {
        return Err(format!(
            "invalid image configuration: rootfs type {:?}",
            c.rootfs.kind
        ));
    }
    Ok(c)
}

/// The chain ids of a layer stack (`ChainID(L0) = DiffID(L0)`,
/// `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`), given a
/// sha256 function.
pub fn chain_ids(diff_ids: &[Digest], sha256_hex: impl Fn(&[u8]) -> String) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let hex = sha256_hex(format!("{prev} {d}").as_bytes());
                Digest::new(crate::Algorithm::Sha256, &hex).expect("sha256 hex")
            }
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:5845d768a653a1d9a9d6a5c0d4a9c5d18c0e1a1c0e1a1c0e1a1c0e1a1c0e1a1c";

    #[test]
    fn deeply_nested_json_is_an_error_not_a_crash() {
        for doc in [
            "[".repeat(100_000),
            format!(
                "{{\"schemaVersion\":2,\"config\":{}",
                "{\"a\":".repeat(50_000)
            ),
        ] {
            assert!(parse_manifest(doc.as_bytes(), None).is_err());
            assert!(parse_config(doc.as_bytes()).is_err());
        }
    }

    #[test]
    fn parses_docker_and_oci_manifests_and_lists() {
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":1,"digest":"{D}"}},
            "layers":[{{"mediaType":"{}","size":2,"digest":"{D}"}}]}}"#,
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG,
            media::DOCKER_LAYER_GZIP
        );
        assert!(
            matches!(parse_manifest(docker.as_bytes(), None).unwrap(), ManifestDoc::Manifest(m) if m.layers.len() == 1)
        );
        let oci = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","size":1,"digest":"{D}"}},"layers":null}}"#,
            media::OCI_CONFIG
        );
        assert!(
            matches!(parse_manifest(oci.as_bytes(), None).unwrap(), ManifestDoc::Manifest(m) if m.layers.is_empty())
        );
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[
            {{"mediaType":"{}","size":1,"digest":"{D}","platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
            {{"mediaType":"{}","size":1,"digest":"{D}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            media::DOCKER_MANIFEST_LIST,
            media::DOCKER_MANIFEST,
            media::DOCKER_MANIFEST
        );
        let ManifestDoc::Index(idx) = parse_manifest(list.as_bytes(), None).unwrap() else {
            panic!()
        };
        let amd = Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        };
        assert_eq!(
            idx.select(&amd)
                .unwrap()
                .platform
                .as_ref()
                .unwrap()
                .architecture,
            "amd64"
        );
        let arm = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            ..Default::default()
        };
        assert!(idx.select(&arm).is_some());
        let s390 = Platform {
            architecture: "s390x".into(),
            os: "linux".into(),
            ..Default::default()
        };
        assert!(idx.select(&s390).is_none());
    }

    #[test]
    fn refuses_what_it_must() {
        assert!(parse_manifest(b"{", None).is_err());
        assert!(
            parse_manifest(br#"{"schemaVersion":1,"name":"x"}"#, None)
                .unwrap_err()
                .0
                .contains("schema 1")
        );
        assert!(parse_manifest(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None).is_err());
        let big = vec![b' '; MAX_MANIFEST_SIZE + 1];
        assert!(parse_manifest(&big, None).unwrap_err().0.contains("limit"));
        // deeply nested JSON is an error, not a crash
        let deep = "[".repeat(100_000);
        assert!(parse_manifest(deep.as_bytes(), None).is_err());
        // null / empty layers or a wrong digest are refused
        let bad = r#"{"schemaVersion":2,"config":{"mediaType":"x","size":1,"digest":"sha256:zz"},"layers":[]}"#;
        assert!(parse_manifest(bad.as_bytes(), None).is_err());
    }

    #[test]
    fn docker_configs_with_nulls() {
        let c = parse_config(br#"{"architecture":"amd64","os":"linux","config":{"Env":null,"Cmd":["sh"],
            "Entrypoint":null,"ExposedPorts":{"80/tcp":{}},"Healthcheck":{"Test":["CMD","true"],"Interval":1000},
            "Labels":null,"Volumes":null,"WorkingDir":"","ArgsEscaped":true},
            "rootfs":{"type":"layers","diff_ids":[]},"container_config":{"Hostname":"x"}}"#)
        .unwrap();
        let cc = c.config.unwrap();
        assert_eq!(cc.cmd.unwrap(), ["sh"]);
        assert!(cc.env.is_empty());
        assert_eq!(cc.healthcheck.unwrap().interval, 1000);
        assert!(cc.extra.contains_key("ArgsEscaped"));
        assert!(c.extra.contains_key("container_config"));
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a: Digest = D.parse().unwrap();
        let ids = chain_ids(&[a.clone(), a.clone()], |b| format!("{:0>64}", b.len()));
        assert_eq!(ids[0], a);
        assert_eq!(ids[1].hex(), format!("{:0>64}", format!("{a} {a}").len()));
    }
}

/// A filesystem mount as the snapshotter describes it and the runtime
/// performs it (`mount -t <fstype> -o <options> <source> <target>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Filesystem type (`overlay`, `bind`).
    #[serde(rename = "type")]
    pub fstype: String,
    /// Source.
    pub source: String,
    /// Options (`lowerdir=...`, `ro`, ...).
    #[serde(default)]
    pub options: Vec<String>,
}
