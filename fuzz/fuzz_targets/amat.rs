//! Fuzz target `amat`: see `gumbolt_models::data::fuzz::amat`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gumbolt_models::data::fuzz::amat(data));
