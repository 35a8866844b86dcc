//! HTTP helpers both protocols and the viewer share: the error's status and JSON answer, JSON
//! bodies read whatever their content-type, JSON answers, and the no-store header.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::conn::BodyTimedOut;
use crate::error::ApiError;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::NotAdmin => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict | ApiError::AppendRefused(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::StorageFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "store error");
        }
        let message = self.message();
        let cause = crate::observe::Cause::of(&message);
        let body = serde_json::json!({ "error": message }).to_string();
        let mut response = (self.status(), body).into_response();
        response.extensions_mut().insert(cause);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let ApiError::TooMany { retry_after_s }
        | ApiError::Busy { retry_after_s, .. }
        | ApiError::StorageFull { retry_after_s } = self
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        response
    }
}

/// Parses a JSON body (any content-type) into `T`; a too-large body is 413, anything else 400.
pub fn json_body<'a, T: Deserialize<'a>>(
    body: &'a Result<Bytes, BytesRejection>,
    shape: &str,
) -> Result<T, ApiError> {
    let bytes = match body {
        Ok(b) => b,
        Err(rejection) if timed_out(rejection) => return Err(ApiError::Timeout),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError::TooLarge(
                "the request body passes the server's limit".into(),
            ));
        }
        Err(rejection) => {
            return Err(ApiError::BadRequest(format!(
                "cannot read the body: {rejection}"
            )));
        }
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("body must be JSON {shape}: {e}")))
}

/// Whether the body failed because its deadline passed (`conn::BodyTimedOut` in its sources).
fn timed_out(rejection: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// A 200 answer with a JSON body.
pub fn ok_json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Responses that must never be served stale from a cache.
pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The `Bearer` token of an `authorization` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}
