#!/bin/sh
# Builds a busybox root filesystem (and, with --bundle, an OCI bundle around
# it) from Debian's static busybox: every applet linked, /etc/passwd and
# /etc/group, /tmp with mode 1777. Offline: needs only busybox-static.
#
#   scripts/mk-busybox-rootfs.sh DIR            # rootfs in DIR
#   scripts/mk-busybox-rootfs.sh --bundle DIR   # DIR/rootfs + DIR/config.json (berth oci spec)
set -eu

bundle=0
if [ "${1:-}" = "--bundle" ]; then bundle=1; shift; fi
dest=${1:?usage: $0 [--bundle] DIR}

bb=${BUSYBOX:-$(command -v busybox || true)}
if [ -z "$bb" ] || ! "$bb" --list >/dev/null 2>&1; then
	echo "error: a busybox binary is needed (Debian: apt-get install busybox-static)" >&2
	exit 1
fi
if ldd "$bb" >/dev/null 2>&1; then
	echo "error: $bb is dynamically linked; install busybox-static" >&2
	exit 1
fi

rootfs=$dest
[ "$bundle" = 1 ] && rootfs=$dest/rootfs
mkdir -p "$rootfs"
cd "$rootfs"
mkdir -p bin sbin usr/bin usr/sbin etc dev proc sys tmp root home var/run run
chmod 1777 tmp
chmod 0700 root
cp "$bb" bin/busybox
chmod 0755 bin/busybox
for applet in $("$bb" --list-full); do
	case "$applet" in bin/busybox) continue ;; esac
	mkdir -p "$(dirname "$applet")"
	# relative links so they resolve inside the rootfs
	up=$(dirname "$applet" | sed 's|[^/][^/]*|..|g')
	[ -e "$applet" ] || ln -s "$up/bin/busybox" "$applet"
done
cat >etc/passwd <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PW
cat >etc/group <<'GR'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
GR
echo "hosts: files dns" >etc/nsswitch.conf
: >etc/hosts
: >etc/resolv.conf

if [ "$bundle" = 1 ]; then
	berth=${BERTH:-berth}
	rm -f "$dest/config.json"
	"$berth" oci spec --bundle "$dest"
	# a runnable default: no terminal, run a shell command
	sed -i -e 's/"terminal": true/"terminal": false/' "$dest/config.json"
fi
