//! What a handler receives, with rejections in the error envelope: bodies and query strings
//! ([`body`]), the authenticated caller ([`principal`]) and the client's address
//! ([`ClientIp`]), the parameters of an entity route's path ([`path`]: type, id, transition). Extractors are where authentication, the tenant of the path and the roles a
//! route needs are checked, so a handler's body starts with what it may do.

pub mod body;
pub mod path;
pub mod principal;

pub use body::{JsonBody, QueryParams};
pub use principal::{authenticate, Admin, AdminArea, PathTenant, Principal, TenantActor, ADMIN_ROLE};

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::client_ip::of_request;
use crate::state::AppState;

/// Extractor: the client's address ([`of_request`] with the server's trusted proxies); `None`
/// without connection info.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(of_request(&parts.extensions, &parts.headers, &state.ops.config.trusted_proxies)))
    }
}
