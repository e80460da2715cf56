//! The studio (`studio/`, the web app) served at `/studio/` from the same origin as the API, so
//! it needs no CORS and its cookies stay first-party.
//!
//! * Files come from the built app, `SWITCHYARD_STUDIO_DIR` (default `studio/dist`, relative to
//!   the working directory; `make demo` builds it). It is looked at per request: building the
//!   studio while the server runs is enough.
//! * Vite names every file under `assets/` by its content hash, so those are cached for a year
//!   (`immutable`); everything else (`index.html` above all) is `no-cache`, so a new build is
//!   picked up on the next load.
//! * The app routes in the browser: a path under `/studio/` that is not a file answers
//!   `index.html` (deep links, reloads). A missing file under `assets/` stays a 404: answering
//!   HTML for a script would only hide the error.
//! * The Content-Security-Policy allows no inline script, no `eval` and no other origin.
//! * Not built: `/studio/…` answers 503 `STUDIO_NOT_BUILT` in the error envelope, saying how
//!   to build it.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::ApiError;

/// Where the studio is mounted.
pub const PREFIX: &str = "/studio";

/// The studio's Content-Security-Policy: its own origin only, no inline script or `eval`; the
/// API is the same origin (`connect-src 'self'`); never framed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; \
                       form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

/// The folder of the built studio: `SWITCHYARD_STUDIO_DIR`, else `studio/dist`.
pub fn dir_from_env() -> PathBuf {
    std::env::var_os("SWITCHYARD_STUDIO_DIR").map_or_else(|| PathBuf::from("studio/dist"), PathBuf::from)
}

/// The studio's routes, serving [`dir_from_env`].
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    router_at(dir_from_env())
}

/// The studio's routes, serving the built app in `dir`.
pub fn router_at<S: Clone + Send + Sync + 'static>(dir: PathBuf) -> Router<S> {
    let dir = Arc::new(dir);
    let serve = tower::service_fn(move |req: Request| {
        let dir = dir.clone();
        async move { Ok::<_, Infallible>(serve(&dir, req).await) }
    });
    Router::new()
        .route(PREFIX, get(|| async { Redirect::permanent("/studio/") }))
        .route_service("/studio/", serve.clone())
        .route_service("/studio/{*path}", serve)
}

async fn serve(dir: &Path, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let e = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "the studio's files are only read");
        return ([(header::ALLOW, "GET, HEAD")], e).into_response();
    }
    let index = dir.join("index.html");
    if !tokio::fs::metadata(&index).await.is_ok_and(|m| m.is_file()) {
        return not_built(dir).into_response();
    }
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().strip_prefix(PREFIX).unwrap_or("/").to_string();
    let path = if path.is_empty() { "/".to_string() } else { path };
    let asset = path.starts_with("/assets/");
    let rewritten = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    parts.uri = rewritten.parse::<Uri>().unwrap_or_else(|_| Uri::from_static("/"));
    let Ok(found) = ServeDir::new(dir).oneshot(Request::from_parts(parts, body)).await;
    let response = if found.status() == StatusCode::NOT_FOUND {
        if asset {
            return with_headers(ApiError::not_found("no such file in the studio").into_response(), asset);
        }
        // Any other path is one of the app's own: its index decides.
        let Ok(index) = ServeFile::new(index).oneshot(Request::new(Body::empty())).await;
        index.map(Body::new)
    } else {
        found.map(Body::new)
    };
    with_headers(response, asset)
}

fn with_headers(mut response: Response, asset: bool) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    let cache = if asset && response.status().is_success() { IMMUTABLE } else { NO_CACHE };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

fn not_built(dir: &Path) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "STUDIO_NOT_BUILT",
        format!(
            "the studio is not built (no {}): run `make demo`, or `npm ci && npm run build` in studio/, \
             or point SWITCHYARD_STUDIO_DIR at a built studio",
            dir.join("index.html").display()
        ),
    )
}
