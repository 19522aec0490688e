//! The `#[hook]` attribute of [hookserver](https://docs.rs/hookserver).
//!
//! Do not depend on this crate directly: use it as `hookserver::hook`. The
//! generated code names `::hookserver`, so that crate must be a dependency.
//!
//! The macro is a thin pipeline, one module per step:
//! `attr` (the event keys) → `check` (the function) → `expand` (the code), and
//! `fallback` (the errors plus a stub) when any step fails.

mod attr;
mod check;
mod event_key;
mod expand;
mod fallback;
mod github_events;

use proc_macro::TokenStream;

/// Turns an `async fn` into a webhook handler registered under one or more event
/// keys.
///
/// ```ignore
/// use hookserver::{Config, Delivery, Hooks, hook};
/// use serde_json::Value;
///
/// /// Answers pushes and pings.
/// #[hook("push", "ping")]
/// pub async fn on_push(payload: Value, delivery: Delivery) -> String {
///     format!("{} ref {}", delivery.guid(), payload["ref"])
/// }
///
/// let hooks = Hooks::new(Config::from_env()?).hook(on_push);
/// ```
///
/// # Event keys
///
/// One or more string literals, each used once:
///
/// - `"event"`, e.g. `"push"`: every delivery of that event not claimed by a
///   more specific key;
/// - `"event.action"`, e.g. `"pull_request.opened"`: that event with that
///   `action`;
/// - `"*"`: every delivery no other key matches.
///
/// `event` and `action` are made of lowercase ASCII letters, digits and `_`.
/// Anything else is a compile error on the offending literal.
///
/// # The function
///
/// Any free function whose arguments are hookserver extractors (`Value`,
/// `Payload<T>`, `Delivery`, `State<S>`, `Bytes`, ...) and whose return type
/// implements `IntoResponse`. It may not be generic (no type or lifetime
/// parameters, `where` clause or `impl Trait` argument), take `self`, or be
/// `const`, `unsafe`, `extern` or variadic. A plain `fn` works too: it is
/// called from an async wrapper.
///
/// ```ignore
/// #[hook("pull_request.opened")]
/// fn opened(Payload(pr): Payload<PullRequestEvent>) -> impl IntoResponse {
///     format!("PR #{} opened", pr.number)
/// }
/// ```
///
/// # What it generates
///
/// The function is replaced by a unit struct of the same name and visibility,
/// carrying its doc comments and implementing `hookserver::Hook<S>` for every
/// state `S`. Pass it to `Hooks::hook`. The function itself, with its other
/// attributes, lives inside `Hook::register`, so it can no longer be called
/// directly:
///
/// ```ignore
/// /// Answers pushes and pings.
/// #[allow(non_camel_case_types, missing_docs)]
/// pub struct on_push;
///
/// impl<__S> ::hookserver::Hook<__S> for on_push
/// where
///     __S: ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static,
/// {
///     fn events(&self) -> &'static [&'static str] {
///         &["push", "ping"]
///     }
///
///     #[track_caller]
///     fn register(self, __hooks: ::hookserver::Hooks<__S>) -> ::hookserver::Hooks<__S> {
///         async fn on_push(payload: Value, delivery: Delivery) -> String { /* ... */ }
///         __hooks.on("push", on_push).on("ping", on_push)
///     }
/// }
/// ```
///
/// When the signature is not a valid handler, the error (`Handler` not
/// implemented) points at the function's name. When the attribute or the
/// function is rejected, the errors are reported and the struct is still
/// generated, with no events, so that the rest of the crate compiles.
#[proc_macro_attribute]
pub fn hook(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::hook(args.into(), input.into()).into()
}
