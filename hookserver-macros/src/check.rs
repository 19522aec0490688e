//! Step 2: the annotated item must be a plain free function that can become a
//! handler. Each problem is reported on the token that causes it.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{
    Attribute, Error, FnArg, GenericArgument, Item, ItemFn, PathArguments, Result, ReturnType, Type,
};

const NOT_A_FN: &str = "#[hook] applies to functions: `async fn name(...) -> impl IntoResponse`";
const GENERIC: &str = "hook handlers cannot be generic";
const IMPL_TRAIT: &str = "hook handlers cannot be generic: name the argument's type \
                          instead of `impl Trait`";
const SELF: &str = "hook handlers cannot take `self`: write a free function";
const UNSAFE: &str = "hook handlers cannot be `unsafe fn`: \
                      put the unsafe code in an `unsafe` block inside the handler";
const CONST: &str = "hook handlers cannot be `const fn`";
const VARIADIC: &str = "hook handlers cannot be variadic";
const SECOND_HOOK: &str = "a function takes one #[hook]: list every event key in it, \
                           e.g. #[hook(\"push\", \"ping\")]";

/// The annotated item as a function, or an error on the item's leading tokens.
pub(crate) fn function(item: Item) -> Result<ItemFn> {
    match item {
        Item::Fn(func) => Ok(func),
        other => Err(Error::new_spanned(item_head(&other), NOT_A_FN)),
    }
}

/// Everything a function must satisfy to be a handler; all violations together.
pub(crate) fn signature(func: &ItemFn) -> Result<()> {
    let sig = &func.sig;
    let mut errors = Vec::new();

    for attr in func.attrs.iter().filter(|a| is_hook_attr(a)) {
        errors.push(Error::new_spanned(attr, SECOND_HOOK));
    }
    if let Some(token) = &sig.constness {
        errors.push(Error::new_spanned(token, CONST));
    }
    if let Some(token) = &sig.unsafety {
        errors.push(Error::new_spanned(token, UNSAFE));
    }
    if let Some(abi) = &sig.abi {
        let name = abi
            .name
            .as_ref()
            .map_or_else(String::new, |n| format!(" {}", n.to_token_stream()));
        let message = format!("hook handlers cannot have an ABI: remove `extern{name}`");
        errors.push(Error::new_spanned(abi, message));
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(&sig.generics, GENERIC));
    }
    if let Some(clause) = &sig.generics.where_clause {
        let mut tokens = clause.where_token.to_token_stream();
        clause.predicates.to_tokens(&mut tokens);
        errors.push(Error::new_spanned(tokens, GENERIC));
    }
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(Error::new_spanned(receiver, SELF)),
            FnArg::Typed(arg) => {
                if let Some(impl_trait) = find_impl_trait(&arg.ty) {
                    errors.push(Error::new_spanned(impl_trait, IMPL_TRAIT));
                }
            }
        }
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(Error::new_spanned(variadic, VARIADIC));
    }

    errors
        .into_iter()
        .reduce(|mut all, e| {
            all.combine(e);
            all
        })
        .map_or(Ok(()), Err)
}

/// `#[hook(...)]` or `#[hookserver::hook(...)]` left on the function: a second
/// attribute would expand inside the first one's output.
pub(crate) fn is_hook_attr(attr: &Attribute) -> bool {
    let segments: Vec<&syn::Ident> = attr.path().segments.iter().map(|s| &s.ident).collect();
    match segments[..] {
        [name] => name == "hook",
        [krate, name] => krate == "hookserver" && name == "hook",
        _ => false,
    }
}

