//! Property tests: `parse` never panics, whatever the input.

use proptest::prelude::*;

/// Fragments that steer random text towards the interesting parts of the grammar.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name".to_string()),
        Just("memory".to_string()),
        Just("maxmem".to_string()),
        Just("vcpus".to_string()),
        Just("maxvcpus".to_string()),
        Just("type".to_string()),
        Just("builder".to_string()),
        Just("kernel".to_string()),
        Just("vif".to_string()),
        Just("iommu".to_string()),
        Just("on_crash".to_string()),
        Just("extra".to_string()),
        Just("root".to_string()),
        Just(" = ".to_string()),
        Just(" += ".to_string()),
        Just("\n".to_string()),
        Just(";".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just("#".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("\\x".to_string()),
        Just("'hvm'".to_string()),
        Just("\"pvh\"".to_string()),
        Just("'mac=00:16:3e:00:00:01,bridge=xenbr0'".to_string()),
        Just("0x".to_string()),
        Just("-".to_string()),
        "[0-9]{1,25}",
        "[a-z_.]{1,8}",
        "\\PC{0,8}",
        any::<char>().prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(s in "\\PC*") {
        let _ = domcfg::parse(&s);
    }

    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        let s = String::from_utf8_lossy(&b);
        let _ = domcfg::parse(&s);
    }

    #[test]
    fn grammar_soup_never_panics(parts in proptest::collection::vec(fragment(), 0..40)) {
        let s = parts.concat();
        if let Err(e) = domcfg::parse(&s) {
            // Errors always render, and point inside the text (or at the file as a whole).
            let _ = e.to_string();
            prop_assert!(e.line <= s.lines().count() + 1);
        }
    }

    #[test]
    fn valid_configs_round_trip(
        name in "[a-zA-Z0-9_-]{1,20}",
        mem in 1u64..=65536,
        vcpus in 1u32..=128,
        iommu in any::<bool>(),
        extra in "[ -~&&[^'\\\\]]{0,40}",
    ) {
        let text = format!(
            "name = '{name}'\ntype = 'hvm'\nmemory = {mem}\nvcpus = {vcpus}\nkernel = 'k'\n\
             extra = '{extra}'\niommu = {}\n",
            iommu as u8
        );
        let c = domcfg::parse(&text).unwrap();
        prop_assert_eq!(c.name, name);
        prop_assert_eq!(c.memory_mib, mem);
        prop_assert_eq!(c.vcpus, vcpus);
        prop_assert_eq!(c.iommu, iommu);
        prop_assert_eq!(c.cmdline, extra);
    }
}
