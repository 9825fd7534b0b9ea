//! Simulated nodes: each connects from its own loopback address
//! (127.1.x.y), registers, and heartbeats.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_rustls::TlsConnector;
use honeybee_proto::{
    decode, encode, CoreMessage, Envelope, LineDecoder, NodeMessage, NodeRegistration, NodeStatus,
    NodeStatusUpdate, NodeType, RegistrationAck,
};
use rustls::pki_types::ServerName;
use smol::lock::Semaphore;
use totp_rs::{Algorithm, Secret, TOTP};

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Transport {
    /// Where nodes connect; several (one per HAProxy) are shared out by
    /// source address, so a node always uses the same one.
    addrs: Vec<SocketAddr>,
    tls: Option<TlsConnector>,
}

impl Transport {
    pub fn new(addr: SocketAddr, roots: Option<Arc<rustls::RootCertStore>>) -> Transport {
        Transport::to_any(vec![addr], roots)
    }

    /// Nodes spread over `addrs` by their source address.
    pub fn to_any(addrs: Vec<SocketAddr>, roots: Option<Arc<rustls::RootCertStore>>) -> Transport {
        assert!(!addrs.is_empty(), "a transport needs an address");
        let tls = roots.map(|roots| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("TLS 1.3 is supported by ring")
                .with_root_certificates(roots)
                .with_no_client_auth();
            TlsConnector::from(Arc::new(config))
        });
        Transport { addrs, tls }
    }

    fn addr_for(&self, source: Ipv4Addr) -> SocketAddr {
        self.addrs[u32::from(source) as usize % self.addrs.len()]
    }

    /// A copy (same addresses and TLS client).
    pub fn share(&self) -> Transport {
        Transport {
            addrs: self.addrs.clone(),
            tls: self.tls.clone(),
        }
    }

    /// A connection from `source` (TLS when the transport has roots).
    pub async fn connect(&self, source: Ipv4Addr) -> Result<Box<dyn Io>, String> {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .map_err(|e| e.to_string())?;
        sock.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())
            .map_err(|e| format!("binding {source}: {e}"))?;
        sock.set_nonblocking(true).map_err(|e| e.to_string())?;
        match sock.connect(&self.addr_for(source).into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
            Err(e) => return Err(format!("connecting from {source}: {e}")),
        }
        let stream = Async::new(TcpStream::from(sock)).map_err(|e| e.to_string())?;
        stream.writable().await.map_err(|e| e.to_string())?;
        if let Some(e) = stream.get_ref().take_error().map_err(|e| e.to_string())? {
            return Err(format!("connecting from {source}: {e}"));
        }
        match &self.tls {
            None => Ok(Box::new(stream)),
            Some(tls) => {
                let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
                let s = tls
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                Ok(Box::new(s))
            }
        }
    }
}

pub struct NodeKey {
    id: u64,
    key: Vec<u8>,
}

impl NodeKey {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The raw TOTP key the core issued.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

pub struct Node {
    id: u64,
    stream: Box<dyn Io>,
    /// The TOTP step of the code it registered with.
    step: u64,
}

impl Node {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The TOTP step of the code it registered with.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Its connection.
    pub fn into_stream(self) -> Box<dyn Io> {
        self.stream
    }
}

/// The loopback address node number `i` (0-based) connects from.
pub fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

pub fn registration(id: u64, totp_code: Option<String>) -> NodeMessage {
    NodeMessage::NodeRegistration(NodeRegistration {
        node_id: id,
        node_name: format!("bench-{id}"),
        address: "127.0.0.1".into(),
        port: 0,
        node_type: NodeType::Agent,
        totp_code,
        enrollment_token: None,
        agent_version: Some("bench".into()),
        capabilities: vec![],
        spool_epoch: None,
    })
}

pub async fn send(stream: &mut Box<dyn Io>, msg: NodeMessage) -> Result<(), String> {
    stream
        .write_all(&encode(&Envelope::new(msg)))
        .await
        .map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())
}

pub async fn ack(stream: &mut Box<dyn Io>) -> Result<RegistrationAck, String> {
    let mut frames = LineDecoder::new(64 * 1024);
    loop {
        if let Some(line) = frames.next_frame().map_err(|e| e.to_string())? {
            return match decode::<CoreMessage>(line) {
                Ok(CoreMessage::RegistrationAck(a)) => Ok(a),
                other => Err(format!("expected RegistrationAck, got {other:?}")),
            };
        }
        let n = stream
            .read(frames.window())
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before RegistrationAck".into());
        }
        frames.filled(n);
    }
}

/// The code of the current TOTP step, and the step.
fn code(key: &[u8]) -> (String, u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (code_at(key, now / 30), now / 30)
}

/// The code for TOTP step `step` (SHA-1, 6 digits, 30 s).
pub fn code_at(key: &[u8], step: u64) -> String {
    TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, key.to_vec()).generate(step * 30)
}

