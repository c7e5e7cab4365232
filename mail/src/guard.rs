//! The one HTTP client allowed to contact addresses found in mail (RFC 8058 one-click POSTs).
//!
//! Rules, in order: `https` only, port 443, no userinfo; the host may not be a special name
//! (localhost, metadata, cluster-internal, unqualified); every resolved address (or the IP
//! literal itself) must be globally routable, and the connection goes to the checked address
//! (pinned with `resolve`, so a second DNS answer cannot rebind it); no proxy, no cookies, no
//! credentials, no redirects; connect and total time limits and a response size cap. The address
//! rules are a hand-written table over `std::net` because they are a security boundary small
//! enough to read whole: an IPv4 address outside the refused blocks is allocated public space, an
//! IPv6 address must be in global unicast 2000::/3 outside the refused blocks, and every IPv6 form
//! that embeds an IPv4 address is refused. The SSRF matrix covers every class, and a test walks
//! every block of the IANA special-purpose registries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

use crate::list_unsubscribe::ONE_CLICK_BODY;

/// Connection set-up limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-exchange limit, body included.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read; larger answers are not a one-click endpoint.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// DNS lookup limit.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a target was refused before any packet was sent to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// How a POST that was sent ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostResult {
    /// 200, 202 or 204 with a body within the limit: the RFC 8058 request was accepted.
    Accepted(u16),
    /// The endpoint answered, but not in a way that proves an unsubscribe (a redirect, another
    /// 2xx): a person has to finish.
    NotCompliant(String),
    /// The request failed (4xx, 5xx, timeout, oversized answer, TLS or connect error).
    Failed(String),
}

/// Resolves a host name to addresses; replaceable so tests can model hostile DNS.
#[async_trait::async_trait]
pub trait Resolver: Send + Sync {
    /// All addresses for `host`.
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The system resolver.
#[derive(Debug, Default)]
pub struct SystemResolver;

#[async_trait::async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 443)).await?.map(|a| a.ip()).collect())
    }
}

/// The guarded client.
pub struct GuardedClient {
    resolver: Box<dyn Resolver>,
    /// Tests only: one local plain-HTTP server standing in for a public endpoint.
    #[cfg(test)]
    test_endpoint: Option<SocketAddr>,
}

impl std::fmt::Debug for GuardedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedClient").finish_non_exhaustive()
    }
}

impl Default for GuardedClient {
    fn default() -> Self {
        Self::new(Box::new(SystemResolver))
    }
}

impl GuardedClient {
    /// A client using `resolver` for host names.
    pub fn new(resolver: Box<dyn Resolver>) -> Self {
        Self {
            resolver,
            #[cfg(test)]
            test_endpoint: None,
        }
    }

    /// Tests only: treats `http://` at exactly `endpoint` as a public https server, so status,
    /// redirect, size and time rules can be exercised without TLS. Every other rule still holds.
    #[cfg(test)]
    pub fn with_test_endpoint(mut self, endpoint: SocketAddr) -> Self {
        self.test_endpoint = Some(endpoint);
        self
    }

