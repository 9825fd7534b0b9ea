//! TLS where the imitated server speaks it: HTTPS ports, and Remote Desktop
//! after its negotiation. A [`TlsLayer`] is a sans-I/O rustls server
//! session around an inner responder: what the client sends is decrypted
//! and handed to the inner [`Dialogue`], whose answers go back encrypted.
//!
//! The certificate is self-signed, made at start-up for the profile's host
//! name ([`Identity::new`]); a real RDP host or a small web server shows
//! just that. One [`Identity`] serves every connection, so a handshake
//! costs no key generation.

use std::io::{Read, Write};
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};

use super::der::{der, element};
use super::http::civil;
use super::{Context, Dialogue, Logins, Out, Step};
use crate::config::MAX_READ;

/// The server side of TLS for the tripwires: a certificate and key.
#[derive(Clone)]
pub struct Identity {
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity")
    }
}

const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
const OID_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];

/// How long before `now` the certificate became valid, and for how long.
const BACKDATED_SECS: u64 = 86_400 * 37;
const VALID_SECS: u64 = 86_400 * 182;

impl Identity {
    /// A fresh P-256 key and a self-signed certificate for `host`, valid
    /// from a few weeks before `now` (Unix seconds) for six months, as
    /// Windows makes for Remote Desktop.
    pub fn new(host: &str, now: u64) -> Result<Identity, String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| "generating the TLS key".to_string())?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| "loading the TLS key".to_string())?;
        let mut serial = [0u8; 16];
        ring::rand::SecureRandom::fill(&rng, &mut serial)
            .map_err(|_| "drawing a certificate serial".to_string())?;
        let tbs = tbs_certificate(host, now, &serial, key.public_key().as_ref());
        let signature = key
            .sign(&rng, &tbs)
            .map_err(|_| "signing the TLS certificate".to_string())?;
        let cert = certificate(&tbs, signature.as_ref());
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert)], key_der)
            .map_err(|e| format!("TLS certificate: {e}"))?;
        Ok(Identity {
            config: Arc::new(config),
        })
    }
}

/// `YYMMDDHHMMSSZ` (UTCTime, for years before 2050).
fn utc_time(secs: u64) -> Vec<u8> {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100).into_bytes()
}

fn tbs_certificate(host: &str, now: u64, serial: &[u8; 16], public_key: &[u8]) -> Vec<u8> {
    let mut serial = serial.to_vec();
    // A positive INTEGER without a leading zero byte.
    if let Some(first) = serial.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    let algorithm = element(0x30, &element(0x06, OID_ECDSA_SHA256));
    let mut rdn = element(0x06, OID_COMMON_NAME);
    der(0x0c, host.as_bytes(), &mut rdn);
    let name = element(0x30, &element(0x31, &element(0x30, &rdn)));
    let mut validity = element(0x17, &utc_time(now.saturating_sub(BACKDATED_SECS)));
    der(
        0x17,
        &utc_time(now.saturating_sub(BACKDATED_SECS) + VALID_SECS),
        &mut validity,
    );
    let mut spki_alg = element(0x06, OID_EC_PUBLIC_KEY);
    der(0x06, OID_P256, &mut spki_alg);
    let mut bits = vec![0];
    bits.extend_from_slice(public_key);
    let mut spki = element(0x30, &spki_alg);
    der(0x03, &bits, &mut spki);
    // Extended key usage: server authentication; key usage: digital
    // signature and key agreement.
    let mut eku = element(0x06, OID_EXT_KEY_USAGE);
    der(
        0x04,
        &element(0x30, &element(0x06, OID_SERVER_AUTH)),
        &mut eku,
    );
    let mut ku = element(0x06, OID_KEY_USAGE);
    der(0x04, &element(0x03, &[0x03, 0x88]), &mut ku);
    let mut extensions = element(0x30, &eku);
    der(0x30, &ku, &mut extensions);

    let mut tbs = element(0xa0, &element(0x02, &[2]));
    der(0x02, &serial, &mut tbs);
    tbs.extend_from_slice(&algorithm);
    tbs.extend_from_slice(&name);
    der(0x30, &validity, &mut tbs);
    tbs.extend_from_slice(&name);
    der(0x30, &spki, &mut tbs);
    der(0xa3, &element(0x30, &extensions), &mut tbs);
    element(0x30, &tbs)
}

