//! The guard against the IANA IPv4 and IPv6 Special-Purpose Address Registries (rows and their
//! "Globally Reachable" column as published; snapshot of 2025, RFC 6890 and its updates), plus
//! the multicast blocks of the address-space registries. Every block is walked (its edges, its
//! middle and pseudo-random addresses inside): a block not known to be globally reachable must be
//! refused everywhere, and a globally reachable one is refused only where this file says why.

use std::net::IpAddr;

use super::*;

/// The registry's "Globally Reachable" column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    True,
    False,
    /// `N/A` or blank (deprecated rows, and transition mechanisms like 6to4 and Teredo).
    NotApplicable,
}

use Reach::{False, NotApplicable as NA, True};

const IPV4_SPECIAL: &[(&str, Reach, &str)] = &[
    ("0.0.0.0/8", False, "\"This network\""),
    ("0.0.0.0/32", False, "\"This host on this network\""),
    ("10.0.0.0/8", False, "Private-Use"),
    ("100.64.0.0/10", False, "Shared Address Space"),
    ("127.0.0.0/8", False, "Loopback"),
    ("169.254.0.0/16", False, "Link Local"),
    ("172.16.0.0/12", False, "Private-Use"),
    ("192.0.0.0/24", False, "IETF Protocol Assignments"),
    ("192.0.0.0/29", False, "IPv4 Service Continuity Prefix"),
    ("192.0.0.8/32", False, "IPv4 dummy address"),
    ("192.0.0.9/32", True, "Port Control Protocol Anycast"),
    ("192.0.0.10/32", True, "Traversal Using Relays around NAT Anycast"),
    ("192.0.0.170/32", False, "NAT64/DNS64 Discovery"),
    ("192.0.0.171/32", False, "NAT64/DNS64 Discovery"),
    ("192.0.2.0/24", False, "Documentation (TEST-NET-1)"),
    ("192.31.196.0/24", True, "AS112-v4"),
    ("192.52.193.0/24", True, "AMT"),
    ("192.88.99.0/24", NA, "Deprecated (6to4 Relay Anycast)"),
    ("192.88.99.2/32", False, "6a44-relay anycast address"),
    ("192.168.0.0/16", False, "Private-Use"),
    ("192.175.48.0/24", True, "Direct Delegation AS112 Service"),
    ("198.18.0.0/15", False, "Benchmarking"),
    ("198.51.100.0/24", False, "Documentation (TEST-NET-2)"),
    ("203.0.113.0/24", False, "Documentation (TEST-NET-3)"),
    ("240.0.0.0/4", False, "Reserved"),
    ("255.255.255.255/32", False, "Limited Broadcast"),
    // IPv4 address-space registry: multicast is never a unicast destination.
    ("224.0.0.0/4", False, "Multicast (address-space registry)"),
];

const IPV6_SPECIAL: &[(&str, Reach, &str)] = &[
    ("::1/128", False, "Loopback Address"),
    ("::/128", False, "Unspecified Address"),
    ("::ffff:0:0/96", False, "IPv4-mapped Address"),
    ("64:ff9b::/96", True, "IPv4-IPv6 Translat."),
    ("64:ff9b:1::/48", False, "IPv4-IPv6 Translat."),
    ("100::/64", False, "Discard-Only Address Block"),
    ("100:0:0:1::/64", False, "Dummy IPv6 Prefix"),
    ("2001::/23", False, "IETF Protocol Assignments"),
    ("2001::/32", NA, "TEREDO"),
    ("2001:1::1/128", True, "Port Control Protocol Anycast"),
    ("2001:1::2/128", True, "Traversal Using Relays around NAT Anycast"),
    ("2001:1::3/128", True, "DNS-SD Service Registration Protocol Anycast"),
    ("2001:2::/48", False, "Benchmarking"),
    ("2001:3::/32", True, "AMT"),
    ("2001:4:112::/48", True, "AS112-v6"),
    ("2001:10::/28", NA, "Deprecated (previously ORCHID)"),
    ("2001:20::/28", True, "ORCHIDv2"),
    ("2001:30::/28", True, "Drone Remote ID Protocol Entity Tags (DETs) Prefix"),
    ("2001:db8::/32", False, "Documentation"),
    ("2002::/16", NA, "6to4"),
    ("2620:4f:8000::/48", True, "Direct Delegation AS112 Service"),
    ("3fff::/20", False, "Documentation"),
    ("5f00::/16", False, "Segment Routing (SRv6) SIDs"),
    ("fc00::/7", False, "Unique-Local"),
    ("fe80::/10", False, "Link-Local Unicast"),
    // IPv6 address-space registry: multicast, and the reserved ::/8 forms that embed IPv4.
    ("ff00::/8", False, "Multicast (address-space registry)"),
    ("::/96", False, "IPv4-compatible (deprecated, RFC 4291)"),
    ("::ffff:0:0:0/96", False, "IPv4-translated (RFC 2765)"),
];

