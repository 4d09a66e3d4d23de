//! Starting the control plane: the PKI and kubeconfig, the objects every
//! cluster has (namespaces, the default RBAC policy, default
//! ServiceAccounts), the listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use berth_kv::Store;
use serde_json::{Value, json};

use crate::api::Api;
use crate::auth::authn::Authenticator;
use crate::auth::pki::Pki;
use crate::auth::token_file::StaticTokens;
use crate::auth::tokens::TokenSigner;
use crate::error::ApiError;
use crate::request::Target;
use crate::security::Security;
use crate::server::Server;

/// How the control plane starts.
#[derive(Debug, Clone)]
pub struct Config {
    /// `<root>/server`: the PKI and the kubeconfig live here.
    pub dir: PathBuf,
    /// The HTTPS address.
    pub bind: SocketAddr,
    /// Extra names and addresses for the serving certificate.
    pub tls_sans: Vec<String>,
    /// Where to write the admin kubeconfig (default `<dir>/admin.kubeconfig`).
    pub kubeconfig: Option<PathBuf>,
    /// A static token file (kube's CSV format).
    pub token_file: Option<PathBuf>,
    /// How often the API server compacts the store's history, keeping what
    /// changed since the previous compaction (kube-apiserver's
    /// `--etcd-compaction-interval`); `None` leaves it to the store.
    pub compaction_interval: Option<std::time::Duration>,
    /// The Service IP range (kube-apiserver's `--service-cluster-ip-range`;
    /// default `198.19.0.0/20`).
    pub service_cluster_ip_range: crate::alloc::ServiceCidr,
    /// The NodePort range (`--service-node-port-range`; default
    /// `30000-32767`).
    pub service_node_port_range: crate::alloc::PortRange,
    /// The address the `kubernetes` Service's endpoints name
    /// (`--advertise-address`); `None`: the bind address, or the host's
    /// address toward its default route when bound to all addresses.
    pub advertise_address: Option<std::net::IpAddr>,
}

