//! The security schemes each door accepts, in one place: the 401 challenge, the OpenAPI
//! document and the agent card are all rendered from [`schemes`], so they cannot disagree with
//! each other or with what [`crate::auth`] checks.

use mailagent_crds::contract::AuthMode;
use serde_json::{Value, json};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};

use crate::auth::{API_KEY_HEADER_NAME, EffectiveMode};

/// One way to present credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// A key in the `X-API-Key` header.
    ApiKey,
    /// A JWT from the keyring or the laptop secret, as `Authorization: Bearer`.
    Bearer,
    /// An OAuth 2.1 access token from the configured issuer (RFC 9728 metadata).
    Oauth,
}

/// The schemes a door in `mode` accepts, in the order the door tries them; several are
/// alternatives (any one suffices).
pub const fn schemes(mode: EffectiveMode) -> &'static [Scheme] {
    match mode {
        EffectiveMode::Local(AuthMode::ApiKey) => &[Scheme::ApiKey],
        EffectiveMode::Local(AuthMode::Jwt) => &[Scheme::Bearer],
        EffectiveMode::Local(AuthMode::Hybrid) => &[Scheme::ApiKey, Scheme::Bearer],
        EffectiveMode::Oauth => &[Scheme::Oauth],
    }
}

impl Scheme {
    /// The name in OpenAPI `securitySchemes` and in the agent card.
    pub const fn name(self) -> &'static str {
        match self {
            Scheme::ApiKey => "apiKey",
            Scheme::Bearer => "bearer",
            Scheme::Oauth => "oauth",
        }
    }

    /// The OpenAPI security scheme.
    pub fn openapi(self) -> SecurityScheme {
        match self {
            Scheme::ApiKey => SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(API_KEY_HEADER_NAME))),
            Scheme::Bearer | Scheme::Oauth => {
                SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build())
            }
        }
    }

    /// The A2A v1.0 agent card's security scheme object.
    pub fn agent_card(self) -> Value {
        match self {
            Scheme::ApiKey => json!({"apiKeySecurityScheme": {
                "location": "header", "name": API_KEY_HEADER_NAME, "description": "API key"
            }}),
            Scheme::Bearer | Scheme::Oauth => json!({"httpAuthSecurityScheme": {
                "scheme": "Bearer", "bearerFormat": "JWT", "description": "JWT with scopes"
            }}),
        }
    }

    /// One `WWW-Authenticate` challenge; `resource_metadata` is the RFC 9728 document URL.
    fn challenge(self, resource_metadata: &str) -> String {
        match self {
            Scheme::ApiKey => format!("ApiKey header=\"{API_KEY_HEADER_NAME}\""),
            Scheme::Bearer => "Bearer".to_owned(),
            Scheme::Oauth => format!("Bearer error=\"invalid_token\", resource_metadata=\"{resource_metadata}\""),
        }
    }
}

/// The `WWW-Authenticate` value of a 401 from a door in `mode`: one challenge per scheme.
pub fn challenge(mode: EffectiveMode, resource_metadata: &str) -> String {
    schemes(mode).iter().map(|s| s.challenge(resource_metadata)).collect::<Vec<_>>().join(", ")
}

/// The RFC 6750 step-up challenge of a 403 for a missing scope, on an OAuth door only.
pub fn scope_challenge(mode: EffectiveMode, scope: mailagent_crds::Scope, resource_metadata: &str) -> Option<String> {
    (mode == EffectiveMode::Oauth).then(|| {
        format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{resource_metadata}\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_declares_the_scheme_names_the_operator_expects() {
        for mode in [AuthMode::ApiKey, AuthMode::Jwt, AuthMode::Hybrid] {
            let names: Vec<&str> = schemes(EffectiveMode::Local(mode)).iter().map(|s| s.name()).collect();
            assert_eq!(names, mode.scheme_names(), "{mode}");
        }
    }

    #[test]
    fn every_mode_challenges_with_exactly_its_schemes() {
        let local = |mode| challenge(EffectiveMode::Local(mode), "");
        assert_eq!(local(AuthMode::ApiKey), "ApiKey header=\"X-API-Key\"");
        assert_eq!(local(AuthMode::Jwt), "Bearer");
        assert_eq!(local(AuthMode::Hybrid), "ApiKey header=\"X-API-Key\", Bearer");
        assert_eq!(
            challenge(EffectiveMode::Oauth, "https://m.example/.well-known/oauth-protected-resource/mcp"),
            "Bearer error=\"invalid_token\", resource_metadata=\"https://m.example/.well-known/oauth-protected-resource/mcp\""
        );
    }
}
