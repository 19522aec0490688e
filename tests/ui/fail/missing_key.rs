use hookserver::hook;

#[hook]
async fn on_push() {}

fn main() {}
