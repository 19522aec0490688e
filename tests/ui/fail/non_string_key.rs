use hookserver::hook;

#[hook(push)]
async fn on_push() {}

fn main() {}
