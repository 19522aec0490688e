use hookserver::hook;

#[hook("brand_new_event", uncheked)]
async fn misspelt() {}

#[hook("brand_new_event", unchecked = true)]
async fn with_value() {}

#[hook("brand_new_event", unchecked, unchecked)]
async fn twice() {}

#[hook("brand_new_event", 1)]
async fn not_an_identifier() {}

fn main() {}
