//! Step 1: the attribute's arguments, `#[hook("push", "pull_request.opened", "*")]`,
//! optionally with the flag `unchecked`.
//!
//! Every other argument must be a string literal holding a well-formed event key
//! (`crate::event_key`, the grammar `Hooks::on` uses too); a key may appear once.
//! Without `unchecked`, each key must also be in GitHub's published list
//! (`crate::github_events`). All problems are reported together, each on its own
//! token.

use crate::event_key;
use proc_macro2::{Punct, Span, TokenStream, TokenTree};
use syn::{Error, LitStr, Result};

/// The validated arguments of one `#[hook(...)]`.
pub(crate) struct Args {
    /// The event keys, in the order written, without duplicates.
    pub(crate) keys: Vec<LitStr>,
    /// `unchecked`: the keys were not checked against GitHub's list, so the
    /// registry must not warn about them either.
    pub(crate) unchecked: bool,
}

const MISSING: &str = "missing event key: write #[hook(\"push\")], \
                       #[hook(\"pull_request.opened\")] or #[hook(\"*\")]";
const NOT_A_STRING: &str =
    "expected a string literal event key, e.g. #[hook(\"push\")], or the flag `unchecked`";
const UNCHECKED: &str = "unchecked";
const FLAG_VALUE: &str = "`unchecked` takes no value: write #[hook(\"event\", unchecked)]";

/// Parses and validates the tokens between the attribute's parentheses.
pub(crate) fn parse(args: TokenStream) -> Result<Args> {
    if args.is_empty() {
        return Err(Error::new(Span::call_site(), MISSING));
    }

    let mut keys: Vec<LitStr> = Vec::new();
    let mut unchecked = false;
    // An argument that is neither a key nor `unchecked` may be a misspelt flag:
    // then the keys are not checked against the list, to report only the typo.
    let mut unclear = false;
    let mut errors: Option<Error> = None;

    for (segment, comma) in split_commas(args) {
        let lit = match argument(&segment, comma.as_ref()) {
            Ok(Argument::Key(lit)) => lit,
            Ok(Argument::Unchecked(flag)) => {
                if unchecked {
                    push(
                        &mut errors,
                        Error::new(flag.span(), "duplicate flag `unchecked`"),
                    );
                }
                unchecked = true;
                continue;
            }
            Err(e) => {
                push(&mut errors, e);
                unclear = true;
                continue;
            }
        };
        let key = lit.value();
        if let Err(e) = event_key::parse(&key) {
            push(&mut errors, Error::new(lit.span(), e));
        } else if keys.iter().any(|seen| seen.value() == key) {
            push(
                &mut errors,
                Error::new(lit.span(), format!("duplicate event key `{key}`")),
            );
        } else {
            keys.push(lit);
        }
    }

    if keys.is_empty() && errors.is_none() {
        // Only `unchecked`.
        push(&mut errors, Error::new(Span::call_site(), MISSING));
    }
    if !unchecked && !unclear {
        for lit in &keys {
            if let Err(message) = check_known(&lit.value()) {
                push(&mut errors, Error::new(lit.span(), message));
            }
        }
    }

    match errors {
        Some(errors) => Err(errors),
        None => Ok(Args { keys, unchecked }),
    }
}

/// Adds `e` to the errors so far.
fn push(errors: &mut Option<Error>, e: Error) {
    match errors {
        Some(errors) => errors.combine(e),
        None => *errors = Some(e),
    }
}

/// A well-formed key that GitHub's list lacks: the message, with the way out
/// for events and actions newer than the list.
fn check_known(key: &str) -> std::result::Result<(), String> {
    let Ok(parsed) = event_key::parse(key) else {
        return Ok(()); // reported by the grammar already
    };
    event_key::check_known(&parsed).map_err(|unknown| {
        format!(
            "{unknown}\n\
             note: hookserver checks keys against GitHub's list of webhook events ({}); \
             for one newer than the list, write #[hook(\"{}\", unchecked)]",
            event_key::table_source(),
            key.escape_debug(),
        )
    })
}