    /// Checks `uri` and returns the one address to connect to.
    pub async fn check(&self, uri: &str) -> Result<(Url, SocketAddr), Refusal> {
        let url = Url::parse(uri).map_err(|e| Refusal(format!("unparseable URI: {e}")))?;
        #[cfg(test)]
        if let Some(endpoint) = self.test_endpoint
            && url.scheme() == "http"
            && url.host_str() == Some(&endpoint.ip().to_string())
            && url.port() == Some(endpoint.port())
        {
            return Ok((url, endpoint));
        }
        if url.scheme() != "https" {
            return Err(Refusal(format!("scheme {} refused: https only", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal("credentials in the URI refused".into()));
        }
        let wrong_port = url.port().is_some_and(|port| port != 443);
        let addresses = match url.host() {
            // An address literal is judged before its port, so the refusal names what it reaches.
            Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(Host::Domain(_)) if wrong_port => return Err(Refusal("port other than 443 refused".into())),
            Some(Host::Domain(name)) => {
                check_name(name)?;
                let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, self.resolver.resolve(name)).await;
                match lookup {
                    Ok(Ok(addresses)) if !addresses.is_empty() => addresses,
                    Ok(Ok(_)) => return Err(Refusal(format!("{name} has no addresses"))),
                    Ok(Err(error)) => return Err(Refusal(format!("{name} does not resolve: {error}"))),
                    Err(_) => return Err(Refusal(format!("resolving {name} timed out"))),
                }
            }
            None => return Err(Refusal("no host".into())),
        };
        // Every answer must be public: a mixed answer is a rebinding attempt.
        for address in &addresses {
            if let Some(class) = forbidden_class(*address) {
                return Err(Refusal(format!("address {address} refused: {class}")));
            }
        }
        if wrong_port {
            return Err(Refusal("port other than 443 refused".into()));
        }
        Ok((url, SocketAddr::new(addresses[0], 443)))
    }

    /// Sends the RFC 8058 one-click POST to `uri` after checking it.
    pub async fn one_click(&self, uri: &str) -> Result<PostResult, Refusal> {
        let (url, address) = self.check(uri).await?;
        #[allow(clippy::disallowed_methods, reason = "the SSRF guard: the address was checked above")]
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::endpoint::tls_client_config())
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .user_agent("mailagent-unsubscribe/1");
        if let Some(Host::Domain(name)) = url.host() {
            builder = builder.resolve(name, address);
        }
        let client = builder.build().map_err(|e| Refusal(format!("client set-up failed: {e}")))?;
        let response = client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(ONE_CLICK_BODY)
            .send()
            .await;
        let mut response = match response {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Ok(PostResult::Failed("timed out".into())),
            Err(error) => return Ok(PostResult::Failed(format!("request failed: {}", without_url(&error)))),
        };
        let status = response.status().as_u16();
        let mut received = 0usize;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    received += chunk.len();
                    if received > MAX_RESPONSE_BYTES {
                        return Ok(PostResult::Failed(format!("response larger than {MAX_RESPONSE_BYTES} bytes")));
                    }
                }
                Ok(None) => break,
                Err(error) if error.is_timeout() => {
                    return Ok(PostResult::Failed("timed out reading the response".into()));
                }
                Err(error) => {
                    return Ok(PostResult::Failed(format!("reading the response failed: {}", without_url(&error))));
                }
            }
        }
        Ok(match status {
            200 | 202 | 204 => PostResult::Accepted(status),
            300..=399 => PostResult::NotCompliant(format!("HTTP {status}: a redirect, which RFC 8058 forbids")),
            201..=299 => PostResult::NotCompliant(format!("HTTP {status} is not a one-click acceptance")),
            _ => PostResult::Failed(format!("HTTP {status}")),
        })
    }
}

/// reqwest errors quote the URL, which carries the subscriber token: strip it.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), &crate::list_unsubscribe::redact_url(url.as_str()));
    }
    text
}

/// Host names refused before resolving.
fn check_name(name: &str) -> Result<(), Refusal> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let refused = !name.contains('.')
        || name == "localhost"
        || [".localhost", ".local", ".internal", ".svc", ".cluster.local", ".home.arpa", ".in-addr.arpa", ".ip6.arpa"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
        || name == "metadata.google.internal";
    if refused { Err(Refusal(format!("host name {name} refused: local, internal or unqualified"))) } else { Ok(()) }
}

