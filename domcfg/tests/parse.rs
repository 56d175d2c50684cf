//! End-to-end tests of `domcfg::parse`: a full configuration, defaults, and every error kind.

use domcfg::{parse, Action, ConfigError, ErrorKind, GuestType, VifType};

const BASE: &str = "name = \"d1\"\ntype = \"hvm\"\nkernel = \"vmlinux\"\n";

fn with(extra: &str) -> Result<domcfg::DomainConfig, ConfigError> {
    parse(&format!("{BASE}{extra}"))
}

fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(c) => panic!("expected an error for {text:?}, got {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn full_example() {
    let text = r#"
# A Debian guest with one NIC.
name = "debian-12"
type = 'pvh'
memory = 1024
maxmem = 0x800          # 2048 MiB
vcpus = 2; maxvcpus = 4
kernel = "vmlinux-6.1"
ramdisk = "initrd.img"
root = "/dev/xvda1 ro"
extra = "console=hvc0 earlyprintk=xen"
vif = [ "mac=00:16:3e:00:00:01,bridge=xenbr0",
        'bridge=xenbr1, model=e1000, type=ioemu',
      ]
iommu = "1"
on_crash = "preserve"
on_poweroff = "destroy"
on_reboot = "restart"
on_watchdog = "coredump-restart"
disk = [ "phy:/dev/vg/debian,xvda,w" ]
serial = "pty"
"#;
    let c = parse(text).unwrap();
    assert_eq!(c.name, "debian-12");
    assert_eq!(c.guest_type, GuestType::Pvh);
    assert_eq!(c.memory_mib, 1024);
    assert_eq!(c.maxmem_mib, Some(2048));
    assert_eq!(c.max_memory_mib(), 2048);
    assert_eq!(c.vcpus, 2);
    assert_eq!(c.maxvcpus, Some(4));
    assert_eq!(c.kernel, "vmlinux-6.1");
    assert_eq!(c.ramdisk.as_deref(), Some("initrd.img"));
    assert_eq!(c.cmdline, "root=/dev/xvda1 ro console=hvc0 earlyprintk=xen");
    assert_eq!(c.vifs.len(), 2);
    assert_eq!(c.vifs[0].mac, Some([0x00, 0x16, 0x3e, 0x00, 0x00, 0x01]));
    assert_eq!(c.vifs[0].bridge.as_deref(), Some("xenbr0"));
    assert_eq!(c.vifs[0].raw, "mac=00:16:3e:00:00:01,bridge=xenbr0");
    assert_eq!(c.vifs[1].mac, None);
    assert_eq!(c.vifs[1].model.as_deref(), Some("e1000"));
    assert_eq!(c.vifs[1].vif_type, Some(VifType::Ioemu));
    assert!(c.iommu);
    assert_eq!(c.on_crash, Action::Preserve);
    assert_eq!(c.on_poweroff, Action::Destroy);
    assert_eq!(c.on_reboot, Action::Restart);
    assert_eq!(c.on_watchdog, Action::CoredumpRestart);
    assert_eq!(
        c.unknown_keys,
        vec!["disk".to_string(), "serial".to_string()]
    );
}

#[test]
fn the_test_guest_config_parses() {
    let text = "name = \"xen-identity\"\ntype = \"hvm\"\nmemory = 32\nvcpus = 1\n\
                kernel = \"test-guest.elf\"\nextra = \"test=identity\"\niommu = 1\n";
    let c = parse(text).unwrap();
    assert_eq!((c.memory_mib, c.vcpus, c.iommu), (32, 1, true));
    assert_eq!(c.cmdline, "test=identity");
    assert_eq!(c.guest_type, GuestType::Hvm);
    assert!(c.unknown_keys.is_empty());
}

