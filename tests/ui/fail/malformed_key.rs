use hookserver::hook;

#[hook("Push")]
async fn upper() {}

#[hook("pull-request")]
async fn dash() {}

#[hook("issues.*")]
async fn star_action() {}

#[hook("push.")]
async fn empty_action() {}

#[hook("repository_dispatch.deploy\tprod")]
async fn control_character() {}

fn main() {}
