use hookserver::hook;

struct Bot;

impl Bot {
    #[hook("push")]
    async fn on_push(&self) {}
}

fn main() {}