#[test]
fn defaults() {
    let c = with("").unwrap();
    assert_eq!(c.memory_mib, domcfg::DEFAULT_MEMORY_MIB);
    assert_eq!(c.maxmem_mib, None);
    assert_eq!(c.vcpus, 1);
    assert_eq!(c.maxvcpus, None);
    assert_eq!(c.ramdisk, None);
    assert_eq!(c.cmdline, "");
    assert!(c.vifs.is_empty());
    assert!(!c.iommu);
    assert_eq!(c.event_channels, 1023);
    assert_eq!(c.on_poweroff, Action::Destroy);
    assert_eq!(c.on_reboot, Action::Restart);
    assert_eq!(c.on_crash, Action::Destroy);
    assert_eq!(c.on_watchdog, Action::Destroy);
    // maxmem alone sets the boot memory too (libxl: target defaults to max).
    assert_eq!(with("maxmem = 64").unwrap().memory_mib, 64);
}

#[test]
fn event_channels() {
    assert_eq!(with("event_channels = 4095").unwrap().event_channels, 4095);
    assert_eq!(with("event_channels = '64'").unwrap().event_channels, 64);
    for bad in [
        "event_channels = 0",
        "event_channels = 131072",
        "event_channels = 'x'",
    ] {
        let e = with(bad).unwrap_err().to_string();
        assert!(e.contains("key 'event_channels'"), "{bad}: {e}");
    }
}

#[test]
fn command_line_like_xl() {
    assert_eq!(with("root = '/dev/sda'").unwrap().cmdline, "root=/dev/sda");
    assert_eq!(with("extra = 'quiet'").unwrap().cmdline, "quiet");
    assert_eq!(with("root = 'r'\nextra = 'e'").unwrap().cmdline, "root=r e");
    assert_eq!(
        with("cmdline = 'c'\nroot = 'r'\nextra = 'e'")
            .unwrap()
            .cmdline,
        "c"
    );
    assert_eq!(with("extra = 'a'\nextra += ' b'").unwrap().cmdline, "a b");
}

#[test]
fn builder_and_type() {
    let c = parse("name='x'\nbuilder='hvm'\nkernel='k'").unwrap();
    assert_eq!(c.guest_type, GuestType::Hvm);
    let c = parse("name='x'\nbuilder='hvm'\ntype='hvm'\nkernel='k'").unwrap();
    assert_eq!(c.guest_type, GuestType::Hvm);
}

#[test]
fn numbers() {
    assert_eq!(with("memory = 0x200").unwrap().memory_mib, 512);
    assert_eq!(with("memory = \"256\"").unwrap().memory_mib, 256);
    assert_eq!(
        with("memory = 010").unwrap().memory_mib,
        8,
        "leading 0 is octal, as in xl"
    );
    assert_eq!(
        with("memory = 64\nmemory = 128").unwrap().memory_mib,
        128,
        "last wins"
    );
    assert_eq!(with("vcpus = 128").unwrap().vcpus, 128);
    assert!(!with("iommu = 0").unwrap().iommu);
    assert_eq!(
        with("name = 42").unwrap().name,
        "42",
        "a bare number is a string to string keys"
    );
}

// ---- one test per error kind -------------------------------------------------------------

#[test]
fn error_display_format() {
    let e = err("name = \"x\"\nkernel = \"k\"\nmemory = \"lots\"\n");
    assert_eq!(e.line, 3);
    assert_eq!(e.key.as_deref(), Some("memory"));
    assert_eq!(
        e.kind,
        ErrorKind::ExpectedInteger {
            found: "\"lots\"".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "line 3, key 'memory': expected an integer, found \"lots\""
    );
}

#[test]
fn unterminated_string() {
    let e = err("name = \"d1\ntype = 'hvm'");
    assert_eq!(
        (e.line, e.key.as_deref(), &e.kind),
        (1, Some("name"), &ErrorKind::UnterminatedString)
    );
    assert_eq!(e.to_string(), "line 1, key 'name': unterminated string");
    assert_eq!(err("name = 'abc").kind, ErrorKind::UnterminatedString);
}

#[test]
fn invalid_escape() {
    let e = with("extra = 'a\\qb'").unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (
            4,
            ErrorKind::InvalidEscape {
                escape: "\\q".into()
            }
        )
    );
}

