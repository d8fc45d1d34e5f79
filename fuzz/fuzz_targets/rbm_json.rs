//! Fuzz target `rbm_json`: see `gumbolt_priors::fuzz::rbm_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gumbolt_priors::fuzz::rbm_json(data));
