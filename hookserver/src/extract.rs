//! What a handler may ask for: each argument type implements [`FromDelivery`].
//!
//! Extraction is synchronous: by the time a handler runs, the body has been read,
//! verified and checked, so every extractor works on bytes already in memory.

use crate::{delivery::Delivery, rejection::Rejection};
use axum::response::IntoResponse;
use bytes::Bytes;
use http::HeaderMap;
use serde::de::DeserializeOwned;
use std::ops::{Deref, DerefMut};

/// A type a handler can take as an argument, built from the delivery and the
/// registry's state.
///
/// Implement it for your own types to share extraction logic between handlers:
///
/// ```
/// use hookserver::{Delivery, FromDelivery, Rejection};
///
/// /// The repository's full name, for events that have one.
/// struct RepoName(String);
///
/// impl<S> FromDelivery<S> for RepoName {
///     type Rejection = Rejection;
///     fn from_delivery(delivery: &Delivery, _state: &S) -> Result<Self, Rejection> {
///         #[derive(serde::Deserialize)]
///         struct Repo { full_name: String }
///         #[derive(serde::Deserialize)]
///         struct Event { repository: Repo }
///         let event: Event = serde_json::from_slice(delivery.payload())
///             .map_err(|e| Rejection::PayloadMismatch(e.to_string()))?;
///         Ok(RepoName(event.repository.full_name))
///     }
/// }
///
/// let hooks = hookserver::Hooks::new(hookserver::Config::new().secret("s"))
///     .on("push", |RepoName(name): RepoName| async move { format!("push to {name}") });
/// # drop(hooks);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be taken by a hook handler",
    label = "not a hook handler argument",
    note = "handler arguments implement `hookserver::FromDelivery`: `serde_json::Value`, \
            `Payload<T>`, `Delivery`, `State<S>`, `bytes::Bytes`, `http::HeaderMap`, \
            or your own type"
)]
pub trait FromDelivery<S>: Sized {
    /// The answer when extraction fails; the handler is not called.
    type Rejection: IntoResponse;

    /// `true` when extraction fails with `400` unless the payload is one valid JSON
    /// object. A handler with such an argument lets hookserver skip its own
    /// validation scan, so the payload is parsed once, not twice. Leave it `false`
    /// unless that holds.
    const VALIDATES_PAYLOAD: bool = false;

    /// Builds the argument.
    fn from_delivery(delivery: &Delivery, state: &S) -> Result<Self, Self::Rejection>;
}

/// The whole payload as a `serde_json::Value` (always an object).
impl<S> FromDelivery<S> for serde_json::Value {
    type Rejection = Rejection;

    const VALIDATES_PAYLOAD: bool = true;

    fn from_delivery(delivery: &Delivery, _: &S) -> Result<Self, Rejection> {
        match serde_json::from_slice::<serde_json::Value>(delivery.payload()) {
            Ok(value) if value.is_object() => Ok(value),
            // Not an object: the scan says why, in the words every handler gets.
            Ok(_) => Err(delivery
                .payload_rejection(|| Rejection::InvalidJson("expected a JSON object".into()))),
            // Valid JSON that a `Value` cannot hold (a number beyond f64, say).
            Err(e) => Err(delivery.payload_rejection(|| Rejection::InvalidJson(e.to_string()))),
        }
    }
}

/// The payload deserialized straight from its bytes into `T`.
///
/// Declare only the fields you use: the rest of the payload is skipped, not built,
/// which is much faster than a `serde_json::Value` for large events. A payload that
/// does not fit `T` is answered with `400` and a message naming the field:
///
/// ```
/// use hookserver::{hook, Payload};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Push { r#ref: String, commits: Vec<serde::de::IgnoredAny> }
///
/// #[hook("push")]
/// async fn on_push(Payload(push): Payload<Push>) -> String {
///     format!("{}: {} commits", push.r#ref, push.commits.len())
/// }
///
/// let hooks = hookserver::Hooks::new(hookserver::Config::new().secret("s")).hook(on_push);
/// # drop(hooks);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Payload<T>(pub T);

