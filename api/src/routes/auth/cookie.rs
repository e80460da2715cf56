//! Cookie mode of the auth routes, for the studio (a browser app): with the request header
//! `X-Refresh-Mode: cookie`, login and refresh set the refresh token as an `HttpOnly`, `Secure`,
//! `SameSite=Strict` cookie scoped to `/api/v1/auth` and leave it out of the JSON answer;
//! refresh and logout then read it from that cookie, and logout clears it. Page scripts never
//! see the refresh token, so an injected script cannot steal a session that outlives the page.
//!
//! Why a header, not a body member: the bodies deny unknown fields (API clients keep exactly
//! the behaviour they had), and a custom header is something a cross-site form cannot send (a
//! cross-origin `fetch` with it needs a CORS preflight, which no origin passes for cookies).
//! `SameSite=Strict` already keeps the cookie off cross-site requests; the header is the
//! second lock. Without the header nothing changes: the refresh token travels in the JSON body.

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::extract::JsonBody;

/// The request header asking for cookie mode, and its value.
pub const MODE_HEADER: &str = "x-refresh-mode";
pub const MODE_COOKIE: &str = "cookie";
/// The cookie's name and path (only the auth routes ever receive it).
pub const COOKIE_NAME: &str = "switchyard_refresh";
pub const COOKIE_PATH: &str = "/api/v1/auth";

/// Whether the request asks for cookie mode.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers.get(MODE_HEADER).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case(MODE_COOKIE))
}

/// The refresh token in the request's `Cookie` headers, if any (the first non-empty one).
pub fn read(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE_NAME && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"').to_string())
}

/// The `Set-Cookie` value holding `token` for `max_age_secs`.
pub fn set(token: &str, max_age_secs: i64) -> String {
    format!("{COOKIE_NAME}={token}; Path={COOKIE_PATH}; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Strict")
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear() -> String {
    format!("{COOKIE_NAME}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// A token pair answered in cookie mode: the refresh token moves from the JSON body to the
/// cookie (it lives as long as the body's `refresh_expires_in` says).
pub fn into_cookie(Json(mut pair): Json<Value>) -> Response {
    let token = pair.as_object_mut().and_then(|o| o.remove("refresh_token"));
    let max_age = pair["refresh_expires_in"].as_i64().unwrap_or(0);
    let mut response = Json(pair).into_response();
    if let Some(Value::String(token)) = token {
        if let Ok(v) = HeaderValue::from_str(&set(&token, max_age)) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// Adds the header that removes the cookie to `response`.
pub fn with_cleared(mut response: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&clear()) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Where the refresh token of a refresh or logout comes from: the cookie in cookie mode (the body
/// is then ignored), else the JSON body `T`, exactly as without cookie mode.
pub enum Source<T> {
    Cookie(Option<String>),
    Body(T),
}

impl<S, T> FromRequest<S> for Source<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if wanted(req.headers()) {
            return Ok(Source::Cookie(read(req.headers())));
        }
        JsonBody::<T>::from_request(req, state).await.map(|JsonBody(body)| Source::Body(body))
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn mode_is_asked_by_the_header_only() {
        assert!(wanted(&headers(&[("x-refresh-mode", "cookie")])));
        assert!(wanted(&headers(&[("X-Refresh-Mode", " Cookie ")])));
        assert!(!wanted(&headers(&[("x-refresh-mode", "json")])));
        assert!(!wanted(&headers(&[])));
    }

    #[test]
    fn reads_the_cookie_among_others() {
        let h = headers(&[("cookie", "a=1; switchyard_refresh=abc.def; b=2")]);
        assert_eq!(read(&h).as_deref(), Some("abc.def"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "switchyard_refresh=x")]);
        assert_eq!(read(&h).as_deref(), Some("x"));
        assert_eq!(read(&headers(&[("cookie", "switchyard_refresh=")])), None);
        assert_eq!(read(&headers(&[("cookie", "other_switchyard_refresh=x")])), None);
    }

    #[test]
    fn cookie_attributes() {
        let s = set("tok", 60);
        assert_eq!(s, "switchyard_refresh=tok; Path=/api/v1/auth; Max-Age=60; HttpOnly; Secure; SameSite=Strict");
        assert!(clear().contains("Max-Age=0"));
    }

    #[test]
    fn the_refresh_token_moves_to_the_cookie() {
        let r = into_cookie(Json(
            serde_json::json!({ "access_token": "a", "refresh_token": "r", "refresh_expires_in": 9 }),
        ));
        let cookie = r.headers().get(header::SET_COOKIE).unwrap().to_str().unwrap();
        assert!(cookie.starts_with("switchyard_refresh=r; "), "{cookie}");
        assert!(cookie.contains("Max-Age=9"));
    }
}
