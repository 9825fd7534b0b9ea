//! The API port under idle-connection floods (issue: thousands of idle
//! connections on 9002): bounded, counted, and other clients still served.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use honeybee_tests::metrics::Metrics;
use honeybee_tests::Core;

fn connect_from(source: Ipv4Addr, core: &Core) -> Option<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    sock.bind(&std::net::SocketAddr::new(IpAddr::V4(source), 0).into())
        .ok()?;
    sock.connect(&core.api_addr.into()).ok()?;
    Some(sock.into())
}

#[test]
fn thousands_of_idle_api_connections_are_bounded_and_others_are_served() {
    honeybee_tests::raise_fd_limit(4096);
    let core = Core::start();
    let flood = Ipv4Addr::new(127, 0, 0, 2);
    let mut idle: Vec<TcpStream> = (0..2000)
        .filter_map(|_| connect_from(flood, &core))
        .collect();
    assert!(idle.len() > 1000, "the flood could not even connect");
    // Another client is still served, and the refusals are counted.
    let body = core.api().get("/health").expect_status(200).json();
    assert_eq!(body["status"], "ok");
    let text = core.api().get("/metrics").expect_status(200).text();
    let refused = Metrics::parse(&text).value("honeybee_api_connections_refused_total", &[]);
    assert!(
        refused >= 1900.0,
        "at most 32 idle connections per source stay: refused {refused}"
    );

    // The admitted idle ones are closed once they sent nothing for 10 s.
    let start = Instant::now();
    // The first 32 were admitted (32 per source); the rest are refused.
    let mut open: Vec<TcpStream> = idle.drain(..32).collect();
    drop(idle);
    for s in &mut open {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut b = [0u8; 1];
        let n = s.read(&mut b).unwrap_or(0);
        assert_eq!(n, 0, "an idle connection got data");
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(18),
        "closed after {waited:?}"
    );
    core.api().get("/health").expect_status(200);
}