/// A started control plane.
pub struct ControlPlane {
    /// The API.
    pub api: Arc<Api>,
    /// The bound listener.
    pub server: Server,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Where the admin kubeconfig was written.
    pub kubeconfig: PathBuf,
    /// The cluster's PKI (e.g. to issue a node's kubelet serving certificate
    /// with [`Pki::issue_kubelet_serving_cert`]).
    pub pki: Arc<Pki>,
    /// The cluster CA certificate (PEM), which the root CA publisher puts
    /// in every namespace's `kube-root-ca.crt`.
    pub ca_pem: String,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Errors of starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The PKI or kubeconfig.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// Binding the address.
    #[error("bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The bootstrap writes.
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

/// Starts the control plane over a store.
pub async fn start(store: Arc<dyn Store>, config: Config) -> Result<ControlPlane, StartError> {
    // The `kubernetes` Service's address (and an advertised one) are names
    // of the API server too, as in kube-apiserver's serving certificate.
    let mut sans = config.tls_sans.clone();
    sans.push(config.service_cluster_ip_range.first().to_string());
    if let Some(ip) = config.advertise_address {
        sans.push(ip.to_string());
    }
    let pki = Pki::load_or_create(&config.dir.join("pki"), &sans)?;
    let signer = Arc::new(TokenSigner::from_pkcs8_pem(
        pki.service_account_key_pem(),
        "https://kubernetes.default.svc.cluster.local",
    )?);
    let ca_der = pki.ca_der()?;
    let mut authn = Authenticator::new()
        .with_client_ca(ca_der.as_ref())?
        .with_service_account_tokens(signer.clone(), Vec::new());
    if let Some(path) = &config.token_file {
        authn = authn.with_static_tokens(StaticTokens::load(path)?);
    }
    let api = Api::new(store, Some(Security::new(authn, signer)));
    api.set_service_ranges(crate::alloc::Ranges {
        cidr: config.service_cluster_ip_range,
        node_ports: config.service_node_port_range,
    });
    api.set_kubelet_client(pki.kubelet_client_config()?);
    let server = Server::bind(config.bind, pki.server_config(), api.clone())
        .await
        .map_err(|e| StartError::Bind(config.bind, e))?;
    let addr = server
        .local_addr()
        .map_err(|e| StartError::Bind(config.bind, e))?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let url = format!("https://{host}:{}", addr.port());
    let contents = crate::auth::kubeconfig::kubeconfig(
        &url,
        pki.ca_pem(),
        "admin",
        pki.admin_cert_pem(),
        pki.admin_key_pem(),
    );
    let kubeconfig = config
        .kubeconfig
        .clone()
        .unwrap_or_else(|| config.dir.join("admin.kubeconfig"));
    crate::auth::kubeconfig::write_kubeconfig(&kubeconfig, &contents)?;
    seed(&api)
        .await
        .map_err(|e| StartError::Bootstrap(e.message))?;
    // Service allocations: repaired, then the `kubernetes` Service.
    crate::alloc::repair::repair(&api, crate::alloc::repair::GRACE)
        .await
        .map_err(|e| StartError::Bootstrap(format!("service allocations: {}", e.message)))?;
    let advertise = config
        .advertise_address
        .unwrap_or_else(|| crate::alloc::kubernetes::advertise_address(addr));
    crate::alloc::kubernetes::reconcile(&api, advertise, addr.port())
        .await
        .map_err(|e| StartError::Bootstrap(format!("the kubernetes Service: {}", e.message)))?;
    crate::alloc::repair::spawn(api.clone());
    if let Some(every) = config.compaction_interval {
        spawn_compactor(api.objects.store().clone(), every);
    }
    api.ready.store(true, Ordering::Release);
    Ok(ControlPlane {
        api,
        server,
        addr,
        kubeconfig,
        ca_pem: pki.ca_pem().to_owned(),
        pki: Arc::new(pki),
    })
}

/// Creates `obj` unless an object of that name exists.
async fn ensure(
    api: &Api,
    group: &str,
    plural: &str,
    namespace: &str,
    obj: Value,
) -> Result<(), ApiError> {
    let resource = api
        .registry
        .get(group, "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("no resource {plural}")))?;
    let target = Target {
        resource,
        namespace: namespace.to_owned(),
        name: crate::meta::meta_str(&obj, "name").to_owned(),
        subresource: String::new(),
    };
    if api.objects.get_key(&target.key()).await?.is_some() {
        return Ok(());
    }
    let mut obj = obj;
    {
        let meta = crate::meta::metadata_mut(&mut obj);
        meta.insert("uid".to_owned(), json!(crate::meta::new_uid()));
        meta.insert("creationTimestamp".to_owned(), json!(crate::meta::now()));
        if !namespace.is_empty() {
            meta.insert("namespace".to_owned(), json!(namespace));
        }
    }
    crate::kinds::prepare(
        api,
        &target.resource,
        crate::kinds::Op::Create,
        None,
        &mut obj,
        crate::kinds::FieldValidation::Ignore,
    )?;
    match api.objects.create(&target, &obj, None).await {
        Ok(stored) => {
            // Not `Api::after_write`: that creates default ServiceAccounts
            // through this function.
            crate::crd::after_write(api, &target.resource, &stored);
            if let Some(security) = &api.security {
                security.after_write(&target.resource);
            }
            Ok(())
        }
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

/// The default ServiceAccount of a namespace (the ServiceAccount
/// admission's promise).
pub async fn ensure_default_service_account(api: &Api, namespace: &str) -> Result<(), ApiError> {
    ensure(
        api,
        "",
        "serviceaccounts",
        namespace,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
    )
    .await
}

/// The objects every cluster has.
async fn seed(api: &Api) -> Result<(), ApiError> {
    crate::crd::load(api).await?;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(
            api,
            "",
            "namespaces",
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
        ensure_default_service_account(api, ns).await?;
    }
    for obj in crate::auth::bootstrap::bootstrap_policy() {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let plural = match kind {
            "ClusterRole" => "clusterroles",
            "ClusterRoleBinding" => "clusterrolebindings",
            "Role" => "roles",
            "RoleBinding" => "rolebindings",
            _ => continue,
        };
        let namespace = crate::meta::meta_str(&obj, "namespace").to_owned();
        ensure(api, "rbac.authorization.k8s.io", plural, &namespace, obj).await?;
    }
    if let Some(security) = &api.security {
        security.aggregate(api).await?;
    }
    Ok(())
}

/// Compacts the store every `every` to the revision it had at the previous
/// tick, so that watchers always have at least one interval of history.
/// Several servers on one store may all do it: a compaction another
/// already made is not an error.
fn spawn_compactor(store: Arc<dyn Store>, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut previous: Option<berth_kv::Revision> = None;
        loop {
            tokio::time::sleep(every).await;
            let now = match store.current_revision().await {
                Ok(now) => now,
                Err(e) => {
                    tracing::warn!(error = %e, "compaction: reading the revision failed");
                    continue;
                }
            };
            if let Some(at) = previous
                && at > 0
            {
                match store.compact(at).await {
                    Ok(()) => tracing::debug!(revision = at, "compacted"),
                    Err(berth_kv::Error::Compacted { .. }) => {}
                    Err(e) => tracing::warn!(error = %e, "compaction failed"),
                }
            }
            previous = Some(now);
        }
    });
}
