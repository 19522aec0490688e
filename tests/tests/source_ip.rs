//! Source-IP validation against a real HTTP stand-in for GitHub's `/meta`, counting
//! its hits.

use hookserver::{Config, Delivery, Hooks};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime};
use tests::assert_hits;
use tests::{EditHeaders, GithubStandIn, Reply, SECRET, TestServer, client, delivery, send};

/// Ranges that hold the loopback address the tests connect from.
const LOOPBACK: &[&str] = &["192.30.252.0/22", "127.0.0.0/8", "2a0a:a440::/29"];
/// GitHub's real ranges: the tests' address is outside them.
const GITHUB: &[&str] = &[
    "192.30.252.0/22",
    "185.199.108.0/22",
    "140.82.112.0/20",
    "143.55.64.0/20",
    "2a0a:a440::/29",
    "2606:50c0::/32",
];

fn config(github: &GithubStandIn) -> Config {
    Config::new().secret(SECRET).github_api_url(&github.url)
}

async fn server(config: Config) -> TestServer {
    let hooks = Hooks::new(config)
        .on("ping", |_: Value| async { "pong" })
        .on("push", |d: Delivery| async move {
            format!(
                "client {}",
                d.client_ip().map(|ip| ip.to_string()).unwrap_or_default()
            )
        });
    TestServer::hooks(hooks).await
}

async fn ping(s: &TestServer) -> (u16, String) {
    send(delivery(&client(), &s.url(), "ping", "{}")).await
}

const OK: (u16, &str) = (200, "pong");

fn answer(a: &(u16, String)) -> (u16, &str) {
    (a.0, a.1.as_str())
}

#[tokio::test]
async fn inside_the_ranges_passes_outside_is_403() {
    let github = GithubStandIn::start(Reply::ranges(LOOPBACK)).await;
    let s = server(config(&github)).await;
    assert_eq!(answer(&ping(&s).await), OK);

    let github = GithubStandIn::start(Reply::ranges(GITHUB)).await;
    let s = server(config(&github)).await;
    assert_eq!(
        answer(&ping(&s).await),
        (403, "Requests must originate from GitHub")
    );
}

#[tokio::test]
async fn the_ip_check_comes_before_the_body_and_the_signature() {
    let github = GithubStandIn::start(Reply::ranges(GITHUB)).await;
    let s = server(config(&github).body_limit(16)).await;
    // Unsigned, oversized, wrong content type: a stranger only ever learns 403.
    let request = client()
        .post(s.url())
        .header("content-type", "text/plain")
        .body("x".repeat(1000));
    assert_eq!(
        answer(&send(request).await),
        (403, "Requests must originate from GitHub")
    );
}

#[tokio::test]
async fn the_request_to_github_is_well_formed() {
    let github = GithubStandIn::start(Reply::ranges(LOOPBACK)).await;
    let s = server(config(&github).github_token("ghp_test_token")).await;
    assert_eq!(answer(&ping(&s).await), OK);
    let requests = github.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert!(
        r["user-agent"].to_str().unwrap().starts_with("hookserver/"),
        "{r:?}"
    );
    assert_eq!(r["accept"], "application/vnd.github+json");
    assert_eq!(r["authorization"], "Bearer ghp_test_token");
    assert!(!r.contains_key("if-none-match"));

    let github = GithubStandIn::start(Reply::ranges(LOOPBACK)).await;
    let s = server(config(&github)).await;
    assert_eq!(answer(&ping(&s).await), OK);
    assert!(
        !github.requests()[0].contains_key("authorization"),
        "no token, no header"
    );
}