#[test]
fn unexpected_char() {
    let e = with("memory = $5").unwrap_err();
    assert_eq!(
        (e.line, e.key.as_deref(), e.kind),
        (4, Some("memory"), ErrorKind::UnexpectedChar('$'))
    );
    assert_eq!(err("@").kind, ErrorKind::UnexpectedChar('@'));
}

#[test]
fn expected_key() {
    let e = with("= 5").unwrap_err();
    assert_eq!(
        (e.line, e.key.clone(), e.kind.clone()),
        (
            4,
            None,
            ErrorKind::ExpectedKey {
                found: "'='".into()
            }
        )
    );
    assert_eq!(e.to_string(), "line 4: expected a key, found '='");
}

#[test]
fn missing_equals() {
    let e = with("memory 512").unwrap_err();
    assert_eq!((e.line, e.key.as_deref()), (4, Some("memory")));
    assert_eq!(
        e.kind,
        ErrorKind::MissingEquals {
            found: "512".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "line 4, key 'memory': expected '=', found 512"
    );
    assert!(matches!(
        with("memory\n").unwrap_err().kind,
        ErrorKind::MissingEquals { .. }
    ));
}

#[test]
fn expected_value() {
    let e = with("type2 = hvm").unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::ExpectedValue {
            found: "hvm".into()
        }
    );
    assert!(matches!(
        with("memory =\n").unwrap_err().kind,
        ErrorKind::ExpectedValue { .. }
    ));
    assert!(matches!(
        with("vif = [ 'a' 'b' ]").unwrap_err().kind,
        ErrorKind::ExpectedValue { .. }
    ));
    assert!(matches!(
        with("vif = [ , ]").unwrap_err().kind,
        ErrorKind::ExpectedValue { .. }
    ));
}

#[test]
fn expected_end_of_statement() {
    let e = with("memory = 512 1024").unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::ExpectedEndOfStatement {
            found: "1024".into()
        }
    );
}

#[test]
fn unterminated_list() {
    let e = with("vif = [ 'bridge=xenbr0',\n").unwrap_err();
    assert_eq!(
        (e.line, e.key.as_deref(), e.kind),
        (4, Some("vif"), ErrorKind::UnterminatedList)
    );
}

#[test]
fn nested_list() {
    assert_eq!(
        with("vif = [ [ 'a' ] ]").unwrap_err().kind,
        ErrorKind::NestedList
    );
}

#[test]
fn expected_integer() {
    let e = with("vcpus = [ 1 ]").unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::ExpectedInteger {
            found: "a list".into()
        }
    );
    assert_eq!(
        with("memory = 12x").unwrap_err().kind,
        ErrorKind::ExpectedInteger {
            found: "12x".into()
        }
    );
    assert_eq!(
        with("memory = 1.5").unwrap_err().kind,
        ErrorKind::ExpectedInteger {
            found: "1.5".into()
        }
    );
    assert!(matches!(
        with("memory = 08").unwrap_err().kind,
        ErrorKind::ExpectedInteger { .. }
    ));
}

#[test]
fn expected_string() {
    let e = with("ramdisk = [ 'a' ]").unwrap_err();
    assert_eq!((e.line, e.key.as_deref()), (4, Some("ramdisk")));
    assert_eq!(
        e.kind,
        ErrorKind::ExpectedString {
            found: "a list".into()
        }
    );
}

#[test]
fn expected_list() {
    let e = with("vif = 'bridge=xenbr0'").unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::ExpectedList {
            found: "\"bridge=xenbr0\"".into()
        }
    );
}

#[test]
fn out_of_range() {
    let e = with("memory = 0").unwrap_err();
    assert_eq!((e.line, e.key.as_deref()), (4, Some("memory")));
    assert_eq!(
        e.kind,
        ErrorKind::OutOfRange {
            value: "0".into(),
            min: 1,
            max: domcfg::MAX_MEMORY_MIB
        }
    );
    assert!(matches!(
        with("memory = -5").unwrap_err().kind,
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        with("memory = '-5'").unwrap_err().kind,
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        with("memory = 99999999999999999999999").unwrap_err().kind,
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        with("maxmem = 0").unwrap_err().kind,
        ErrorKind::OutOfRange { .. }
    ));
    assert!(matches!(
        with("vcpus = 0").unwrap_err().kind,
        ErrorKind::OutOfRange { .. }
    ));
    let e = with("vcpus = 129").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 4, key 'vcpus': value 129 is out of range (1 to 128)"
    );
    assert!(matches!(
        with("maxvcpus = 200").unwrap_err().kind,
        ErrorKind::OutOfRange { .. }
    ));
}

