# Sourced by the netfront mode: Debian's own xenstore client tools against
# the hypervisor's xenstore, through the kernel's /dev/xen/xenbus. Each check
# prints what the tool itself answered.
xs_checks() {
    command -v xenstore-ls >/dev/null || { say "xenstore FAIL no xenstore-utils"; return; }
    xenstore-ls device | sed 's/^/GUEST xenstore-ls: /'
    say "xenstore-read domid=$(xenstore-read domid 2>&1)"
    say "xenstore-read name=$(xenstore-read name 2>&1)"
    xenstore-write data/xenolith-test hello && say "xenstore-read data/xenolith-test=$(xenstore-read data/xenolith-test)"
    # A watch fires once when set, then once per change (-n 2: exit after two events).
    xenstore-watch -n 2 data/xenolith-watch >/tmp/xs.watch 2>&1 &
    w=$!
    sleep 1
    xenstore-write data/xenolith-watch changed
    n=0
    while kill -0 $w 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    say "xenstore-watch events=$(wc -l </tmp/xs.watch) last=$(tail -n1 /tmp/xs.watch)"
    # Another domain's home is not ours: the server answers EACCES.
    say "xenstore-write other-domain: $(xenstore-write /local/domain/0/xenolith-test x 2>&1 || true)"
    xenstore-rm data/xenolith-test && say "xenstore-exists after rm: $(xenstore-exists data/xenolith-test 2>&1 && echo yes || echo no)"
}
xs_checks
