//! Step 4 (on error): the compile errors plus a stub in place of the function.
//!
//! The stub is the unit struct the expansion would have produced, implementing
//! `::hookserver::Hook` with no events and a `register` that adds nothing, so
//! `hooks.hook(name)` elsewhere still type-checks and the user sees the real
//! error instead of a cascade of "cannot find value `name`".

use crate::expand;
use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Error, ItemFn};

/// `errors` as `compile_error!`s, then the stub for `func`.
pub(crate) fn stub(func: &ItemFn, errors: &Error) -> TokenStream {
    let errors = errors.to_compile_error();
    if func.sig.receiver().is_some() {
        // A method lives in an `impl`, where no struct can be declared: keep the
        // method as written, so the only error is ours.
        return quote!(#errors #func);
    }
    let docs: Vec<Attribute> = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect();
    let stub = expand::hook_type(
        &docs,
        &func.vis,
        &func.sig.ident,
        &quote!(&[]),
        &TokenStream::new(),
        &quote!(__hooks),
    );
    quote!(#errors #stub)
}
