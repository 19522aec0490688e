use hookserver::hook;

// The key is wrong, and the body is still type-checked: both are reported.
#[hook("pull_request.openned")]
async fn opened() -> u32 {
    "not a number"
}

fn main() {}
