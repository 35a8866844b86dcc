//! The server on the public web: answers compressed as `accept-encoding` allows (gzip, br; never
//! the live stream), `noindex` unless `--allow-indexing`, and every route under `--base-path`
//! (and still at the root, for a proxy that strips it) with the page naming its files there.

mod support;

use std::io::Read;

use serde_json::json;
use support::{Server, part, session_id};

/// A share with enough text that compression has something to do; returns its id.
fn share(server: &Server) -> String {
    let (id, secret) = server.create_next(&session_id());
    let items: Vec<_> = (0..40)
        .map(|n| {
            part(
                "msg_1",
                &format!("prt_{n}"),
                &"the same words again and again ".repeat(20),
            )
        })
        .collect();
    assert_eq!(server.sync_next(&id, &secret, json!(items)), 200);
    id
}

/// GET `path` with `accept-encoding`: (status, content-encoding, body as sent, headers).
fn fetch(
    server: &Server,
    path: &str,
    encoding: &str,
) -> (u16, Option<String>, Vec<u8>, reqwest::header::HeaderMap) {
    // a client that leaves the body as sent (the library turns on reqwest's gzip decoding, and
    // features are unified across the workspace)
    let raw = reqwest::blocking::Client::builder()
        .no_gzip()
        .build()
        .unwrap();
    let mut request = raw.get(server.url(path));
    if !encoding.is_empty() {
        request = request.header("accept-encoding", encoding);
    }
    let r = request.send().unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let coding = headers
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, coding, r.bytes().unwrap().to_vec(), headers)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn pages_and_data_are_compressed_as_the_client_accepts_and_the_live_stream_never() {
    let server = Server::start();
    let id = share(&server);
    for path in [format!("/share/{id}"), format!("/api/share/{id}/data")] {
        let (status, coding, plain, _) = fetch(&server, &path, "");
        assert_eq!((status, coding), (200, None), "{path}");
        let (_, coding, gz, _) = fetch(&server, &path, "gzip");
        assert_eq!(coding.as_deref(), Some("gzip"), "{path}");
        assert_eq!(gunzip(&gz), plain, "{path}");
        assert!(
            gz.len() * 5 < plain.len(),
            "{path}: {} of {}",
            gz.len(),
            plain.len()
        );
        let (_, coding, br, _) = fetch(&server, &path, "br;q=1.0, gzip;q=0.5");
        assert_eq!(coding.as_deref(), Some("br"), "{path}");
        assert_eq!(unbrotli(&br), plain, "{path}");
        let (_, coding, _, _) = fetch(&server, &path, "identity");
        assert_eq!(coding, None, "{path}");
    }
    // the live stream goes out uncompressed, event by event
    let r = server
        .http
        .get(server.url(&format!("/share/{id}/events?after=0")))
        .header("accept-encoding", "gzip, br")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    let mut first = [0u8; 6];
    let mut r = r;
    r.read_exact(&mut first).unwrap();
    assert!(first.is_ascii(), "{first:?}");
}

#[test]
fn shares_are_kept_out_of_search_engines_unless_indexing_is_allowed() {
    let server = Server::start();
    let id = share(&server);
    for path in [
        format!("/share/{id}"),
        format!("/api/share/{id}/data"),
        "/share/nosuch00".into(),
    ] {
        let (_, _, _, headers) = fetch(&server, &path, "");
        assert_eq!(headers["x-robots-tag"], "noindex, nofollow", "{path}");
    }
    let (_, _, page, _) = fetch(&server, &format!("/share/{id}"), "");
    assert!(
        String::from_utf8(page)
            .unwrap()
            .contains(r#"<meta name="robots" content="noindex, nofollow">"#)
    );
    let (_, _, robots, _) = fetch(&server, "/robots.txt", "");
    assert_eq!(robots, b"User-agent: *\nDisallow: /\n");

    let open = Server::with(|c| c.allow_indexing = true);
    let id = share(&open);
    let (_, _, page, headers) = fetch(&open, &format!("/share/{id}"), "");
    assert!(headers.get("x-robots-tag").is_none());
    assert!(!String::from_utf8(page).unwrap().contains("noindex"));
    let (_, _, robots, _) = fetch(&open, "/robots.txt", "");
    assert_eq!(robots, b"User-agent: *\nAllow: /\n");
}

#[test]
fn under_a_base_path_every_route_answers_there_and_the_page_names_its_files_there() {
    let server = Server::with(|c| c.base_path = "/tools/share".into());
    let (status, created) = server.post(
        "/tools/share/api/share",
        json!({ "sessionID": session_id() }),
    );
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["url"].as_str().unwrap(),
        format!("{}/tools/share/share/{id}", server.running.url),
        "links name the base path"
    );
    let (_, _, page, _) = fetch(&server, &format!("/tools/share/share/{id}"), "");
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains(r#"href="/tools/share/assets/viewer.css""#),
        "{page}"
    );
    assert!(page.contains(r#"src="/tools/share/assets/viewer.js""#));
    assert!(page.contains(r#"data-base="/tools/share""#));
    for path in [
        "/tools/share/assets/viewer.js",
        "/tools/share/healthz",
        "/healthz",
    ] {
        assert_eq!(fetch(&server, path, "").0, 200, "{path}");
    }
    // a proxy that strips the prefix reaches the same routes at the root
    assert_eq!(fetch(&server, &format!("/share/{id}"), "").0, 200);
    assert_eq!(fetch(&server, "/tools/share/nothing", "").0, 404);
    let refused = opencode_share_server::spawn(opencode_share_server::Config {
        listen: "127.0.0.1:0".into(),
        base_path: "/a/../b".into(),
        ..Default::default()
    })
    .err()
    .unwrap();
    assert!(refused.contains("--base-path"), "{refused}");
}
