//! The API port's gate: tiny_http gives every connection a thread and never
//! times one out, so the TCP port is ours. Each connection is admitted
//! against fixed limits (overall, per source, per-source rate), spliced to
//! tiny_http on a Unix socket in the 0700 data dir, and closed after a
//! minute without a byte either way (ten seconds if it never sent one).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};

use crate::admission::{Admission, Limits};
use crate::metrics::Metrics;

/// Open API connections, all sources.
pub const MAX_CONNECTIONS: usize = 1024;
/// Open API connections from one source address.
pub const MAX_PER_SOURCE: usize = 32;
/// New API connections per second from one source (bursts of twice this).
pub const RATE_PER_SOURCE: u32 = 500;
/// A connection with no byte either way for this long is closed.
pub const IDLE: Duration = Duration::from_secs(60);
/// A connection that has sent nothing at all is closed after this long.
pub const FIRST_BYTE: Duration = Duration::from_secs(10);

/// The accept loop in front of tiny_http.
pub struct HttpGate {
    /// The public TCP port.
    pub socket: Async<TcpListener>,
    /// tiny_http's Unix socket.
    pub backend: PathBuf,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Where connection tasks run.
    pub executor: Arc<smol::Executor<'static>>,
}

impl HttpGate {
    /// Accepts until the future is dropped.
    pub async fn run(self) {
        let admission = Admission::new(Limits {
            max_pending: MAX_CONNECTIONS,
            max_pending_per_source: MAX_PER_SOURCE,
            rate_per_source: RATE_PER_SOURCE,
        });
        let backend = Arc::new(self.backend);
        loop {
            let (client, peer) = crate::listener::accept(&self.socket, "an API connection").await;
            let permit = match admission.admit(peer.ip(), Instant::now()) {
                Ok(p) => p,
                Err(refusal) => {
                    self.metrics.api_refused.fetch_add(1, Ordering::Relaxed);
                    log::debug!("refused API connection from {peer}: {}", refusal.label());
                    continue;
                }
            };
            let backend = backend.clone();
            self.executor
                .spawn(async move {
                    if let Err(e) = splice(client, &backend).await {
                        log::debug!("API connection {peer}: {e}");
                    }
                    drop(permit);
                })
                .detach();
        }
    }
}

/// Copies both ways between the client and tiny_http until both sides are
/// done or nothing moved for [`IDLE`].
async fn splice(client: Async<TcpStream>, backend: &PathBuf) -> std::io::Result<()> {
    let server = Async::<UnixStream>::connect(backend).await?;
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let up = pump(&client, &server, &last, start, |s| {
        s.get_ref().shutdown(std::net::Shutdown::Write)
    });
    let down = pump(&server, &client, &last, start, |s| {
        s.get_ref().shutdown(std::net::Shutdown::Write)
    });
    let watchdog = async {
        loop {
            Timer::after(Duration::from_secs(1)).await;
            let now = start.elapsed().as_millis() as u64;
            let last = last.load(Ordering::Relaxed);
            let limit = if last == 0 { FIRST_BYTE } else { IDLE };
            if now.saturating_sub(last) > limit.as_millis() as u64 {
                return;
            }
        }
    };
    future::or(
        async {
            let (a, b) = future::zip(up, down).await;
            a.and(b).map(|_| ())
        },
        async {
            watchdog.await;
            Ok(())
        },
    )
    .await
}

async fn pump<R, W>(
    from: &Async<R>,
    to: &Async<W>,
    last: &AtomicU64,
    start: Instant,
    close: impl Fn(&Async<W>) -> std::io::Result<()>,
) -> std::io::Result<()>
where
    for<'a> &'a Async<R>: futures_lite::AsyncRead + Unpin,
    for<'a> &'a Async<W>: futures_lite::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 8192];
    let (mut from, mut to_w) = (from, to);
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = close(to);
            return Ok(());
        }
        to_w.write_all(&buf[..n]).await?;
        // +1: zero means "nothing yet".
        last.store(start.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
    }
}

/// Binds the API port.
pub fn bind(addr: SocketAddr) -> std::io::Result<Async<TcpListener>> {
    crate::listener::bind(addr)
}
