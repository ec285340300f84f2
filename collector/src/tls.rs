//! TLS for the listener: rustls with the `ring` provider, from PEM certificate and key files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate {path}: {message}")]
    Certificate { path: PathBuf, message: String },
    #[error("TLS certificate file {path} holds no certificate (expected PEM `BEGIN CERTIFICATE`)")]
    NoCertificate { path: PathBuf },
    #[error("cannot read TLS private key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("cannot use client CA bundle {path} (server.client_ca): {message}")]
    ClientCa { path: PathBuf, message: String },
    #[error("TLS certificate {cert} and key {key} do not form a usable pair: {source}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// Makes `ring` the process-wide rustls provider, for any TLS client built later with
/// rustls' defaults. Idempotent; the server itself names its provider explicitly.
pub fn install_crypto_provider() {
    // Err means a provider is already installed (by an earlier call): nothing to do.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Loads the certificate chain and key into a server configuration offering HTTP/2 and
/// HTTP/1.1, TLS 1.2 and 1.3.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_with_clients(cert, key, None)
}

/// Like [`server_config`]; with `client_ca`, every client must present a certificate chaining
/// to one of the CAs in that PEM bundle (mutual TLS), on top of its bearer token.
pub fn server_config_with_clients(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Certificate {
            path: cert.to_path_buf(),
            message: e.to_string(),
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate {
            path: cert.to_path_buf(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        message: e.to_string(),
    })?;
    let config_error = |source| TlsError::Config {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let ca_error = |message: String| TlsError::ClientCa {
                path: path.to_path_buf(),
                message,
            };
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))? {
                roots
                    .add(ca.map_err(|e| ca_error(e.to_string()))?)
                    .map_err(|e| ca_error(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(ca_error("no PEM certificate in the file".into()));
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| ca_error(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(config_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_generated_pair_loads() {
        let dir = tempfile::tempdir().unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(&dir, "c.pem", &certified.cert.pem());
        let key = write(&dir, "k.pem", &certified.signing_key.serialize_pem());
        let config = server_config(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
    }

    #[test]
    fn problems_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".into()]).unwrap();
        let cert = write(&dir, "c.pem", &a.cert.pem());
        let key = write(&dir, "k.pem", &a.signing_key.serialize_pem());
        let other_key = write(&dir, "other.pem", &b.signing_key.serialize_pem());
        let junk = write(&dir, "junk.pem", "not pem at all\n");

        let err = server_config(&dir.path().join("missing.pem"), &key).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = server_config(&junk, &key).unwrap_err();
        assert!(err.to_string().contains("junk.pem"), "{err}");
        let err = server_config(&cert, &junk).unwrap_err();
        assert!(err.to_string().contains("junk.pem"), "{err}");
        let err = server_config(&cert, &other_key).unwrap_err();
        assert!(
            err.to_string().contains("do not form a usable pair"),
            "{err}"
        );
    }
}
