//! A control plane in this process (memory store) and clients into it
//! through the router, as `berth server` wires its controllers.

#![allow(dead_code)]

use std::sync::Arc;

use berth_apiserver::auth::authn::UserInfo;

/// A running API server and its temporary directory.
pub struct Plane {
    pub _dir: tempfile::TempDir,
    pub plane: berth_apiserver::bootstrap::ControlPlane,
}

impl Plane {
    /// Starts an API server over a memory store.
    pub async fn start() -> Plane {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn berth_kv::Store> = Arc::new(berth_kv::memory::MemoryStore::new());
        let plane = berth_apiserver::start(
            store,
            berth_apiserver::Config {
                dir: dir.path().join("server"),
                bind: "127.0.0.1:0".parse().expect("addr"),
                tls_sans: Vec::new(),
                kubeconfig: None,
                token_file: None,
                compaction_interval: None,
                service_cluster_ip_range: Default::default(),
                service_node_port_range: Default::default(),
                advertise_address: None,
            },
        )
        .await
        .expect("control plane");
        Plane { _dir: dir, plane }
    }

    /// A client acting as `username` in `groups`.
    pub fn client_as(&self, username: &str, groups: &[&str]) -> kube::Client {
        let user = UserInfo {
            username: username.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..Default::default()
        };
        kube::Client::new(
            berth_apiserver::server::in_process(self.plane.api.clone(), user),
            "default",
        )
    }

    /// The cluster admin.
    pub fn admin(&self) -> kube::Client {
        self.client_as("system:admin", &["system:masters", "system:authenticated"])
    }

    /// The controllers' options for this plane.
    pub fn options(&self) -> berth_controllers::Options {
        berth_controllers::Options {
            storage_dir: self._dir.path().join("storage"),
            ca_pem: self.plane.ca_pem.clone(),
        }
    }

    /// What `berth server` hands the controllers: each acts as its
    /// ServiceAccount in kube-system.
    pub fn controller_clients(&self) -> berth_controllers::Clients {
        let api = self.plane.api.clone();
        Arc::new(move |name: &str| {
            let user = UserInfo {
                username: format!("system:serviceaccount:kube-system:{name}"),
                groups: vec![
                    "system:serviceaccounts".to_owned(),
                    "system:serviceaccounts:kube-system".to_owned(),
                    "system:authenticated".to_owned(),
                ],
                ..Default::default()
            };
            kube::Client::new(
                berth_apiserver::server::in_process(api.clone(), user),
                "default",
            )
        })
    }
}
