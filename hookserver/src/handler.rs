//! The handler trait: async functions (and closures) of extractor arguments that
//! return something that becomes a response, like axum's `Handler`.

use crate::{delivery::Delivery, extract::FromDelivery};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use std::{future::Future, sync::Arc};

/// A function that can answer deliveries.
///
/// Implemented for every `Fn(A1, ..., An) -> impl Future<Output = impl IntoResponse>`
/// (up to 16 arguments) whose arguments implement [`FromDelivery`]: `async fn`s,
/// and closures returning `async` blocks. `T` is the argument tuple; you never
/// name it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid hook handler",
    label = "not a hook handler",
    note = "a hook handler is an `async fn` (or a closure returning a future) whose \
            arguments implement `hookserver::FromDelivery` (`serde_json::Value`, \
            `Payload<T>`, `Delivery`, `State<T>`, `Bytes`, `HeaderMap`) and whose \
            output implements `axum::response::IntoResponse`; at most 16 arguments",
    note = "with `State<T>`, `T` must implement `FromRef<S>` for the state `S` given to \
            `Hooks::with_state` (the state type itself always does)"
)]
pub trait Handler<T, S>: Clone + Send + Sync + Sized + 'static {
    /// Extracts the arguments and returns the handler's future, not yet polled, so
    /// the caller can still refuse the delivery (or journal it) before any of the
    /// handler's code runs. An extraction failure is `Err` with its rejection's
    /// answer, and the function is not called.
    // The `Err` is the rare path and an answer ready to send, as axum's own are.
    #[allow(clippy::result_large_err)]
    fn call(
        &self,
        delivery: &Delivery,
        state: &S,
    ) -> Result<BoxFuture<'static, Response>, Response>;
}

/// A handler with its argument types erased, as the registry stores it.
pub(crate) type BoxedHandler<S> = Arc<dyn ErasedHandler<S>>;

pub(crate) trait ErasedHandler<S>: Send + Sync {
    #[allow(clippy::result_large_err)]
    fn call(
        &self,
        delivery: &Delivery,
        state: &S,
    ) -> Result<BoxFuture<'static, Response>, Response>;
}

struct Erased<H, T> {
    handler: H,
    _args: std::marker::PhantomData<fn() -> T>,
}

impl<H, T, S> ErasedHandler<S> for Erased<H, T>
where
    H: Handler<T, S>,
{
    fn call(
        &self,
        delivery: &Delivery,
        state: &S,
    ) -> Result<BoxFuture<'static, Response>, Response> {
        self.handler.call(delivery, state)
    }
}

pub(crate) fn erase<H, T, S>(handler: H) -> BoxedHandler<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: 'static,
{
    Arc::new(Erased {
        handler,
        _args: std::marker::PhantomData,
    })
}

macro_rules! impl_handler {
    ($($arg:ident),*) => {
        impl<F, Fut, Out, S, $($arg,)*> Handler<($($arg,)*), S> for F
        where
            F: Fn($($arg),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Out> + Send + 'static,
            Out: IntoResponse,
            $($arg: FromDelivery<S>,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call(
                &self,
                delivery: &Delivery,
                state: &S,
            ) -> Result<BoxFuture<'static, Response>, Response> {
                $(
                    let $arg = $arg::from_delivery(delivery, state)
                        .map_err(IntoResponse::into_response)?;
                )*
                let future = (self)($($arg),*);
                Ok(Box::pin(async move { future.await.into_response() }))
            }
        }
    };
}

impl_handler!();
impl_handler!(A1);
impl_handler!(A1, A2);
impl_handler!(A1, A2, A3);
impl_handler!(A1, A2, A3, A4);
impl_handler!(A1, A2, A3, A4, A5);
impl_handler!(A1, A2, A3, A4, A5, A6);
impl_handler!(A1, A2, A3, A4, A5, A6, A7);
impl_handler!(A1, A2, A3, A4, A5, A6, A7, A8);
impl_handler!(A1, A2, A3, A4, A5, A6, A7, A8, A9);
impl_handler!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
impl_handler!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);
impl_handler!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12);
impl_handler!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13);
impl_handler!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14);
impl_handler!(
    A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15
);
impl_handler!(
    A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16
);
