//! Opening the connection to the core: TCP with keepalive, optionally TLS
//! 1.3 (a CA file, SNI, an optional client certificate).

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{future, AsyncRead, AsyncWrite};
use futures_rustls::TlsConnector;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::config::{core_host_port, Config};

/// Anything the uplink can speak NDJSON over.
pub trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

/// How to reach the core, prepared once from the config.
pub struct Connector {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("reading {what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "reading {what} {}: no certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

fn client_config(config: &Config) -> Result<ClientConfig, String> {
    let tls = &config.tls;
    let ca = tls
        .ca
        .as_deref()
        .ok_or("tls.ca: TLS needs the CA file that signed the core's certificate")?;
    let mut roots = RootCertStore::empty();
    for cert in certs(ca, "CA")? {
        roots
            .add(cert)
            .map_err(|e| format!("reading CA {}: {e}", ca.display()))?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("configuring TLS 1.3: {e}"))?
        .with_root_certificates(roots);
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certs(cert, "client certificate")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("reading client key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate {}: {e}", cert.display()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

impl Connector {
    /// Reads certificates and keys now, so that a bad file stops the start.
    pub fn new(config: &Config) -> Result<Connector, String> {
        let (host, port) = core_host_port(&config.core)
            .ok_or_else(|| format!("core {:?}: expected HOST:PORT", config.core))?;
        let tls = if config.tls.enabled {
            let name = config
                .tls
                .server_name
                .clone()
                .unwrap_or_else(|| host.clone());
            let server_name = ServerName::try_from(name.clone())
                .map_err(|e| format!("tls.server_name {name:?}: {e}"))?;
            let connector = TlsConnector::from(Arc::new(client_config(config)?));
            Some((connector, server_name))
        } else {
            None
        };
        Ok(Connector { host, port, tls })
    }

    /// Connects (and handshakes), within 10 s; the local address is what the
    /// node reports as its own.
    pub async fn connect(&self) -> Result<(Box<dyn Stream>, SocketAddr), String> {
        let attempt = async {
            let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
                .to_socket_addrs()
                .map_err(|e| format!("resolving {}: {e}", self.host))?
                .collect();
            let mut last = format!("{}: no address", self.host);
            for addr in addrs {
                match Async::<TcpStream>::connect(addr).await {
                    Ok(tcp) => return self.wrap(tcp, addr).await,
                    Err(e) => last = format!("connecting to {addr}: {e}"),
                }
            }
            Err(last)
        };
        future::or(attempt, async {
            Timer::after(CONNECT_TIMEOUT).await;
            Err(format!(
                "connecting to {}:{}: timed out",
                self.host, self.port
            ))
        })
        .await
    }

    async fn wrap(
        &self,
        tcp: Async<TcpStream>,
        addr: SocketAddr,
    ) -> Result<(Box<dyn Stream>, SocketAddr), String> {
        let sock = socket2::SockRef::from(tcp.get_ref());
        let _ = sock.set_keepalive(true);
        let _ = sock.set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(60))
                .with_interval(Duration::from_secs(10)),
        );
        let _ = tcp.get_ref().set_nodelay(true);
        let local = tcp
            .get_ref()
            .local_addr()
            .map_err(|e| format!("connection to {addr}: {e}"))?;
        match &self.tls {
            None => Ok((Box::new(tcp), local)),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS with {addr}: {e}"))?;
                Ok((Box::new(tls), local))
            }
        }
    }
}
