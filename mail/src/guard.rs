//! The one HTTP client allowed to contact addresses found in mail (RFC 8058 one-click POSTs).
//!
//! Rules, in order: `https` only, port 443, no userinfo; the host may not be a special name
//! (localhost, metadata, cluster-internal, unqualified); every resolved address (or the IP
//! literal itself) must be globally routable, and the connection goes to the checked address
//! (pinned with `resolve`, so a second DNS answer cannot rebind it); no proxy, no cookies, no
//! credentials, no redirects; connect and total time limits and a response size cap. The address
//! rules are a hand-written table over `std::net` because they are a security boundary small
//! enough to read whole; every class is covered by the SSRF matrix test.

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
        if url.port().is_some_and(|port| port != 443) {
            return Err(Refusal("port other than 443 refused".into()));
        }
        let addresses = match url.host() {
            Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
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

/// Why an address may not be contacted, or `None` when it is globally routable.
pub fn forbidden_class(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match () {
        _ if ip.is_unspecified() || a == 0 => "unspecified or this-network",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local (cloud metadata lives here)",
        _ if a == 100 && (64..128).contains(&b) => "carrier-grade NAT",
        _ if a == 198 && (b == 18 || b == 19) => "benchmarking",
        _ if a == 192 && b == 0 && ip.octets()[2] == 0 => "IETF protocol assignments",
        _ if ip.is_documentation() => "documentation",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() || a >= 240 => "reserved or broadcast",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(forbidden_v4(v4).map_or("IPv4-mapped", |_| "IPv4-mapped (to a forbidden IPv4 address)"));
    }
    Some(match () {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_multicast() => "multicast",
        _ if segments[0] & 0xfe00 == 0xfc00 => "unique-local (fc00::/7)",
        _ if segments[0] & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        _ if segments[0] & 0xffc0 == 0xfec0 => "site-local (deprecated)",
        _ if segments[..6] == [0, 0, 0, 0, 0, 0] => "IPv4-compatible",
        _ if segments[0] == 0x64 && segments[1] == 0xff9b => "NAT64 (embeds an IPv4 address)",
        _ if segments[0] == 0x2002 => "6to4 (embeds an IPv4 address)",
        _ if segments[0] == 0x2001 && segments[1] == 0x0db8 => "documentation",
        _ if segments[0] == 0x2001 && segments[1] == 0 => "Teredo",
        _ if segments[0] == 0x0100 && segments[1..4] == [0, 0, 0] => "discard-only",
        _ => return None,
    })
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
