//! GitHub's delivery log over HTTP: one page of the deliveries list (its items and the
//! `Link` to the next page), one redelivery request, and the credentials they carry (a
//! token, or a JWT signed as the App). Refusals are read by `github`'s rules.

use super::settings::{Checked, Target};
use crate::github::{self, BACKOFF_BASE, Refusal};
use http::{HeaderMap, StatusCode, header};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Items per page: GitHub's largest.
pub(crate) const PER_PAGE: usize = 100;
/// The largest page read (100 items are a few tens of KB).
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// How long one request may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One attempt GitHub made at a delivery, as its log lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// The attempt's id: what a redelivery names.
    pub(crate) id: u64,
    pub(crate) guid: String,
    /// Unix milliseconds.
    pub(crate) delivered_at: i64,
    /// `status` was `OK`.
    pub(crate) ok: bool,
    pub(crate) event: String,
    /// The rest GitHub lists, for a person reading the log (`DeliveryLog`): `status`
    /// as written (`OK`, `Invalid HTTP Response: 503`), the hook's status code (0
    /// without an answer), the action, whether it was a redelivery, milliseconds taken.
    pub(crate) status: String,
    pub(crate) status_code: u16,
    pub(crate) action: Option<String>,
    pub(crate) redelivery: bool,
    pub(crate) duration_ms: Option<u64>,
}

/// One page of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) attempts: Vec<Attempt>,
    /// The next page's URL, from `Link: <...>; rel="next"`.
    pub(crate) next: Option<String>,
}

/// How the requests are signed.
#[derive(Clone)]
pub(crate) enum Auth {
    /// `Authorization: Bearer TOKEN` (repository and organisation hooks).
    Token(String),
    /// A fresh JWT per request, signed RS256 as the App.
    App {
        id: u64,
        key: jsonwebtoken::EncodingKey,
    },
}

/// The client of one target's delivery log.
pub(crate) struct Api {
    client: reqwest::Client,
    /// The API's base URL, without a trailing `/`.
    base: String,
    target: Target,
    auth: Auth,
}

impl Api {
    /// The client of a checked target's log: signed as the App when it is the App's
    /// hook, else with `token`.
    pub(crate) fn for_target(
        client: reqwest::Client,
        base: &str,
        checked: Checked,
        token: Option<&str>,
    ) -> Self {
        let auth = match checked.app {
            Some((id, key)) => Auth::App { id, key },
            None => Auth::Token(token.unwrap_or_default().trim().to_owned()),
        };
        Self::new(client, base, checked.target, auth)
    }

    fn new(client: reqwest::Client, base: &str, target: Target, auth: Auth) -> Self {
        Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            target,
            auth,
        }
    }

    /// The first page's URL.
    pub(crate) fn first_page(&self) -> String {
        format!(
            "{}{}?per_page={PER_PAGE}",
            self.base,
            self.target.deliveries_path()
        )
    }

    fn request(&self, method: http::Method, url: &str) -> Result<reqwest::RequestBuilder, Refusal> {
        let bearer = match &self.auth {
            Auth::Token(token) => token.clone(),
            Auth::App { id, key } => {
                app_jwt(*id, key, SystemTime::now()).map_err(|why| Refusal::Failed {
                    why,
                    base: BACKOFF_BASE,
                })?
            }
        };
        Ok(self
            .client
            .request(method, url)
            .header(header::ACCEPT, github::ACCEPT)
            .header(github::API_VERSION.0, github::API_VERSION.1)
            .bearer_auth(bearer))
    }

    /// One page of the list at `url` (the first page's, or a `Link`'s).
    pub(crate) async fn list(&self, url: &str) -> Result<Page, Refusal> {
        if !same_origin(&self.base, url) {
            return Err(Refusal::Failed {
                why: format!("the deliveries list links to {url:?}, outside the API's URL"),
                base: BACKOFF_BASE,
            });
        }
        let response = self
            .request(http::Method::GET, url)?
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        let headers = response.headers().clone();
        if status != StatusCode::OK {
            return Err(github::refusal(status, &headers, SystemTime::now()));
        }
        let body = github::read_body(response, MAX_PAGE_BYTES)
            .await
            .map_err(|why| Refusal::Failed {
                why,
                base: BACKOFF_BASE,
            })?;
        let attempts = parse_attempts(&body).map_err(|why| Refusal::Failed {
            why,
            base: BACKOFF_BASE,
        })?;
        Ok(Page {
            attempts,
            next: next_link(&headers),
        })
    }

    /// Asks GitHub to deliver attempt `id` again (`202 Accepted`).
    pub(crate) async fn redeliver(&self, id: u64) -> Result<(), Refusal> {
        let url = format!(
            "{}{}/{id}/attempts",
            self.base,
            self.target.deliveries_path()
        );
        let response = self
            .request(http::Method::POST, &url)?
            .send()
            .await
            .map_err(failed)?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status => Err(github::refusal(
                status,
                response.headers(),
                SystemTime::now(),
            )),
        }
    }
}

