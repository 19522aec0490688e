//! The `#[hook]` attribute of [hookserver](https://docs.rs/hookserver).
//!
//! Do not depend on this crate directly: use it as `hookserver::hook`. The
//! generated code names `::hookserver`, so that crate must be a dependency.
//!
//! The macro is a thin pipeline, one module per step:
//! `attr` (the event keys) → `check` (the function) → `expand` (the code), and
//! `fallback` (the errors plus a stub) when any step fails. `event_key` (the key
//! grammar and the suggestions) and `github_events` (GitHub's events, generated)
//! are copies of hookserver's files of the same names, made by
//! `scripts/gen-github-events.py`: edit them there.
#![doc(test(attr(deny(warnings))))]

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
/// ```no_run
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
/// let app: axum::Router = hooks.router("/hooks");
/// # drop(app);
/// # Ok::<(), hookserver::ConfigError>(())
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
/// `event` is the `X-GitHub-Event` name: lowercase ASCII letters, digits and
/// `_`. `action` is everything after the first `.`, as GitHub sends it in the
/// payload: `"repository_dispatch.release.v2"` is event `repository_dispatch`,
/// action `release.v2`. It may not be empty or `*`, contain control characters
/// or exceed 100 characters. A malformed key is a compile error on the
/// offending literal.
///
/// Each key is also checked against GitHub's published list of webhook events
/// and their actions (from GitHub's webhook schema, the npm package
/// `@octokit/openapi-webhooks`), so that a typo does not compile into a handler
/// that never runs:
///
/// ```compile_fail
/// # use hookserver::hook;
/// #[hook("pull_request.openned")] // error: unknown action `openned` of GitHub event
/// async fn opened() {}            // `pull_request`; did you mean `pull_request.opened`?
/// ```
///
/// An event that has no `action` (`push`, `ping`, ...) takes no action in its
/// key, and `repository_dispatch` takes any action (the sender's `event_type`):
///
/// ```
/// # use hookserver::hook;
/// #[hook("repository_dispatch.on-demand-test", "repository_dispatch.deployTrigger")]
/// async fn dispatched() {}
/// ```
///
/// For an event or action newer than the list, add the flag `unchecked` after
/// the keys. It turns the check off for the whole attribute, here and when the
/// handler is registered (`Hooks::on` logs a warning for unknown keys); the
/// grammar still applies:
///
/// ```
/// # use hookserver::hook;
/// #[hook("brand_new_event", "push.brand_new_action", unchecked)]
/// async fn early_adopter() {}
/// ```
///
/// # The function
///
/// Any free function whose arguments are hookserver extractors (`Value`,
/// `Payload<T>`, `Delivery`, `State<T>`, `Bytes`, ...) and whose return type
/// implements `IntoResponse`. It may not be generic (no type or lifetime
/// parameters, `where` clause or `impl Trait` argument), take `self`, or be
/// `const`, `unsafe`, `extern` or variadic. A plain `fn` works too: it is
/// called from an async wrapper.
///
/// ```
/// use axum::response::IntoResponse;
/// use hookserver::{Payload, hook};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct PullRequestEvent {
///     number: u64,
/// }
///
/// #[hook("pull_request.opened")]
/// fn opened(Payload(pr): Payload<PullRequestEvent>) -> impl IntoResponse {
///     format!("PR #{} opened", pr.number)
/// }
/// # let _ = hookserver::Hooks::new(hookserver::Config::new().secret("s")).hook(opened);
/// ```
///
/// # What it generates
///
/// The function is replaced by a unit struct of the same name and visibility,
/// carrying its doc comments and implementing the hidden trait
/// `hookserver::__private::Hook<S>` for every state `S` its arguments work
/// with. Pass it to `Hooks::hook`. The function itself, with its other
/// attributes, lives inside `Hook::register`, so it can no longer be called
/// directly. The first example expands to (give or take the bounds on the
/// argument types):
///
/// ```
/// use hookserver::Delivery;
/// use serde_json::Value;
///
/// /// Answers pushes and pings.
/// #[allow(non_camel_case_types, missing_docs)]
/// pub struct on_push;
///
/// impl<__S> ::hookserver::__private::Hook<__S> for on_push
/// where
///     __S: ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static,
/// {
///     fn events(&self) -> &'static [&'static str] {
///         &["push", "ping"]
///     }
///
///     #[track_caller]
///     fn register(self, __hooks: ::hookserver::Hooks<__S>) -> ::hookserver::Hooks<__S> {
///         async fn on_push(payload: Value, delivery: Delivery) -> String {
///             format!("{} ref {}", delivery.guid(), payload["ref"])
///         }
///         __hooks.on("push", on_push).on("ping", on_push)
///     }
/// }
/// # let _ = hookserver::Hooks::new(hookserver::Config::new().secret("s")).hook(on_push);
/// ```
///
/// With `unchecked`, the keys are registered through
/// `::hookserver::__private::on_unchecked`, which skips the run-time check.
///
/// When the signature is not a valid handler, the error (`Handler` not
/// implemented) points at the function's name. When the attribute or the
/// function is rejected, the errors are reported and the struct is still
/// generated, with no events, so that the rest of the crate compiles; the
/// function is kept too, in a `const _: () = { ... };` block, so that mistakes
/// in its body are reported at the same time.
#[proc_macro_attribute]
pub fn hook(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::hook(args.into(), input.into()).into()
}
