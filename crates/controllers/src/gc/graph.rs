//! The garbage collector's view: every object with its owners, indexed by
//! uid, and the rules kube's `attemptToDeleteItem` applies to a
//! dependent given the state of its owners.

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::discovery::ApiResource;

/// The finalizer of a foreground deletion (dependents go first).
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer of an orphaning deletion (dependents lose the reference).
pub const ORPHAN: &str = "orphan";

/// One object as the collector knows it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its resource.
    pub resource: ApiResource,
    /// Its namespace (`None` when cluster-scoped).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// Its owner references.
    pub owners: Vec<OwnerReference>,
    /// Whether it has a deletionTimestamp.
    pub deleting: bool,
    /// Its finalizers.
    pub finalizers: Vec<String>,
    /// Its resourceVersion.
    pub resource_version: Option<String>,
}

impl Node {
    /// Being deleted and waiting for its dependents (foreground).
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.finalizers.iter().any(|f| f == FOREGROUND)
    }

    /// Being deleted and orphaning its dependents.
    pub fn orphaning(&self) -> bool {
        self.deleting && self.finalizers.iter().any(|f| f == ORPHAN)
    }
}

/// All objects and who depends on whom.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    /// Adds or replaces a node; returns the previous one.
    pub fn upsert(&mut self, node: Node) -> Option<Node> {
        let old = self.nodes.insert(node.uid.clone(), node.clone());
        if let Some(o) = &old {
            for r in &o.owners {
                if let Some(set) = self.dependents.get_mut(&r.uid) {
                    set.remove(&o.uid);
                }
            }
        }
        for r in &node.owners {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(node.uid.clone());
        }
        old
    }

    /// Removes a node; returns it.
    pub fn remove(&mut self, uid: &str) -> Option<Node> {
        let old = self.nodes.remove(uid)?;
        for r in &old.owners {
            if let Some(set) = self.dependents.get_mut(&r.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&r.uid);
                }
            }
        }
        Some(old)
    }

    /// Removes every node of a resource (no longer served); returns their
    /// uids.
    pub fn remove_resource(&mut self, resource: &ApiResource) -> Vec<String> {
        let uids: Vec<String> = self
            .nodes
            .values()
            .filter(|n| {
                n.resource.group == resource.group
                    && n.resource.version == resource.version
                    && n.resource.plural == resource.plural
            })
            .map(|n| n.uid.clone())
            .collect();
        for uid in &uids {
            self.remove(uid);
        }
        uids
    }

    /// A node by uid.
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// The nodes naming `uid` as an owner.
    pub fn dependents_of(&self, uid: &str) -> Vec<&Node> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d))
            .collect()
    }
}

/// An owner's state as a dependent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists (and is not deleting its dependents).
    Solid,
    /// Gone, or replaced by an object of another uid.
    Dangling,
    /// Being deleted in the foreground: waits for its dependents.
    Waiting,
}

/// What to do with a dependent (kube's `attemptToDeleteItem`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Leave it.
    Keep,
    /// It has a live owner: drop only its references to these uids.
    DropRefs(Vec<String>),
    /// Delete it with this propagation policy.
    Delete(&'static str),
}

/// Decides for a dependent from its owners' states. `has_dependents`: it
/// owns objects itself; `finalizers`: its own.
pub fn decide(
    owners: &[(String, OwnerState)],
    has_dependents: bool,
    finalizers: &[String],
) -> Decision {
    if owners.is_empty() {
        return Decision::Keep;
    }
    let of = |s: OwnerState| {
        owners
            .iter()
            .filter(move |(_, st)| *st == s)
            .map(|(u, _)| u.clone())
    };
    let solid = of(OwnerState::Solid).count();
    let waiting: Vec<String> = of(OwnerState::Waiting).collect();
    if solid > 0 {
        let drop: Vec<String> = of(OwnerState::Dangling).chain(waiting).collect();
        return if drop.is_empty() {
            Decision::Keep
        } else {
            Decision::DropRefs(drop)
        };
    }
    if !waiting.is_empty() && has_dependents {
        return Decision::Delete("Foreground");
    }
    if finalizers.iter().any(|f| f == ORPHAN) {
        Decision::Delete("Orphan")
    } else if finalizers.iter().any(|f| f == FOREGROUND) {
        Decision::Delete("Foreground")
    } else {
        Decision::Delete("Background")
    }
}

/// Whether a foreground-deleting owner may drop its finalizer: none of
/// its remaining dependents blocks it (`blockOwnerDeletion` on their
/// reference to it).
pub fn may_finish_foreground(owner_uid: &str, dependents: &[&Node]) -> bool {
    !dependents.iter().any(|d| {
        d.owners
            .iter()
            .any(|r| r.uid == owner_uid && r.block_owner_deletion == Some(true))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use OwnerState::*;

    fn owners(states: &[OwnerState]) -> Vec<(String, OwnerState)> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("o{i}"), *s))
            .collect()
    }

    #[test]
    fn decisions_follow_kube() {
        let none: Vec<String> = Vec::new();
        assert_eq!(decide(&[], false, &none), Decision::Keep);
        assert_eq!(decide(&owners(&[Solid]), false, &none), Decision::Keep);
        assert_eq!(
            decide(&owners(&[Solid, Dangling]), false, &none),
            Decision::DropRefs(vec!["o1".to_owned()])
        );
        assert_eq!(
            decide(&owners(&[Waiting, Solid]), true, &none),
            Decision::DropRefs(vec!["o0".to_owned()])
        );
        assert_eq!(
            decide(&owners(&[Dangling]), false, &none),
            Decision::Delete("Background")
        );
        assert_eq!(
            decide(&owners(&[Dangling, Dangling]), true, &none),
            Decision::Delete("Background")
        );
        assert_eq!(
            decide(&owners(&[Waiting]), false, &none),
            Decision::Delete("Background")
        );
        assert_eq!(
            decide(&owners(&[Waiting]), true, &none),
            Decision::Delete("Foreground")
        );
        assert_eq!(
            decide(&owners(&[Dangling]), false, &[ORPHAN.to_owned()]),
            Decision::Delete("Orphan")
        );
        assert_eq!(
            decide(&owners(&[Dangling]), false, &[FOREGROUND.to_owned()]),
            Decision::Delete("Foreground")
        );
    }

    fn node(uid: &str, owners: &[(&str, bool)]) -> Node {
        Node {
            resource: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
            namespace: Some("ns".to_owned()),
            name: uid.to_owned(),
            uid: uid.to_owned(),
            owners: owners
                .iter()
                .map(|(u, block)| OwnerReference {
                    uid: (*u).to_owned(),
                    block_owner_deletion: Some(*block),
                    ..Default::default()
                })
                .collect(),
            deleting: false,
            finalizers: Vec::new(),
            resource_version: None,
        }
    }

    #[test]
    fn graph_indexes_dependents_and_blocking() {
        let mut g = Graph::default();
        g.upsert(node("owner", &[]));
        g.upsert(node("a", &[("owner", true)]));
        g.upsert(node("b", &[("owner", false)]));
        let mut deps: Vec<&str> = g
            .dependents_of("owner")
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        deps.sort();
        assert_eq!(deps, vec!["a", "b"]);
        assert!(!may_finish_foreground("owner", &g.dependents_of("owner")));
        g.remove("a");
        assert!(may_finish_foreground("owner", &g.dependents_of("owner")));
        // Owner references change: the index follows.
        g.upsert(node("b", &[]));
        assert!(g.dependents_of("owner").is_empty());
    }
}
