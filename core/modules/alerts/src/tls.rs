//! TLS for the channels that leave the machine (https webhooks, syslog
//! over TLS, SMTP with STARTTLS or implicit TLS): rustls, TLS 1.3, the
//! receiver's certificate checked against `ca_file` or the Mozilla roots.

use std::io::BufReader;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};

/// A client configuration trusting the certificates in `ca_file` (PEM),
/// or the Mozilla root store when none is given.
pub fn client_config(ca_file: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let file =
                std::fs::File::open(path).map_err(|e| format!("reading ca_file {path}: {e}"))?;
            let mut added = 0;
            for cert in rustls_pemfile_certs(&mut BufReader::new(file)) {
                let cert = cert.map_err(|e| format!("reading ca_file {path}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_file {path}: {e}"))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("ca_file {path}: no PEM certificate in it"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name to check the receiver's certificate against: `server_name`
/// if given, else the host part of `address` (`host:port`).
pub fn server_name(
    address: &str,
    server_name: Option<&str>,
) -> Result<ServerName<'static>, String> {
    let host = match server_name {
        Some(n) => n.to_string(),
        None => host_of(address).to_string(),
    };
    ServerName::try_from(host.clone())
        .map_err(|_| format!("{host:?} is not a valid TLS server name"))
}

/// The host part of `host:port` or `[v6]:port`.
pub fn host_of(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    address.rsplit_once(':').map_or(address, |(h, _)| h)
}

fn rustls_pemfile_certs(
    r: &mut dyn std::io::BufRead,
) -> impl Iterator<Item = Result<rustls::pki_types::CertificateDer<'static>, String>> + '_ {
    use rustls::pki_types::pem::PemObject;
    let mut text = Vec::new();
    let read = r.read_to_end(&mut text).map_err(|e| e.to_string());
    let certs: Vec<Result<_, String>> = match read {
        Err(e) => vec![Err(e)],
        Ok(_) => rustls::pki_types::CertificateDer::pem_slice_iter(&text)
            .map(|c| c.map_err(|e| format!("{e:?}")))
            .collect(),
    };
    certs.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_taken_from_addresses() {
        assert_eq!(host_of("mail.example.org:587"), "mail.example.org");
        assert_eq!(host_of("[::1]:6514"), "::1");
        assert_eq!(host_of("127.0.0.1:25"), "127.0.0.1");
    }
}
