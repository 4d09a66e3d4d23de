//! Authentication (client certificates, bearer tokens, ServiceAccount tokens), the PKI and kubeconfig, and RBAC.
