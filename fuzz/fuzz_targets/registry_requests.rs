//! What Drawbridge reads from a request before anything else: the route, repository names, tags
//! and digests, the Authorization header, and token scopes.
#![no_main]

use moat_drawbridge::{auth, names};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = auth::parse_authorization(Some(data));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = names::parse_route(text);
    let _ = names::RepoName::parse(text);
    let _ = names::Tag::parse(text);
    let _ = names::Reference::parse(text);
    let _ = auth::Scope::parse(text);
    let _ = auth::parse_scopes(text);
    let _ = auth::validate_user(text);
});
