use hookserver::{Config, Hooks, hook};

#[hook("push")]
async fn on_push(_count: u32) -> &'static str {
    "ok"
}

fn main() {
    let _ = Hooks::new(Config::new().secret("s")).hook(on_push);
}
