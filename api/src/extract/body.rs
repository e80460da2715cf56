//! Body extractors whose rejections use the error envelope.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::ApiError;

/// `Json<T>` with rejections mapped to 400/422 in the envelope, naming the path when the body is
/// JSON but not of the expected shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| match e.status() {
            // A streamed body over the limit (one with a `content-length` never gets here).
            axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
            _ => ApiError::bad_request(e.body_text()),
        })?;
        if bytes.is_empty() {
            return serde_json::from_value(json!({}))
                .map(JsonBody)
                .map_err(|e| ApiError::validation(json!([{ "path": "", "message": e.to_string() }])));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(de) {
            Ok(v) => Ok(JsonBody(v)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if inner.is_data() {
                    let pointer = if path == "." { String::new() } else { format!("/{}", path.replace('.', "/")) };
                    Err(ApiError::validation(json!([{ "path": pointer, "message": inner.to_string() }])))
                } else {
                    Err(ApiError::bad_request(format!("the body is not valid JSON: {inner}")))
                }
            }
        }
    }
}

/// `Query<T>` with rejections answered in the error envelope (400 `BAD_REQUEST`) instead of
/// axum's plain-text body.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryParams<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(q)| QueryParams(q))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}
