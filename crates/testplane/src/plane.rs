//! A control plane in this process (memory store) and clients into it
//! through the router.

use std::path::PathBuf;
use std::sync::Arc;

use berth_apiserver::auth::authn::UserInfo;

/// A running API server and its temporary directory (removed on drop).
pub struct Plane {
    dir: tempfile::TempDir,
    /// The running control plane (its API router, CA…).
    pub plane: berth_apiserver::bootstrap::ControlPlane,
}

impl Plane {
    /// Starts an API server over a memory store, listening on a free
    /// loopback port. Panics when it cannot start (a test setup failure).
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
        Plane { dir, plane }
    }

    /// The temporary directory and the control plane, e.g. to serve the
    /// plane over HTTPS (`plane.server.run(…)`) for a real client such as
    /// kubectl (`plane.kubeconfig`); keep the directory while it runs.
    pub fn into_parts(self) -> (tempfile::TempDir, berth_apiserver::bootstrap::ControlPlane) {
        (self.dir, self.plane)
    }

    /// The plane's temporary directory (the server's state is in
    /// `server/`).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Where a local-path provisioner under test keeps volumes.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The cluster CA (PEM).
    pub fn ca_pem(&self) -> String {
        self.plane.ca_pem.clone()
    }

    /// A client acting as `username` in `groups`.
    pub fn client_as(&self, username: &str, groups: &[&str]) -> kube::Client {
        client(&self.plane, user(username, groups))
    }

    /// The cluster admin (`system:masters`).
    pub fn admin(&self) -> kube::Client {
        self.client_as("system:admin", &["system:masters", "system:authenticated"])
    }

    /// What `berth server` hands its controllers (the type of
    /// `berth_controllers::Clients`): each name acts as the
    /// ServiceAccount `kube-system/<name>`.
    pub fn controller_clients(&self) -> Arc<dyn Fn(&str) -> kube::Client + Send + Sync> {
        let api = self.plane.api.clone();
        Arc::new(move |name: &str| {
            let user = user(
                &format!("system:serviceaccount:kube-system:{name}"),
                &[
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
            );
            kube::Client::new(
                berth_apiserver::server::in_process(api.clone(), user),
                "default",
            )
        })
    }
}

fn user(username: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        username: username.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        ..Default::default()
    }
}

fn client(plane: &berth_apiserver::bootstrap::ControlPlane, user: UserInfo) -> kube::Client {
    kube::Client::new(
        berth_apiserver::server::in_process(plane.api.clone(), user),
        "default",
    )
}
