//! The built-in local-path provisioner (what k3s ships as
//! local-path-provisioner): a claim's volume is a directory
//! `<data-dir>/<namespace>_<claim>_<volume>` on the chosen node, served
//! as a `hostPath` volume pinned to that node.
//!
//! berth runs a single node for now: the directory is made on this host,
//! whatever node the claim landed on. With several nodes, the node agent
//! would have to make it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
    VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The annotation naming the provisioner of a volume.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The label of a node's hostname.
pub const HOSTNAME: &str = "kubernetes.io/hostname";

/// The name of the volume provisioned for a claim (`pvc-<claim uid>`).
pub fn volume_name(claim: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", claim.metadata.uid.as_deref().unwrap_or(""))
}

/// Where the volume's data lives.
pub fn directory(data_dir: &Path, claim: &PersistentVolumeClaim, volume: &str) -> PathBuf {
    data_dir.join(format!(
        "{}_{}_{volume}",
        claim.metadata.namespace.as_deref().unwrap_or(""),
        claim.metadata.name.as_deref().unwrap_or(""),
    ))
}

/// A reference to a claim, as a volume's `claimRef`.
pub fn claim_ref(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: claim.metadata.namespace.clone(),
        name: claim.metadata.name.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// The PersistentVolume for `claim` on `node`, at `path`.
pub fn volume(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    provisioner: &str,
    node: &Node,
    path: &Path,
) -> PersistentVolume {
    let spec = claim.spec.clone().unwrap_or_default();
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .cloned()
        .unwrap_or_else(|| Quantity("0".into()));
    let hostname = node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HOSTNAME))
        .or(node.metadata.name.as_ref())
        .cloned()
        .unwrap_or_default();
    let mut pv = PersistentVolume {
        spec: Some(PersistentVolumeSpec {
            access_modes: spec.access_modes.clone(),
            capacity: Some(BTreeMap::from([("storage".to_owned(), storage)])),
            claim_ref: Some(claim_ref(claim)),
            host_path: Some(HostPathVolumeSource {
                path: path.to_string_lossy().into_owned(),
                type_: Some("DirectoryOrCreate".into()),
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: HOSTNAME.into(),
                            operator: "In".into(),
                            values: Some(vec![hostname]),
                        }]),
                        match_fields: None,
                    }],
                }),
            }),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".into()),
            ),
            storage_class_name: class.metadata.name.clone(),
            mount_options: class.mount_options.clone(),
            volume_mode: Some(spec.volume_mode.unwrap_or_else(|| "Filesystem".into())),
            ..Default::default()
        }),
        ..Default::default()
    };
    pv.metadata.name = Some(volume_name(claim));
    pv.metadata.annotations = Some(BTreeMap::from([(
        PROVISIONED_BY.to_owned(),
        provisioner.to_owned(),
    )]));
    pv
}

/// Makes the directory, open to every user as local-path makes it (the
/// containers that use it may run as anyone).
pub fn make_directory(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
}

/// Removes a provisioned volume's directory; refuses any path that is not
/// strictly inside `data_dir`. One already gone is not an error.
pub fn remove_directory(data_dir: &Path, path: &Path) -> std::io::Result<()> {
    let inside = path.starts_with(data_dir)
        && path != data_dir
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    if !inside {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not inside the volume directory {}",
                path.display(),
                data_dir.display()
            ),
        ));
    }
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};

    fn claim() -> PersistentVolumeClaim {
        let mut c = PersistentVolumeClaim {
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".into(), Quantity("1Gi".into()))])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        c.metadata.name = Some("data".into());
        c.metadata.namespace = Some("team".into());
        c.metadata.uid = Some("1234".into());
        c
    }

    #[test]
    fn the_volume_of_a_claim() {
        let c = claim();
        let mut class = StorageClass::default();
        class.metadata.name = Some("local-path".into());
        class.reclaim_policy = Some("Retain".into());
        let mut node = Node::default();
        node.metadata.name = Some("n1".into());
        let path = directory(Path::new("/data/storage"), &c, &volume_name(&c));
        assert_eq!(path, Path::new("/data/storage/team_data_pvc-1234"));
        let pv = volume(&c, &class, "berth.dev/local-path", &node, &path);
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-1234"));
        let spec = pv.spec.unwrap();
        assert_eq!(
            spec.host_path.unwrap().path,
            "/data/storage/team_data_pvc-1234"
        );
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("local-path"));
        assert_eq!(spec.capacity.unwrap()["storage"], Quantity("1Gi".into()));
        assert_eq!(spec.claim_ref.unwrap().uid.as_deref(), Some("1234"));
        let term = &spec
            .node_affinity
            .unwrap()
            .required
            .unwrap()
            .node_selector_terms[0];
        assert_eq!(
            term.match_expressions.as_ref().unwrap()[0].values,
            Some(vec!["n1".into()])
        );
        assert_eq!(
            pv.metadata.annotations.unwrap()[PROVISIONED_BY],
            "berth.dev/local-path"
        );
    }

    #[test]
    fn removal_stays_inside_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("team_data_pvc-1");
        make_directory(&inside).unwrap();
        std::fs::write(inside.join("file"), b"x").unwrap();
        remove_directory(dir.path(), &inside).unwrap();
        assert!(!inside.exists());
        remove_directory(dir.path(), &inside).unwrap();
        assert!(remove_directory(dir.path(), dir.path()).is_err());
        assert!(remove_directory(dir.path(), Path::new("/etc")).is_err());
        assert!(remove_directory(dir.path(), &dir.path().join("../x")).is_err());
    }
}