fn certificate(tbs: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut body = tbs.to_vec();
    der(0x30, &element(0x06, OID_ECDSA_SHA256), &mut body);
    let mut bits = vec![0];
    bits.extend_from_slice(signature);
    der(0x03, &bits, &mut body);
    element(0x30, &body)
}

/// A TLS session around an inner responder.
pub struct TlsLayer {
    conn: ServerConnection,
    inner: Box<Dialogue>,
    /// Everything decrypted so far (the inner responder's input), at most
    /// [`MAX_READ`] bytes.
    plain: Vec<u8>,
}

impl std::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("plain", &self.plain.len())
            .finish()
    }
}

/// `Write` into an [`Out`].
struct Sink<'a>(&'a mut Out);

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl TlsLayer {
    /// A session with `identity` whose plaintext goes to `inner`.
    pub fn new(identity: &Identity, inner: Dialogue) -> Option<TlsLayer> {
        let conn = ServerConnection::new(identity.config.clone()).ok()?;
        Some(TlsLayer {
            conn,
            inner: Box::new(inner),
            plain: Vec::new(),
        })
    }

    /// Takes raw bytes from the client not given before, answers; returns
    /// how many it took (all of them unless the session fails).
    pub fn input(
        &mut self,
        cx: &Context<'_>,
        raw: &[u8],
        out: &mut Out,
        logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        let mut new = raw;
        let before = new.len();
        while !new.is_empty() {
            match self.conn.read_tls(&mut new) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if self.conn.process_new_packets().is_err() {
                // The alert rustls queued, then goodbye.
                let _ = self.conn.write_tls(&mut Sink(out));
                return (raw.len(), Step::Close);
            }
        }
        let used = before - new.len();
        let mut step = Step::More;
        let mut chunk = [0u8; 1024];
        loop {
            match self.conn.reader().read(&mut chunk) {
                Ok(0) => {
                    step = Step::Close;
                    break;
                }
                Ok(n) => {
                    let room = MAX_READ.saturating_sub(self.plain.len());
                    self.plain
                        .extend_from_slice(chunk.get(..n.min(room)).unwrap_or_default());
                    if room < n {
                        step = Step::Close;
                        break;
                    }
                }
                Err(_) => break, // WouldBlock: nothing more decrypted yet
            }
        }
        if !self.plain.is_empty() && step == Step::More {
            let mut answer = Out::new();
            step = self.inner.input(cx, &self.plain, &mut answer);
            for login in self.inner.take_logins() {
                logins.add(login);
            }
            let _ = self.conn.writer().write_all(answer.bytes());
            if step == Step::Close {
                self.conn.send_close_notify();
            }
        }
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut Sink(out)) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        (used.max(usize::from(step == Step::Close) * raw.len()), step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;
    use crate::respond::tests::cx;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

    /// Accepts any certificate: the tests look at ours themselves.
    #[derive(Debug)]
    struct AnyCert;

    impl ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ECDSA_NISTP256_SHA256]
        }
    }

    /// A rustls client for `host` that takes any certificate.
    fn client(host: &'static str) -> ClientConnection {
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCert))
                .with_no_client_auth();
        ClientConnection::new(Arc::new(config), ServerName::try_from(host).unwrap()).unwrap()
    }

    /// Runs a rustls client against a layer until both are quiet; returns
    /// the client and what it decrypted.
    fn converse(
        layer: &mut TlsLayer,
        cx: &Context<'_>,
        request: &[u8],
        logins: &mut Vec<crate::respond::Login>,
    ) -> (ClientConnection, Vec<u8>) {
        let mut client = client("ws01");
        client.writer().write_all(request).unwrap();
        let mut plain = Vec::new();
        for _ in 0..10 {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server).unwrap();
            }
            let mut out = Out::new();
            let (used, step) =
                layer.input(cx, &to_server, &mut out, &mut Logins { list: &mut *logins });
            assert_eq!(used, to_server.len());
            let mut back = out.bytes();
            while !back.is_empty() {
                client.read_tls(&mut back).unwrap();
                client.process_new_packets().unwrap();
            }
            let _ = client.reader().read_to_end(&mut plain);
            if step == Step::Close {
                break;
            }
        }
        (client, plain)
    }

    #[test]
    fn https_carries_the_profiles_web_server_and_its_logins() {
        let id = Identity::new("WS01", 1_796_665_800).unwrap();
        let c = cx(8443, Profile::WindowsWorkstation);
        let inner = Dialogue::new(&Context { port: 80, ..c });
        let mut layer = TlsLayer::new(&id, inner).unwrap();
        let mut logins = Vec::new();
        let (client, plain) = converse(&mut layer, &c, b"GET / HTTP/1.1\r\nHost: ws01\r\nAuthorization: Basic YWRtaW46aHVudGVyMg==\r\nConnection: close\r\n\r\n", &mut logins);
        let text = String::from_utf8_lossy(&plain);
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
        assert!(text.contains("Server: Microsoft-IIS/10.0"));
        assert_eq!(
            (logins[0].username.as_str(), logins[0].field("password")),
            ("admin", Some("hunter2"))
        );
        let certs = client.peer_certificates().unwrap();
        assert_eq!(certs.len(), 1);
        let cert = certs[0].as_ref();
        assert!(cert.windows(4).any(|w| w == b"WS01"));
        // Valid from 37 days before "now" (2026-12-07): 2026-10-31.
        assert!(cert.windows(13).any(|w| w == b"261031175000Z"), "notBefore");
    }

    #[test]
    fn garbage_instead_of_a_client_hello_ends_with_an_alert() {
        let id = Identity::new("WS01", 0).unwrap();
        let c = cx(8443, Profile::WindowsWorkstation);
        let mut layer = TlsLayer::new(&id, Dialogue::new(&Context { port: 80, ..c })).unwrap();
        let mut out = Out::new();
        let mut logins = Vec::new();
        let (_, step) = layer.input(
            &c,
            b"GET / HTTP/1.0\r\n\r\n",
            &mut out,
            &mut Logins { list: &mut logins },
        );
        assert_eq!(step, Step::Close);
        assert!(
            out.bytes().first() == Some(&0x15) || out.bytes().is_empty(),
            "{:?}",
            out.bytes()
        );
    }

    #[test]
    fn remote_desktop_goes_on_in_tls_and_keeps_the_cookies_user() {
        let id = Identity::new("WS01", 1_796_665_800).unwrap();
        let c = Context {
            tls: Some(&id),
            ..cx(3389, Profile::WindowsWorkstation)
        };
        let mut d = Dialogue::new(&c);
        let mut all =
            b"\x03\0\0*%\xe0\0\0\0\0\0Cookie: mstshash=eve1\r\n\x01\0\x08\0\x03\0\0\0".to_vec();
        let mut out = Out::new();
        assert_eq!(d.input(&c, &all, &mut out), Step::More);
        assert_eq!(out.bytes().len(), 19, "the Connection Confirm");
        // A client's TLS hello after it: the server's hello comes back.
        let mut client = client("ws01");
        client.write_tls(&mut all).unwrap();
        out.clear();
        assert_eq!(d.input(&c, &all, &mut out), Step::More);
        assert_eq!(out.bytes().first(), Some(&0x16), "ServerHello");
        assert_eq!(d.logins().len(), 1);
        assert_eq!(
            (d.logins()[0].protocol, d.logins()[0].username.as_str()),
            ("rdp", "eve1")
        );
    }

    #[test]
    fn an_https_port_records_its_logins_in_the_dialogue() {
        let id = Identity::new("srv01", 1_796_665_800).unwrap();
        let c = Context {
            tls: Some(&id),
            ..cx(443, Profile::LinuxServer)
        };
        let mut d = Dialogue::new(&c);
        let mut client = client("srv01");
        client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\nAuthorization: Basic dTpw\r\n\r\n")
            .unwrap();
        let mut all = Vec::new();
        let mut plain = Vec::new();
        for _ in 0..6 {
            while client.wants_write() {
                client.write_tls(&mut all).unwrap();
            }
            let mut out = Out::new();
            d.input(&c, &all, &mut out);
            let mut back = out.bytes();
            while !back.is_empty() {
                client.read_tls(&mut back).unwrap();
                client.process_new_packets().unwrap();
            }
            let _ = client.reader().read_to_end(&mut plain);
        }
        assert!(
            String::from_utf8_lossy(&plain).starts_with("HTTP/1.1 401"),
            "{plain:?}"
        );
        assert_eq!(d.logins().len(), 1);
        assert_eq!(d.logins()[0].username, "u");
    }
}
