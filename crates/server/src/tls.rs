//! The platform's certificate and key, read once at start for SIP over TLS and HTTPS.
//!
//! Errors name the file and what is wrong with it, never its content: a private key must not
//! reach a terminal or a log because its PEM was malformed.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS server configuration from a PEM certificate chain (the platform's own first) and its
/// PEM private key.
pub fn server_config(
    certificate: &Path,
    private_key: &Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| format!("certificate {}: {}", certificate.display(), pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate {}: {}", certificate.display(), pem_error(&e)))?;
    if chain.is_empty() {
        return Err(format!(
            "certificate {}: no PEM CERTIFICATE block in it",
            certificate.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(private_key)
        .map_err(|e| format!("private_key {}: {}", private_key.display(), pem_error(&e)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "private_key {} does not go with certificate {}, or is of a kind TLS cannot use: {e}",
                private_key.display(),
                certificate.display()
            )
        })?;
    Ok(Arc::new(config))
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM block of the expected kind in it".into(),
        Error::MissingSectionEnd { .. } => "a PEM block has no END line".into(),
        Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        Error::Base64Decode(_) => "a PEM block is not base64".into(),
        _ => "not a usable PEM file".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_wrong_files_are_named_and_their_content_is_not() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("none.pem");
        let e = server_config(&missing, &missing).expect_err("missing");
        assert!(
            e.starts_with("certificate ") && e.contains("none.pem"),
            "{e}"
        );

        let key_only = dir.path().join("key.pem");
        let secret = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg";
        std::fs::write(
            &key_only,
            format!("-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"),
        )
        .expect("write");
        let e = server_config(&key_only, &key_only).expect_err("no certificate");
        assert!(e.contains("no PEM"), "{e}");
        assert!(!e.contains(secret), "{e}");
    }
}