/// One argument between commas.
enum Argument {
    Key(LitStr),
    Unchecked(proc_macro2::Ident),
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

/// One argument: exactly one string literal, without suffix, or the flag
/// `unchecked`. `macro_rules!` fragments (`$key:literal`, wrapped in invisible
/// groups) are accepted too.
fn argument(segment: &TokenStream, comma: Option<&Punct>) -> Result<Argument> {
    if segment.is_empty() {
        // `#[hook(, "push")]` or `#[hook("push",, "ping")]`: point at the stray comma.
        let span = comma.map_or_else(Span::call_site, Punct::span);
        return Err(Error::new(span, NOT_A_STRING));
    }
    let mut trees = segment.clone().into_iter();
    if let Some(TokenTree::Ident(ident)) = trees.next() {
        let alone = trees.next().is_none();
        return match (ident == UNCHECKED, alone) {
            (true, true) => Ok(Argument::Unchecked(ident)),
            (true, false) => Err(Error::new_spanned(segment, FLAG_VALUE)),
            (false, true) => {
                let name = ident.to_string();
                let message = match event_key::nearest(&name, [UNCHECKED].into_iter()) {
                    Some(flag) => format!("unknown flag `{name}`; did you mean `{flag}`?"),
                    None => format!(
                        "unknown flag `{name}`: the only flag is `unchecked`, and event keys \
                         are string literals, e.g. #[hook(\"{name}\")]"
                    ),
                };
                Err(Error::new_spanned(&ident, message))
            }
            (false, false) => Err(Error::new_spanned(segment, NOT_A_STRING)),
        };
    }
    match syn::parse2::<LitStr>(segment.clone()) {
        Ok(lit) if lit.suffix().is_empty() => Ok(Argument::Key(lit)),
        _ => Err(Error::new_spanned(segment, NOT_A_STRING)),
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

    /// The grammar's message for a malformed key.
    fn invalid(key: &str) -> String {
        match event_key::parse(key) {
            Ok(_) => panic!("{key:?} is well-formed"),
            Err(e) => e.to_string(),
        }
    }

    /// The message for a well-formed key missing from GitHub's list.
    fn unknown(key: &str) -> String {
        match check_known(key) {
            Ok(()) => panic!("{key:?} is known"),
            Err(message) => message,
        }
    }

    #[test]
    fn accepts_each_key_form() {
        for key in [
            "push",
            "pull_request.opened",
            "*",
            "check_run.completed",
            "repository_dispatch",
            "repository_dispatch.on-demand-test",
            "repository_dispatch.release.v2",
            "repository_dispatch.deployTrigger",
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
        assert_eq!(errors("unchecked"), [(MISSING.to_owned(), String::new())]);
    }

    #[test]
    fn rejects_non_string_arguments_on_the_argument() {
        for (args, at) in [
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
            "pull-request",
            "* ",
            "push.*",
            "**",
            "pull request",
            "repository_dispatch.a\tb",
            "",
        ] {
            let lit = format!("{key:?}");
            assert_eq!(errors(&lit), [(invalid(key), lit.clone())], "{key:?}");
        }
        assert!(invalid("").starts_with("empty event key: expected `event`"));
        assert!(invalid("pull-request.opened").ends_with("did you mean `pull_request.opened`?"));
    }

    #[test]
    fn escapes_control_characters_in_messages() {
        assert!(
            errors(r#""push\n""#)[0]
                .0
                .starts_with("invalid event key `push\\n`")
        );
    }

    #[test]
    fn rejects_keys_github_does_not_send_on_the_literal() {
        for (key, first_line) in [
            (
                "pul_request",
                "unknown GitHub event `pul_request`; did you mean `pull_request`?",
            ),
            (
                "pull_request.openned",
                "unknown action `openned` of GitHub event `pull_request`; \
                 did you mean `pull_request.opened`?",
            ),
            ("push.created", "`push` has no actions: write `push`"),
            ("a.b.c", "unknown GitHub event `a`"),
        ] {
            let lit = format!("{key:?}");
            let message = unknown(key);
            assert_eq!(message.lines().next(), Some(first_line), "{key}");
            assert!(
                message.ends_with(&format!("write #[hook(\"{key}\", unchecked)]")),
                "{message}"
            );
            assert!(message.contains("@octokit/openapi-webhooks"), "{message}");
            assert_eq!(errors(&lit), [(message, lit.clone())], "{key:?}");
        }
    }

    #[test]
    fn unchecked_accepts_well_formed_keys_github_does_not_send() {
        let args =
            parse_str(r#""brand_new_event", "push.created", unchecked, "push""#).expect("accepted");
        assert!(args.unchecked);
        let got: Vec<String> = args.keys.iter().map(LitStr::value).collect();
        assert_eq!(got, ["brand_new_event", "push.created", "push"]);
        assert!(!parse_str(r#""push""#).expect("accepted").unchecked);
        // The grammar still applies.
        assert_eq!(
            errors(r#"unchecked, "Brand""#),
            [(invalid("Brand"), r#""Brand""#.to_owned())]
        );
    }

    #[test]
    fn rejects_bad_flags_on_the_flag() {
        assert_eq!(
            errors(r#""push", unchecked = true"#),
            [(FLAG_VALUE.to_owned(), "unchecked = true".to_owned())]
        );
        assert_eq!(
            errors(r#""push", unchecked(true)"#),
            [(FLAG_VALUE.to_owned(), "unchecked(true)".to_owned())]
        );
        // A misspelt flag is reported alone: the keys are not checked.
        assert_eq!(
            errors(r#""brand_new_event", uncheked"#),
            [(
                "unknown flag `uncheked`; did you mean `unchecked`?".to_owned(),
                "uncheked".to_owned()
            )]
        );
        assert_eq!(
            errors(r#""push", unchecked, unchecked"#),
            [(
                "duplicate flag `unchecked`".to_owned(),
                "unchecked".to_owned()
            )]
        );
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
        let errs = errors(r#""Push", push, "ping", "ping", "pul_request""#);
        let messages: Vec<&str> = errs.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                invalid("Push").as_str(),
                "unknown flag `push`: the only flag is `unchecked`, and event keys are \
                 string literals, e.g. #[hook(\"push\")]",
                "duplicate event key `ping`",
            ]
        );
        let errs = errors(r#""Push", "ping", "ping", "pul_request""#);
        let messages: Vec<&str> = errs.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                invalid("Push").as_str(),
                "duplicate event key `ping`",
                unknown("pul_request").as_str(),
            ]
        );
    }
}
