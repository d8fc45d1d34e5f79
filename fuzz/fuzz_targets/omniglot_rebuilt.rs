//! Fuzz target `omniglot_rebuilt`: see `gumbolt_datasets::fuzz::omniglot_rebuilt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gumbolt_datasets::fuzz::omniglot_rebuilt(data));
