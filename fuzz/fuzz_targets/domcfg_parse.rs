//! libFuzzer entry of the `domcfg_parse` target: see `xenolith_fuzz::domcfg_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xenolith_fuzz::domcfg_parse::run(data));
