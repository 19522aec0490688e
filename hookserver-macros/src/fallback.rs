//! Step 4 (on error): the compile errors, a stub in place of the function, and the
//! function itself, out of the way.
//!
//! The stub is the unit struct the expansion would have produced, implementing
//! `::hookserver::__private::Hook` with no events and a `register` that adds
//! nothing, so `hooks.hook(name)` elsewhere still type-checks and the user sees
//! the real error instead of a cascade of "cannot find value `name`". The function
//! is emitted inside a hidden `const _: () = { ... };`, so its body is still
//! type-checked (a mistake in it is reported along with the attribute's) and IDEs
//! keep resolving its code.

use crate::expand;
use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Error, ItemFn, Visibility};

/// `errors` as `compile_error!`s, then the stub for `func`, then `func`.
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
    let original = original(func);
    quote!(#errors #stub #original)
}

/// `func` in a `const _` block, without visibility or `#[hook]` attributes (a
/// second one would expand again) and allowed to be unused. Nothing for a
/// variadic function: its definition is an error of its own outside `extern`.
fn original(func: &ItemFn) -> TokenStream {
    if func.sig.variadic.is_some() {
        return TokenStream::new();
    }
    let mut func = func.clone();
    func.vis = Visibility::Inherited;
    func.attrs.retain(|a| !crate::check::is_hook_attr(a));
    quote! {
        const _: () = {
            #[allow(dead_code)]
            #func
        };
    }
}