/// An `impl Trait` anywhere in an argument type (an anonymous type parameter).
fn find_impl_trait(ty: &Type) -> Option<&Type> {
    match ty {
        Type::ImplTrait(_) => Some(ty),
        Type::Array(t) => find_impl_trait(&t.elem),
        Type::Group(t) => find_impl_trait(&t.elem),
        Type::Paren(t) => find_impl_trait(&t.elem),
        Type::Ptr(t) => find_impl_trait(&t.elem),
        Type::Reference(t) => find_impl_trait(&t.elem),
        Type::Slice(t) => find_impl_trait(&t.elem),
        Type::Tuple(t) => t.elems.iter().find_map(find_impl_trait),
        Type::Path(t) => {
            let qself = t.qself.as_ref().and_then(|q| find_impl_trait(&q.ty));
            qself.or_else(|| {
                t.path
                    .segments
                    .iter()
                    .find_map(|segment| match &segment.arguments {
                        PathArguments::None => None,
                        PathArguments::AngleBracketed(args) => {
                            args.args.iter().find_map(|arg| match arg {
                                GenericArgument::Type(ty) => find_impl_trait(ty),
                                _ => None,
                            })
                        }
                        PathArguments::Parenthesized(args) => {
                            args.inputs.iter().find_map(find_impl_trait).or_else(|| {
                                match &args.output {
                                    ReturnType::Type(_, ty) => find_impl_trait(ty),
                                    ReturnType::Default => None,
                                }
                            })
                        }
                    })
            })
        }
        _ => None,
    }
}