fn failed(e: reqwest::Error) -> Refusal {
    Refusal::Failed {
        why: github::describe(&e),
        base: BACKOFF_BASE,
    }
}

/// Whether `url` has the scheme, host and port of `base`: a token is never sent
/// anywhere else, whatever a `Link` header says.
fn same_origin(base: &str, url: &str) -> bool {
    match (reqwest::Url::parse(base), reqwest::Url::parse(url)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// The claims GitHub reads from an App's JWT.
#[derive(serde::Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

/// A JWT for App `id`: RS256, issued 60 s in the past (clock drift), expiring 9
/// minutes from now (10 after `iat`, GitHub's most).
pub(crate) fn app_jwt(
    id: u64,
    key: &jsonwebtoken::EncodingKey,
    now: SystemTime,
) -> Result<String, String> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the clock is before 1970".to_owned())?
        .as_secs();
    let claims = Claims {
        iat: now.saturating_sub(60),
        exp: now + 9 * 60,
        iss: id.to_string(),
    };
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, &claims, key)
        .map_err(|e| format!("cannot sign the App's JWT: {e}"))
}

/// The items of a deliveries page. Every item needs `id`, `guid`, `delivered_at` and
/// `status`; a page missing one, or not a JSON array, is unusable as a whole.
pub(crate) fn parse_attempts(body: &[u8]) -> Result<Vec<Attempt>, String> {
    #[derive(serde::Deserialize)]
    struct Item {
        id: u64,
        guid: String,
        delivered_at: String,
        status: String,
        #[serde(default)]
        event: Option<String>,
        #[serde(default)]
        status_code: Option<u16>,
        #[serde(default)]
        action: Option<String>,
        #[serde(default)]
        redelivery: Option<bool>,
        #[serde(default)]
        duration: Option<f64>,
    }
    let items: Vec<Item> = serde_json::from_slice(body)
        .map_err(|e| format!("the deliveries list is not the expected JSON: {e}"))?;
    items
        .into_iter()
        .map(|item| {
            let delivered_at = parse_time(&item.delivered_at).ok_or_else(|| {
                format!(
                    "the deliveries list has delivered_at {:?}, not an ISO 8601 time",
                    item.delivered_at
                )
            })?;
            if item.guid.is_empty() {
                return Err("the deliveries list has an item with an empty guid".to_owned());
            }
            Ok(Attempt {
                id: item.id,
                guid: item.guid,
                delivered_at,
                ok: item.status.eq_ignore_ascii_case("ok"),
                event: item.event.unwrap_or_default(),
                status: item.status,
                status_code: item.status_code.unwrap_or(0),
                action: item.action,
                redelivery: item.redelivery.unwrap_or(false),
                duration_ms: item
                    .duration
                    .filter(|secs| secs.is_finite() && *secs >= 0.0)
                    .map(|secs| (secs * 1000.0).round() as u64),
            })
        })
        .collect()
}

/// An RFC 3339 time, as GitHub writes `delivered_at` (`2019-06-03T00:57:16Z`; a fraction
/// and a `±HH:MM` offset allowed), as Unix milliseconds.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The `rel="next"` URL of a `Link` header (RFC 8288: `<url>; rel="next", <url>; ...`).
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_next)
}

