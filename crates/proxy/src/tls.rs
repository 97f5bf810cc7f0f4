//! TLS for listen addresses: rustls (ring) from PEM files, offering h2 and http/1.1 by ALPN.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::{ProxyError, Tls};

/// Whether `tls` can serve: the files parse and the key matches, exactly as the proxy
/// will load them. The control plane checks a spec with it before accepting it.
pub fn check(tls: &Tls) -> Result<(), ProxyError> {
    acceptor(tls).map(drop)
}

/// Reads the certificate chain and key and builds an acceptor.
pub(crate) fn acceptor(tls: &Tls) -> Result<TlsAcceptor, ProxyError> {
    let cert_error = |message: String| ProxyError::Tls {
        path: tls.cert.clone(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_error("no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| ProxyError::Tls {
        path: tls.key.clone(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| cert_error(format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
