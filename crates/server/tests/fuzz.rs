//! The request parsers under random input (proptest, bounded cases): ids, legacy and ShareNext
//! keys, JSON bodies, query strings, paths and forwarded addresses. Nothing panics, nothing is
//! answered 5xx, and whatever is accepted keeps the id rules.

use axum::body::Body;
use axum::http::Request;
use opencode_share_server::Config;
use opencode_share_server::item::{self, LegacyKey};
use proptest::prelude::*;
use serde_json::value::RawValue;
use tower::ServiceExt;

/// Strings that look like ids, keys and JSON more often than plain noise would.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,70}",
        "[A-Za-z0-9_/<>'\";. \u{202e}%-]{0,40}",
        any::<String>(),
    ]
}

fn json_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (text(), text(), text()).prop_map(|(a, b, c)| format!(
            r#"{{"sessionID":"ses_{a}","secret":"{b}","key":"session/part/ses_{a}/{c}/x","content":{{"id":"{c}"}},"data":[{{"type":"part","data":{{"id":"{b}","messageID":"{c}"}}}}]}}"#
        )),
        (text(), 0usize..200).prop_map(|(a, n)| format!("{}{a}{}", "[".repeat(n), "]".repeat(n))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn keys_and_ids_never_panic_and_accepted_ones_keep_the_rules(
        key in text(), sid in text(), kind in text(), data in json_like()
    ) {
        if item::valid_id(&key) {
            prop_assert!(key.len() <= 64);
        }
        if let Ok(id) = item::share_id(&sid) {
            prop_assert!(item::valid_id(&id) && id.len() == 8);
        }
        if let Ok(LegacyKey::Item(stored, _)) = item::legacy_key(&key, &sid) {
            prop_assert!(stored.split('/').skip(1).all(item::valid_id), "{stored}");
        }
        if let Ok(raw) = RawValue::from_string(data) {
            if let Ok((stored, _)) = item::next_key(&kind, &raw) {
                prop_assert!(stored.split('/').skip(1).all(item::valid_id), "{stored}");
            }
        }
    }
}

const ROUTES: [(&str, &str); 12] = [
    ("POST", "/share_create"),
    ("POST", "/share_sync"),
    ("POST", "/share_delete"),
    ("GET", "/share_data?id="),
    ("GET", "/share_poll?id="),
    ("POST", "/api/share"),
    ("POST", "/api/share/{}/sync"),
    ("GET", "/api/shares/{}/data"),
    ("DELETE", "/api/share/{}"),
    ("GET", "/share/{}"),
    ("GET", "/share/{}/events?after="),
    ("GET", "/s/{}"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_get_an_answer_below_500(
        route in 0..ROUTES.len(),
        id in "[A-Za-z0-9_%.-]{0,80}",
        query in "[A-Za-z0-9=&%_-]{0,30}",
        body in json_like(),
        forwarded in "[0-9a-f.:, ]{0,40}",
    ) {
        let (method, template) = ROUTES[route];
        let path = format!("{}{query}", template.replace("{}", &id));
        let Ok(request) = Request::builder()
            .method(method)
            .uri(&path)
            .header("x-forwarded-for", forwarded)
            .header("last-event-id", &id)
            .body(Body::from(body))
        else {
            return Ok(()); // not a URI an HTTP client could send
        };
        let status = runtime().block_on(async {
            let response = app().await.clone().oneshot(request).await.unwrap();
            response.status()
        });
        prop_assert!(status.as_u16() < 500, "{method} {path}: {status}");
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// One app for every case (a SQLite store in a folder that lives as long as the test process),
/// trusting the in-process "peer" so the forwarded header is parsed.
async fn app() -> &'static axum::Router {
    static APP: tokio::sync::OnceCell<(axum::Router, tempfile::TempDir)> =
        tokio::sync::OnceCell::const_new();
    let (router, _) = APP
        .get_or_init(|| async {
            let dir = tempfile::tempdir().unwrap();
            let config = Config {
                database: format!("sqlite://{}", dir.path().join("fuzz.db").display()),
                trusted_proxies: vec!["0.0.0.0".parse().unwrap()],
                ..Config::default()
            };
            let router = opencode_share_server::router(config, "http://fuzz.test")
                .await
                .unwrap();
            (router, dir)
        })
        .await;
    router
}
