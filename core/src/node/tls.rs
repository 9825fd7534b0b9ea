//! TLS 1.3 for the node port: certificates from PEM files, optional mTLS.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsConfig;

fn certs(path: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(Path::new(path))
        .map_err(|e| format!("reading {what} {path}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading {what} {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("reading {what} {path}: no certificate in the file"));
    }
    Ok(certs)
}

/// Builds the server config: TLS 1.3 only (TLS 1.2 is not even compiled in
/// unless another crate asks for it, and never offered), ring provider.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let chain = certs(&tls.cert, "TLS certificate")?;
    let key = PrivateKeyDer::from_pem_file(Path::new(&tls.key))
        .map_err(|e| format!("reading TLS key {}: {e}", tls.key))?;
    let provider = Arc::new(default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("configuring TLS 1.3: {e}"))?;
    let builder = if tls.client_ca.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for ca in certs(&tls.client_ca, "client CA")? {
            roots
                .add(ca)
                .map_err(|e| format!("reading client CA {}: {e}", tls.client_ca))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("configuring mTLS with {}: {e}", tls.client_ca))?;
        builder.with_client_cert_verifier(verifier)
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS certificate {} and key {}: {e}", tls.cert, tls.key))?;
    Ok(Arc::new(config))
}