/// Globally reachable blocks the guard refuses on purpose: nothing an unsubscribe link needs
/// lives in them, and each sits inside a refused parent or embeds an IPv4 address.
const REFUSED_ON_PURPOSE: &[(&str, &str)] = &[
    ("192.0.0.9/32", "inside IETF protocol assignments 192.0.0.0/24"),
    ("192.0.0.10/32", "inside IETF protocol assignments 192.0.0.0/24"),
    ("64:ff9b::/96", "NAT64 reaches the IPv4 address it carries"),
    ("2001:1::1/128", "inside IETF protocol assignments 2001::/23"),
    ("2001:1::2/128", "inside IETF protocol assignments 2001::/23"),
    ("2001:1::3/128", "inside IETF protocol assignments 2001::/23"),
    ("2001:3::/32", "inside IETF protocol assignments 2001::/23"),
    ("2001:4:112::/48", "inside IETF protocol assignments 2001::/23"),
    ("2001:20::/28", "inside IETF protocol assignments 2001::/23"),
    ("2001:30::/28", "inside IETF protocol assignments 2001::/23"),
];

/// The block's edges, middle and some pseudo-random addresses inside it.
fn samples(cidr: &str) -> Vec<IpAddr> {
    let (address, prefix) = cidr.split_once('/').unwrap();
    let (address, prefix): (IpAddr, u32) = (address.parse().unwrap(), prefix.parse().unwrap());
    let bits = if address.is_ipv4() { 32 } else { 128 };
    let base = match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    };
    let span = if bits - prefix == 128 { u128::MAX } else { (1u128 << (bits - prefix)) - 1 };
    assert_eq!(base & span, 0, "{cidr} is not a block start");
    let mut offsets = vec![0, span, span / 2, span.saturating_sub(1), 1.min(span)];
    let mut state = 0x9e37_79b9_7f4a_7c15_u128 ^ base;
    for _ in 0..64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        offsets.push(if span == u128::MAX { state } else { state % (span + 1) });
    }
    offsets
        .into_iter()
        .map(|offset| match address {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((base + offset) as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(base + offset)),
        })
        .collect()
}

#[test]
fn every_special_purpose_block_is_judged_by_its_registry_row() {
    let mut walked = 0;
    for (cidr, reach, name) in IPV4_SPECIAL.iter().chain(IPV6_SPECIAL) {
        let on_purpose = REFUSED_ON_PURPOSE.iter().any(|(refused, _)| refused == cidr);
        for address in samples(cidr) {
            let verdict = forbidden_class(address);
            match reach {
                False | NA => assert!(verdict.is_some(), "{address} in {cidr} ({name}, {reach:?}) passed the guard"),
                True if on_purpose => assert!(verdict.is_some(), "{address} in {cidr} ({name}) should be refused"),
                True => assert_eq!(verdict, None, "{address} in {cidr} ({name}) is globally reachable"),
            }
            walked += 1;
        }
    }
    assert!(walked > 50 * 60, "walked {walked} addresses");
    for (cidr, _) in REFUSED_ON_PURPOSE {
        let row = IPV4_SPECIAL.iter().chain(IPV6_SPECIAL).find(|(c, _, _)| c == cidr);
        assert_eq!(row.map(|r| r.1), Some(True), "{cidr}: only globally reachable rows need a reason here");
    }
}

#[test]
fn ipv6_outside_global_unicast_is_refused_and_public_space_passes() {
    // Unassigned IPv6 space (the address-space registry's "Reserved by IETF") is not reachable.
    for address in ["4000::1", "8000::1", "e000::1", "1::1", "200::1"] {
        assert!(forbidden_class(ip(address)).is_some(), "{address}");
    }
    for address in ["1.0.0.1", "9.9.9.9", "223.255.255.254", "2a00:1450:4001:80b::200e", "2001:4860:4860::8888"] {
        assert_eq!(forbidden_class(ip(address)), None, "{address}");
    }
}

#[test]
fn every_embedded_ipv4_form_names_the_address_it_carries() {
    for (address, carried) in [
        ("::ffff:0:7f00:1", "127.0.0.1 (loopback)"),
        ("::ffff:0:a9fe:a9fe", "169.254.169.254 (link-local"),
        ("::ffff:127.0.0.1", "127.0.0.1 (loopback)"),
        ("::ffff:a9fe:a9fe", "169.254.169.254 (link-local"),
        ("::7f00:1", "127.0.0.1 (loopback)"),
        ("::a00:1", "10.0.0.1 (private)"),
        ("2606:4700::5efe:7f00:1", "127.0.0.1 (loopback)"),
        ("2606:4700::200:5efe:a9fe:a9fe", "169.254.169.254 (link-local"),
    ] {
        let verdict = forbidden_class(ip(address)).unwrap_or_default();
        assert!(verdict.contains(carried), "{address}: {verdict:?}");
    }
    // A public IPv4 address in an IPv6 wrapper is still refused: reach IPv4 as IPv4.
    assert!(forbidden_class(ip("::ffff:0:808:808")).is_some_and(|v| v.contains("8.8.8.8")));
    assert!(forbidden_class(ip("::ffff:8.8.8.8")).is_some());
    for (address, class) in [
        ("64:ff9b::7f00:1", "NAT64"),
        ("64:ff9b:1::a9fe:a9fe", "NAT64"),
        ("2002:7f00:1::1", "6to4"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo"),
    ] {
        let verdict = forbidden_class(ip(address)).unwrap_or_default();
        assert!(verdict.contains(class), "{address}: {verdict:?}");
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}
