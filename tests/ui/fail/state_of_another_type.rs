use hookserver::{Config, Hooks, State, hook};

#[derive(Clone)]
struct App;

#[hook("push")]
async fn on_push(State(_app): State<App>) -> &'static str {
    "ok"
}

fn main() {
    // Registered on a registry without state: `State<App>` cannot be extracted.
    let _ = Hooks::new(Config::new().secret("s")).hook(on_push);
}
