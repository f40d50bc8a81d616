#!/bin/sh
# lab-smoke: build the namespace NAT lab under a private prefix, run its
# self-check (isolation, no SIP ALG, NAT behaviour), tear it down and make
# sure nothing is left.  Exit 0 pass, 1 fail, 77 skip (not root, tool
# missing) unless SIPNAT_REQUIRE_ALL=1 turns a skip into a failure.

srcdir="${SIPNAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
LAB="$srcdir/tests/lab/sipnat-lab"

skip() {
	if [ "${SIPNAT_REQUIRE_ALL:-0}" = 1 ]; then
		echo "lab-smoke: FAIL (SIPNAT_REQUIRE_ALL=1): $*"
		exit 1
	fi
	echo "lab-smoke: SKIP: $*"
	exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
for t in bash ip iptables iptables-restore sysctl python3; do
	command -v "$t" >/dev/null 2>&1 || skip "missing $t"
done
[ -r "$LAB" ] || skip "missing $LAB"

SIPNAT_LAB_PREFIX="snt$$-"
export SIPNAT_LAB_PREFIX
trap 'bash "$LAB" down' EXIT
trap 'exit 1' INT TERM

bash "$LAB" up || {
	echo "lab-smoke: FAIL: up"
	exit 1
}
bash "$LAB" check || {
	echo "lab-smoke: FAIL: check"
	bash "$LAB" status
	exit 1
}
bash "$LAB" down || exit 1
left="$(ip netns list | grep -c "^$SIPNAT_LAB_PREFIX")"
if [ "$left" != 0 ]; then
	echo "lab-smoke: FAIL: $left namespaces left after down"
	exit 1
fi
echo "lab-smoke: PASS"
exit 0
