use hookserver::hook;

#[hook("push")]
async fn on_push<T>(_t: T) {}

fn main() {}