#[test]
fn invalid_choice() {
    let e = parse("name='x'\ntype='kvm'\nkernel='k'").unwrap_err();
    assert_eq!((e.line, e.key.as_deref()), (2, Some("type")));
    assert!(matches!(e.kind, ErrorKind::InvalidChoice { ref found, .. } if found == "\"kvm\""));
    for bad in ["iommu = 2", "iommu = 'yes'", "iommu = [1]", "iommu = -1"] {
        let e = with(bad).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("iommu"), "{bad}");
        assert!(matches!(e.kind, ErrorKind::InvalidChoice { .. }), "{bad}");
    }
    let e = with("on_crash = 'explode'").unwrap_err();
    assert_eq!(e.key.as_deref(), Some("on_crash"));
    assert!(matches!(e.kind, ErrorKind::InvalidChoice { .. }));
    assert!(matches!(
        parse("name='x'\nbuilder='linux'\nkernel='k'")
            .unwrap_err()
            .kind,
        ErrorKind::InvalidChoice { .. }
    ));
    assert!(matches!(
        parse("name=''\ntype='hvm'\nkernel='k'").unwrap_err().kind,
        ErrorKind::InvalidChoice { .. }
    ));
    assert!(matches!(
        parse("name='a\\tb'\ntype='hvm'\nkernel='k'")
            .unwrap_err()
            .kind,
        ErrorKind::InvalidChoice { .. }
    ));
    assert!(matches!(
        parse("name='a'\ntype='hvm'\nkernel=''").unwrap_err().kind,
        ErrorKind::InvalidChoice { .. }
    ));
}

#[test]
fn unsupported() {
    let e = parse("name='x'\ntype='pv'\nkernel='k'").unwrap_err();
    assert_eq!(e.key.as_deref(), Some("type"));
    assert!(matches!(e.kind, ErrorKind::Unsupported { .. }));
    let e = parse("name='x'\nbuilder='generic'\nkernel='k'").unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Unsupported { .. }));
}

#[test]
fn invalid_append() {
    assert_eq!(
        with("memory = 5\nmemory += 6").unwrap_err().kind,
        ErrorKind::InvalidAppend
    );
    let e = with("extra = 'a'\nextra += ['b']").unwrap_err();
    assert_eq!((e.line, e.kind), (5, ErrorKind::InvalidAppend));
}

#[test]
fn conflict() {
    let e = with("memory = 512\nmaxmem = 256").unwrap_err();
    assert_eq!((e.line, e.key.as_deref()), (5, Some("maxmem")));
    assert!(matches!(e.kind, ErrorKind::Conflict { .. }));
    assert!(matches!(
        with("vcpus = 4\nmaxvcpus = 2").unwrap_err().kind,
        ErrorKind::Conflict { .. }
    ));
    assert!(matches!(
        parse("name='x'\ntype='pvh'\nbuilder='hvm'\nkernel='k'")
            .unwrap_err()
            .kind,
        ErrorKind::Conflict { .. }
    ));
}

#[test]
fn bad_mac() {
    let e =
        with("memory = 64\nvif = [ 'bridge=xenbr0', 'mac=00:16:3e:00:01,bridge=b' ]").unwrap_err();
    assert_eq!((e.line, e.key.as_deref()), (5, Some("vif")));
    assert_eq!(
        e.kind,
        ErrorKind::BadMac {
            found: "00:16:3e:00:01".into()
        }
    );
    assert!(matches!(
        with("vif = ['mac=01:00:5e:00:00:01']").unwrap_err().kind,
        ErrorKind::BadMac { .. }
    ));
}

