//! What the registry needs to know of a pushed manifest: its media type,
//! what it references (which must exist in the repository), and its
//! referrers data (subject, artifact type, annotations).

use berth_types::Digest;
use berth_types::image::{Index, Manifest, media};
use serde::Deserialize;

/// A manifest's facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Inspected {
    /// The media type it is stored and served with.
    pub media_type: String,
    /// `artifactType` for the referrers API: the manifest's own, else (for
    /// an image manifest) the config's media type.
    pub artifact_type: Option<String>,
    /// The `subject` digest.
    pub subject: Option<Digest>,
    /// Annotations as a JSON object, if any.
    pub annotations: Option<String>,
    /// Blobs that must be linked into the repository (config, layers).
    pub blobs: Vec<Digest>,
    /// Manifests that must be in the repository (an index's entries).
    pub manifests: Vec<Digest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
}

/// Layers that are, by their media type, not pushed to registries.
fn nondistributable(media_type: &str) -> bool {
    media_type.contains(".nondistributable.") || media_type == media::DOCKER_FOREIGN_LAYER
}

/// The media type without parameters.
fn base_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

fn known(mt: &str) -> bool {
    media::is_manifest(mt) || media::is_index(mt)
}

/// Checks a pushed manifest. `content_type` is the request's
/// `Content-Type`. The error is a message for `MANIFEST_INVALID`.
pub(crate) fn inspect(bytes: &[u8], content_type: Option<&str>) -> Result<Inspected, String> {
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JSON manifest: {e}"))?;
    let ct = content_type.map(base_type).filter(|s| !s.is_empty());
    let schema1 = |m: &str| m == media::DOCKER_SCHEMA1 || m == media::DOCKER_SCHEMA1_SIGNED;
    if probe.schema_version == Some(1)
        || probe.media_type.as_deref().is_some_and(schema1)
        || ct.is_some_and(schema1)
    {
        return Err(
            "Docker image manifest schema 1 is not supported; push a schema 2 or OCI manifest"
                .into(),
        );
    }
    if probe.schema_version != Some(2) {
        return Err(format!(
            "schemaVersion must be 2, not {}",
            probe
                .schema_version
                .map_or_else(|| "missing".to_owned(), |v| v.to_string())
        ));
    }
    let media_type = match (&probe.media_type, ct) {
        (Some(declared), Some(ct)) if known(ct) && ct != declared => {
            return Err(format!(
                "the manifest's mediaType {declared:?} does not match the Content-Type {ct:?}"
            ));
        }
        (Some(declared), _) => declared.clone(),
        (None, Some(ct)) if known(ct) => ct.to_owned(),
        (None, _) if probe.manifests.is_some() && probe.config.is_none() => {
            media::OCI_INDEX.to_owned()
        }
        (None, _) if probe.config.is_some() => media::OCI_MANIFEST.to_owned(),
        (None, _) => return Err("cannot tell what kind of manifest this is".into()),
    };
    let annotations = |a: &std::collections::BTreeMap<String, String>| {
        (!a.is_empty())
            .then(|| serde_json::to_string(a).ok())
            .flatten()
    };
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    if media::is_manifest(&media_type) {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid image manifest: {e}"))?;
        let mut blobs = vec![m.config.digest.clone()];
        blobs.extend(
            m.layers
                .iter()
                .filter(|l| !nondistributable(&l.media_type))
                .map(|l| l.digest.clone()),
        );
        Ok(Inspected {
            artifact_type: nonempty(&m.artifact_type).or(Some(m.config.media_type.clone())),
            subject: m.subject.as_ref().map(|s| s.digest.clone()),
            annotations: annotations(&m.annotations),
            blobs,
            manifests: Vec::new(),
            media_type,
        })
    } else if media::is_index(&media_type) {
        let idx: Index =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid image index: {e}"))?;
        Ok(Inspected {
            artifact_type: nonempty(&idx.artifact_type),
            subject: idx.subject.as_ref().map(|s| s.digest.clone()),
            annotations: annotations(&idx.annotations),
            blobs: Vec::new(),
            manifests: idx.manifests.iter().map(|d| d.digest.clone()).collect(),
            media_type,
        })
    } else {
        Err(format!(
            "unsupported manifest media type {media_type:?}; this registry takes {}, {}, {} and {}",
            media::OCI_MANIFEST,
            media::OCI_INDEX,
            media::DOCKER_MANIFEST,
            media::DOCKER_MANIFEST_LIST
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_with_subject_and_artifact_type() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},
            "layers":[{{"mediaType":"application/x","digest":"{}","size":1}},
                      {{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar","digest":"{}","size":1}}],
            "subject":{{"mediaType":"{}","digest":"{}","size":3}},"annotations":{{"k":"v"}}}}"#,
            media::OCI_MANIFEST,
            d('1'),
            d('2'),
            d('3'),
            media::OCI_MANIFEST,
            d('4')
        );
        let i = inspect(m.as_bytes(), Some(media::OCI_MANIFEST)).unwrap();
        assert_eq!(i.media_type, media::OCI_MANIFEST);
        assert_eq!(
            i.artifact_type.as_deref(),
            Some("application/vnd.oci.empty.v1+json")
        );
        assert_eq!(i.subject.unwrap().to_string(), d('4'));
        assert_eq!(i.annotations.as_deref(), Some(r#"{"k":"v"}"#));
        let blobs: Vec<String> = i.blobs.iter().map(|d| d.to_string()).collect();
        assert_eq!(blobs, vec![d('1'), d('2')]);
        // the transport disagreeing with the document is refused
        assert!(inspect(m.as_bytes(), Some(media::OCI_INDEX)).is_err());
        // an unrelated Content-Type is ignored
        assert!(inspect(m.as_bytes(), Some("application/octet-stream")).is_ok());
    }

    #[test]
    fn index_detection_and_refusals() {
        let idx = format!(
            r#"{{"schemaVersion":2,"artifactType":"a/b","manifests":[{{"mediaType":"{}","digest":"{}","size":5}}]}}"#,
            media::OCI_MANIFEST,
            d('5')
        );
        let i = inspect(idx.as_bytes(), None).unwrap();
        assert_eq!(i.media_type, media::OCI_INDEX);
        assert_eq!(i.artifact_type.as_deref(), Some("a/b"));
        assert_eq!(i.manifests.len(), 1);
        let i = inspect(idx.as_bytes(), Some(media::DOCKER_MANIFEST_LIST)).unwrap();
        assert_eq!(i.media_type, media::DOCKER_MANIFEST_LIST);
        assert!(inspect(br#"{"schemaVersion":1,"name":"x"}"#, None).is_err());
        assert!(
            inspect(
                br#"{"schemaVersion":2,"config":{}}"#,
                Some(media::DOCKER_SCHEMA1_SIGNED)
            )
            .is_err()
        );
        assert!(inspect(b"not json", None).is_err());
        assert!(inspect(br#"{"schemaVersion":2}"#, None).is_err());
        assert!(
            inspect(
                br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}"#,
                None
            )
            .is_err()
        );
    }
}
