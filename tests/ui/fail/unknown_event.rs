use hookserver::hook;

#[hook("pul_request")]
async fn typo() {}

#[hook("pul_request.opened")]
async fn typo_with_action() {}

#[hook("brand_new_event")]
async fn too_new() {}

fn main() {}
