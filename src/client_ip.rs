//! [`ClientIp`]: the address a request comes from, as the per-IP limit, the event-stream cap
//! and the failed-token limit count it.
//!
//! The TCP peer by default. Behind proxies, `CLIENT_IP_HEADER` names the header they set and
//! `CLIENT_IP_HOPS` how many of them append to it: the address is the entry that many places
//! from the right, the one the outermost trusted proxy saw. Entries further left were written
//! by the client (or an untrusted hop) and are never used.

use actix_web::http::header::{HeaderMap, HeaderName};
use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroUsize,
};

#[derive(Clone, Debug)]
pub struct ClientIp {
    header: Option<HeaderName>,
    hops: NonZeroUsize,
}

impl ClientIp {
    pub fn new(header: Option<HeaderName>, hops: NonZeroUsize) -> Self {
        Self { header, hops }
    }

    /// `CLIENT_IP_HEADER`, if set.
    pub fn header(&self) -> Option<&HeaderName> {
        self.header.as_ref()
    }

    /// The client of a request with these headers from this peer, as a limit key: an IPv6
    /// client counts per /64 (one host usually owns the whole block).
    pub fn of(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        self.header_entry(headers)
            .or_else(|| peer.map(|peer| peer.ip()))
            .map(limit_key)
    }

    /// The entry `hops` from the right of the configured header; `None` when the header is not
    /// configured, missing, malformed, or has fewer entries than trusted hops (then the peer
    /// is used).
    fn header_entry(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let mut value = String::new();
        // A proxy may add a second header line instead of appending: lines join in order.
        for line in headers.get_all(self.header.as_ref()?) {
            if !value.is_empty() {
                value.push(',');
            }
            value.push_str(line.to_str().ok()?);
        }
        let entries: Vec<&str> = value.split(',').map(str::trim).collect();
        let index = entries.len().checked_sub(self.hops.get())?;
        entries.get(index)?.parse().ok()
    }
}

/// One IPv6 host usually owns a whole /64, so limits count per /64 rather than per address.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn ipv6_clients_are_limited_per_64_block() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(limit_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_entry_a_trusted_hop_added_is_used_never_the_clients() {
        let peer: SocketAddr = "10.9.9.9:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        let xff = HeaderName::from_static("x-forwarded-for");
        headers.insert(
            xff.clone(),
            HeaderValue::from_static("6.6.6.6, 1.1.1.1, 2.2.2.2"),
        );
        let one = ClientIp::new(Some(xff.clone()), NonZeroUsize::MIN);
        let two = ClientIp::new(Some(xff.clone()), NonZeroUsize::new(2).unwrap());
        let four = ClientIp::new(Some(xff.clone()), NonZeroUsize::new(4).unwrap());
        assert_eq!(one.of(&headers, Some(peer)), "2.2.2.2".parse().ok());
        assert_eq!(two.of(&headers, Some(peer)), "1.1.1.1".parse().ok());
        assert_eq!(
            four.of(&headers, Some(peer)),
            Some(peer.ip()),
            "too few hops"
        );
        let none = ClientIp::new(None, NonZeroUsize::MIN);
        assert_eq!(none.of(&headers, Some(peer)), Some(peer.ip()));
        headers.insert(xff, HeaderValue::from_static("not-an-address"));
        assert_eq!(one.of(&headers, Some(peer)), Some(peer.ip()));
    }
}
