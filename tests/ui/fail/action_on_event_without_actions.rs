use hookserver::hook;

#[hook("push.created")]
async fn on_push() {}

fn main() {}