impl<T> Deref for Payload<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Payload<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Payload<T> {
    /// The inner value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<S, T: DeserializeOwned> FromDelivery<S> for Payload<T> {
    type Rejection = Rejection;

    const VALIDATES_PAYLOAD: bool = true;

    fn from_delivery(delivery: &Delivery, _: &S) -> Result<Self, Rejection> {
        let payload = delivery.payload();
        let mut de = serde_json::Deserializer::from_slice(payload);
        match serde_path_to_error::deserialize(&mut de) {
            // serde_json builds structs from arrays too, and stops after one value:
            // only one object, and nothing after it, is a payload.
            Ok(value) if de.end().is_ok() && starts_an_object(payload) => Ok(Payload(value)),
            Ok(_) => Err(delivery
                .payload_rejection(|| Rejection::InvalidJson("expected one JSON object".into()))),
            // Broken JSON gets the same answer as for any handler; JSON of another
            // shape names the field that does not fit.
            Err(e) => Err(delivery.payload_rejection(|| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    Rejection::PayloadMismatch(inner.to_string())
                } else {
                    Rejection::PayloadMismatch(format!("{path}: {inner}"))
                }
            })),
        }
    }
}

/// Whether the first byte that is not white space opens an object.
fn starts_an_object(json: &[u8]) -> bool {
    json.trim_ascii_start().starts_with(b"{")
}

impl<S> FromDelivery<S> for Delivery {
    type Rejection = std::convert::Infallible;

    fn from_delivery(delivery: &Delivery, _: &S) -> Result<Self, Self::Rejection> {
        Ok(delivery.clone())
    }
}

/// The payload's JSON text, unparsed.
impl<S> FromDelivery<S> for Bytes {
    type Rejection = std::convert::Infallible;

    fn from_delivery(delivery: &Delivery, _: &S) -> Result<Self, Self::Rejection> {
        Ok(delivery.payload().clone())
    }
}

/// The request headers.
impl<S> FromDelivery<S> for HeaderMap {
    type Rejection = std::convert::Infallible;

    fn from_delivery(delivery: &Delivery, _: &S) -> Result<Self, Self::Rejection> {
        Ok(delivery.headers().clone())
    }
}

/// The registry's application state, given to [`Hooks::with_state`](crate::Hooks::with_state).
///
/// ```
/// use hookserver::{Config, Hooks, State};
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
///
/// #[derive(Clone, Default)]
/// struct App { pushes: Arc<AtomicU64> }
///
/// let config = Config::new().secret("s").validate_ip(false);
/// let hooks = Hooks::with_state(config, App::default()).on("push", |State(app): State<App>| async move {
///     app.pushes.fetch_add(1, Ordering::Relaxed).to_string()
/// });
/// # let _ = hooks.router("/hooks");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<S>(pub S);

impl<S: Clone> FromDelivery<S> for State<S> {
    type Rejection = std::convert::Infallible;

    fn from_delivery(_: &Delivery, state: &S) -> Result<Self, Self::Rejection> {
        Ok(State(state.clone()))
    }
}

impl<S, T: FromDelivery<S>> FromDelivery<S> for Option<T> {
    type Rejection = std::convert::Infallible;

    /// `Some` when `T` can be extracted, `None` otherwise (the handler still runs).
    fn from_delivery(delivery: &Delivery, state: &S) -> Result<Self, Self::Rejection> {
        Ok(T::from_delivery(delivery, state).ok())
    }
}

// The payload is parsed once only if the payload extractors say they validate it
// (and those that accept anything say they do not); checked when the crate builds.
const _: () = {
    assert!(<serde_json::Value as FromDelivery<()>>::VALIDATES_PAYLOAD);
    assert!(<Payload<serde_json::Value> as FromDelivery<()>>::VALIDATES_PAYLOAD);
    assert!(!<Option<serde_json::Value> as FromDelivery<()>>::VALIDATES_PAYLOAD);
    assert!(!<Delivery as FromDelivery<()>>::VALIDATES_PAYLOAD);
    assert!(!<Bytes as FromDelivery<()>>::VALIDATES_PAYLOAD);
};
