//! What a handler may ask for: each argument type implements [`FromDelivery`].
//!
//! Extraction is synchronous: by the time a handler runs, the body has been read,
//! verified and checked, so every extractor works on bytes already in memory.
//! Whether the payload is valid JSON is not an extractor's business: the delivery
//! settles it once (see `delivery`), so no extractor, ours or a user's, can let a
//! broken payload reach a handler.

use crate::{delivery::Delivery, rejection::PayloadRejection};
use axum::{
    extract::{FromRef, State},
    response::IntoResponse,
};
use bytes::Bytes;
use http::HeaderMap;
use serde::de::DeserializeOwned;
use std::ops::{Deref, DerefMut};

/// A type a handler can take as an argument, built from the delivery and the
/// registry's state.
///
/// Implement it for your own types to share extraction logic between handlers;
/// [`Delivery::json`] parses the payload into any `Deserialize` type, with the same
/// answers as [`Payload<T>`]:
///
/// ```
/// use hookserver::{Delivery, FromDelivery, PayloadRejection};
///
/// /// The repository's full name, for events that have one.
/// struct RepoName(String);
///
/// impl<S> FromDelivery<S> for RepoName {
///     type Rejection = PayloadRejection;
///     fn from_delivery(delivery: &Delivery, _state: &S) -> Result<Self, PayloadRejection> {
///         #[derive(serde::Deserialize)]
///         struct Repo { full_name: String }
///         #[derive(serde::Deserialize)]
///         struct Event { repository: Repo }
///         Ok(RepoName(delivery.json::<Event>()?.repository.full_name))
///     }
/// }
///
/// let hooks = hookserver::Hooks::new(hookserver::Config::new().secret("s"))
///     .on("push", |RepoName(name): RepoName| async move { format!("push to {name}") });
/// # drop(hooks);
/// ```
///
/// Whatever an extractor does, a payload that is not one JSON object is answered
/// `400 Invalid JSON payload` before the handler runs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be taken by a hook handler",
    label = "not a hook handler argument",
    note = "handler arguments implement `hookserver::FromDelivery`: `serde_json::Value`, \
            `Payload<T>`, `Delivery`, `State<T>` (with `T: FromRef<S>`), `bytes::Bytes`, \
            `http::HeaderMap`, `Option<T>`, or your own type"
)]
pub trait FromDelivery<S>: Sized {
    /// The answer when extraction fails; the handler is not called.
    type Rejection: IntoResponse;

    /// Builds the argument.
    fn from_delivery(delivery: &Delivery, state: &S) -> Result<Self, Self::Rejection>;
}

/// The whole payload as a `serde_json::Value` (always an object).
impl<S> FromDelivery<S> for serde_json::Value {
    type Rejection = PayloadRejection;

    fn from_delivery(delivery: &Delivery, _: &S) -> Result<Self, PayloadRejection> {
        delivery.value()
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
    type Rejection = PayloadRejection;

    fn from_delivery(delivery: &Delivery, _: &S) -> Result<Self, PayloadRejection> {
        delivery.json().map(Payload)
    }
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

/// The registry's state, or any part of it, as axum does it: `State<T>` takes a
/// `T: FromRef<S>` of the state given to [`Hooks::with_state`](crate::Hooks::with_state).
/// This is axum's own `State`, so one import serves your routes and your hooks.
///
/// ```
/// use hookserver::{Config, FromRef, Hooks, State};
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
///
/// #[derive(Clone, Default)]
/// struct Counters { pushes: Arc<AtomicU64> }
///
/// #[derive(Clone, Default)]
/// struct App { counters: Counters, name: &'static str }
///
/// // axum's `#[derive(FromRef)]` writes this for every field.
/// impl FromRef<App> for Counters {
///     fn from_ref(app: &App) -> Counters { app.counters.clone() }
/// }
///
/// let config = Config::new().secret("s").validate_ip(false);
/// let hooks = Hooks::with_state(config, App::default())
///     // A substate: only the part this handler needs.
///     .on("push", |State(counters): State<Counters>| async move {
///         counters.pushes.fetch_add(1, Ordering::Relaxed).to_string()
///     })
///     // Or the whole state.
///     .on("ping", |State(app): State<App>| async move { app.name });
/// # let _ = hooks.router("/hooks");
/// ```
impl<S, T> FromDelivery<S> for State<T>
where
    T: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    fn from_delivery(_: &Delivery, state: &S) -> Result<Self, Self::Rejection> {
        Ok(State(T::from_ref(state)))
    }
}

impl<S, T: FromDelivery<S>> FromDelivery<S> for Option<T> {
    type Rejection = std::convert::Infallible;

    /// `Some` when `T` can be extracted, `None` otherwise (the handler still runs,
    /// unless the payload is not valid JSON).
    fn from_delivery(delivery: &Delivery, state: &S) -> Result<Self, Self::Rejection> {
        Ok(T::from_delivery(delivery, state).ok())
    }
}
