//! libFuzzer entry of the `elf_notes` target: see `xenolith_fuzz::elf_notes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xenolith_fuzz::elf_notes::run(data));
