//! `POST /networks/create` and `POST /networks/{id}/(dis)connect` bodies.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::container::EndpointBody;

/// An `IPAM.Config` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamPoolBody {
    /// CIDR.
    pub subnet: Option<String>,
    /// Range addresses are given from.
    #[serde(rename = "IPRange")]
    pub ip_range: Option<String>,
    /// Gateway.
    pub gateway: Option<String>,
    /// Addresses reserved for other hosts.
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

/// `IPAM`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamBody {
    /// `default`.
    pub driver: Option<String>,
    /// Pools.
    pub config: Option<Vec<IpamPoolBody>>,
    /// Driver options.
    pub options: Option<BTreeMap<String, String>>,
}

/// The network create body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct NetworkCreateBody {
    pub name: Option<String>,
    pub check_duplicate: Option<bool>,
    pub driver: Option<String>,
    pub scope: Option<String>,
    pub internal: Option<bool>,
    pub attachable: Option<bool>,
    pub ingress: Option<bool>,
    #[serde(rename = "IPAM")]
    pub ipam: Option<IpamBody>,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: Option<bool>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub config_only: Option<bool>,
    pub config_from: Option<serde_json::Value>,
}

impl NetworkCreateBody {
    /// berth-net's request.
    pub fn into_request(self) -> Result<berth_net::CreateNetwork, String> {
        // checked with the rest (docker's "invalid name: " when blank)
        let name = self.name.unwrap_or_default();
        if self.enable_ipv6 == Some(true) {
            return Err("not supported yet: IPv6 networks".into());
        }
        if self.ingress == Some(true) || self.config_only == Some(true) {
            return Err("not supported yet: swarm ingress and config-only networks".into());
        }
        if self
            .config_from
            .as_ref()
            .and_then(|c| c.get("Network"))
            .and_then(|n| n.as_str())
            .is_some_and(|n| !n.is_empty())
        {
            return Err("not supported yet: networks made from a config-only network".into());
        }
        let ipam = self.ipam.unwrap_or_default();
        if ipam
            .driver
            .as_deref()
            .is_some_and(|d| !d.is_empty() && d != "default")
        {
            return Err(format!(
                "not supported yet: IPAM driver {:?}",
                ipam.driver.unwrap_or_default()
            ));
        }
        let pools = ipam.config.unwrap_or_default();
        if pools.len() > 1 {
            return Err("not supported yet: more than one subnet per network".into());
        }
        let pool = pools.into_iter().next().unwrap_or_default();
        let v6 = |s: &Option<String>| s.as_deref().is_some_and(|a| a.contains(':'));
        if v6(&pool.subnet) || v6(&pool.gateway) || v6(&pool.ip_range) {
            return Err("not supported yet: IPv6 subnets".into());
        }
        let nonempty = |s: Option<String>| s.filter(|x| !x.is_empty());
        Ok(berth_net::CreateNetwork {
            name,
            driver: self.driver.unwrap_or_default(),
            subnet: nonempty(pool.subnet),
            gateway: nonempty(pool.gateway),
            ip_range: nonempty(pool.ip_range),
            aux_addresses: pool.auxiliary_addresses.unwrap_or_default(),
            internal: self.internal.unwrap_or(false),
            attachable: self.attachable.unwrap_or(false),
            labels: self.labels.unwrap_or_default(),
            options: self.options.unwrap_or_default(),
            ipam_options: ipam.options,
        })
    }
}

/// The connect / disconnect body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConnectBody {
    /// The container.
    pub container: Option<String>,
    /// Endpoint settings (connect).
    pub endpoint_config: Option<EndpointBody>,
    /// Disconnect even a container that is not on it.
    pub force: Option<bool>,
}
