//! Authentication (client certificates, bearer tokens, ServiceAccount tokens), the PKI and kubeconfig, and RBAC.
//!
//! Everything here is pure or works on files: the caller wires it into the HTTP server.
//! - [`pki`]: the cluster CA, the API server's serving certificate, the admin client
//!   certificate and the ServiceAccount signing key, kept as PEM files.
//! - [`kubeconfig`]: kubeconfig files as kubectl writes them.
//! - [`authn`]: who a request is — client certificates, static tokens, ServiceAccount JWTs.
//! - [`token_file`]: kube-apiserver's static token file (CSV).
//! - [`tokens`]: ServiceAccount tokens as signed JWTs (TokenRequest).
//! - [`rbac`]: the RBAC authorizer over a snapshot of Roles, ClusterRoles and bindings.
//! - [`aggregation`]: ClusterRole aggregation (`aggregationRule.clusterRoleSelectors`).
//! - [`bootstrap`]: the default ClusterRoles and ClusterRoleBindings of a Kubernetes cluster.

pub mod aggregation;
pub mod authn;
pub mod bootstrap;
mod error;
mod fsutil;
pub mod kubeconfig;
pub mod pki;
pub mod rbac;
pub mod token_file;
pub mod tokens;

pub use error::AuthError;
