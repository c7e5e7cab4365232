//! The OpenAPI document, generated from the domain types (utoipa) and the capability table, so
//! it lists exactly the routes [`super::rest::routes`] serves, with the security the mode asks for.

use mailagent_crds::contract::AuthMode;
use mailagent_mail::api as mail;
use utoipa::OpenApi;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, Ref, Required, ResponseBuilder};

use crate::auth::EffectiveMode;
use crate::capability::Capability;
use crate::error::{ApiError, ErrorCode};
use crate::security;

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
        ApiError,
        ErrorCode,
    ))
)]
struct Components;

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
    let schemes = security::schemes(EffectiveMode::Local(mode));
    if let Some(components) = doc.components.as_mut() {
        for scheme in schemes {
            components.add_security_scheme(scheme.name(), scheme.openapi());
        }
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
            .response(
                "502",
                error("The provider refused for good: `reconsent_required` (the mailbox owner must grant consent again) or `provider_rejected`; retrying will not help").build(),
            )
            .response("503", error("The mail or calendar provider is unavailable (`provider_unavailable`); retry later").build());
        for scheme in schemes {
            operation = operation.security(SecurityRequirement::new(scheme.name(), [capability.scope().as_str()]));
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
        assert_eq!(documented, ["200", "400", "401", "403", "404", "409", "413", "415", "429", "502", "503"]);
        assert_eq!(responses["404"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error");
        assert!(responses["429"]["headers"].get("Retry-After").is_some());
        // The documented error body is the one the handlers render (one type, no copy).
        let error = &schemas["Error"];
        assert_eq!(error["required"], serde_json::json!(["error"]));
        let codes = &schemas["ErrorCode"]["enum"];
        for code in ["reconsent_required", "provider_unavailable", "insufficient_scope", "not_found"] {
            assert!(codes.as_array().unwrap().iter().any(|c| c == code), "{code} in {codes}");
        }
    }
}
