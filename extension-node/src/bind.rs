//! Taking a port only when nobody on this machine uses it.
//!
//! A port is bound on every configured address or on none: if any address
//! family refuses it (a real service holds it on 127.0.0.1, on `::`, …) the
//! sockets already bound for it are closed and the port is skipped.
//!
//! On Unix, TCP sockets get SO_REUSEADDR (so a restarted agent does not
//! wait out TIME_WAIT); nothing gets SO_REUSEPORT, which would let us share
//! a port with a real service. On Windows SO_REUSEADDR means the opposite:
//! it lets a socket bind a port another program holds (port hijacking). So
//! there every socket gets SO_EXCLUSIVEADDRUSE instead, and before binding,
//! the system's tables of TCP listeners and UDP endpoints are read: a port
//! some program holds on any address is in use, even where Windows would
//! let a more specific bind succeed. A restarted agent may find a few of
//! its old ports still in TIME_WAIT there; they are skipped and taken on a
//! later retry like any other port in use.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};

use async_io::Async;
use socket2::{Domain, Protocol, Socket, Type};

/// Why a port was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// Something else listens on it.
    InUse,
    /// Not allowed (a low port without root or CAP_NET_BIND_SERVICE).
    Denied,
    /// Another error, in words.
    Failed(String),
}

impl Skipped {
    fn from(e: &io::Error) -> Skipped {
        match e.kind() {
            io::ErrorKind::AddrInUse => Skipped::InUse,
            io::ErrorKind::PermissionDenied => Skipped::Denied,
            _ => Skipped::Failed(e.to_string()),
        }
    }

    /// A word for reports.
    pub fn as_str(&self) -> &str {
        match self {
            Skipped::InUse => "in use",
            Skipped::Denied => "denied",
            Skipped::Failed(e) => e,
        }
    }
}

/// An address family this machine does not have (IPv6 disabled) is not a
/// reason to skip a port.
fn family_missing(e: &io::Error) -> bool {
    #[cfg(windows)]
    return matches!(e.raw_os_error(), Some(10047) | Some(10049)); // WSAEAFNOSUPPORT, WSAEADDRNOTAVAIL
    #[cfg(not(windows))]
    return matches!(e.raw_os_error(), Some(97) | Some(99)); // EAFNOSUPPORT, EADDRNOTAVAIL
}

/// Linux: SO_REUSEADDR on TCP only, for restarts (see the module docs).
#[cfg(not(windows))]
fn never_share(s: &Socket, ty: Type) -> io::Result<()> {
    if ty == Type::STREAM {
        // Not for UDP: there two SO_REUSEADDR sockets may share a port, and
        // a multicast service (SSDP, mDNS) would lose datagrams to us.
        s.set_reuse_address(true)?;
    }
    Ok(())
}

/// Windows: SO_EXCLUSIVEADDRUSE on every socket (see the module docs).
#[cfg(windows)]
fn never_share(s: &Socket, _ty: Type) -> io::Result<()> {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{setsockopt, SOL_SOCKET, SO_EXCLUSIVEADDRUSE};
    let on: i32 = 1;
    // SAFETY: a live socket handle, and a pointer to an i32 of the length
    // given, which setsockopt only reads.
    let r = unsafe {
        setsockopt(
            s.as_raw_socket() as usize,
            SOL_SOCKET,
            SO_EXCLUSIVEADDRUSE,
            (&on as *const i32).cast(),
            std::mem::size_of::<i32>() as i32,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    never_share(&s, ty)?;
    if addr.is_ipv6() {
        // Each family is bound on its own: `::` must not claim IPv4 too.
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

/// Binds `port` for TCP on every address, or reports why not.
pub fn tcp(port: u16, addrs: &[IpAddr]) -> Result<Vec<Async<TcpListener>>, Skipped> {
    #[cfg(windows)]
    if crate::port_table::held(port, crate::port_table::Transport::Tcp) {
        return Err(Skipped::InUse);
    }
    let mut out = Vec::new();
    for &ip in addrs {
        let addr = SocketAddr::new(ip, port);
        let bound = socket(addr, Type::STREAM, Protocol::TCP).and_then(|s| {
            s.listen(128)?;
            Async::new(TcpListener::from(s))
        });
        match bound {
            Ok(l) => out.push(l),
            Err(e) if family_missing(&e) => continue,
            Err(e) => return Err(Skipped::from(&e)),
        }
    }
    if out.is_empty() {
        return Err(Skipped::Failed("no address family available".into()));
    }
    Ok(out)
}

/// Binds `port` for UDP on every address, or reports why not.
pub fn udp(port: u16, addrs: &[IpAddr]) -> Result<Vec<Async<UdpSocket>>, Skipped> {
    #[cfg(windows)]
    if crate::port_table::held(port, crate::port_table::Transport::Udp) {
        return Err(Skipped::InUse);
    }
    let mut out = Vec::new();
    for &ip in addrs {
        let addr = SocketAddr::new(ip, port);
        let bound =
            socket(addr, Type::DGRAM, Protocol::UDP).and_then(|s| Async::new(UdpSocket::from(s)));
        match bound {
            Ok(s) => out.push(s),
            Err(e) if family_missing(&e) => continue,
            Err(e) => return Err(Skipped::from(&e)),
        }
    }
    if out.is_empty() {
        return Err(Skipped::Failed("no address family available".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOOPBACK: [IpAddr; 1] = [IpAddr::V4(Ipv4Addr::LOCALHOST)];

    #[test]
    fn a_port_in_use_is_skipped_and_the_service_keeps_it() {
        let service = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = service.local_addr().unwrap().port();
        assert_eq!(tcp(port, &LOOPBACK).err(), Some(Skipped::InUse));
        // A wildcard bind would collide with the service's address too.
        let any = [IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
        assert_eq!(tcp(port, &any).err(), Some(Skipped::InUse));
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        let (_, peer) = service.accept().unwrap();
        assert!(peer.ip().is_loopback(), "the service still answers");
    }

    #[test]
    fn a_free_port_is_taken_and_given_back_for_a_restart() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let first = tcp(port, &LOOPBACK).unwrap();
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        drop(c);
        drop(first);
        assert!(tcp(port, &LOOPBACK).is_ok(), "rebinding after close");
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let uport = u.local_addr().unwrap().port();
        assert_eq!(udp(uport, &LOOPBACK).err(), Some(Skipped::InUse));
    }
}
