//! libFuzzer entry point; the checks live in [`pledge_fuzz::job_file`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pledge_fuzz::job_file(data));
