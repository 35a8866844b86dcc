//! TLS to PostgreSQL with rustls, as the `--database` URL's `sslmode` asks (libpq's names):
//! `disable` (or no sslmode: plain TCP, as before), `prefer` and `require` (encrypted, the
//! server's certificate not checked, as libpq does), `verify-ca` (its chain must lead to
//! `sslrootcert`) and `verify-full` (that, and it must name the host). `sslrootcert=PATH` is a
//! PEM file of trusted roots; without it the system's bundle. tokio-postgres parses neither
//! `verify-*` nor `sslrootcert`, so both are taken out of the URL here.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Where Debian and most distributions keep the system's trusted roots.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// What the URL asks of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Check {
    None,
    Chain,
    ChainAndName,
}

/// The connection settings of `url` and the TLS connector its `sslmode` asks for.
pub fn config(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect), String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut check, mut root) = (SslMode::Disable, Check::None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => {
                (mode, check) = match value {
                    "disable" => (SslMode::Disable, Check::None),
                    "prefer" | "allow" => (SslMode::Prefer, Check::None),
                    "require" => (SslMode::Require, Check::None),
                    "verify-ca" => (SslMode::Require, Check::Chain),
                    "verify-full" => (SslMode::Require, Check::ChainAndName),
                    other => {
                        return Err(format!(
                            "--database: sslmode must be disable, prefer, require, verify-ca or verify-full, not {other:?}"
                        ));
                    }
                }
            }
            Some(("sslrootcert", path)) => root = Some(path.to_owned()),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("--database: {e}"))?;
    config.ssl_mode(mode);
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let tls = match check {
        Check::None => tls
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(
                provider().signature_verification_algorithms,
            ))),
        Check::Chain | Check::ChainAndName => {
            let roots = roots(root.as_deref().unwrap_or(SYSTEM_ROOTS))?;
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| format!("--database: sslrootcert: {e}"))?;
            if check == Check::Chain {
                tls.dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
            } else {
                tls.with_webpki_verifier(verifier)
            }
        }
    };
    Ok((config, MakeRustlsConnect::new(tls.with_no_client_auth())))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trusted roots in the PEM file `path`.
fn roots(path: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--database: cannot read sslrootcert {path}: {e}"))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "--database: sslrootcert {path} holds no certificate"
        ));
    }
    Ok(roots)
}

/// `sslmode=require`: any certificate (the connection is encrypted, not authenticated), but the
/// handshake's signatures are still checked.
#[derive(Debug)]
struct Unchecked(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must lead to a trusted root; the name is not checked.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::config;

    #[test]
    fn sslmode_and_sslrootcert_are_read_and_taken_out_of_the_url() {
        let (c, _) = config("postgres://u@h:5/db?sslmode=require&application_name=x").unwrap();
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert_eq!(c.get_application_name(), Some("x"));
        let (c, _) = config("postgres://u@h/db").unwrap();
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
        let bad = config("postgres://u@h/db?sslmode=verify-none")
            .err()
            .unwrap();
        assert!(bad.contains("sslmode must be"), "{bad}");
        let missing = config("postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent.pem")
            .err()
            .unwrap();
        assert!(
            missing.contains("cannot read sslrootcert /nonexistent.pem"),
            "{missing}"
        );
    }
}