/// The TOTP key a first registration's acknowledgement carries.
fn key_from_ack(id: u64, a: RegistrationAck) -> Result<NodeKey, String> {
    let key = a
        .totp_key
        .filter(|_| a.accepted)
        .ok_or_else(|| format!("node {id} refused: {:?}", a.message))?;
    let key = Secret::Encoded(key)
        .to_bytes()
        .map_err(|e| format!("{e:?}"))?;
    Ok(NodeKey { id, key })
}

/// First registration of nodes 1..=n; returns their keys.
pub async fn enroll_all(t: &Transport, n: usize, in_flight: usize) -> Result<Vec<NodeKey>, String> {
    let t = Arc::new(t.share());
    let gate = Arc::new(Semaphore::new(in_flight));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (t, gate) = (t.clone(), gate.clone());
            smol::spawn(async move {
                let _slot = gate.acquire().await;
                let id = i as u64 + 1;
                let mut s = t.connect(source(i)).await?;
                send(&mut s, registration(id, None)).await?;
                key_from_ack(id, ack(&mut s).await?)
            })
        })
        .collect();
    let mut keys = Vec::with_capacity(n);
    for task in tasks {
        keys.push(task.await?);
    }
    Ok(keys)
}

/// First registration of nodes 1..=n, all from the one address `source`
/// (nodes behind one NAT). The core refuses connections over its
/// per-source limits by closing them at accept: a connection that ends
/// before the acknowledgement is retried after `retry`. Returns the keys
/// and the number of retries.
pub async fn enroll_all_from(
    t: &Transport,
    n: usize,
    in_flight: usize,
    source: Ipv4Addr,
    retry: Duration,
) -> Result<(Vec<NodeKey>, u64), String> {
    let t = Arc::new(t.share());
    let gate = Arc::new(Semaphore::new(in_flight));
    let retries = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (t, gate, retries) = (t.clone(), gate.clone(), retries.clone());
            smol::spawn(async move {
                let _slot = gate.acquire().await;
                let id = i as u64 + 1;
                loop {
                    let answer = match t.connect(source).await {
                        Ok(mut s) => match send(&mut s, registration(id, None)).await {
                            Ok(()) => ack(&mut s).await,
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    };
                    let a = match answer {
                        Ok(a) => a,
                        Err(_) => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            Timer::after(retry).await;
                            continue;
                        }
                    };
                    return key_from_ack(id, a);
                }
            })
        })
        .collect();
    let mut keys = Vec::with_capacity(n);
    for task in tasks {
        keys.push(task.await?);
    }
    Ok((keys, retries.load(Ordering::Relaxed)))
}

/// Registers every node with a TOTP code and reports it Running.
pub async fn register_all(
    t: &Transport,
    keys: &[NodeKey],
    in_flight: usize,
) -> Result<Vec<Node>, String> {
    let t = Arc::new(t.share());
    let gate = Arc::new(Semaphore::new(in_flight));
    let tasks: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let (t, gate) = (t.clone(), gate.clone());
            let (id, key) = (k.id, k.key.clone());
            smol::spawn(async move {
                let _slot = gate.acquire().await;
                let mut s = t.connect(source(i)).await?;
                let (code, step) = code(&key);
                send(&mut s, registration(id, Some(code))).await?;
                let a = ack(&mut s).await?;
                if !a.accepted {
                    return Err(format!("node {id} refused: {:?}", a.message));
                }
                send(&mut s, heartbeat_msg(id)).await?;
                Ok::<_, String>(Node {
                    id,
                    stream: s,
                    step,
                })
            })
        })
        .collect();
    let mut nodes = Vec::with_capacity(keys.len());
    for task in tasks {
        nodes.push(task.await?);
    }
    Ok(nodes)
}

pub fn heartbeat_msg(id: u64) -> NodeMessage {
    NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
        node_id: id,
        status: NodeStatus::Running,
    })
}

/// Every node sends `rounds` heartbeats, one per `period`, offsets spread
/// evenly over the period. Returns how many were sent.
pub async fn heartbeat(
    fleet: &mut Vec<Node>,
    rounds: u32,
    period: Duration,
) -> Result<u64, String> {
    let sent = Arc::new(AtomicU64::new(0));
    let n = fleet.len().max(1);
    let tasks: Vec<_> = fleet
        .drain(..)
        .enumerate()
        .map(|(i, mut node)| {
            let sent = sent.clone();
            let offset = period.mul_f64(i as f64 / n as f64);
            smol::spawn(async move {
                Timer::after(offset).await;
                for _ in 0..rounds {
                    send(&mut node.stream, heartbeat_msg(node.id)).await?;
                    sent.fetch_add(1, Ordering::Relaxed);
                    Timer::after(period).await;
                }
                Ok::<_, String>(node)
            })
        })
        .collect();
    for task in tasks {
        fleet.push(task.await?);
    }
    Ok(sent.load(Ordering::Relaxed))
}
