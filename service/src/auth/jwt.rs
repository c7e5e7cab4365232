//! Bearer JWT checks shared by the keyring verifier and the OAuth resource server.
//!
//! `jsonwebtoken`'s defaults are lax (no `aud` required without an audience, `nbf` unchecked,
//! 60 s leeway, `crit`/`jku` ignored, no size bound), so every one of those is set here and the
//! header is inspected before the library sees the token.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mailagent_crds::Scope;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{AuthFailure, Method, Principal};

/// Longest compact token accepted (the Authorization header is capped a little above this).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
const MAX_KID_BYTES: usize = 128;
/// Header parameters that would make us fetch or trust keys named by the token.
const FORBIDDEN_HEADERS: [&str; 5] = ["jku", "x5u", "jwk", "x5c", "crit"];

/// The token header as the verifier needs it, read before any signature check.
#[derive(Debug)]
pub struct UnverifiedHeader {
    pub kid: Option<String>,
    pub alg: String,
    pub typ: Option<String>,
}

/// Parses and vets the header: three segments, JSON object, no key-fetching parameters, no
/// `crit` (we understand no extension), an acceptable `typ`, a sane `kid`.
pub fn inspect(token: &str) -> Result<UnverifiedHeader, AuthFailure> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthFailure::TooLarge);
    }
    let mut segments = token.split('.');
    let (Some(header), Some(_), Some(signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err(AuthFailure::Malformed);
    };
    if signature.is_empty() {
        return Err(AuthFailure::BadSignature);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).map_err(|_| AuthFailure::Malformed)?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| AuthFailure::Malformed)?;
    if FORBIDDEN_HEADERS.iter().any(|name| header.contains_key(*name)) {
        return Err(AuthFailure::ForbiddenHeader);
    }
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(typ))
            if ["jwt", "at+jwt", "application/at+jwt"].contains(&typ.to_ascii_lowercase().as_str()) =>
        {
            Some(typ.clone())
        }
        Some(_) => return Err(AuthFailure::WrongType),
    };
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        _ => return Err(AuthFailure::AlgorithmNotAllowed),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid))
            if !kid.is_empty() && kid.len() <= MAX_KID_BYTES && kid.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Some(kid.clone())
        }
        Some(_) => return Err(AuthFailure::UnknownKid),
    };
    Ok(UnverifiedHeader { kid, alg, typ })
}

/// Whether the header carries the `typ` a policy requires (RFC 8725 §3.11 explicit typing);
/// `application/` may be left off, as RFC 7515 §4.1.9 allows.
pub fn typ_matches(header: &UnverifiedHeader, required: Option<&str>) -> bool {
    let Some(required) = required else { return true };
    let bare = |t: &str| t.to_ascii_lowercase().trim_start_matches("application/").to_owned();
    header.typ.as_deref().is_some_and(|typ| bare(typ) == bare(required))
}

/// What a token must satisfy besides its signature.
#[derive(Clone, Debug)]
pub struct ClaimRules {
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub leeway: Duration,
    pub max_lifetime: Option<Duration>,
    pub method: Method,
}

#[derive(Deserialize)]
struct Claims {
    // Optional here so a missing `exp` reaches jsonwebtoken's required-claim check (and its reason).
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<ScopeClaim>,
    #[serde(default)]
    scp: Option<ScopeClaim>,
}

/// A scope claim as issuers write it: RFC 8693 and RFC 9068 say `scope` is one space-separated
/// string, but `scp` is a string at some issuers (Microsoft Entra) and an array at others (Okta),
/// and some write `scope` as an array too. Every shape is read the same way, so a token's
/// scopes do not depend on which issuer minted it.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    Text(String),
    List(Vec<String>),
}

impl ScopeClaim {
    fn scopes(&self) -> Vec<Scope> {
        match self {
            ScopeClaim::Text(text) => mailagent_crds::scope::parse_scope_claim(text),
            ScopeClaim::List(names) => {
                names.iter().flat_map(|name| mailagent_crds::scope::parse_scope_claim(name)).collect()
            }
        }
    }
}

/// A verified token: who, and from when (`nbf`) it is valid.
#[derive(Clone, Debug)]
pub struct Verified {
    pub principal: Principal,
    pub not_before: Option<i64>,
}

/// Verifies signature and claims with the key's own algorithm (the token's `alg` must equal it).
pub fn verify(
    token: &str,
    header: &UnverifiedHeader,
    kid: &str,
    alg: Algorithm,
    key: &DecodingKey,
    rules: &ClaimRules,
) -> Result<Verified, AuthFailure> {
    if header.alg.parse::<Algorithm>().ok() != Some(alg) {
        return Err(AuthFailure::AlgorithmNotAllowed);
    }
    let mut validation = Validation::new(alg);
    validation.leeway = rules.leeway.as_secs();
    validation.validate_nbf = true;
    validation.validate_exp = true;
    let mut required = vec!["exp"];
    if let Some(issuer) = &rules.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    if rules.audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&rules.audiences);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| failure_of(e.kind()))?;
    let claims = data.claims;
    let exp = claims.exp.ok_or(AuthFailure::MissingClaim)?;
    if let (Some(max), Some(iat)) = (rules.max_lifetime, claims.iat)
        && exp.saturating_sub(iat) > max.as_secs() as i64
    {
        return Err(AuthFailure::LifetimeTooLong);
    }
    let scopes: BTreeSet<Scope> =
        [&claims.scope, &claims.scp].into_iter().flatten().flat_map(ScopeClaim::scopes).collect();
    let name = claims.sub.or(claims.client_id).unwrap_or_else(|| format!("kid:{kid}"));
    Ok(Verified {
        principal: Principal { name, kid: kid.to_owned(), method: rules.method, scopes, expires_at: Some(exp) },
        not_before: claims.nbf,
    })
}

fn failure_of(kind: &ErrorKind) -> AuthFailure {
    match kind {
        ErrorKind::ExpiredSignature => AuthFailure::Expired,
        ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
        ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
        ErrorKind::InvalidIssuer => AuthFailure::WrongIssuer,
        ErrorKind::MissingRequiredClaim(_) => AuthFailure::MissingClaim,
        ErrorKind::InvalidSignature => AuthFailure::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::InvalidKeyFormat => {
            AuthFailure::AlgorithmNotAllowed
        }
        _ => AuthFailure::Malformed,
    }
}
