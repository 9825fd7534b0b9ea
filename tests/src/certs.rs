//! Test certificates made with rcgen, written as PEM files, and the rustls
//! client configurations that go with them (TLS 1.3 only, ring provider).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore};

/// A leaf certificate and its key.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// DER certificate.
    pub cert: CertificateDer<'static>,
    /// PKCS#8 DER key.
    pub key_der: Vec<u8>,
    /// PEM certificate file.
    pub cert_path: PathBuf,
    /// PEM key file.
    pub key_path: PathBuf,
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// Everything the TLS tests need:
/// - `server_ca` signs the core's certificate (`localhost`, `127.0.0.1`);
/// - `client_ca` signs `client`, the certificate of a good node (mTLS);
/// - `foreign_ca` signs `foreign_client`, which the core must refuse.
#[derive(Debug)]
pub struct Pki {
    /// The CA that signed the server certificate (DER).
    pub server_ca: CertificateDer<'static>,
    /// PEM file of `server_ca`.
    pub server_ca_path: PathBuf,
    /// The core's certificate and key.
    pub server: Leaf,
    /// PEM file of the CA the core trusts for client certificates.
    pub client_ca_path: PathBuf,
    /// A client certificate signed by the client CA.
    pub client: Leaf,
    /// A client certificate signed by a CA the core does not know.
    pub foreign_client: Leaf,
    /// Another good node's certificate, signed by the client CA.
    pub other_client: Leaf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, key).expect("self-signed CA")
}

fn leaf(
    dir: &Path,
    file: &str,
    cn: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> Leaf {
    let key = KeyPair::generate().expect("leaf key");
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<String>>())
            .expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&key, issuer).expect("sign leaf");
    let cert_path = dir.join(format!("{file}.pem"));
    let key_path = dir.join(format!("{file}-key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    Leaf {
        cert: cert.der().clone(),
        key_der: key.serialize_der(),
        cert_path,
        key_path,
    }
}

impl Pki {
    /// Makes all certificates and writes their PEM files into `dir`.
    pub fn new(dir: &Path) -> Pki {
        let server_ca = ca("HoneyBee test server CA");
        let client_ca = ca("HoneyBee test client CA");
        let foreign_ca = ca("Somebody else's CA");
        let server_ca_path = dir.join("server-ca.pem");
        let client_ca_path = dir.join("client-ca.pem");
        std::fs::write(&server_ca_path, server_ca.pem()).expect("write CA");
        std::fs::write(&client_ca_path, client_ca.pem()).expect("write CA");
        let server = leaf(
            dir,
            "server",
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &server_ca,
        );
        let client = leaf(
            dir,
            "client",
            "node-1",
            &["node-1.test"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &client_ca,
        );
        let other_client = leaf(
            dir,
            "other-client",
            "node-2",
            &["node-2.test"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &client_ca,
        );
        let foreign_client = leaf(
            dir,
            "foreign-client",
            "intruder",
            &["intruder.test"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &foreign_ca,
        );
        Pki {
            server_ca: server_ca.der().clone(),
            server_ca_path,
            server,
            client_ca_path,
            client,
            foreign_client,
            other_client,
        }
    }

    /// Core flags for TLS on the node port (no client certificates).
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.server.cert_path.display().to_string(),
            "--tls-key".into(),
            self.server.key_path.display().to_string(),
        ]
    }

    /// Core flags for TLS with mTLS against the client CA.
    pub fn mtls_server_args(&self) -> Vec<String> {
        let mut a = self.server_args();
        a.push("--client-ca".into());
        a.push(self.client_ca_path.display().to_string());
        a
    }

    /// A TLS 1.3 client config trusting the server CA, presenting `client`.
    pub fn client_config(&self, client: Option<&Leaf>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.server_ca.clone()).expect("add root");
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("TLS 1.3 with ring")
                .with_root_certificates(roots);
        let config = match client {
            Some(leaf) => builder
                .with_client_auth_cert(vec![leaf.cert.clone()], leaf.key())
                .expect("client cert"),
            None => builder.with_no_client_auth(),
        };
        Arc::new(config)
    }
}
