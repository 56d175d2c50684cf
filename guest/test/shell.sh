# Mode shell (`make run`, the console-input scenario): the guest's vif up, then
# an interactive shell on hvc0, the console the serial line types into. There
# is no init to signal, so `poweroff` and `reboot` act at once; leaving the
# shell (exit, Ctrl-D) powers off too.
. /test/lib-net.sh
net_up
name=$(xenstore-read name 2>/dev/null || echo guest)
hostname "$name"
mkdir -p /etc
cat >/etc/profile <<'PROFILE'
alias poweroff='poweroff -f'
alias reboot='reboot -f'
alias halt='poweroff -f'
PS1='\h:\w# '
PROFILE
say "shell ready (poweroff ends the domain)"
if command -v cttyhack >/dev/null 2>&1; then
    setsid cttyhack sh -l
else
    sh -l
fi
say "shell exited"