fn parse_next(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let url = &rest[start + 1..end];
        let after = &rest[end + 1..];
        // The parameters run to the next link (a `,` followed by `<`), or the end.
        let params_end = after
            .find(',')
            .filter(|&i| after[i + 1..].trim_start().starts_with('<'))
            .unwrap_or(after.len());
        let params = &after[..params_end];
        let next = params.split(';').any(|p| {
            let Some((name, value)) = p.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if next && !url.is_empty() {
            return Some(url.to_owned());
        }
        rest = &after[params_end..];
        if rest.is_empty() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn link_headers() {
        let link = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::LINK, HeaderValue::from_str(v).unwrap());
            next_link(&h)
        };
        assert_eq!(
            link(
                "<https://api.github.com/repos/o/r/hooks/1/deliveries?per_page=100&cursor=v1_123>; rel=\"next\""
            )
            .as_deref(),
            Some("https://api.github.com/repos/o/r/hooks/1/deliveries?per_page=100&cursor=v1_123")
        );
        // Several links, next not first, a comma inside a URL, rel lists, no quotes.
        assert_eq!(
            link("<https://x/a?c=1,2>; rel=\"prev\", <https://x/b?cursor=a,b>; rel=\"last next\"")
                .as_deref(),
            Some("https://x/b?cursor=a,b")
        );
        assert_eq!(
            link("<https://x/n>; title=\"t\"; rel=next").as_deref(),
            Some("https://x/n")
        );
        assert_eq!(link("<https://x/p>; rel=\"prev\""), None);
        assert_eq!(link("<https://x/p>; rel=\"nextish\""), None);
        assert_eq!(link("garbage"), None);
        assert_eq!(link("<>; rel=\"next\""), None);
        assert_eq!(link("<https://x/unclosed; rel=\"next\""), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2019-06-03T00:57:16Z"), Some(1_559_523_436_000));
        assert_eq!(
            parse_time("2019-06-03T02:57:16.25+02:00"),
            Some(1_559_523_436_250)
        );
        assert_eq!(
            parse_time("2000-02-29T00:00:00-00:30"),
            Some(951_784_200_000)
        );
        for bad in [
            "",
            "2019-06-03",
            "2019-06-03T00:57:16",
            "2019-13-03T00:57:16Z",
            "2019-06-03T24:57:16Z",
            "2019-06-03T00:57:16.Z",
            "2019-06-03T00:57:16+0200",
            "20x9-06-03T00:57:16Z",
            "2019-06-03T00:57:16Zjunk",
            "+019-06-03T00:57:16Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn items() {
        let page = br#"[
          {"id":12345678,"guid":"0b989ba4-242f-11e5-81e1-c7b6966d2516","delivered_at":"2019-06-03T00:57:16Z",
           "redelivery":false,"duration":0.27,"status":"OK","status_code":200,"event":"issues",
           "action":"opened","installation_id":123,"repository_id":456,"throttled_at":null},
          {"id":12345679,"guid":"0b989ba4-242f-11e5-81e1-c7b6966d2517","delivered_at":"2019-06-03T00:58:16Z",
           "status":"Invalid HTTP Response: 503","status_code":503,"event":"push","action":null}
        ]"#;
        let attempts = parse_attempts(page).unwrap();
        assert_eq!(attempts.len(), 2);
        assert!(attempts[0].ok && !attempts[1].ok);
        assert_eq!(attempts[1].id, 12_345_679);
        assert_eq!(attempts[1].event, "push");
        assert_eq!(attempts[1].status, "Invalid HTTP Response: 503");
        assert_eq!(attempts[1].status_code, 503);
        assert_eq!(attempts[0].action.as_deref(), Some("opened"));
        assert_eq!(attempts[0].duration_ms, Some(270));
        assert!(!attempts[0].redelivery);
        assert_eq!(parse_attempts(b"[]").unwrap(), vec![]);
        for (body, why) in [
            (&b"<html>rate limited</html>"[..], "not the expected JSON"),
            (b"{\"message\":\"Not Found\"}", "not the expected JSON"),
            (
                br#"[{"id":1,"delivered_at":"2019-06-03T00:57:16Z","status":"OK"}]"#,
                "missing field `guid`",
            ),
            (
                br#"[{"id":"x","guid":"g","delivered_at":"2019-06-03T00:57:16Z","status":"OK"}]"#,
                "invalid type",
            ),
            (
                br#"[{"id":1,"guid":"g","delivered_at":"yesterday","status":"OK"}]"#,
                "not an ISO 8601 time",
            ),
            (
                br#"[{"id":1,"guid":"","delivered_at":"2019-06-03T00:57:16Z","status":"OK"}]"#,
                "empty guid",
            ),
        ] {
            let err = parse_attempts(body).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn origins() {
        assert!(same_origin(
            "http://127.0.0.1:9",
            "http://127.0.0.1:9/repos/x?cursor=1"
        ));
        assert!(same_origin(
            "https://api.github.com",
            "https://api.github.com/app/hook/deliveries"
        ));
        assert!(!same_origin(
            "https://api.github.com",
            "https://evil.example/app"
        ));
        assert!(!same_origin("http://127.0.0.1:9", "http://127.0.0.1:10/x"));
        assert!(!same_origin("https://api.github.com", "not a url"));
    }

    #[test]
    fn app_jwts_are_rs256_with_githubs_bounds() {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!(
            "../../../tests/keys/github-app-test.pem"
        ))
        .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = app_jwt(42, &key, now).unwrap();
        let public = jsonwebtoken::DecodingKey::from_rsa_pem(include_bytes!(
            "../../../tests/keys/github-app-test.pub.pem"
        ))
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_exp = false;
        let decoded =
            jsonwebtoken::decode::<serde_json::Value>(&jwt, &public, &validation).unwrap();
        assert_eq!(decoded.header.alg, jsonwebtoken::Algorithm::RS256);
        let claims = decoded.claims;
        assert_eq!(claims["iss"], "42");
        assert_eq!(claims["iat"], 1_700_000_000 - 60);
        assert_eq!(claims["exp"], 1_700_000_000 + 540);
    }
}
