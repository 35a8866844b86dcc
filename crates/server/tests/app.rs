//! The app's routes called in-process, without a socket: tower's `oneshot` on the router.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use opencode_share_server::Config;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn app(dir: &tempfile::TempDir) -> axum::Router {
    let config = Config {
        database: format!("sqlite://{}", dir.path().join("share.db").display()),
        ..Config::default()
    };
    opencode_share_server::router(config, "http://share.test")
        .await
        .unwrap()
}

async fn call(app: &axum::Router, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn next_create_sync_read_and_delete_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let (status, made) = call(
        &app,
        "POST",
        "/api/share",
        json!({"sessionID": "ses_inproc01"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["url"], "http://share.test/share/inproc01");
    let secret = made["secret"].as_str().unwrap();
    let sync = json!({"secret": secret, "data": [{"type": "message", "data": {"id": "m1"}}]});
    assert_eq!(
        call(&app, "POST", "/api/share/inproc01/sync", sync).await.0,
        StatusCode::OK
    );
    let (status, items) = call(&app, "GET", "/api/share/inproc01/data", Value::Null).await;
    assert_eq!(
        (status, items[0]["data"]["id"].as_str()),
        (StatusCode::OK, Some("m1"))
    );
    let wrong = json!({"secret": "nope"});
    assert_eq!(
        call(&app, "DELETE", "/api/share/inproc01", wrong).await.0,
        StatusCode::FORBIDDEN
    );
    let right = json!({"secret": secret});
    assert_eq!(
        call(&app, "DELETE", "/api/share/inproc01", right).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, "GET", "/api/share/inproc01/data", Value::Null)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn legacy_routes_and_mistakes_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let (status, made) = call(
        &app,
        "POST",
        "/share_create",
        json!({"sessionID": "ses_inproc02"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["url"], "http://share.test/s/inproc02");
    let (status, body) = call(&app, "GET", "/share_data", Value::Null).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Share ID is required"))
    );
    assert_eq!(
        call(&app, "POST", "/share_sync", json!({"x": 1})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&app, "GET", "/no/such/route", Value::Null).await.0,
        StatusCode::NOT_FOUND
    );
}
