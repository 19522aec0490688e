use hookserver::{Config, Delivery, Hooks, Payload, State, hook};
use serde::Deserialize;
use serde_json::Value;

/// Documented handlers keep their docs on the generated struct.
#[hook("ping")]
async fn ping(_payload: Value) -> &'static str {
    "pong"
}

#[derive(Deserialize)]
struct Push {
    r#ref: String,
}

#[hook("push")]
pub(crate) async fn push(Payload(push): Payload<Push>, delivery: Delivery) -> String {
    format!("{} {}", delivery.guid(), push.r#ref)
}

#[hook("pull_request.opened", "pull_request.reopened")]
fn pr(_payload: Value) -> axum::http::StatusCode {
    axum::http::StatusCode::ACCEPTED
}

#[hook("*")]
async fn everything_else() {}

#[derive(Clone)]
struct App;

#[hook("issues")]
async fn with_state(State(_app): State<App>) -> &'static str {
    "ok"
}

fn main() {
    let config = || Config::new().secret("s").validate_ip(false);
    let _ = Hooks::new(config()).hook(ping).hook(push).hook(pr).hook(everything_else).router("/hooks");
    let _ = Hooks::with_state(config(), App).hook(with_state).hook(ping).router("/hooks");
    assert_eq!(hookserver::__private::Hook::<()>::events(&pr), &["pull_request.opened", "pull_request.reopened"]);
}
