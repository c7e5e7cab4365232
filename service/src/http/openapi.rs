//! The OpenAPI document, generated from the domain types (utoipa) and the capability table, so
//! it lists exactly the routes [`super::rest::routes`] serves, with the security the mode asks for.

use mailagent_crds::contract::AuthMode;
use mailagent_mail::api as mail;
use utoipa::OpenApi;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, Required, ResponseBuilder};

use crate::capability::Capability;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mailagent",
        description = "Mail assistant REST API: one route per capability, each guarded by one scope."
    ),
    components(schemas(
        mail::ScanRequest,
        mail::ScanResponse,
        mail::CandidatesRequest,
        mail::CandidatesResponse,
        mail::UnsubscribeRequest,
        mail::UnsubscribeResponse,
        mail::DigestRequest,
        mail::DigestResponse,
        mail::AvailabilityRequest,
        mail::AvailabilityResponse,
        mail::MeetingIntervalsRequest,
        mail::MeetingIntervalsResponse,
        Error,
    ))
)]
struct Components;

/// The body of every error response: a stable machine-readable `error` code, and for some a
/// human-readable `message` or the missing `scope`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only its schema is used: handlers build the same shape with `json!`.
struct Error {
    /// `unauthorized`, `insufficient_scope`, `mutations_disabled`, `rate_limited`,
    /// `invalid_arguments`, `invalid_input`, `invalid_json`, `unsupported_media_type`,
    /// `payload_too_large`, `not_found`, `refused` or `provider_unavailable`.
    error: String,
    /// What went wrong, in words (never secrets or mail content).
    message: Option<String>,
    /// The scope the caller lacks (`insufficient_scope` only).
    scope: Option<String>,
}

fn schema_names(capability: Capability) -> (&'static str, &'static str) {
    match capability {
        Capability::Scan => ("ScanRequest", "ScanResponse"),
        Capability::UnsubscribeCandidates => ("CandidatesRequest", "CandidatesResponse"),
        Capability::Unsubscribe => ("UnsubscribeRequest", "UnsubscribeResponse"),
        Capability::Digest => ("DigestRequest", "DigestResponse"),
        Capability::Availability => ("AvailabilityRequest", "AvailabilityResponse"),
        Capability::MeetingIntervals => ("MeetingIntervalsRequest", "MeetingIntervalsResponse"),
    }
}

/// Builds the document for `mode`.
pub fn document(mode: AuthMode) -> utoipa::openapi::OpenApi {
    let mut doc = Components::openapi();
    let schemes: &[&str] = match mode {
        AuthMode::ApiKey => &["apiKey"],
        AuthMode::Jwt => &["bearer"],
        AuthMode::Hybrid => &["apiKey", "bearer"],
    };
    if let Some(components) = doc.components.as_mut() {
        components.add_security_scheme("apiKey", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
    for capability in Capability::ALL {
        let (request, response) = schema_names(capability);
        let json = |name: &str| Content::new(Some(Ref::from_schema_name(name)));
        let error = |text: &str| ResponseBuilder::new().description(text).content("application/json", json("Error"));
        let mut operation = OperationBuilder::new()
            .operation_id(Some(capability.name()))
            .summary(Some(capability.title()))
            .description(Some(format!("{} Requires scope `{}`.", capability.description(), capability.scope())))
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("application/json", json(request))
                    .build(),
            ))
            .response(
                "200",
                ResponseBuilder::new().description("Result").content("application/json", json(response)).build(),
            )
            .response("400", error("Invalid arguments, or a body that is not JSON").build())
            .response("401", error("Not authenticated (reason in X-Auth-Failure)").build())
            .response("403", error("Missing scope, or mutations disabled").build())
            .response("404", error("What the arguments name does not exist (e.g. an unknown candidate)").build())
            .response("409", error("Refused by the domain (e.g. the candidate has no safe method)").build())
            .response("413", error("Body over the size limit").build())
            .response("415", error("Body not sent as application/json").build())
            .response(
                "429",
                error("Rate limited")
                    .header(
                        "Retry-After",
                        Header::builder()
                            .schema(Some(Object::with_type(Type::Integer)))
                            .description(Some("Seconds until a request may succeed"))
                            .build(),
                    )
                    .build(),
            )
            .response("503", error("The mail or calendar provider is unavailable; retry later").build());
        for scheme in schemes {
            operation = operation.security(SecurityRequirement::new(*scheme, [capability.scope().as_str()]));
        }
        doc.paths.add_path_operation(capability.path(), vec![HttpMethod::Post], operation.build());
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_has_a_route_with_its_scope_and_resolvable_schemas() {
        let doc = serde_json::to_value(document(AuthMode::Hybrid)).unwrap();
        let schemas = &doc["components"]["schemas"];
        for capability in Capability::ALL {
            let op = &doc["paths"][capability.path()]["post"];
            assert_eq!(op["operationId"], capability.name());
            assert_eq!(op["security"].as_array().unwrap().len(), 2, "hybrid is two alternatives");
            let (request, response) = schema_names(capability);
            assert!(schemas.get(request).is_some() && schemas.get(response).is_some(), "{request}/{response}");
        }
        assert!(schemas.get("MessageClass").is_some(), "nested schemas are collected");
        // Regression (schemathesis): the statuses the routes answer with are all documented.
        let responses = doc["paths"][Capability::Unsubscribe.path()]["post"]["responses"].as_object().unwrap();
        let documented: Vec<&str> = responses.keys().map(String::as_str).collect();
        assert_eq!(documented, ["200", "400", "401", "403", "404", "409", "413", "415", "429", "503"]);
        assert_eq!(responses["404"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error");
        assert!(responses["429"]["headers"].get("Retry-After").is_some());
    }
}
