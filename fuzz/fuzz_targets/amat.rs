//! Fuzz target `amat`: see `gumbolt_datasets::fuzz::amat`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gumbolt_datasets::fuzz::amat(data));