#[tokio::test]
async fn github_enterprise_api_urls_work() {
    let github = GithubStandIn::start(Reply::ranges(LOOPBACK)).await;
    let s = server(config(&github).github_api_url(format!("{}/api/v3/", github.url))).await;
    assert_eq!(answer(&ping(&s).await), OK);
    assert_eq!(github.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_cold_deliveries_make_one_request() {
    let github = GithubStandIn::start(Reply::Slow(
        Duration::from_millis(300),
        Box::new(Reply::ranges(LOOPBACK)),
    ))
    .await;
    let s = server(config(&github)).await;
    let c = client();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (c, url) = (c.clone(), s.url());
            tokio::spawn(async move { send(delivery(&c, &url, "ping", "{}")).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(answer(&task.await.unwrap()), OK);
    }
    assert_eq!(github.hits(), 1);
    // And the list is cached afterwards.
    for _ in 0..10 {
        assert_eq!(answer(&ping(&s).await), OK);
    }
    assert_eq!(github.hits(), 1);
}

#[tokio::test]
async fn after_the_ttl_the_list_is_revalidated_with_its_etag() {
    let github = GithubStandIn::start(Reply::ranges_tagged(LOOPBACK, "\"v1\"")).await;
    let s = server(config(&github).meta_ttl(Duration::from_secs(1))).await;
    assert_eq!(answer(&ping(&s).await), OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(answer(&ping(&s).await), OK);
    assert_eq!(github.hits(), 2);
    let second = &github.requests()[1];
    assert_eq!(
        second["if-none-match"], "\"v1\"",
        "revalidation is conditional"
    );
    // The 304 made the list fresh again: no request within the next TTL.
    let revalidated = Instant::now();
    assert_eq!(answer(&ping(&s).await), OK);
    assert_hits(&github, 2, revalidated, Duration::from_secs(1));
}

#[tokio::test]
async fn a_new_range_list_is_picked_up_after_the_ttl() {
    let github = GithubStandIn::start(Reply::ranges_tagged(LOOPBACK, "\"v1\"")).await;
    let s = server(config(&github).meta_ttl(Duration::from_secs(1))).await;
    let fetched = Instant::now();
    assert_eq!(answer(&ping(&s).await), OK);
    github.set(Reply::ranges_tagged(GITHUB, "\"v2\""));
    let second = ping(&s).await;
    if fetched.elapsed() < Duration::from_millis(900) {
        assert_eq!(answer(&second), OK, "still fresh: the old list holds");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refreshed = Instant::now();
    assert_eq!(
        answer(&ping(&s).await),
        (403, "Requests must originate from GitHub")
    );
    assert_hits(&github, 2, refreshed, Duration::from_secs(1));
}

#[tokio::test]
async fn a_failing_refresh_keeps_the_last_good_list() {
    let github = GithubStandIn::start(Reply::ranges(LOOPBACK)).await;
    let s = server(config(&github).meta_ttl(Duration::from_secs(1))).await;
    assert_eq!(answer(&ping(&s).await), OK);
    github.set(Reply::raw(500, &[], "oops"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let failed = Instant::now();
    for _ in 0..10 {
        assert_eq!(answer(&ping(&s).await), OK, "served from the stale list");
    }
    // One failed refresh, then the 1 s back-off.
    assert_hits(&github, 2, failed, Duration::from_secs(1));
}

#[tokio::test]
async fn past_max_stale_a_failing_github_means_503() {
    let github = GithubStandIn::start(Reply::ranges(LOOPBACK)).await;
    let s = server(
        config(&github)
            .meta_ttl(Duration::from_secs(1))
            .meta_max_stale(Duration::ZERO),
    )
    .await;
    assert_eq!(answer(&ping(&s).await), OK);
    github.set(Reply::raw(502, &[], "bad gateway"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(answer(&ping(&s).await), (503, "Error reaching GitHub"));
}

#[tokio::test]
async fn rate_limited_means_503_until_reset_and_no_calls_before_it() {
    let reset = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let until = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(reset));
    for status in [403, 429] {
        let github = GithubStandIn::start(Reply::raw(
            status,
            &[
                ("x-ratelimit-limit", "60"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset.to_string()),
                ("x-ratelimit-resource", "core"),
            ],
            r#"{"message":"API rate limit exceeded"}"#,
        ))
        .await;
        let s = server(config(&github)).await;
        for _ in 0..10 {
            let a = ping(&s).await;
            assert_eq!(
                answer(&a),
                (
                    503,
                    format!("Rate limited from GitHub until {until}").as_str()
                ),
                "{status}"
            );
        }
        assert_eq!(github.hits(), 1, "{status}");
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let github =
        GithubStandIn::start(Reply::raw(429, &[("retry-after", "120")], "slow down")).await;
    let s = server(config(&github)).await;
    let before = SystemTime::now();
    let (status, body) = ping(&s).await;
    assert_eq!(status, 503);
    let date = body
        .strip_prefix("Rate limited from GitHub until ")
        .expect(&body);
    let until = httpdate::parse_http_date(date).unwrap();
    let wait = until.duration_since(before).unwrap().as_secs();
    assert!((118..=122).contains(&wait), "retry-after 120 gave {wait}s");
    for _ in 0..5 {
        assert_eq!(ping(&s).await.0, 503);
    }
    assert_eq!(github.hits(), 1);
}

#[tokio::test]
async fn errors_back_off_instead_of_calling_github_per_delivery() {
    for reply in [
        Reply::raw(500, &[], "oops"),
        Reply::raw(403, &[], "forbidden, no rate-limit headers"),
        Reply::raw(200, &[], "<html>garbage</html>"),
        Reply::raw(
            200,
            &[("content-type", "application/json")],
            r#"{"hooks":["192.30.252.0/22","nonsense"]}"#,
        ),
        Reply::raw(
            200,
            &[("content-type", "application/json")],
            r#"{"web":["192.30.252.0/22"]}"#,
        ),
        Reply::raw(404, &[], "Not Found"),
    ] {
        let github = GithubStandIn::start(reply.clone()).await;
        let s = server(config(&github)).await;
        let started = Instant::now();
        for _ in 0..10 {
            assert_eq!(
                answer(&ping(&s).await),
                (503, "Error reaching GitHub"),
                "{reply:?}"
            );
        }
        assert_hits(&github, 1, started, Duration::from_secs(1));
    }
}

#[tokio::test]
async fn an_unusable_answer_is_not_cached() {
    let github = GithubStandIn::start(Reply::raw(200, &[], r#"{"hooks":["bad"]}"#)).await;
    let s = server(config(&github)).await;
    assert_eq!(ping(&s).await.0, 503);
    github.set(Reply::ranges(LOOPBACK));
    tokio::time::sleep(Duration::from_millis(1100)).await; // the first back-off step
    assert_eq!(answer(&ping(&s).await), OK);
    assert_eq!(github.hits(), 2);
}

#[tokio::test]
async fn a_hanging_github_is_a_503_within_the_timeout() {
    let github = GithubStandIn::start(Reply::Hang).await;
    let s = server(config(&github).meta_timeout(Duration::from_secs(1))).await;
    let started = Instant::now();
    assert_eq!(answer(&ping(&s).await), (503, "Error reaching GitHub"));
    // Far below GitHub's 10 s delivery timeout (a loose bound: the point is no hang).
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(github.hits(), 1);
}

#[tokio::test]
async fn connection_refused_is_a_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = server(Config::new().secret(SECRET).github_api_url(url)).await;
    assert_eq!(answer(&ping(&s).await), (503, "Error reaching GitHub"));
}

#[tokio::test]
async fn a_fixed_allow_list_replaces_meta() {
    let github = GithubStandIn::start(Reply::ranges(GITHUB)).await;
    let inside = server(config(&github).allowed_ips(["127.0.0.1/32".parse().unwrap()])).await;
    assert_eq!(answer(&ping(&inside).await), OK);
    let outside = server(config(&github).allowed_ips(["10.0.0.0/8".parse().unwrap()])).await;
    assert_eq!(
        answer(&ping(&outside).await),
        (403, "Requests must originate from GitHub")
    );
    assert_eq!(github.hits(), 0, "no request to GitHub at all");
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let github_only = || ["192.30.252.0/22".parse().unwrap()];
    let trusted = server(
        Config::new()
            .secret(SECRET)
            .allowed_ips(github_only())
            .trusted_proxies(["127.0.0.1/32".parse().unwrap()]),
    )
    .await;
    let untrusted = server(Config::new().secret(SECRET).allowed_ips(github_only())).await;
    let c = client();
    let via_proxy =
        |url: &str, xff: &str| delivery(&c, url, "push", "{}").set_header("x-forwarded-for", xff);

    assert_eq!(
        answer(&send(via_proxy(&trusted.url(), "192.30.252.7")).await),
        (200, "client 192.30.252.7")
    );
    assert_eq!(
        answer(&send(via_proxy(&trusted.url(), "192.30.252.7, 127.0.0.1")).await),
        (200, "client 192.30.252.7")
    );
    // A client cannot smuggle a GitHub address in front of its own.
    assert_eq!(
        answer(&send(via_proxy(&trusted.url(), "192.30.252.7, 203.0.113.1")).await).0,
        403
    );
    assert_eq!(
        answer(&send(via_proxy(&trusted.url(), "not-an-ip")).await),
        (400, "Invalid X-Forwarded-For header")
    );
    // From an untrusted peer the header is ignored, garbage or not.
    assert_eq!(
        answer(&send(via_proxy(&untrusted.url(), "192.30.252.7")).await).0,
        403
    );
    assert_eq!(
        answer(&send(via_proxy(&untrusted.url(), "not-an-ip")).await).0,
        403
    );
}

#[tokio::test]
async fn a_router_served_without_peer_addresses_is_a_clear_500() {
    let github = GithubStandIn::start(Reply::ranges(LOOPBACK)).await;
    let router = Hooks::new(config(&github))
        .on("ping", || async { "pong" })
        .router("/hooks");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await }); // no ConnectInfo
    let a = send(delivery(&client(), &url, "ping", "{}")).await;
    assert_eq!(
        answer(&a),
        (500, "Server misconfigured: client address unavailable")
    );
    assert_eq!(github.hits(), 0);
}

#[tokio::test]
async fn warming_fetches_before_the_first_delivery() {
    let github = GithubStandIn::start(Reply::ranges(LOOPBACK)).await;
    let s = server(config(&github).meta_warm(true)).await;
    for _ in 0..100 {
        if github.hits() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(github.hits(), 1, "fetched without any delivery");
    assert_eq!(answer(&ping(&s).await), OK);
    assert_eq!(github.hits(), 1);
}

#[tokio::test]
async fn a_flapping_github_is_called_no_more_than_the_back_off_allows() {
    let github = GithubStandIn::start(Reply::ranges_tagged(LOOPBACK, "\"v1\"")).await;
    let s = server(config(&github).meta_ttl(Duration::from_secs(1))).await;
    assert_eq!(answer(&ping(&s).await), OK);
    github.set(Reply::raw(502, &[], "flap"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let failed = Instant::now();
    for _ in 0..5 {
        assert_eq!(answer(&ping(&s).await), OK, "stale list while GitHub fails");
    }
    assert_hits(&github, 2, failed, Duration::from_secs(1));
    // GitHub is back with a new list: the first attempt after the back-off sees it
    // (polled, since a loaded machine may have stretched the back-off to 2 s).
    github.set(Reply::ranges_tagged(GITHUB, "\"v2\""));
    let back = Instant::now();
    let mut last = ping(&s).await;
    while last.0 == 200 && back.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = ping(&s).await;
    }
    assert_eq!(answer(&last), (403, "Requests must originate from GitHub"));
    assert_hits(&github, 3, failed, Duration::from_secs(1));
}

#[tokio::test]
async fn a_slow_github_within_the_timeout_is_waited_for() {
    let github = GithubStandIn::start(Reply::Slow(
        Duration::from_millis(500),
        Box::new(Reply::ranges(LOOPBACK)),
    ))
    .await;
    let s = server(config(&github).meta_timeout(Duration::from_secs(3))).await;
    assert_eq!(answer(&ping(&s).await), OK);
    assert_eq!(github.hits(), 1);
}
