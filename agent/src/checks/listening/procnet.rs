//! `/proc/net/{tcp,tcp6,udp,udp6}` rows and `/proc/<pid>/fd` socket links.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One socket row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketRow {
    pub local: IpAddr,
    pub port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    /// Kernel TCP state (`0A` = LISTEN, `07` = CLOSE, the state of an unconnected UDP socket).
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

/// TCP_LISTEN.
pub const STATE_LISTEN: u8 = 0x0a;
/// TCP_CLOSE: what an unconnected (bound, receiving) UDP socket shows.
pub const STATE_CLOSE: u8 = 0x07;

/// Parses one table; rows that do not parse are counted, not fatal.
pub fn parse_table(text: &str) -> (Vec<SocketRow>, usize) {
    let mut rows = Vec::new();
    let mut bad = 0;
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        match parse_row(line) {
            Some(row) => rows.push(row),
            None => bad += 1,
        }
    }
    (rows, bad)
}

fn parse_row(line: &str) -> Option<SocketRow> {
    let mut fields = line.split_whitespace();
    let _slot = fields.next()?;
    let (local, port) = parse_endpoint(fields.next()?)?;
    let (remote, remote_port) = parse_endpoint(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    let _queues = fields.next()?;
    let _timer = fields.next()?;
    let _retransmits = fields.next()?;
    let uid = fields.next()?.parse().ok()?;
    let _timeout = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    Some(SocketRow {
        local,
        port,
        remote,
        remote_port,
        state,
        uid,
        inode,
    })
}

/// `0100007F:0016` (IPv4, the 32-bit word in host byte order, little-endian here) or 32 hex
/// digits of IPv6 as four such words.
fn parse_endpoint(text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => {
            let word = u32::from_str_radix(addr, 16).ok()?;
            IpAddr::V4(Ipv4Addr::from(word.to_le_bytes()))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Who can reach an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// 127.0.0.0/8, ::1 (and v4-mapped loopback).
    Loopback,
    /// One specific address: the networks that reach that interface.
    Interface,
    /// 0.0.0.0 or :: — every interface.
    All,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Loopback => "loopback",
            Scope::Interface => "interface",
            Scope::All => "all",
        }
    }
}

pub fn scope(ip: IpAddr) -> Scope {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    if ip.is_unspecified() {
        Scope::All
    } else if ip.is_loopback() {
        Scope::Loopback
    } else {
        Scope::Interface
    }
}

/// The inode of a `socket:[12345]` link target.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18537 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 20111 1 0000000000000000 100 0 0 10 0\n\
   2: 0F02000A:0016 0202000A:D3A4 01 00000000:00000000 02:000A7B5E 00000000     0        0 31442 4 0000000000000000 20 4 29 10 -1\n\
   3: garbage\n";

    #[test]
    fn reads_ipv4_rows() {
        let (rows, bad) = parse_table(TCP);
        assert_eq!(bad, 1);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].local, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(
            (rows[0].port, rows[0].state, rows[0].inode),
            (22, STATE_LISTEN, 18537)
        );
        assert_eq!(rows[1].local, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!((rows[1].port, rows[1].uid), (8080, 999));
        assert_eq!(rows[2].local, "10.0.2.15".parse::<IpAddr>().unwrap());
        assert_eq!(rows[2].remote_port, 54180);
    }

    #[test]
    fn reads_ipv6_rows_and_scopes() {
        let text = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18539 1 0000000000000000 100 0 0 10 0\n\
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17000 1 0000000000000000 100 0 0 10 0\n\
   2: 0000000000000000FFFF00000100007F:0019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17001 1 0000000000000000 100 0 0 10 0\n\
   3: 000080FE00000000FF005450563412FE:0222 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17002 2 0000000000000000 0\n";
        let (rows, bad) = parse_table(text);
        assert_eq!(bad, 0);
        assert_eq!(scope(rows[0].local), Scope::All);
        assert_eq!(rows[1].local, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(scope(rows[1].local), Scope::Loopback);
        assert_eq!(rows[2].local, "::ffff:127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(scope(rows[2].local), Scope::Loopback);
        assert_eq!(
            rows[3].local,
            "fe80::5054:ff:fe12:3456".parse::<IpAddr>().unwrap()
        );
        assert_eq!(scope(rows[3].local), Scope::Interface);
        assert_eq!(scope("::ffff:0.0.0.0".parse().unwrap()), Scope::All);
    }

    #[test]
    fn reads_socket_links() {
        assert_eq!(socket_inode("socket:[18537]"), Some(18537));
        assert_eq!(socket_inode("pipe:[1]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }
}
