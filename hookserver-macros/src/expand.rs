//! Step 3: code generation. The function becomes a unit struct of the same name
//! implementing `::hookserver::__private::Hook`, whose `register` holds the
//! function itself and adds it to the registry once per event key.

use crate::{attr, check, fallback};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Item, ItemFn, LitStr, Visibility};

/// The whole pipeline: arguments, item, checks, then the expansion or, on any
/// error, the errors plus a stub that keeps the rest of the crate compiling.
pub(crate) fn hook(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = attr::parse(args);
    let func = syn::parse2::<Item>(input.clone()).and_then(check::function);
    let func = match func {
        Ok(func) => func,
        Err(e) => {
            // No function, so no name for a stub: keep the item as written.
            let errors = args.err().map_or(e.clone(), |mut all| {
                all.combine(e);
                all
            });
            let errors = errors.to_compile_error();
            return quote!(#errors #input);
        }
    };
    match (args, check::signature(&func)) {
        (Ok(args), Ok(())) => generate(&args, func),
        (Err(mut all), Err(e)) => {
            all.combine(e);
            fallback::stub(&func, &all)
        }
        (Err(e), Ok(())) | (Ok(_), Err(e)) => fallback::stub(&func, &e),
    }
}

/// The expansion of a checked function registered under `args.keys`.
fn generate(args: &attr::Args, mut func: ItemFn) -> TokenStream {
    let keys = &args.keys;
    let ident = func.sig.ident.clone();
    let vis = std::mem::replace(&mut func.vis, Visibility::Inherited);
    let (docs, attrs): (Vec<Attribute>, Vec<Attribute>) =
        func.attrs.drain(..).partition(|a| a.path().is_ident("doc"));
    func.attrs = attrs;

    // What the registry gets: the function itself when async, else an async
    // wrapper. Either way the name carries the user's span, so an invalid
    // signature is reported on the function's name.
    let (body, handler) = if func.sig.asyncness.is_some() {
        (quote!(#func), ident.clone())
    } else {
        let wrapper = Ident::new("__hookserver_async", ident.span());
        let wrapper_fn = async_wrapper(&func, &wrapper);
        (quote!(#func #wrapper_fn), wrapper)
    };
    let calls = registrations(keys, &handler, args.unchecked);
    let register = quote! {
        #body
        #calls
    };
    hook_type(
        &docs,
        &vis,
        &ident,
        &quote!(&[#(#keys),*]),
        &extractor_bounds(&func),
        &register,
    )
}

/// `__hooks.on(key, handler)` for each key, chained. Keys that skipped the check
/// against GitHub's list go through `__private::on_unchecked`, which does not
/// warn about them at run time either.
fn registrations(keys: &[LitStr], handler: &Ident, unchecked: bool) -> TokenStream {
    keys.iter().fold(quote!(__hooks), |hooks, key| {
        if unchecked {
            quote!(::hookserver::__private::on_unchecked(#hooks, #key, #handler))
        } else {
            quote!(#hooks.on(#key, #handler))
        }
    })
}

/// `A: FromDelivery<__S>` for each argument type `A`, spanned on the type. They
/// make the `Hook` impl hold exactly for the states the arguments work with (a
/// `State<App>` handler registers on `Hooks<App>` only), and a type that cannot be
/// extracted is reported by name.
fn extractor_bounds(func: &ItemFn) -> TokenStream {
    let bounds = func.sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(arg) => {
            let ty = &arg.ty;
            Some(quote_spanned!(ty.span()=> #ty: ::hookserver::FromDelivery<__S>,))
        }
        FnArg::Receiver(_) => None, // rejected by `check`
    });
    quote!(#(#bounds)*)
}

/// `async fn __hookserver_async(__arg0: A, ...) -> R { name(__arg0, ...) }` for a
/// sync `fn name(pattern: A, ...) -> R`.
fn async_wrapper(func: &ItemFn, wrapper: &Ident) -> TokenStream {
    let ident = &func.sig.ident;
    let types: Vec<_> = func
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(arg) => Some(&arg.ty),
            FnArg::Receiver(_) => None, // rejected by `check`
        })
        .collect();
    let args: Vec<Ident> = (0..types.len())
        .map(|i| format_ident!("__arg{}", i))
        .collect();
    let output = &func.sig.output;
    quote! {
        #[allow(clippy::unused_async)]
        async fn #wrapper(#(#args: #types),*) #output {
            #ident(#(#args),*)
        }
    }
}

/// The unit struct and its `Hook` impl; shared with the fallback stub.
pub(crate) fn hook_type(
    docs: &[Attribute],
    vis: &Visibility,
    ident: &Ident,
    events: &TokenStream,
    bounds: &TokenStream,
    register: &TokenStream,
) -> TokenStream {
    quote! {
        #(#docs)*
        #[allow(non_camel_case_types, missing_docs)]
        #vis struct #ident;

        impl<__S> ::hookserver::__private::Hook<__S> for #ident
        where
            __S: ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static,
            #bounds
        {
            fn events(&self) -> &'static [&'static str] {
                #events
            }

            #[track_caller]
            fn register(self, __hooks: ::hookserver::Hooks<__S>) -> ::hookserver::Hooks<__S> {
                #register
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::{Expr, ImplItem, Stmt};

    fn expand(args: &str, item: &str) -> TokenStream {
        let args = syn::parse_str(args).expect("args tokenize");
        let item = syn::parse_str(item).expect("item tokenizes");
        hook(args, item)
    }

    /// The expansion parsed back: (struct, impl).
    fn parts(tokens: TokenStream) -> (syn::ItemStruct, syn::ItemImpl) {
        let file: syn::File = syn::parse2(tokens).expect("expansion parses");
        match <[Item; 2]>::try_from(file.items) {
            Ok([Item::Struct(s), Item::Impl(i)]) => (s, i),
            Ok(other) => panic!("unexpected items: {}", quote!(#(#other)*)),
            Err(items) => panic!("expected two items, got {}", items.len()),
        }
    }

    fn method<'a>(imp: &'a syn::ItemImpl, name: &str) -> &'a syn::ImplItemFn {
        imp.items
            .iter()
            .find_map(|item| match item {
                ImplItem::Fn(f) if f.sig.ident == name => Some(f),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no `{name}` method"))
    }

    /// `register`'s inner items and its final expression.
    fn register_body(imp: &syn::ItemImpl) -> (Vec<ItemFn>, Expr) {
        let mut stmts = method(imp, "register").block.stmts.clone();
        let Some(Stmt::Expr(tail, None)) = stmts.pop() else {
            panic!("no tail expression")
        };
        let fns = stmts
            .into_iter()
            .map(|stmt| match stmt {
                Stmt::Item(Item::Fn(f)) => f,
                other => panic!("unexpected statement {}", quote!(#other)),
            })
            .collect();
        (fns, tail)
    }

    /// `(key, handler ident)` for each `.on(key, handler)` in the chain, in order.
    fn on_calls(expr: &Expr) -> Vec<(String, Ident)> {
        registrations_in(expr, false)
    }

    /// `(key, handler ident)` for each `__private::on_unchecked(hooks, key,
    /// handler)` in the nest, in order.
    fn unchecked_calls(expr: &Expr) -> Vec<(String, Ident)> {
        registrations_in(expr, true)
    }

    fn registrations_in(mut expr: &Expr, unchecked: bool) -> Vec<(String, Ident)> {
        let mut calls = Vec::new();
        loop {
            let (receiver, key, handler) = match expr {
                Expr::MethodCall(call) if !unchecked => {
                    assert_eq!(call.method, "on");
                    (&*call.receiver, &call.args[0], &call.args[1])
                }
                Expr::Call(call) if unchecked => {
                    let func = &call.func;
                    assert_eq!(
                        quote!(#func).to_string(),
                        ":: hookserver :: __private :: on_unchecked"
                    );
                    (&call.args[0], &call.args[1], &call.args[2])
                }
                _ => break,
            };
            let [Expr::Lit(key), Expr::Path(handler)] = [key, handler] else {
                panic!("unexpected arguments {}", quote!(#expr));
            };
            let syn::Lit::Str(key) = &key.lit else {
                panic!("key is not a string")
            };
            let handler = handler
                .path
                .get_ident()
                .expect("handler is an ident")
                .clone();
            calls.push((key.value(), handler));
            expr = receiver;
        }
        assert_eq!(quote!(#expr).to_string(), "__hooks");
        calls.reverse();
        calls
    }

    fn same_place(a: &Ident, b: &Ident) -> bool {
        a.span().start() == b.span().start() && a.span().end() == b.span().end()
    }

    const ASYNC_FN: &str = r#"
        /// Docs.
        /// More docs.
        #[allow(unused_variables)]
        #[inline]
        pub async fn on_push(payload: Value, delivery: Delivery) -> String {
            format!("{}", payload["ref"])
        }
    "#;

    const SYNC_FN: &str = r#"
        /// Sync docs.
        pub(crate) fn on_ping(Payload(p): Payload<Ping>, _: Delivery) -> impl IntoResponse {
            p.zen
        }
    "#;

    #[test]
    fn async_fn_becomes_a_struct_implementing_hook() {
        let tokens = expand(r#""push", "ping""#, ASYNC_FN);
        println!("{tokens}");
        let text = tokens.to_string();
        assert!(
            text.contains("impl < __S > :: hookserver :: __private :: Hook < __S > for on_push"),
            "{text}"
        );
        assert!(
            text.contains(
                "__S : :: core :: clone :: Clone + :: core :: marker :: Send + \
                 :: core :: marker :: Sync + 'static"
            ),
            "{text}"
        );
        assert!(!text.contains("__hookserver_async"), "{text}");

        let (strukt, imp) = parts(tokens);
        assert_eq!(strukt.ident, "on_push");
        assert!(matches!(strukt.vis, Visibility::Public(_)));
        assert!(matches!(strukt.fields, syn::Fields::Unit));
        let attrs: Vec<String> = strukt
            .attrs
            .iter()
            .map(|a| quote!(#a).to_string())
            .collect();
        assert_eq!(
            attrs,
            [
                "# [doc = \" Docs.\"]",
                "# [doc = \" More docs.\"]",
                "# [allow (non_camel_case_types , missing_docs)]"
            ]
        );

        let events = &method(&imp, "events").block;
        assert_eq!(quote!(#events).to_string(), r#"{ & ["push" , "ping"] }"#);
        let register = method(&imp, "register");
        assert!(
            register
                .attrs
                .iter()
                .any(|a| a.path().is_ident("track_caller"))
        );

        let (fns, tail) = register_body(&imp);
        let [inner] = &fns[..] else {
            panic!("expected only the user's fn, got {}", fns.len())
        };
        assert_eq!(inner.sig.ident, "on_push");
        assert!(
            matches!(inner.vis, Visibility::Inherited),
            "inner fn keeps no visibility"
        );
        let inner_attrs: Vec<String> = inner.attrs.iter().map(|a| quote!(#a).to_string()).collect();
        assert_eq!(
            inner_attrs,
            ["# [allow (unused_variables)]", "# [inline]"],
            "docs move to the struct"
        );
        let original: ItemFn = syn::parse_str(ASYNC_FN).expect("parses");
        let (sig, block) = (&inner.sig, &inner.block);
        let (osig, oblock) = (&original.sig, &original.block);
        assert_eq!(
            quote!(#sig #block).to_string(),
            quote!(#osig #oblock).to_string(),
            "fn kept verbatim"
        );

        let calls = on_calls(&tail);
        let keys: Vec<&str> = calls.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["push", "ping"]);
        for (_, handler) in &calls {
            assert_eq!(handler, "on_push");
            assert!(
                same_place(handler, &original.sig.ident),
                "handler carries the fn name's span"
            );
        }
        assert!(
            same_place(&strukt.ident, &original.sig.ident),
            "struct carries the fn name's span"
        );
    }

    #[test]
    fn sync_fn_is_registered_through_an_async_wrapper() {
        let tokens = expand(r#""ping""#, SYNC_FN);
        println!("{tokens}");
        let text = tokens.to_string();
        assert!(
            text.contains("impl < __S > :: hookserver :: __private :: Hook < __S > for on_ping"),
            "{text}"
        );
        assert!(text.contains("__hookserver_async"), "{text}");

        let (strukt, imp) = parts(tokens);
        assert_eq!(
            quote!(#strukt).to_string().split(" struct").next(),
            Some(
                "# [doc = \" Sync docs.\"] # [allow (non_camel_case_types , missing_docs)] pub (crate)"
            )
        );
        let original: ItemFn = syn::parse_str(SYNC_FN).expect("parses");
        let (fns, tail) = register_body(&imp);
        let [inner, wrapper] = &fns[..] else {
            panic!("expected the fn and its wrapper, got {}", fns.len())
        };

        assert!(inner.sig.asyncness.is_none());
        assert!(matches!(inner.vis, Visibility::Inherited));
        assert!(inner.attrs.is_empty(), "docs move to the struct");
        let (sig, block) = (&inner.sig, &inner.block);
        let (osig, oblock) = (&original.sig, &original.block);
        assert_eq!(
            quote!(#sig #block).to_string(),
            quote!(#osig #oblock).to_string(),
            "fn kept verbatim"
        );

        assert_eq!(wrapper.sig.ident, "__hookserver_async");
        assert!(wrapper.sig.asyncness.is_some());
        assert!(
            same_place(&wrapper.sig.ident, &original.sig.ident),
            "wrapper carries the fn name's span"
        );
        let wsig = &wrapper.sig;
        assert_eq!(
            quote!(#wsig).to_string(),
            "async fn __hookserver_async (__arg0 : Payload < Ping > , __arg1 : Delivery) -> impl IntoResponse"
        );
        let wblock = &wrapper.block;
        assert_eq!(quote!(#wblock).to_string(), "{ on_ping (__arg0 , __arg1) }");

        let calls = on_calls(&tail);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, "ping");
        assert_eq!(calls[0].1, "__hookserver_async");
        assert!(same_place(&calls[0].1, &original.sig.ident));
    }

    #[test]
    fn sync_fn_without_arguments_or_return_type() {
        let (_, imp) = parts(expand(r#""*""#, "fn any() {}"));
        let (fns, tail) = register_body(&imp);
        let wrapper = &fns[1];
        let wrapper = quote!(#wrapper).to_string();
        assert_eq!(
            wrapper,
            "# [allow (clippy :: unused_async)] async fn __hookserver_async () { any () }"
        );
        assert_eq!(on_calls(&tail)[0].0, "*");
    }

    #[test]
    fn private_fn_gives_a_private_struct() {
        let (strukt, _) = parts(expand(r#""push""#, "async fn quiet() {}"));
        assert!(matches!(strukt.vis, Visibility::Inherited));
    }

    #[test]
    fn unchecked_keys_register_without_the_runtime_check() {
        let (_, imp) = parts(expand(
            r#""brand_new_event", "push.created", unchecked"#,
            "async fn new() {}",
        ));
        let (_, tail) = register_body(&imp);
        let calls = unchecked_calls(&tail);
        let keys: Vec<&str> = calls.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["brand_new_event", "push.created"]);
        assert!(calls.iter().all(|(_, handler)| handler == "new"));
    }

    #[test]
    fn free_form_actions_are_registered_as_written() {
        let (_, imp) = parts(expand(
            r#""repository_dispatch.release.v2", "repository_dispatch.on-demand-test""#,
            "async fn dispatch() {}",
        ));
        let (_, tail) = register_body(&imp);
        let keys: Vec<String> = on_calls(&tail).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "repository_dispatch.release.v2",
                "repository_dispatch.on-demand-test"
            ]
        );
    }

    /// The user's function as the fallback emits it: `const _: () = { fn };`.
    fn emitted_fn(item: &Item) -> &ItemFn {
        let Item::Const(konst) = item else {
            panic!("not a const: {}", quote!(#item))
        };
        assert_eq!(konst.ident, "_");
        let Expr::Block(block) = &*konst.expr else {
            panic!("not a block")
        };
        match &block.block.stmts[..] {
            [Stmt::Item(Item::Fn(func))] => func,
            other => panic!("unexpected statements: {}", other.len()),
        }
    }

    #[test]
    fn errors_give_compile_errors_a_stub_and_the_function() {
        let tokens = expand(
            r#""Push", "ping""#,
            "/// Docs.\n#[inline]\npub async fn on_push<T>(t: T) { t }",
        );
        println!("{tokens}");
        let file: syn::File = syn::parse2(tokens).expect("parses");
        let [
            Item::Macro(e1),
            Item::Macro(e2),
            Item::Struct(strukt),
            Item::Impl(imp),
            original,
        ] = &file.items[..]
        else {
            panic!("unexpected items: {}", quote!(#file));
        };
        for e in [e1, e2] {
            let path = &e.mac.path;
            assert_eq!(quote!(#path).to_string(), ":: core :: compile_error");
        }
        assert!(
            e1.mac
                .tokens
                .to_string()
                .contains("invalid event key `Push`")
        );
        assert!(
            e2.mac
                .tokens
                .to_string()
                .contains("hook handlers cannot be generic")
        );
        assert_eq!(strukt.ident, "on_push");
        assert!(matches!(strukt.vis, Visibility::Public(_)));
        let trait_path = &imp.trait_.as_ref().expect("trait impl").1;
        assert_eq!(
            quote!(#trait_path).to_string(),
            ":: hookserver :: __private :: Hook < __S >"
        );
        let events = &method(imp, "events").block;
        assert_eq!(quote!(#events).to_string(), "{ & [] }");
        let register = &method(imp, "register").block;
        assert_eq!(quote!(#register).to_string(), "{ __hooks }");

        let func = emitted_fn(original);
        assert_eq!(func.sig.ident, "on_push");
        assert!(matches!(func.vis, Visibility::Inherited));
        let attrs: Vec<String> = func.attrs.iter().map(|a| quote!(#a).to_string()).collect();
        assert_eq!(
            attrs,
            [
                "# [allow (dead_code)]",
                "# [doc = \" Docs.\"]",
                "# [inline]"
            ]
        );
        let block = &func.block;
        assert_eq!(quote!(#block).to_string(), "{ t }", "body kept");
    }

    #[test]
    fn the_emitted_function_loses_a_second_hook_and_variadics_are_left_out() {
        let tokens = expand(r#""push""#, r#"#[hook("ping")] async fn twice() {}"#);
        let file: syn::File = syn::parse2(tokens).expect("parses");
        let func = emitted_fn(file.items.last().expect("items"));
        assert_eq!(func.attrs.len(), 1, "only allow(dead_code)");

        let tokens = expand(r#""push""#, r#"unsafe extern "C" fn f(x: u8, ...) {}"#);
        let file: syn::File = syn::parse2(tokens).expect("parses");
        assert!(matches!(file.items.last(), Some(Item::Impl(_))));
    }

    #[test]
    fn missing_key_still_gives_a_stub() {
        let tokens = hook(
            TokenStream::new(),
            quote!(
                async fn on_push() {}
            ),
        );
        let file: syn::File = syn::parse2(tokens).expect("parses");
        assert_eq!(file.items.len(), 4);
        assert!(quote!(#file).to_string().contains("missing event key"));
        assert!(matches!(&file.items[1], Item::Struct(s) if s.ident == "on_push"));
        assert_eq!(emitted_fn(&file.items[3]).sig.ident, "on_push");
    }

    #[test]
    fn non_function_gives_the_error_and_the_item_unchanged() {
        let item = quote!(
            pub struct Push {
                a: u8,
            }
        );
        let tokens = hook(quote!(push), item.clone());
        let text = tokens.to_string();
        let errors = text
            .strip_suffix(&item.to_string())
            .expect("item kept as written");
        assert!(errors.contains("unknown flag `push`"), "{text}");
        assert!(errors.contains("#[hook] applies to functions"), "{text}");
        assert!(!text.contains("Hook <"), "{text}");
    }
}
