//! The source-IP check: the client address (see `client_addr`) must be in the
//! allow-list, fixed or filled from GitHub's `/meta` (see `meta`). Runs before the
//! body is read, so a stranger costs no more than its headers.

use crate::{
    allow_list::AllowList,
    client_addr::client_ip,
    config::{ConfigError, Setting},
    meta::{MetaCache, MetaSettings},
    rejection::Rejection,
};
use http::HeaderMap;
use ipnet::IpNet;
use std::{net::IpAddr, sync::Arc};

/// `Config::validate_ip` / `VALIDATE_IP`.
pub(crate) const VALIDATE_IP: Setting = Setting::new("Config::validate_ip", "VALIDATE_IP");
/// `Config::trusted_proxies` / `HOOKSERVER_TRUSTED_PROXIES`.
pub(crate) const TRUSTED_PROXIES: Setting =
    Setting::new("Config::trusted_proxies", "HOOKSERVER_TRUSTED_PROXIES");
/// `Config::allowed_ips` / `HOOKSERVER_ALLOWED_IPS`.
pub(crate) const ALLOWED_IPS: Setting =
    Setting::new("Config::allowed_ips", "HOOKSERVER_ALLOWED_IPS");

/// Who may deliver: whether the check runs, which proxies are believed, and a fixed
/// allow-list (else GitHub's `/meta`, configured by [`MetaSettings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceSettings {
    pub(crate) validate: bool,
    pub(crate) trusted_proxies: Vec<IpNet>,
    pub(crate) allowed_ips: Option<Vec<IpNet>>,
}

impl Default for SourceSettings {
    fn default() -> Self {
        Self {
            validate: true,
            trusted_proxies: Vec::new(),
            allowed_ips: None,
        }
    }
}

impl SourceSettings {
    /// `meta` is checked only when it will be used.
    pub(crate) fn check(&self, meta: &MetaSettings) -> Result<(), ConfigError> {
        if !self.validate {
            return Ok(());
        }
        match &self.allowed_ips {
            Some(list) if list.is_empty() => Err(ConfigError::invalid(
                ALLOWED_IPS,
                "",
                "at least one CIDR (or turn the source-IP check off)",
            )),
            Some(_) => Ok(()),
            None => meta.check(),
        }
    }
}

/// The source-IP check of one router.
pub(crate) struct SourceCheck {
    trusted_proxies: AllowList,
    allowed: Allowed,
}

enum Allowed {
    /// `HOOKSERVER_ALLOWED_IPS`: fixed, never fetched.
    Fixed(AllowList),
    /// GitHub's `/meta` `hooks` ranges, cached.
    Meta(Arc<MetaCache>),
}

impl SourceCheck {
    /// The check, or `None` when it is off. Fetching starts now when `meta.warm`.
    pub(crate) fn new(
        settings: &SourceSettings,
        meta: &MetaSettings,
    ) -> Result<Option<Self>, ConfigError> {
        if !settings.validate {
            return Ok(None);
        }
        let allowed = match &settings.allowed_ips {
            Some(nets) => Allowed::Fixed(AllowList::new(nets.iter().copied())),
            None => {
                let cache = Arc::new(MetaCache::new(meta)?);
                if meta.warm {
                    cache.warm();
                }
                Allowed::Meta(cache)
            }
        };
        let trusted_proxies = AllowList::new(settings.trusted_proxies.iter().copied());
        Ok(Some(Self {
            trusted_proxies,
            allowed,
        }))
    }

    /// GitHub's `/meta` cache, or `None` for a fixed allow-list.
    pub(crate) fn meta(&self) -> Option<Arc<MetaCache>> {
        match &self.allowed {
            Allowed::Fixed(_) => None,
            Allowed::Meta(meta) => Some(Arc::clone(meta)),
        }
    }

    /// Resolves the client and checks it against the allow-list. Runs before the
    /// body is read, so a stranger costs us no more than its headers.
    pub(crate) async fn check(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<IpAddr, Rejection> {
        let peer = peer.ok_or(Rejection::NoPeerAddress)?;
        let client = client_ip(peer, headers, &self.trusted_proxies)?;
        let allowed = match &self.allowed {
            Allowed::Fixed(list) => list.contains(client),
            Allowed::Meta(meta) => meta.allow_list().await?.contains(client),
        };
        if allowed {
            Ok(client)
        } else {
            Err(Rejection::ForbiddenSource(client))
        }
    }
}
