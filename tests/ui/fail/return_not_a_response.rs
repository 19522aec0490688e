use hookserver::{Config, Hooks, hook};

struct NotAResponse;

#[hook("push")]
async fn on_push() -> NotAResponse {
    NotAResponse
}

fn main() {
    let _ = Hooks::new(Config::new().secret("s")).hook(on_push);
}
