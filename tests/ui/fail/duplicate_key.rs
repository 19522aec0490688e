use hookserver::hook;

#[hook("push", "ping", "push")]
async fn on_push() {}

fn main() {}
