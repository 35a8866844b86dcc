//! One error type for the share service and every handler: each variant is one of SPEC's
//! statuses (mapped to HTTP in `http.rs`), with a clear message that never holds a secret.

/// What went wrong with a request; the message never contains a secret or a token.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the body or a parameter is not what the protocol says.
    BadRequest(String),
    /// 401: `--create-token` is set and the request lacks it.
    Unauthorized,
    /// 401: an admin route without the server's `--admin-token`.
    NotAdmin,
    /// 403: the share exists and the secret is wrong.
    Forbidden,
    /// 404: no such share (never created, or deleted).
    NotFound,
    /// 409: a share with this id exists already; its secret is never handed out again.
    Conflict,
    /// 409: an append does not apply to the stored content (docs/append-protocol.md); the
    /// client sends the whole content instead.
    AppendRefused(String),
    /// 413: a body, an item or the share passes its configured limit.
    TooLarge(String),
    /// 429: more requests for one share than `--rate-limit` per second.
    TooMany { retry_after_s: u64 },
    /// 408: the client did not send its whole body in time.
    Timeout,
    /// 503 + Retry-After: a server-wide limit is reached (live streams); `reason` says which.
    Busy { reason: String, retry_after_s: u64 },
    /// 507 + Retry-After: the store's disk is full; reads go on, writes resume once space is freed.
    StorageFull { retry_after_s: u64 },
    /// 500: the store failed; logged.
    Internal(String),
}

impl ApiError {
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m) => m.clone(),
            ApiError::Unauthorized => {
                "creating a share needs the server's create token (authorization: Bearer)".into()
            }
            ApiError::NotAdmin => {
                "the admin API needs the server's admin token (authorization: Bearer)".into()
            }
            ApiError::Forbidden => "wrong secret for this share".into(),
            ApiError::NotFound => "no such share".into(),
            ApiError::Conflict => "a share with this id exists already".into(),
            ApiError::AppendRefused(m) => format!("append refused: {m}; send the whole content"),
            ApiError::TooLarge(m) => m.clone(),
            ApiError::TooMany { .. } => "too many requests; retry later".into(),
            ApiError::Timeout => "the request body did not arrive in time".into(),
            ApiError::Busy { reason, .. } => format!("{reason}; retry later"),
            ApiError::StorageFull { .. } => {
                "the share store's disk is full; reads go on, writes are refused until space is freed"
                    .into()
            }
            ApiError::Internal(_) => "internal error in the share store".into(),
        }
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
            StoreError::AppendRefused(m) => ApiError::AppendRefused(m),
            StoreError::Full => ApiError::StorageFull { retry_after_s: 30 },
            StoreError::Refused(m) => ApiError::BadRequest(m),
            StoreError::Backend(m) => ApiError::Internal(m),
        }
    }
}
