//! libFuzzer entry of the `netback_rings` target: see `xenolith_fuzz::netback_rings`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xenolith_fuzz::netback_rings::run(data));
