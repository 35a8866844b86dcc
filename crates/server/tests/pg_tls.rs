//! The store reaches PostgreSQL over TLS (rustls) as the URL's sslmode asks: the test cluster
//! gets a certificate made here (rcgen: a CA, and a server certificate for 127.0.0.1 only) and
//! ssl turned on by a reload; then verify-full against that CA works (and the session is TLS
//! in pg_stat_ssl), verify-full refuses another CA and a host name the certificate does not
//! name, verify-ca accepts that name, require encrypts without checking. The cluster's ssl
//! settings are reset at the end. Needs OPENCODE_SHARE_TEST_POSTGRES, and to be able to hand
//! the key to the cluster's user (root, or that user).

mod support;

use std::os::unix::fs::MetadataExt;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::{Server, pg_query as query, session_id};

/// A CA: (its PEM, an issuer to sign with).
fn authority() -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(params, key))
}

/// Opens the server on `database` and writes one share through it; the start's error otherwise.
fn share_through(database: &str) -> Result<(), String> {
    let config = opencode_share_server::Config {
        listen: "127.0.0.1:0".into(),
        database: database.into(),
        ..Default::default()
    };
    let running = opencode_share_server::spawn(config)?;
    drop(running);
    let server = Server::with(|c| c.database = database.into());
    let (id, secret) = server.create_next(&session_id());
    let items = serde_json::json!([support::part("msg_1", "prt_1", "over TLS")]);
    assert_eq!(server.sync_next(&id, &secret, items), 200);
    assert_eq!(server.items(&id).len(), 1);
    Ok(())
}

#[test]
fn the_store_connects_over_tls_as_sslmode_asks() {
    let Some(url) = support::test_postgres() else {
        return;
    };
    let data_dir = query(&url, "SHOW data_directory");
    let owner = std::fs::metadata(&data_dir).unwrap();
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    if me != 0 && me != owner.uid() {
        eprintln!(
            "skipped: cannot hand a key file to the cluster's user (uid {})",
            owner.uid()
        );
        return;
    }
    let (ca_pem, ca) = authority();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    // the cluster reads its certificate and key from its own folder, the key readable by it only
    let cert_file = format!("{data_dir}/opencode-share-test.crt");
    let key_file = format!("{data_dir}/opencode-share-test.key");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    for file in [&cert_file, &key_file] {
        std::os::unix::fs::chown(file, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(file).unwrap().permissions(),
            0o600,
        );
        std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    // ALTER SYSTEM runs outside a transaction: one statement a call
    query(
        &url,
        &format!("ALTER SYSTEM SET ssl_cert_file = '{cert_file}'"),
    );
    query(
        &url,
        &format!("ALTER SYSTEM SET ssl_key_file = '{key_file}'"),
    );
    query(&url, "ALTER SYSTEM SET ssl = on");
    query(&url, "SELECT pg_reload_conf()");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let (other_pem, _) = authority();
    let other_file = dir.path().join("other.pem");
    std::fs::write(&other_file, other_pem).unwrap();

    let with = |url: &str, params: &str| format!("{url}?{params}");
    let localhost = url.replace("127.0.0.1", "localhost");
    // a failed assertion still resets the cluster below (caught, then raised again)
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || -> Result<(), String> {
            // the reload is asynchronous: the first TLS connection may come before it
            let full = with(
                &url,
                &format!(
                    "sslmode=verify-full&sslrootcert={}&application_name=oc-tls-test",
                    ca_file.display()
                ),
            );
            let mut started = Err(String::new());
            for _ in 0..50 {
                started = share_through(&full);
                if started.is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            started.map_err(|e| format!("verify-full with the right CA: {e}"))?;
            let server = Server::with(|c| c.database = full.clone());
            server.create_next(&session_id());
            let tls = query(
                &url,
                "SELECT bool_and(s.ssl)::text FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'oc-tls-test'",
            );
            assert_eq!(tls, "true", "the store's sessions are TLS");
            drop(server);
            let refused = share_through(&with(
                &url,
                &format!("sslmode=verify-full&sslrootcert={}", other_file.display()),
            ));
            let why = refused.expect_err("verify-full trusted another CA");
            assert!(why.contains("certificate"), "{why}");
            let refused = share_through(&with(
                &localhost,
                &format!("sslmode=verify-full&sslrootcert={}", ca_file.display()),
            ));
            let why =
                refused.expect_err("verify-full accepted a name the certificate does not have");
            assert!(why.contains("certificate"), "{why}");
            share_through(&with(
                &localhost,
                &format!("sslmode=verify-ca&sslrootcert={}", ca_file.display()),
            ))
            .map_err(|e| format!("verify-ca: {e}"))?;
            share_through(&with(&url, "sslmode=require")).map_err(|e| format!("require: {e}"))?;
            Ok(())
        },
    ));
    for setting in ["ssl", "ssl_cert_file", "ssl_key_file"] {
        query(&url, &format!("ALTER SYSTEM RESET {setting}"));
    }
    query(&url, "SELECT pg_reload_conf()");
    let _ = std::fs::remove_file(&cert_file);
    let _ = std::fs::remove_file(&key_file);
    match outcome {
        Ok(result) => result.unwrap(),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
