//! Fuzz target `checkpoint`: see `gumbolt_models::fuzz::checkpoint`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gumbolt_models::fuzz::checkpoint(data));
