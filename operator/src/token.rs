//! Minting a JWT with a policy's Active signing key: what `mailagent-token` does, as a library so
//! tests verify its tokens with the workload's own verifier.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailagent_crds::authpolicy::JwtAlgorithm;
use mailagent_crds::{AuthPolicySpec, Scope};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};

use crate::controller::authpolicy::material::{Chain, SignerState};

/// What the caller asks for.
#[derive(Clone, Debug)]
pub struct Request {
    pub subject: String,
    pub audience: String,
    /// `None`: 15 minutes, or the policy's maximum if shorter.
    pub ttl: Option<Duration>,
    pub scopes: Vec<Scope>,
    /// Seconds since the epoch.
    pub now: i64,
}

/// The default lifetime when none is asked for.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// Mints a token, refusing (with a sentence) anything the policy does not allow.
pub fn mint(spec: &AuthPolicySpec, state: &SignerState, request: &Request) -> Result<String, String> {
    let jwt = spec.jwt.as_ref().ok_or("the policy has no jwt settings: it accepts no tokens")?;
    let max = Duration::from(jwt.max_token_lifetime);
    let ttl = match request.ttl {
        Some(ttl) if ttl > max => {
            return Err(format!(
                "--ttl {}s is longer than the policy's jwt.maxTokenLifetime ({}s)",
                ttl.as_secs(),
                max.as_secs()
            ));
        }
        Some(ttl) if ttl.is_zero() => return Err("--ttl must be positive".into()),
        Some(ttl) => ttl,
        None => DEFAULT_TTL.min(max),
    };
    if !jwt.audiences.contains(&request.audience) {
        return Err(format!(
            "--aud {:?} is not one of the policy's audiences: {}",
            request.audience,
            jwt.audiences.join(", ")
        ));
    }
    if request.scopes.is_empty() {
        return Err("give at least one --scope".into());
    }
    if let Some(scope) = request.scopes.iter().find(|s| !spec.scopes.contains(s)) {
        return Err(format!("--scope {scope} is beyond the policy's scopes"));
    }
    let key = state.active(&Chain::jwt()).ok_or("the policy has no Active JWT key yet")?;
    let alg = key.alg.ok_or("the Active key has no algorithm")?;
    let secret = key.secret_bytes().ok_or("the Active key's material is missing")?;
    let typ = jwt.required_typ.clone().unwrap_or_else(|| "at+jwt".into());
    let header = serde_json::json!({"alg": alg.as_str(), "typ": typ, "kid": key.kid});
    let mut claims = serde_json::json!({
        "sub": request.subject,
        "aud": request.audience,
        "iat": request.now,
        "exp": request.now + ttl.as_secs() as i64,
        "scope": request.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
    });
    if let Some(issuer) = &jwt.issuer {
        claims["iss"] = issuer.clone().into();
    }
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = sign(alg, &secret, signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

fn sign(alg: JwtAlgorithm, secret: &[u8], message: &[u8]) -> Result<Vec<u8>, String> {
    use ring::hmac;
    let hmac_with = |algorithm| hmac::sign(&hmac::Key::new(algorithm, secret), message).as_ref().to_vec();
    Ok(match alg {
        JwtAlgorithm::HS256 => hmac_with(hmac::HMAC_SHA256),
        JwtAlgorithm::HS384 => hmac_with(hmac::HMAC_SHA384),
        JwtAlgorithm::HS512 => hmac_with(hmac::HMAC_SHA512),
        JwtAlgorithm::ES256 => {
            let rng = SystemRandom::new();
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, secret, &rng)
                .map_err(|_| "the ES256 private key does not parse")?;
            pair.sign(&rng, message).map_err(|_| "ES256 signing failed")?.as_ref().to_vec()
        }
        JwtAlgorithm::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8(secret).map_err(|_| "the Ed25519 private key does not parse")?;
            pair.sign(message).as_ref().to_vec()
        }
        JwtAlgorithm::RS256 => return Err("RS256 keys are not minted by the operator".into()),
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::controller::authpolicy::plan::{Inputs, Step, chains, execute};

    fn setup(yaml: &str) -> (AuthPolicySpec, SignerState) {
        let spec: AuthPolicySpec = serde_yaml::from_str(yaml).unwrap();
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let empty = SignerState::default();
        let state =
            execute(&Inputs { spec: &spec, state: &empty, now: &now, rotate_nonce: None }, &Step::Mint(chains(&spec)))
                .unwrap();
        (spec, state)
    }

    fn request(ttl: Option<u64>, scopes: &[Scope]) -> Request {
        Request {
            subject: "ops".into(),
            audience: "mailagent".into(),
            ttl: ttl.map(Duration::from_secs),
            scopes: scopes.to_vec(),
            now: 1_000,
        }
    }

    #[test]
    fn refuses_more_than_the_policy_allows() {
        let (spec, state) =
            setup("mode: jwt\nscopes: [mail:scan]\njwt: {audiences: [mailagent], maxTokenLifetime: 30m}");
        let err = mint(&spec, &state, &request(Some(3600), &[Scope::MailScan])).unwrap_err();
        assert!(err.contains("maxTokenLifetime"), "{err}");
        let err = mint(&spec, &state, &request(None, &[Scope::UnsubscribeExecute])).unwrap_err();
        assert!(err.contains("beyond the policy's scopes"), "{err}");
        let mut other = request(None, &[Scope::MailScan]);
        other.audience = "elsewhere".into();
        assert!(mint(&spec, &state, &other).unwrap_err().contains("audiences"));
    }

    #[test]
    fn a_default_token_lives_fifteen_minutes_and_names_the_active_kid() {
        for alg in ["HS256", "ES256", "EdDSA"] {
            let (spec, state) = setup(&format!("mode: jwt\njwt: {{audiences: [mailagent], algorithms: [{alg}]}}"));
            let token = mint(&spec, &state, &request(None, &[Scope::MailScan])).unwrap();
            let [header, claims, _]: [&str; 3] = token.split('.').collect::<Vec<_>>().try_into().unwrap();
            let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
            let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
            assert_eq!(header["kid"], state.active(&Chain::jwt()).unwrap().kid.as_str());
            assert_eq!(header["alg"], alg);
            assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
        }
    }
}
