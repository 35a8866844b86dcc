//! The seam between the machinery (queue, workers, retries, flush, remove) and a wire protocol.
//! A protocol says which keys it carries, how a batch of one share's items becomes one request,
//! and how create and delete look on the wire; the machinery does the rest the same way for
//! both. v1 is the batch-of-one case: its batches never hold more than one item.

pub mod append;
mod json;
pub mod next;
pub mod v1;

use std::sync::Arc;

use crate::config::{Config, ProtocolName};
use crate::error::Result;
use crate::registry::{Secret, Share};

/// An HTTP method the protocols use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One request to make: a method, a path under the service's base URL, a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub body: String,
    /// A create or a sync: its 2xx answer tells which extensions the service speaks
    /// (docs/append-protocol.md).
    pub learns: bool,
}

/// One content of a batch, already made safe (its share's secret removed).
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub key: &'a str,
    pub content: &'a str,
    /// Sent as these grows of the acknowledged content instead (the append extension).
    pub grown: Option<&'a append::Grown>,
}

/// A share as a create answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The share's id on the service ("next"; v1 shares have none).
    pub id: Option<String>,
    pub url: String,
    pub secret: Secret,
}

impl Created {
    /// The JSON handed to the host (it asked for its secret): `{"url","secret"}` under v1,
    /// `{"id","url","secret"}` under "next".
    pub fn to_json(&self) -> String {
        let mut v = serde_json::json!({ "url": self.url, "secret": self.secret.expose() });
        if let Some(id) = &self.id {
            v["id"] = serde_json::Value::from(id.as_str());
        }
        v.to_string()
    }

    /// What the registry keeps of it.
    pub fn share(&self) -> Share {
        Share {
            secret: self.secret.clone(),
            id: self.id.as_deref().map(Arc::from),
        }
    }
}

/// The protocol a runtime speaks, with what its requests need from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V1,
    /// `org`: the requests go to an org account's `/api/shares/...` resource.
    Next {
        org: bool,
    },
}

impl Protocol {
    pub fn of(config: &Config) -> Protocol {
        match config.protocol {
            ProtocolName::V1 => Protocol::V1,
            ProtocolName::Next => Protocol::Next {
                org: config.org.is_some(),
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "v1",
            Protocol::Next { .. } => "next",
        }
    }

    /// Whether one request may carry several items of a share (and so a share has at most one
    /// request in flight, and `concurrency` counts shares).
    pub fn batches(self) -> bool {
        matches!(self, Protocol::Next { .. })
    }

    /// Whether a synced key (`session/<sub>/<sessionID>/...`) is sent at all.
    pub fn carries(self, key: &str) -> bool {
        match self {
            Protocol::V1 => true,
            Protocol::Next { .. } => next::item_type(key).is_some(),
        }
    }

    /// The request creating a share of `session`.
    pub fn create(self, session: &str) -> Request {
        match self {
            Protocol::V1 => v1::create(session),
            Protocol::Next { org } => next::create(org, session),
        }
    }

    /// Reads a create's answer.
    pub fn parse_created(self, body: &[u8]) -> Result<Created> {
        match self {
            Protocol::V1 => v1::parse_created(body),
            Protocol::Next { .. } => next::parse_created(body),
        }
    }

    /// The request carrying `items` (all of `session`'s share; one under v1).
    pub fn sync(self, session: &str, share: &Share, items: &[Item<'_>]) -> Request {
        match self {
            Protocol::V1 => {
                debug_assert_eq!(items.len(), 1, "v1 sends one key per request");
                v1::sync(session, &share.secret, &items[0])
            }
            Protocol::Next { org } => {
                next::sync(org, &next::share_id(session, share), &share.secret, items)
            }
        }
    }

    /// The request deleting `session`'s share.
    pub fn delete(self, session: &str, share: &Share) -> Request {
        match self {
            Protocol::V1 => v1::delete(session, &share.secret),
            Protocol::Next { org } => {
                next::delete(org, &next::share_id(session, share), &share.secret)
            }
        }
    }
}
