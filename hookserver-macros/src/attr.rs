//! Step 1: the attribute's arguments, `#[hook("push", "pull_request.opened", "*")]`.
//!
//! Every argument must be a string literal holding a well-formed event key; a key
//! may appear once. All problems are reported together, each on its own token.

use proc_macro2::{Punct, Span, TokenStream, TokenTree};
use syn::{Error, LitStr, Result};

/// The validated arguments of one `#[hook(...)]`.
pub(crate) struct Args {
    /// The event keys, in the order written, without duplicates.
    pub(crate) keys: Vec<LitStr>,
}

const MISSING: &str = "missing event key: write #[hook(\"push\")], \
                       #[hook(\"pull_request.opened\")] or #[hook(\"*\")]";
const NOT_A_STRING: &str = "expected a string literal event key, e.g. #[hook(\"push\")]";
const GRAMMAR: &str = "expected `event`, `event.action` (lowercase letters, digits and `_`) or `*`";

/// Parses and validates the tokens between the attribute's parentheses.
pub(crate) fn parse(args: TokenStream) -> Result<Args> {
    if args.is_empty() {
        return Err(Error::new(Span::call_site(), MISSING));
    }

    let mut keys: Vec<LitStr> = Vec::new();
    let mut errors: Option<Error> = None;
    let mut push_error = |e: Error| match &mut errors {
        Some(errors) => errors.combine(e),
        None => errors = Some(e),
    };

    for (segment, comma) in split_commas(args) {
        let lit = match string_literal(&segment, comma.as_ref()) {
            Ok(lit) => lit,
            Err(e) => {
                push_error(e);
                continue;
            }
        };
        let key = lit.value();
        if let Err(message) = check_key(&key) {
            push_error(Error::new(lit.span(), message));
        } else if keys.iter().any(|seen| seen.value() == key) {
            push_error(Error::new(
                lit.span(),
                format!("duplicate event key `{key}`"),
            ));
        } else {
            keys.push(lit);
        }
    }

    match errors {
        Some(errors) => Err(errors),
        None => Ok(Args { keys }),
    }
}

/// Splits at top-level commas. Each segment comes with the comma that ends it;
/// a trailing comma leaves no empty segment behind.
fn split_commas(args: TokenStream) -> Vec<(TokenStream, Option<Punct>)> {
    let mut segments = Vec::new();
    let mut current = TokenStream::new();
    for tree in args {
        match tree {
            TokenTree::Punct(p) if p.as_char() == ',' => {
                segments.push((std::mem::take(&mut current), Some(p)));
            }
            other => current.extend([other]),
        }
    }
    if !current.is_empty() {
        segments.push((current, None));
    }
    segments
}

/// One argument: exactly one string literal, without suffix. `macro_rules!`
/// fragments (`$key:literal`, wrapped in invisible groups) are accepted too.
fn string_literal(segment: &TokenStream, comma: Option<&Punct>) -> Result<LitStr> {
    if segment.is_empty() {
        // `#[hook(, "push")]` or `#[hook("push",, "ping")]`: point at the stray comma.
        let span = comma.map_or_else(Span::call_site, Punct::span);
        return Err(Error::new(span, NOT_A_STRING));
    }
    match syn::parse2::<LitStr>(segment.clone()) {
        Ok(lit) if lit.suffix().is_empty() => Ok(lit),
        _ => Err(Error::new_spanned(segment, NOT_A_STRING)),
    }
}

