//! libFuzzer entry of the `xenstore_wire` target: see `xenolith_fuzz::xenstore_wire`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xenolith_fuzz::xenstore_wire::run(data));