/// Why an address may not be contacted, or `None` when it is known to be globally reachable.
pub fn forbidden_class(address: IpAddr) -> Option<String> {
    match address {
        IpAddr::V4(ip) => forbidden_v4(ip).map(str::to_string),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

/// IPv4 blocks that are not globally reachable (IANA IPv4 special-purpose and address-space
/// registries), most specific first. Every other IPv4 address is allocated public space.
const V4_REFUSED: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 8, "unspecified or this-network"),
    ([10, 0, 0, 0], 8, "private"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT"),
    ([127, 0, 0, 0], 8, "loopback"),
    ([169, 254, 0, 0], 16, "link-local (cloud metadata lives here)"),
    ([172, 16, 0, 0], 12, "private"),
    ([192, 0, 0, 0], 24, "IETF protocol assignments"),
    ([192, 0, 2, 0], 24, "documentation"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast (deprecated)"),
    ([192, 168, 0, 0], 16, "private"),
    ([198, 18, 0, 0], 15, "benchmarking"),
    ([198, 51, 100, 0], 24, "documentation"),
    ([203, 0, 113, 0], 24, "documentation"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([240, 0, 0, 0], 4, "reserved or broadcast"),
];

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let address = u32::from(ip);
    V4_REFUSED.iter().find_map(|(net, prefix, why)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
        (address & mask == u32::from_be_bytes(*net) & mask).then_some(*why)
    })
}

/// How a refused IPv6 block is judged.
#[derive(Clone, Copy)]
enum V6Rule {
    /// Refused, for this reason.
    Refuse(&'static str),
    /// Refused; the IPv4 address in the low 32 bits is named with its own class.
    EmbedsV4(&'static str),
}

/// IPv6 blocks refused (IANA IPv6 special-purpose and address-space registries), first match
/// wins. Outside these only global unicast 2000::/3 is reachable; NAT64, 6to4 and Teredo carry
/// an IPv4 address a translator or relay would reach, so they are refused outright.
const V6_REFUSED: &[(Ipv6Addr, u8, V6Rule)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, V6Rule::Refuse("unspecified")),
    (Ipv6Addr::LOCALHOST, 128, V6Rule::Refuse("loopback")),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, V6Rule::EmbedsV4("IPv4-mapped")),
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, V6Rule::EmbedsV4("IPv4-translated")),
    (Ipv6Addr::UNSPECIFIED, 96, V6Rule::EmbedsV4("IPv4-compatible")),
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, V6Rule::Refuse("NAT64 (embeds an IPv4 address)")),
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, V6Rule::Refuse("local-use NAT64 (embeds an IPv4 address)")),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, V6Rule::Refuse("discard-only")),
    (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64, V6Rule::Refuse("dummy prefix")),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, V6Rule::Refuse("Teredo (embeds an IPv4 address)")),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, V6Rule::Refuse("IETF protocol assignments")),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, V6Rule::Refuse("documentation")),
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, V6Rule::Refuse("6to4 (embeds an IPv4 address)")),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, V6Rule::Refuse("documentation")),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, V6Rule::Refuse("unique-local (fc00::/7)")),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, V6Rule::Refuse("link-local (fe80::/10)")),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, V6Rule::Refuse("site-local (deprecated)")),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, V6Rule::Refuse("multicast")),
];

fn in_v6_block(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

fn embedded_v4(ip: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<String> {
    if let Some(rule) =
        V6_REFUSED.iter().find(|(net, prefix, _)| in_v6_block(ip, *net, *prefix)).map(|(_, _, rule)| *rule)
    {
        return Some(match rule {
            V6Rule::Refuse(why) => why.to_string(),
            V6Rule::EmbedsV4(why) => {
                let v4 = embedded_v4(ip);
                match forbidden_v4(v4) {
                    Some(class) => format!("{why}, carrying {v4} ({class})"),
                    None => format!("{why}, carrying {v4}: reach IPv4 as IPv4"),
                }
            }
        });
    }
    if !in_v6_block(ip, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
        return Some("outside global unicast (2000::/3)".into());
    }
    // An ISATAP interface id (RFC 5214: ::0:5efe:a.b.c.d, u/g bits aside) carries an IPv4
    // address a tunnel would reach.
    let segments = ip.segments();
    if segments[4] & !0x0300 == 0 && segments[5] == 0x5efe {
        let v4 = embedded_v4(ip);
        if let Some(class) = forbidden_v4(v4) {
            return Some(format!("ISATAP, carrying {v4} ({class})"));
        }
    }
    None
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "guard_iana_tests.rs"]
mod iana_tests;
