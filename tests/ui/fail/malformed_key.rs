use hookserver::hook;

#[hook("Push")]
async fn upper() {}

#[hook("pull_request.opened.again")]
async fn too_deep() {}

#[hook("pull-request")]
async fn dash() {}

fn main() {}
