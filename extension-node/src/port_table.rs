//! Windows: which ports some program holds, on any address, read from the
//! system's tables of TCP listeners and UDP endpoints (`iphlpapi`'s
//! `GetExtendedTcpTable` / `GetExtendedUdpTable`).
//!
//! Windows lets a socket bind a specific address on a port another program
//! holds on the wildcard address (and the other way round); the bind
//! succeeding is therefore no proof that nobody uses the port. [`held`] asks
//! the tables instead, for IPv4 and IPv6. A table that cannot be read
//! (say IPv6 is absent) proves nothing either way: the exclusive bind that
//! follows still refuses a port bound on the same address.
//!
//! The tables are arrays of 32-bit words: an entry count, then fixed-size
//! rows whose local port is one word in network byte order. [`ports`]
//! reads them without trusting the count, so it is plain safe code and
//! tested on any platform.

// Off Windows only the parser's tests build this module.
#![cfg_attr(not(windows), allow(dead_code))]

/// Which table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP listeners.
    Tcp,
    /// UDP endpoints.
    Udp,
}

/// A table's row layout: words per row, and which word is the local port.
#[derive(Clone, Copy, Debug)]
struct Layout {
    row_words: usize,
    port_word: usize,
}

/// `MIB_TCPROW_OWNER_PID`: state, local address, local port, …
const TCP4: Layout = Layout {
    row_words: 6,
    port_word: 2,
};
/// `MIB_TCP6ROW_OWNER_PID`: 16-byte local address, scope id, local port, …
const TCP6: Layout = Layout {
    row_words: 14,
    port_word: 5,
};
/// `MIB_UDPROW_OWNER_PID`: local address, local port, owning pid.
const UDP4: Layout = Layout {
    row_words: 3,
    port_word: 1,
};
/// `MIB_UDP6ROW_OWNER_PID`: 16-byte local address, scope id, local port, pid.
const UDP6: Layout = Layout {
    row_words: 7,
    port_word: 5,
};

/// The local ports in a table: at most as many rows as both the count and
/// the buffer hold.
fn ports(table: &[u32], layout: Layout) -> impl Iterator<Item = u16> + '_ {
    let count = table.first().map_or(0, |&n| n as usize);
    table
        .get(1..)
        .unwrap_or_default()
        .chunks_exact(layout.row_words)
        .take(count)
        .filter_map(move |row| row.get(layout.port_word))
        .map(|word| {
            let [hi, lo, ..] = word.to_ne_bytes();
            u16::from_be_bytes([hi, lo])
        })
}

/// Whether any program holds `port` for `transport` on any IPv4 or IPv6
/// address, as far as the tables that could be read say.
#[cfg(windows)]
pub fn held(port: u16, transport: Transport) -> bool {
    use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6};
    let tables = match transport {
        Transport::Tcp => [(AF_INET, TCP4), (AF_INET6, TCP6)],
        Transport::Udp => [(AF_INET, UDP4), (AF_INET6, UDP6)],
    };
    tables
        .iter()
        .any(|&(family, layout)| match read(transport, family) {
            Ok(table) => ports(&table, layout).any(|p| p == port),
            Err(e) => {
                log::debug!("extension: the {transport:?} table (family {family}): {e}");
                false
            }
        })
}

/// One table, as words.
#[cfg(windows)]
fn read(transport: Transport, family: u16) -> std::io::Result<Vec<u32>> {
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        GetExtendedTcpTable, GetExtendedUdpTable, TCP_TABLE_OWNER_PID_LISTENER, UDP_TABLE_OWNER_PID,
    };
    const ERROR_INSUFFICIENT_BUFFER: u32 = 122;
    let mut table: Vec<u32> = vec![0; 256];
    // The table may grow between the call that sizes it and the next.
    for _ in 0..4 {
        let mut bytes = u32::try_from(table.len() * 4).unwrap_or(u32::MAX);
        // SAFETY: `table` is writable for `bytes` bytes and 4-byte aligned,
        // as the rows' fields are; the call writes at most `bytes`.
        let r = unsafe {
            match transport {
                Transport::Tcp => GetExtendedTcpTable(
                    table.as_mut_ptr().cast(),
                    &mut bytes,
                    0,
                    u32::from(family),
                    TCP_TABLE_OWNER_PID_LISTENER,
                    0,
                ),
                Transport::Udp => GetExtendedUdpTable(
                    table.as_mut_ptr().cast(),
                    &mut bytes,
                    0,
                    u32::from(family),
                    UDP_TABLE_OWNER_PID,
                    0,
                ),
            }
        };
        match r {
            0 => return Ok(table),
            ERROR_INSUFFICIENT_BUFFER => table = vec![0; (bytes as usize).div_ceil(4) + 64],
            e => return Err(std::io::Error::from_raw_os_error(e as i32)),
        }
    }
    Err(std::io::Error::other("the table kept growing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port word as the system writes it: network byte order in the
    /// first two bytes.
    fn port_word(port: u16) -> u32 {
        let [hi, lo] = port.to_be_bytes();
        u32::from_ne_bytes([hi, lo, 0, 0])
    }

    #[test]
    fn ports_come_from_the_port_word_of_each_row() {
        let mut t = vec![2];
        t.extend([2, 0x0100_007f, port_word(445), 0, 0, 4]);
        t.extend([2, 0, port_word(3389), 0, 0, 8]);
        assert_eq!(ports(&t, TCP4).collect::<Vec<_>>(), [445, 3389]);
        let mut t6 = vec![1, 0, 0, 0, 1, 0, port_word(5985)];
        t6.extend([0; 8]);
        assert_eq!(ports(&t6, TCP6).collect::<Vec<_>>(), [5985]);
        let u = vec![1, 0, port_word(1900), 4];
        assert_eq!(ports(&u, UDP4).collect::<Vec<_>>(), [1900]);
        let u6 = vec![1, 0, 0, 0, 0, 0, port_word(5353), 4];
        assert_eq!(ports(&u6, UDP6).collect::<Vec<_>>(), [5353]);
    }

    #[test]
    fn a_count_beyond_the_buffer_or_a_cut_row_reads_only_whole_rows() {
        assert_eq!(ports(&[], TCP4).count(), 0);
        assert_eq!(ports(&[u32::MAX], TCP4).count(), 0);
        let t = vec![u32::MAX, 0, 0, port_word(80), 0, 0, 0, 0, 0, port_word(81)];
        assert_eq!(ports(&t, TCP4).collect::<Vec<_>>(), [80]);
        let t = vec![0, 0, 0, port_word(80), 0, 0, 0];
        assert_eq!(ports(&t, TCP4).count(), 0, "the count says no rows");
    }
}
