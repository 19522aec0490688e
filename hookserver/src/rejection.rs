//! Every early answer hookserver gives, as one type that knows its status and message.
//!
//! Bodies are short plain text that tells the sender what to fix, and never carry a
//! secret, an expected MAC or a stack trace.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use std::{borrow::Cow, fmt};

/// Why a delivery was answered before (or instead of) reaching a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// 403: the client address is not in GitHub's hook ranges.
    ForbiddenSource,
    /// 400: `X-Forwarded-For` from a trusted proxy does not hold an IP address.
    BadForwardedFor,
    /// 503: GitHub's `/meta` could not be fetched and no usable list is cached.
    GithubUnreachable,
    /// 503: GitHub rate-limits us until the given instant (an HTTP date).
    GithubRateLimited {
        /// When GitHub may be asked again, as an HTTP date.
        until: String,
    },
    /// 500: source-IP checking is on but the server does not provide peer addresses.
    NoPeerAddress,
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// 400: the body could not be read.
    BodyUnreadable,
    /// 408: the body did not arrive within the body timeout.
    BodyTimeout,
    /// 400: no signature header the configuration accepts.
    MissingSignature,
    /// 400: the signature is malformed or matches no secret.
    WrongSignature,
    /// 400: a required header is absent or empty.
    MissingHeader(&'static str),
    /// 400: a header holds something other than visible ASCII.
    InvalidHeader(&'static str),
    /// 415: the content type is neither JSON nor a form.
    UnsupportedContentType,
    /// 400: a form delivery without its `payload` field, or with more than one.
    FormPayloadField,
    /// 400: the payload is not a JSON object.
    InvalidJson(String),
    /// 400: the payload is JSON, but not of the shape the handler asked for.
    PayloadMismatch(String),
    /// 500: the handler panicked.
    HandlerPanicked,
    /// 503: the handler ran past the handler timeout and was stopped.
    HandlerTimedOut,
}

impl Rejection {
    /// The HTTP status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::ForbiddenSource => StatusCode::FORBIDDEN,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::GithubUnreachable | Self::GithubRateLimited { .. } | Self::HandlerTimedOut => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::NoPeerAddress | Self::HandlerPanicked => StatusCode::INTERNAL_SERVER_ERROR,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BadForwardedFor
            | Self::BodyUnreadable
            | Self::MissingSignature
            | Self::WrongSignature
            | Self::MissingHeader(_)
            | Self::InvalidHeader(_)
            | Self::FormPayloadField
            | Self::InvalidJson(_)
            | Self::PayloadMismatch(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The plain-text message sent as the body.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Self::ForbiddenSource => "Requests must originate from GitHub".into(),
            Self::BadForwardedFor => "Invalid X-Forwarded-For header".into(),
            Self::GithubUnreachable => "Error reaching GitHub".into(),
            Self::GithubRateLimited { until } => {
                format!("Rate limited from GitHub until {until}").into()
            }
            Self::NoPeerAddress => "Server misconfigured: client address unavailable".into(),
            Self::PayloadTooLarge { limit } => {
                format!("Payload too large: the limit is {limit} bytes").into()
            }
            Self::BodyUnreadable => "Could not read the request body".into(),
            Self::BodyTimeout => "Request body not received in time".into(),
            Self::MissingSignature => "Missing signature".into(),
            Self::WrongSignature => "Wrong signature".into(),
            Self::MissingHeader(name) => format!("Missing header: {name}").into(),
            Self::InvalidHeader(name) => format!("Invalid header: {name}").into(),
            Self::UnsupportedContentType => "Unsupported Content-Type: expected \
                 application/json or application/x-www-form-urlencoded"
                .into(),
            Self::FormPayloadField => "Form body must carry exactly one payload field".into(),
            Self::InvalidJson(why) => format!("Invalid JSON payload: {why}").into(),
            Self::PayloadMismatch(why) => format!("Payload does not match: {why}").into(),
            Self::HandlerPanicked => "Internal server error".into(),
            Self::HandlerTimedOut => "Hook handler timed out".into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "{self}");
        } else {
            tracing::debug!(status = status.as_u16(), "{self}");
        }
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.message().into_owned(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flask_hookserver_messages_and_statuses() {
        let cases = [
            (
                Rejection::ForbiddenSource,
                403,
                "Requests must originate from GitHub",
            ),
            (Rejection::GithubUnreachable, 503, "Error reaching GitHub"),
            (
                Rejection::GithubRateLimited {
                    until: "Tue, 27 Oct 2015 07:04:38 GMT".into(),
                },
                503,
                "Rate limited from GitHub until Tue, 27 Oct 2015 07:04:38 GMT",
            ),
            (Rejection::MissingSignature, 400, "Missing signature"),
            (Rejection::WrongSignature, 400, "Wrong signature"),
            (
                Rejection::MissingHeader("X-GitHub-Event"),
                400,
                "Missing header: X-GitHub-Event",
            ),
            (
                Rejection::PayloadTooLarge { limit: 10 },
                413,
                "Payload too large: the limit is 10 bytes",
            ),
            (
                Rejection::UnsupportedContentType,
                415,
                "Unsupported Content-Type: expected application/json or application/x-www-form-urlencoded",
            ),
            (Rejection::HandlerPanicked, 500, "Internal server error"),
        ];
        for (rejection, status, message) in cases {
            assert_eq!(rejection.status().as_u16(), status, "{rejection:?}");
            assert_eq!(rejection.message(), message);
            assert_eq!(rejection.to_string(), message);
        }
    }
}
