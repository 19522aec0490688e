use hookserver::hook;

#[hook("push")]
struct OnPush;

fn main() {}