#[test]
fn bad_vif() {
    let e = with("vif = [ 'bridge=xenbr0', 'xenbr1' ]").unwrap_err();
    assert!(matches!(e.kind, ErrorKind::BadVif { index: 1, .. }));
    assert!(e.to_string().starts_with("line 4, key 'vif': vif entry 1:"));
}

#[test]
fn missing_key() {
    let e = err("type = 'hvm'\nkernel = 'k'");
    assert_eq!((e.line, e.kind.clone()), (0, ErrorKind::MissingKey("name")));
    assert_eq!(e.to_string(), "missing required key 'name'");
    assert_eq!(
        err("name = 'x'\ntype = 'hvm'").kind,
        ErrorKind::MissingKey("kernel")
    );
    assert_eq!(
        err("name = 'x'\nkernel = 'k'").kind,
        ErrorKind::MissingKey("type")
    );
    assert_eq!(err("").kind, ErrorKind::MissingKey("name"));
}

#[test]
fn earliest_error_is_reported() {
    let e = err("vcpus = 0\nname = 'x'\nmemory = 'lots'\n");
    assert_eq!((e.line, e.key.as_deref()), (1, Some("vcpus")));
    let e = err("memory = 'lots'\nvcpus = 0\n");
    assert_eq!((e.line, e.key.as_deref()), (1, Some("memory")));
    // A missing key only shows once every present value is fine.
    let e = err("kernel = 'k'\ntype = 'hvm'\niommu = 7\n");
    assert_eq!(e.key.as_deref(), Some("iommu"));
}

#[test]
fn crlf_and_windows_style_files() {
    let c = parse("name = 'x'\r\ntype = 'hvm'\r\nkernel = 'k'\r\nmemory = 64\r\n").unwrap();
    assert_eq!(c.memory_mib, 64);
}

#[test]
fn key_line_finds_the_last_setting() {
    let text = "name = 'a'\nkernel = 'k1'\n\nkernel = 'k2'\n";
    assert_eq!(domcfg::key_line(text, "kernel"), Some(4));
    assert_eq!(domcfg::key_line(text, "name"), Some(1));
    assert_eq!(domcfg::key_line(text, "ramdisk"), None);
    assert_eq!(domcfg::key_line("kernel = [", "kernel"), None);
}

#[test]
fn firmware_names_the_boot_image() {
    let c = parse("name='fw'\ntype='hvm'\nfirmware_override='hvmloader.elf'").unwrap();
    assert!(c.firmware);
    assert_eq!(c.kernel, "hvmloader.elf");
    let c = parse("name='fw'\ntype='pvh'\nfirmware='unikernel.elf'\nramdisk='rd'").unwrap();
    assert!(c.firmware);
    assert_eq!(
        (c.kernel.as_str(), c.ramdisk.as_deref()),
        ("unikernel.elf", Some("rd"))
    );
    // firmware_override wins over firmware, as in libxl.
    let c = parse("name='fw'\ntype='hvm'\nfirmware='a'\nfirmware_override='b'").unwrap();
    assert_eq!(c.kernel, "b");
    let c = parse("name='k'\ntype='pvh'\nkernel='vmlinux'").unwrap();
    assert!(!c.firmware);
}

#[test]
fn firmware_errors_name_the_key() {
    let e = parse("name='fw'\ntype='hvm'\nkernel='k'\nfirmware='f'").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 4, key 'firmware': firmware and kernel both name a boot image; give one"
    );
    let e = parse("name='fw'\ntype='hvm'\nfirmware='seabios'").unwrap_err();
    assert!(
        e.to_string().starts_with(
            "line 3, key 'firmware': unsupported: Xen's built-in firmware \"seabios\""
        ),
        "{e}"
    );
    let e = parse("name='fw'\ntype='hvm'\nfirmware_override=''").unwrap_err();
    assert_eq!(e.key.as_deref(), Some("firmware_override"));
    let e = parse("name='fw'\ntype='hvm'").unwrap_err();
    assert_eq!(e.key.as_deref(), Some("kernel"));
}
