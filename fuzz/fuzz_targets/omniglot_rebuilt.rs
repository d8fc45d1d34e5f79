//! Fuzz target `omniglot_rebuilt`: see `gumbolt_models::data::fuzz::omniglot_rebuilt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gumbolt_models::data::fuzz::omniglot_rebuilt(data));
