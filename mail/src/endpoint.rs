//! Configured endpoints (the Gmail and Calendar API bases, the OAuth token endpoint, an issuer
//! and its JWKS): the one rule for which URLs may be used, and the one TLS client configuration
//! the outbound clients share.
//!
//! The rule reads the parsed URL, never a string prefix: `http://localhost:1@evil.example/` has
//! the host `evil.example` (`localhost:1` is its user and password) and is refused.

use std::sync::Arc;

use url::{Host, Url};

/// Why a configured endpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("is not an absolute URL: {0}")]
    Unparsable(String),
    #[error("must be https:// (http only on loopback)")]
    NotHttps,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("must not have a fragment")]
    Fragment,
}

/// Checks a configured endpoint: `https://` anywhere, plain `http://` only when the parsed host
/// is a loopback address or `localhost` (tests and emulators); never credentials or a fragment.
pub fn check(raw: &str) -> Result<Url, EndpointError> {
    let url = Url::parse(raw.trim()).map_err(|e| EndpointError::Unparsable(e.to_string()))?;
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if url.host().as_ref().is_some_and(is_loopback) => {}
        _ => return Err(EndpointError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::Credentials);
    }
    if url.fragment().is_some() {
        return Err(EndpointError::Fragment);
    }
    Ok(url)
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    }
}

/// The TLS configuration of every outbound HTTPS client: rustls on ring with the webpki roots,
/// given to each client explicitly, so no library code installs a process-wide crypto provider
/// (the binary does that once, in `main`).
pub fn tls_client_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_when_the_parsed_host_is_loopback() {
        for ok in [
            "https://gmail.googleapis.com/",
            "https://issuer.example/realms/x",
            "http://127.0.0.1:4000/",
            "http://127.0.0.2/",
            "http://[::1]:8080/x",
            "http://localhost:9/",
            "http://LOCALHOST/",
        ] {
            assert!(check(ok).is_ok(), "{ok} was refused");
        }
        // Regression: a string-prefix check accepted the first one; its host is evil.example.
        for bad in [
            "http://localhost:1@evil.example/",
            "http://127.0.0.1:80@evil.example/",
            "http://localhost.evil.example/",
            "http://[::1]@evil.example/",
            "http://evil.example/",
            "ftp://127.0.0.1/",
            "https://user:pw@issuer.example/",
            "https://issuer.example/#x",
            "localhost:4000",
        ] {
            assert!(check(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(check("http://localhost:1@evil.example/"), Err(EndpointError::NotHttps));
    }

    #[test]
    fn the_tls_configuration_needs_no_process_provider() {
        // Building it must not depend on (or install) a process-wide default.
        let config = tls_client_config();
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        assert!(!config.crypto_provider().cipher_suites.is_empty());
    }
}
