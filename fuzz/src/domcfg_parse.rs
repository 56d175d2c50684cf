//! `domcfg_parse`: the `xl.cfg` parser ([`domcfg::parse`]) on any text.
//!
//! The input is the configuration's text (invalid UTF-8 is replaced, as a module's bytes would
//! be read). Besides never panicking, the parser must keep its promises: an error renders and
//! names a line of the text (or 0, the file as a whole); an accepted configuration respects the
//! documented bounds (1..=`MAX_VCPUS` vCPUs, `memory` and `maxmem` within `MAX_MEMORY_MIB`,
//! `maxmem` and `maxvcpus` not below `memory` and `vcpus`). The MAC parser is also driven
//! alone, on each of the first lines.

use alloc::string::String;

/// Runs one input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match domcfg::parse(&text) {
        Ok(c) => {
            assert!((1..=domcfg::MAX_VCPUS).contains(&c.vcpus), "{c:?}");
            assert!(c
                .maxvcpus
                .is_none_or(|m| m >= c.vcpus && m <= domcfg::MAX_VCPUS));
            assert!(c.memory_mib <= domcfg::MAX_MEMORY_MIB, "{c:?}");
            assert!(c.max_memory_mib() >= c.memory_mib, "{c:?}");
            assert!(c.max_memory_mib() <= domcfg::MAX_MEMORY_MIB, "{c:?}");
            assert!(!c.name.is_empty() && !c.kernel.is_empty(), "{c:?}");
            // Parsing is a function of the text.
            assert_eq!(domcfg::parse(&text).as_ref(), Ok(&c));
        }
        Err(e) => {
            let _ = alloc::format!("{e}");
            assert!(e.line <= text.split('\n').count(), "{e:?}");
        }
    }
    for line in text.lines().take(8) {
        if let Some(mac) = domcfg::parse_mac(line) {
            assert_eq!(mac[0] & 1, 0, "{line:?}: a multicast MAC");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        super::run(b"name='a'\ntype='hvm'\nkernel='k'\nmemory=0x10\nvcpus=2\n");
        super::run(b"vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0', ]\n\"\\x");
        super::run(&[0xff, b'=', b'[']);
    }
}
