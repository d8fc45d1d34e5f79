//! Fuzz target `matfile`: see `gumbolt_models::data::fuzz::matfile`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gumbolt_models::data::fuzz::matfile(data));
