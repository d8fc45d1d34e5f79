//! Fuzz target `matfile`: see `gumbolt_datasets::fuzz::matfile`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gumbolt_datasets::fuzz::matfile(data));
