//! View filter expressions come from clients (CreateTopics configs): parsing any text,
//! and evaluating whatever parses against headers taken from the same input, must
//! neither panic nor recurse without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The filter module is std-only; including its source keeps the broker's dependencies
// (tokio, openraft, ...) out of the fuzz build.
#[path = "../../broker/src/view/filter.rs"]
#[allow(dead_code)]
mod filter;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (expr, headers) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(f) = filter::Filter::parse(expr) else {
        return;
    };
    // Headers as "name=value" lines after the first line.
    let pairs: Vec<(&str, &str)> = headers
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let _ = f.matches(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v));
    let _ = f.matches_all();
    let _ = f.tags();
});
