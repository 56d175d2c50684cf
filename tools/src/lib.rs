//! Host tooling for xenolith: builds the hypervisor and the test guest, makes boot ISOs, runs
//! scenarios in an emulator (Bochs, or QEMU with nested KVM on Intel hosts), runs the host test
//! suites, the fuzzers and the benchmarks. The binary `xenolith-tools` is the command line over this library.

pub mod bench;
pub mod boot_bench;
pub mod breakdown;
pub mod build;
pub mod decompress;
pub mod emulator;
pub mod fuzz;
pub mod guest_image;
pub mod guest_kernel;
pub mod guest_profile;
pub mod hosttests;
pub mod iso;
pub mod net_bench;
pub mod netfront_bench;
pub mod paths;
pub mod runner;
pub mod scenario_run;
pub mod serial_link;
pub mod setup;
pub mod user_domains;