/// `event`, `event.action` (each `[a-z0-9_]+`) or exactly `*`; the error is the
/// complete message.
fn check_key(key: &str) -> std::result::Result<(), String> {
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let valid = key == "*"
        || match key.split_once('.') {
            None => word(key),
            Some((event, action)) => word(event) && word(action),
        };
    if valid {
        Ok(())
    } else if key.is_empty() {
        Err(format!("empty event key: {GRAMMAR}"))
    } else {
        Err(format!(
            "invalid event key `{}`: {GRAMMAR}",
            key.escape_debug()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::{Delimiter, Group};
    use quote::quote;

    fn parse_str(args: &str) -> Result<Args> {
        parse(syn::parse_str(args).expect("test input tokenizes"))
    }

    fn keys(args: &str) -> Vec<String> {
        match parse_str(args) {
            Ok(args) => args.keys.iter().map(LitStr::value).collect(),
            Err(e) => panic!("`{args}` rejected: {e}"),
        }
    }

    /// Every error as (message, source text it points at).
    fn errors(args: &str) -> Vec<(String, String)> {
        let Err(errors) = parse_str(args) else {
            panic!("`{args}` accepted")
        };
        errors
            .into_iter()
            .map(|e| (e.to_string(), e.span().source_text().unwrap_or_default()))
            .collect()
    }

    fn invalid(key: &str) -> String {
        format!("invalid event key `{key}`: {GRAMMAR}")
    }

    #[test]
    fn accepts_each_key_form() {
        for key in [
            "push",
            "pull_request.opened",
            "*",
            "check_run.completed",
            "a_1.b_2",
            "2fa",
            "_",
        ] {
            assert_eq!(keys(&format!("{key:?}")), [key], "{key}");
        }
    }

    #[test]
    fn accepts_several_keys_in_order_and_a_trailing_comma() {
        assert_eq!(keys(r#""push", "ping", "*""#), ["push", "ping", "*"]);
        assert_eq!(
            keys(r#""push", "pull_request.opened","#),
            ["push", "pull_request.opened"]
        );
    }

    #[test]
    fn accepts_raw_strings_and_macro_rules_literals() {
        assert_eq!(keys(r##"r"push", r#"ping"#"##), ["push", "ping"]);
        // `$key:literal` reaches the macro wrapped in an invisible group.
        let wrapped = Group::new(Delimiter::None, quote!("issues.opened"));
        let args = parse(quote!(#wrapped, "push")).expect("accepted");
        let got: Vec<String> = args.keys.iter().map(LitStr::value).collect();
        assert_eq!(got, ["issues.opened", "push"]);
    }

    #[test]
    fn no_arguments_is_a_missing_key() {
        let Err(e) = parse(TokenStream::new()) else {
            panic!("accepted")
        };
        assert_eq!(e.to_string(), MISSING);
        assert!(MISSING.contains(r#"#[hook("push")]"#) && MISSING.contains(r#"#[hook("*")]"#));
    }

    #[test]
    fn rejects_non_string_arguments_on_the_argument() {
        for (args, at) in [
            ("push", "push"),
            ("1", "1"),
            (r#"event = "push""#, r#"event = "push""#),
            (r#"b"push""#, r#"b"push""#),
            (r#""push"x"#, r#""push"x"#),
            ("pull_request.opened", "pull_request.opened"),
        ] {
            assert_eq!(
                errors(args),
                [(NOT_A_STRING.to_owned(), at.to_owned())],
                "{args}"
            );
        }
    }

    #[test]
    fn rejects_stray_commas_on_the_comma() {
        assert_eq!(
            errors(r#", "push""#),
            [(NOT_A_STRING.to_owned(), ",".to_owned())]
        );
        assert_eq!(
            errors(r#""push",, "ping""#),
            [(NOT_A_STRING.to_owned(), ",".to_owned())]
        );
    }

    #[test]
    fn rejects_malformed_keys_on_the_literal() {
        for key in [
            "Push",
            "push.",
            ".opened",
            "a.b.c",
            "pull-request",
            "* ",
            "push.*",
            "**",
            "pull request",
        ] {
            let lit = format!("{key:?}");
            assert_eq!(errors(&lit), [(invalid(key), lit.clone())], "{key:?}");
        }
    }

    #[test]
    fn rejects_the_empty_key() {
        assert_eq!(
            errors(r#""""#),
            [(
                "empty event key: expected `event`, `event.action` (lowercase letters, digits and `_`) or `*`"
                    .to_owned(),
                r#""""#.to_owned()
            )]
        );
    }

    #[test]
    fn escapes_control_characters_in_messages() {
        assert_eq!(errors(r#""push\n""#)[0].0, invalid("push\\n"));
    }

    #[test]
    fn rejects_a_duplicate_key_on_the_second_occurrence() {
        let errs = errors(r#""push", "ping", r"push""#);
        assert_eq!(
            errs,
            [(
                "duplicate event key `push`".to_owned(),
                r#"r"push""#.to_owned()
            )]
        );
        // Different keys that overlap at dispatch are not duplicates.
        assert_eq!(keys(r#""pull_request", "pull_request.opened""#).len(), 2);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let errs = errors(r#""Push", push, "ping", "ping""#);
        let messages: Vec<&str> = errs.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                invalid("Push").as_str(),
                NOT_A_STRING,
                "duplicate event key `ping`"
            ]
        );
    }
}
