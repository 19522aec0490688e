use hookserver::{Config, Hooks, hook};

#[hook("repository_dispatch.on-demand-test", "repository_dispatch.release.v2")]
async fn dispatched() -> &'static str {
    "dispatched"
}

#[hook("repository_dispatch.deployTrigger", "repository_dispatch")]
async fn any_dispatch() {}

/// An event newer than hookserver's list.
#[hook("brand_new_event", unchecked)]
async fn too_new() {}

#[hook(unchecked, "push.brand_new_action", "pull_request.opened")]
async fn newer_action() {}

fn main() {
    let _ = Hooks::new(Config::new().secret("s").validate_ip(false))
        .hook(dispatched)
        .hook(any_dispatch)
        .hook(too_new)
        .hook(newer_action)
        .router("/hooks");
    assert_eq!(
        hookserver::__private::Hook::<()>::events(&dispatched),
        &["repository_dispatch.on-demand-test", "repository_dispatch.release.v2"]
    );
}
