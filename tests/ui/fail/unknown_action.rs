use hookserver::hook;

#[hook("pull_request.openned")]
async fn typo() {}

// Everything after the first `.` is the action.
#[hook("pull_request.opened.again")]
async fn too_deep() {}

#[hook("star.zzzzzzzz")]
async fn far_off() {}

fn main() {}
