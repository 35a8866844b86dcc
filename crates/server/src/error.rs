//! One error type for every handler: each variant is one of SPEC's statuses, with a clear message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What went wrong with a request; the message never contains a secret or a token.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the body or a parameter is not what the protocol says.
    BadRequest(String),
    /// 401: `--create-token` is set and the request lacks it.
    Unauthorized,
    /// 403: the share exists and the secret is wrong.
    Forbidden,
    /// 404: no such share (never created, or deleted).
    NotFound,
    /// 409: a share with this id exists already; its secret is never handed out again.
    Conflict,
    /// 413: a body, an item or the share passes its configured limit.
    TooLarge(String),
    /// 429: more requests for one share than `--rate-limit` per second.
    TooMany { retry_after_s: u64 },
    /// 500: the store failed; logged on stderr.
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m) => m.clone(),
            ApiError::Unauthorized => {
                "creating a share needs the server's create token (authorization: Bearer)".into()
            }
            ApiError::Forbidden => "wrong secret for this share".into(),
            ApiError::NotFound => "no such share".into(),
            ApiError::Conflict => "a share with this id exists already".into(),
            ApiError::TooLarge(m) => m.clone(),
            ApiError::TooMany { .. } => "too many requests for this share; retry later".into(),
            ApiError::Internal(_) => "internal error in the share store".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            eprintln!("opencode-share-server: store error: {detail}");
        }
        let body = serde_json::json!({ "error": self.message() }).to_string();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let ApiError::TooMany { retry_after_s } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Forbidden => ApiError::Forbidden,
            StoreError::Exists => ApiError::Conflict,
            StoreError::ShareTooLarge { limit } => {
                ApiError::TooLarge(format!("the share would pass its limit of {limit} bytes"))
            }
            StoreError::Backend(m) => ApiError::Internal(m),
        }
    }
}
