//! libFuzzer entry of the `hypercall_dispatch` target: see `xenolith_fuzz::hypercall_dispatch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xenolith_fuzz::hypercall_dispatch::run(data));