/// The tokens that say what an item is (`struct Name`, `impl ... for T`), so that
/// the error does not underline a whole block.
fn item_head(item: &Item) -> TokenStream {
    fn head(a: &impl ToTokens, b: &impl ToTokens) -> TokenStream {
        let mut tokens = a.to_token_stream();
        b.to_tokens(&mut tokens);
        tokens
    }
    match item {
        Item::Const(i) => head(&i.const_token, &i.ident),
        Item::Enum(i) => head(&i.enum_token, &i.ident),
        Item::ExternCrate(i) => head(&i.extern_token, &i.ident),
        Item::ForeignMod(i) => i.abi.to_token_stream(),
        Item::Impl(i) => head(&i.impl_token, &i.self_ty),
        Item::Macro(i) => i.mac.path.to_token_stream(),
        Item::Mod(i) => head(&i.mod_token, &i.ident),
        Item::Static(i) => head(&i.static_token, &i.ident),
        Item::Struct(i) => head(&i.struct_token, &i.ident),
        Item::Trait(i) => head(&i.trait_token, &i.ident),
        Item::TraitAlias(i) => head(&i.trait_token, &i.ident),
        Item::Type(i) => head(&i.type_token, &i.ident),
        Item::Union(i) => head(&i.union_token, &i.ident),
        Item::Use(i) => head(&i.use_token, &i.tree),
        other => other.to_token_stream(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error on `item` as (message, source text it points at).
    fn errors(item: &str) -> Vec<(String, String)> {
        let item: Item = syn::parse_str(item).expect("test input parses");
        let result = function(item).and_then(|func| signature(&func));
        let Err(errors) = result else {
            panic!("accepted")
        };
        errors
            .into_iter()
            .map(|e| (e.to_string(), e.span().source_text().unwrap_or_default()))
            .collect()
    }

    fn one(message: &str, at: &str) -> Vec<(String, String)> {
        vec![(message.to_owned(), at.to_owned())]
    }

    fn accepted(item: &str) {
        let item: Item = syn::parse_str(item).expect("test input parses");
        let func = function(item).expect("a function");
        if let Err(e) = signature(&func) {
            panic!("rejected: {e}");
        }
    }

    #[test]
    fn accepts_handlers() {
        accepted("async fn on_push() {}");
        accepted("pub async fn on_push(payload: Value, d: Delivery) -> String { todo() }");
        accepted(
            "pub(crate) fn sync(Payload(pr): Payload<Pr>, _: State<Arc<App>>) -> impl IntoResponse {}",
        );
        accepted("#[allow(unused)] #[doc = \"x\"] async fn f(x: Box<dyn Fn() -> u8 + Send>) {}");
        accepted("#[other::hook] async fn f() {}");
    }

    #[test]
    fn rejects_items_that_are_not_functions_on_their_head() {
        assert_eq!(
            errors("pub struct Push { a: u8 }"),
            one(NOT_A_FN, "struct Push")
        );
        assert_eq!(errors("impl Foo { fn f() {} }"), one(NOT_A_FN, "impl Foo"));
        assert_eq!(errors("mod m {}"), one(NOT_A_FN, "mod m"));
        assert_eq!(errors("static X: u8 = 1;"), one(NOT_A_FN, "static X"));
    }

    #[test]
    fn rejects_generics_on_the_parameters() {
        assert_eq!(
            errors("async fn f<T: FromDelivery>(t: T) {}"),
            one(GENERIC, "<T: FromDelivery>")
        );
        assert_eq!(errors("async fn f<'a>() {}"), one(GENERIC, "<'a>"));
    }

    #[test]
    fn rejects_a_where_clause_on_it() {
        assert_eq!(
            errors("async fn f() where String: Clone {}"),
            one(GENERIC, "where String: Clone")
        );
        let both = errors("async fn f<T>(t: T) where T: Send {}");
        assert_eq!(
            both,
            [one(GENERIC, "<T>"), one(GENERIC, "where T: Send")].concat()
        );
    }

    #[test]
    fn rejects_impl_trait_arguments_on_the_type() {
        assert_eq!(
            errors("async fn f(x: impl Send) {}"),
            one(IMPL_TRAIT, "impl Send")
        );
        assert_eq!(
            errors("async fn f(x: Payload<impl Send>) {}"),
            one(IMPL_TRAIT, "impl Send")
        );
        assert_eq!(
            errors("async fn f(x: (u8, &impl Send)) {}"),
            one(IMPL_TRAIT, "impl Send")
        );
    }

    #[test]
    fn rejects_self_on_the_receiver() {
        assert_eq!(errors("async fn f(&self) {}"), one(SELF, "&self"));
        assert_eq!(
            errors("async fn f(mut self, x: u8) {}"),
            one(SELF, "mut self")
        );
        assert_eq!(
            errors("async fn f(self: Arc<Self>) {}"),
            one(SELF, "self: Arc<Self>")
        );
    }

    #[test]
    fn rejects_unsafe_on_the_keyword() {
        assert_eq!(errors("unsafe fn f() {}"), one(UNSAFE, "unsafe"));
    }

    #[test]
    fn rejects_an_abi_on_it() {
        assert_eq!(
            errors(r#"extern "C" fn f() {}"#),
            one(
                r#"hook handlers cannot have an ABI: remove `extern "C"`"#,
                r#"extern "C""#
            )
        );
        assert_eq!(
            errors("extern fn f() {}"),
            one(
                "hook handlers cannot have an ABI: remove `extern`",
                "extern"
            )
        );
    }

    #[test]
    fn rejects_variadics_on_the_dots() {
        let errs = errors(r#"unsafe extern "C" fn f(x: u8, ...) {}"#);
        assert_eq!(errs.last(), Some(&(VARIADIC.to_owned(), "...".to_owned())));
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn rejects_const_on_the_keyword() {
        assert_eq!(errors("const fn f() {}"), one(CONST, "const"));
    }

    #[test]
    fn rejects_a_second_hook_attribute_on_it() {
        assert_eq!(
            errors(r#"#[hook("ping")] async fn f() {}"#),
            one(SECOND_HOOK, r#"#[hook("ping")]"#)
        );
        assert_eq!(
            errors(r#"#[hookserver::hook("ping")] async fn f() {}"#),
            one(SECOND_HOOK, r#"#[hookserver::hook("ping")]"#)
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        let messages: Vec<String> = errors("const unsafe fn f<T>(&self) {}")
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        assert_eq!(messages, [CONST, UNSAFE, GENERIC, SELF]);
    }
}
