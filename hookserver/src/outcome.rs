//! What became of one delivery, in one word: the `outcome` label of
//! `hookserver_deliveries_total`. It is decided once, in `pipeline::deliver`, from
//! who answered (hookserver's checks, the user's code, the journal), the answer's
//! status and its [`Reason`](crate::rejection::Reason), so the metrics and the log
//! line read the same facts.

/// The outcome of one delivery: one per row of the README's error tables (several
/// rows share one where an operator would act the same way on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    /// The handler (or the user's extractor) answered, with anything but a `5xx`.
    Handled,
    /// No handler answers the event: `200 Hook not used`.
    Unhandled,
    /// The journal has it already: `200 Duplicate delivery`, `202 Already queued`.
    Duplicate,
    /// Journaled for the workers: `202 Queued`, `202 Queued again`.
    Queued,
    /// Not `POST`: `405`.
    MethodNotAllowed,
    /// The source-IP check refused it: `403`, or `400 Invalid X-Forwarded-For header`.
    IpDenied,
    /// No allow-list to check against: `503 Error reaching GitHub`, `503 Rate limited
    /// from GitHub until ...`.
    AllowListUnavailable,
    /// IP checking on without peer addresses: `500 Server misconfigured`.
    Misconfigured,
    /// `413`.
    TooLarge,
    /// `408 Request body not received in time`.
    BodyTimeout,
    /// `400 Could not read the request body` (the connection broke mid-body).
    BodyUnreadable,
    /// `503 Server busy`: the buffered-bytes budget stayed full.
    Busy,
    /// `400 Missing signature`.
    MissingSignature,
    /// `400 Wrong signature`, including a signature header sent twice.
    BadSignature,
    /// `400 Missing header: ...` or `400 Invalid header: ...`.
    MissingHeader,
    /// `415`.
    UnsupportedType,
    /// `400`: the form has no single `payload` field, the payload is not one JSON
    /// object, or it does not fit a `Payload<T>`.
    BadPayload,
    /// The handler panicked (`500`), or answered a `5xx` of its own.
    HandlerError,
    /// `503 Hook handler timed out`.
    HandlerTimeout,
    /// `503 Journal unavailable`: nothing acknowledged.
    Unavailable,
    /// `503 Too many pending deliveries`.
    TooManyPending,
}

impl Outcome {
    /// Every outcome, in the order the metrics list them.
    pub(crate) const ALL: [Self; 21] = [
        Self::Handled,
        Self::Unhandled,
        Self::Duplicate,
        Self::Queued,
        Self::MethodNotAllowed,
        Self::IpDenied,
        Self::AllowListUnavailable,
        Self::Misconfigured,
        Self::TooLarge,
        Self::BodyTimeout,
        Self::BodyUnreadable,
        Self::Busy,
        Self::MissingSignature,
        Self::BadSignature,
        Self::MissingHeader,
        Self::UnsupportedType,
        Self::BadPayload,
        Self::HandlerError,
        Self::HandlerTimeout,
        Self::Unavailable,
        Self::TooManyPending,
    ];

    /// The label value, as the README names it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::Unhandled => "unhandled",
            Self::Duplicate => "duplicate",
            Self::Queued => "queued",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::IpDenied => "ip_denied",
            Self::AllowListUnavailable => "allow_list_unavailable",
            Self::Misconfigured => "misconfigured",
            Self::TooLarge => "too_large",
            Self::BodyTimeout => "body_timeout",
            Self::BodyUnreadable => "body_unreadable",
            Self::Busy => "busy",
            Self::MissingSignature => "missing_signature",
            Self::BadSignature => "bad_signature",
            Self::MissingHeader => "missing_header",
            Self::UnsupportedType => "unsupported_type",
            Self::BadPayload => "bad_payload",
            Self::HandlerError => "handler_error",
            Self::HandlerTimeout => "handler_timeout",
            Self::Unavailable => "unavailable",
            Self::TooManyPending => "too_many_pending",
        }
    }

    /// The position in [`ALL`](Self::ALL): the enum's declaration order is the same.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The one decision: a hookserver answer with a reason says what it is; else who
    /// answered does, and for the user's code, its status (a `5xx` is a failure the
    /// journal would retry, whoever wrote it).
    pub(crate) fn decide(answer: Answer, status: u16, reason: Option<Outcome>) -> Self {
        if let Some(outcome) = reason {
            return outcome;
        }
        match answer {
            // Every refusal of hookserver's own carries its reason; one without is
            // the user's (an extractor's own rejection type).
            Answer::Refused | Answer::Handler if status >= 500 => Self::HandlerError,
            Answer::Refused | Answer::Handler => Self::Handled,
            Answer::Unhandled => Self::Unhandled,
            Answer::Queued => Self::Queued,
            Answer::Duplicate => Self::Duplicate,
        }
    }
}

/// Who answered a delivery, as the pipeline knows it (an answer without a
/// [`Reason`](crate::rejection::Reason) says no more about itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A check before the handler refused it (its `Reason` says which).
    Refused,
    /// The handler, or its extractors, in the request.
    Handler,
    /// No handler answers the event.
    Unhandled,
    /// The journal took it for the workers.
    Queued,
    /// The journal had it already.
    Duplicate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_declaration_order_and_names_are_unique() {
        for (i, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(outcome.index(), i, "{outcome:?}");
        }
        let mut names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Outcome::ALL.len());
    }

    #[test]
    fn a_reason_wins_and_the_users_5xx_is_an_error() {
        let timeout = Some(Outcome::HandlerTimeout);
        assert_eq!(
            Outcome::decide(Answer::Handler, 503, timeout),
            Outcome::HandlerTimeout
        );
        assert_eq!(
            Outcome::decide(Answer::Handler, 500, None),
            Outcome::HandlerError
        );
        assert_eq!(
            Outcome::decide(Answer::Handler, 404, None),
            Outcome::Handled
        );
        assert_eq!(
            Outcome::decide(Answer::Refused, 422, None),
            Outcome::Handled
        );
        assert_eq!(Outcome::decide(Answer::Queued, 202, None), Outcome::Queued);
        assert_eq!(
            Outcome::decide(Answer::Duplicate, 200, None),
            Outcome::Duplicate
        );
        assert_eq!(
            Outcome::decide(Answer::Unhandled, 200, None),
            Outcome::Unhandled
        );
    }
}
