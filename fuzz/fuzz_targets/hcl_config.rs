//! libFuzzer entry point; the checks live in [`pledge_fuzz::hcl_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pledge_fuzz::hcl_config(data));
