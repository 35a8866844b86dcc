//! opencode's hosted legacy service (its Cloudflare worker and Durable Object) played over the
//! real server, by the proxy: shares keyed by the last 8 characters of the session id;
//! `share_create` idempotent per short id, answering the existing secret to whoever asks; a wrong
//! secret, an unknown or deleted share (the server's 403 and 404) and a value over
//! [`MAX_VALUE`] answered 500 `Internal Server Error`; a key outside the creating session's
//! `info`, `message` and `part` prefixes answered 200 and not stored; an unknown route answered
//! 200 `Not Found`. Under ShareNext's `/api/share...` (its hosted service, share-next.ts) a wrong
//! secret, an unknown share and a taken id answer 500 as well, and an org account's service
//! ([`Hosted::org`]) serves `/api/shares...` only, answering 401 without the account's
//! `authorization: Bearer <token>` and `x-org-id`. Anything else reaches the server as it is.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use fault_proxy::{Reply, Seen, Semantics};
use serde_json::Value;

use crate::short_id;

/// The largest value the hosted service stores (its Durable Object storage cap, 128 KiB).
pub const MAX_VALUE: usize = 131_072;

const ROUTES: [&str; 3] = ["/share_create", "/share_sync", "/share_delete"];

/// One share the hosted service made: the session that created it and the create's answer.
struct Made {
    session: String,
    answer: String,
}

/// The hosted rules; see the module's doc.
#[derive(Default)]
pub struct Hosted {
    /// per short id; a leaf lock
    made: Mutex<HashMap<String, Made>>,
    /// an org account's `authorization` and `x-org-id` values
    org: Option<(String, String)>,
}

impl Hosted {
    /// The service of an org account: `/api/shares...` only, with `token` and `org_id`.
    pub fn org(token: &str, org_id: &str) -> Hosted {
        Hosted {
            made: Mutex::default(),
            org: Some((format!("Bearer {token}"), org_id.to_owned())),
        }
    }

    /// ShareNext's routes: an org service's answer of 401 or 404 where it applies.
    fn answer_next(&self, req: &Seen) -> Option<Reply> {
        let (authorization, org_id) = self.org.as_ref()?;
        if !req.path.starts_with("/api/shares") {
            return Some(Reply::text(404, "Not Found"));
        }
        let header = |name: &str| {
            let found = req.headers.iter().find(|(n, _)| n == name);
            found.map(|(_, v)| v.as_str())
        };
        let allowed = header("authorization") == Some(authorization.as_str())
            && header("x-org-id") == Some(org_id.as_str());
        (!allowed).then(|| Reply::text(401, "Unauthorized"))
    }

    fn made(&self) -> MutexGuard<'_, HashMap<String, Made>> {
        self.made.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn internal_error() -> Reply {
    Reply::text(500, "Internal Server Error")
}

fn field<'a>(json: &'a Value, name: &str) -> Option<&'a str> {
    json.get(name).and_then(Value::as_str)
}

/// Whether `key` is one the hosted service stores for a share `session` created.
fn stored_key(key: &str, session: &str) -> bool {
    key == format!("session/info/{session}")
        || key.starts_with(&format!("session/message/{session}/"))
        || key.starts_with(&format!("session/part/{session}/"))
}

impl Semantics for Hosted {
    fn flow(&self, req: &Seen) -> Option<String> {
        crate::flow(req)
    }

    fn answer(&self, req: &Seen) -> Option<Reply> {
        if req.path.starts_with("/api/") {
            return self.answer_next(req);
        }
        if req.method != "POST" || !ROUTES.contains(&req.path.as_str()) {
            return Some(Reply::text(200, "Not Found"));
        }
        let Some(json) = req.json() else {
            return Some(internal_error());
        };
        let Some(session) = field(&json, "sessionID") else {
            return Some(internal_error());
        };
        let id = short_id(session);
        match req.path.as_str() {
            "/share_create" => {
                let made = self.made();
                let answer = &made.get(id)?.answer;
                Some(Reply::json(200, &serde_json::from_str(answer).ok()?))
            }
            "/share_sync" => {
                let content = json.get("content")?;
                if content.to_string().len() > MAX_VALUE {
                    return Some(internal_error()); // the storage refuses the value
                }
                let key = field(&json, "key")?;
                let made = self.made();
                let creator = &made.get(id)?.session;
                // a refused key's 400 is discarded by the worker: the client sees 200
                (!stored_key(key, creator)).then(|| Reply::json(200, &serde_json::json!({})))
            }
            _ => None,
        }
    }

    /// Also answers every 2xx itself: opencode's services advertise no extension, so the
    /// server's `x-share-extensions` never reaches the client (docs/append-protocol.md).
    fn rewrite(&self, req: &Seen, status: u16, body: &[u8]) -> Option<Reply> {
        let replaced = self.rewrite_status(req, status, body);
        replaced.or_else(|| {
            (200..300).contains(&status).then(|| Reply {
                status,
                body: String::from_utf8_lossy(body).into_owned(),
                content_type: "application/json",
            })
        })
    }
}

impl Hosted {
    fn rewrite_status(&self, req: &Seen, status: u16, body: &[u8]) -> Option<Reply> {
        let session = req
            .json()
            .and_then(|j| field(&j, "sessionID").map(str::to_owned));
        let next = req.path.starts_with("/api/");
        match (status, req.path.as_str()) {
            (403 | 404, _) => Some(internal_error()),
            (409, _) if next => Some(internal_error()), // AlreadyExists, thrown
            (_, _) if next => None,
            (200, "/share_create") => {
                let session = session?;
                let made = Made {
                    answer: String::from_utf8_lossy(body).into_owned(),
                    session: session.clone(),
                };
                self.made().insert(short_id(&session).to_owned(), made);
                None
            }
            (200, "/share_delete") => {
                self.made().remove(short_id(&session?));
                None
            }
            (400, "/share_sync") => Some(internal_error()),
            _ => None,
        }
    }
}
