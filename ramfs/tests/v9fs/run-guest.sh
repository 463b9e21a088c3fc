#!/usr/bin/env bash
# Boots Debian's Linux kernel under QEMU (TCG), mounts a 9P server with the kernel's
# v9fs client and runs workload.sh on the mount (see init).  The guest reaches the
# server through QEMU user networking with restrict=on: a slirp guestfwd of
# 10.0.2.100:564 to a chardev connected to the server's socket, so nothing leaves QEMU.
#
# usage: run-guest.sh [-v 9p2000|9p2000.L] [-o MOUNTOPTS] [-s FSX_SEED] [-n FSX_OPS]
#                     [-T TIMEOUT_SECS] [-p | -r MIB] SERVER
#   SERVER   unix:PATH or tcp:HOST:PORT, where the 9P server listens
#   -p       run only the POSIX steps (posix.sh), e.g. under another cache mode
#   -r MIB   run throughput.sh instead (RAMFS-RATE lines; MIB MiB written and read)
# env: RAMFS_V9FS_CACHE  where the kernel and its modules are kept
#                        (default /tmp/ramfs-v9fs-cache)
#      RAMFS_V9FS_KERNEL_DEB  use this linux-image .deb instead of downloading one
# Exit status: 0 every step passed, 1 some step failed, 3 the mount failed,
# 4 no result (the guest died early), 124 timeout, 77 this machine cannot run the test
# (missing tools that could not be installed, no kernel), 2 usage.
# Console output goes to stdout; the harness's own notes to stderr.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${RAMFS_V9FS_CACHE:-/tmp/ramfs-v9fs-cache}
VERSION=9p2000.L OPTS= SEED=1 OPS=300 TIMEOUT=240 ONLY= MIB=16
usage() { sed -n '7,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "v:o:s:n:T:pr:h" o; do
  case $o in
    v) VERSION=$OPTARG ;; o) OPTS=$OPTARG ;; s) SEED=$OPTARG ;; n) OPS=$OPTARG ;;
    T) TIMEOUT=$OPTARG ;; p) ONLY=posix ;; r) ONLY=throughput MIB=$OPTARG ;; *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# = 1 ] || usage
SERVER=$1
case $VERSION in 9p2000|9p2000.L) ;; *) usage ;; esac
case $SERVER in
  unix:*) CHARDEV="socket,id=p9,path=${SERVER#unix:}" ;;
  tcp:*:*) hp=${SERVER#tcp:}; CHARDEV="socket,id=p9,host=${hp%:*},port=${hp##*:}" ;;
  *) usage ;;
esac
note() { echo "run-guest: $*" >&2; }
cannot() { note "cannot run here: $*"; exit 77; }

# ---- host tools: install what is missing from Debian ------------------------
static_busybox() { [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; }
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v file >/dev/null || missing+=(file)
static_busybox || missing+=(busybox-static)
command -v cpio >/dev/null || missing+=(cpio)
command -v gcc >/dev/null && [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(gcc libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
  note "installing ${missing[*]}"
  command -v apt-get >/dev/null || cannot "no apt-get to install ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    apt-get update >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
      || cannot "apt-get install ${missing[*]} failed"
  fi
fi
static_busybox || cannot "no statically linked /bin/busybox"

# ---- kernel and modules, cached ------------------------------------------------
KDIR=$CACHE/kernel
mkdir -p "$CACHE"
# Two runs at once must not both fill the cache: the second waits for the first.
exec 9>"$CACHE/.lock"
command -v flock >/dev/null && flock 9
if [ ! -f "$KDIR/ready-2" ]; then
  rm -rf "$KDIR"; mkdir -p "$KDIR"
  deb=${RAMFS_V9FS_KERNEL_DEB:-}
  if [ -z "$deb" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
    if [ -z "$pkg" ]; then
      apt-get update >&2 || true
      pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
    fi
    [ -n "$pkg" ] || cannot "apt cannot resolve linux-image-amd64"
    note "downloading $pkg into $KDIR"
    (cd "$KDIR" && apt-get download "$pkg" >&2) || cannot "apt-get download $pkg failed"
    deb=$(ls "$KDIR"/linux-image-*.deb | head -1)
  fi
  dpkg-deb -x "$deb" "$KDIR/pkg"
  cp "$KDIR"/pkg/boot/vmlinuz-* "$KDIR/vmlinuz"
  # Debian's bzImage carries an xz-compressed ELF kernel.  Booting the uncompressed ELF
  # through QEMU's PVH entry skips seconds of in-guest decompression under TCG; if the
  # payload cannot be found the bzImage is booted instead.
  python3 - "$KDIR/vmlinuz" "$KDIR/vmlinux" <<'PY' >&2 || rm -f "$KDIR/vmlinux"
import lzma, sys
image = open(sys.argv[1], "rb").read()
start = image.find(b"\xfd7zXZ\x00")
if start < 0:
    sys.exit("no xz payload in the bzImage")
elf = lzma.LZMADecompressor().decompress(image[start:])
if not elf.startswith(b"\x7fELF"):
    sys.exit("xz payload is not an ELF kernel")
open(sys.argv[2], "wb").write(elf)
PY
  MODDIR=$(ls -d "$KDIR"/pkg/lib/modules/* | head -1)
  mkdir -p "$KDIR/modules"
  # Modules in dependency order.  A module's dependencies are in its .modinfo section as
  # "depends=a,b"; modules built into the kernel are listed in modules.builtin.
  declare -A loaded=()
  order=()
  find_module() { find "$MODDIR/kernel" \( -name "$1.ko" -o -name "${1//_/-}.ko" \) | head -1; }
  add_module() {
    local name=$1 path dep
    [ -n "${loaded[$name]:-}" ] && return 0
    loaded[$name]=1
    path=$(find_module "$name")
    if [ -z "$path" ]; then
      grep -q "/$name.ko\$" "$MODDIR/modules.builtin" && return 0
      cannot "kernel module $name not in the kernel package"
    fi
    for dep in $(tr '\0' '\n' < "$path" | sed -n 's/^depends=//p' | head -1 | tr ',' ' '); do
      add_module "$dep"
    done
    cp "$path" "$KDIR/modules/"
    order+=("$(basename "$path")")
  }
  for m in virtio_pci virtio_net 9pnet_fd 9p; do add_module "$m"; done
  printf '%s\n' "${order[@]}" > "$KDIR/modules/order"
  # Only the kernel and these modules are kept (and a given .deb is left alone).
  rm -rf "$KDIR/pkg" "$KDIR"/linux-image-*.deb
  touch "$KDIR/ready-2"
fi
command -v flock >/dev/null && flock -u 9

# ---- initramfs: busybox, modules, init, workload, fsx --------------------------
W=$(mktemp -d "${TMPDIR:-/tmp}/ramfs-guest.XXXXXX")
trap 'rm -rf "$W"' EXIT
R=$W/root
mkdir -p "$R"/{bin,sbin,proc,sys,dev,tmp,mnt,etc,lib/modules}
cp /bin/busybox "$R/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$R/bin/$applet"
done
install -m 755 "$HERE/init" "$R/init"
cp "$HERE/workload.sh" "$R/workload.sh"
cp "$HERE/posix.sh" "$R/posix.sh"
cp "$HERE/throughput.sh" "$R/throughput.sh"
gcc -static -O2 -o "$R/bin/fsx" "$HERE/fsx.c"
gcc -static -O2 -o "$R/bin/locktest" "$HERE/locktest.c"
# posix.sh runs steps as alice (also in staff) and bob.
printf '%s\n' root:x:0:0:root:/:/bin/sh nobody:x:65534:65534:nobody:/:/bin/false \
  alice:x:1001:1001:alice:/:/bin/sh bob:x:1003:1003:bob:/:/bin/sh > "$R/etc/passwd"
printf '%s\n' root:x:0: nogroup:x:65534: alice:x:1001: staff:x:1002:alice bob:x:1003: > "$R/etc/group"
cp "$KDIR"/modules/* "$R/lib/modules/"
(cd "$R" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -1 > "$W/initrd")

# ---- boot ------------------------------------------------------------------------
KERNEL=$KDIR/vmlinuz
[ -f "$KDIR/vmlinux" ] && KERNEL=$KDIR/vmlinux
APPEND="console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init ramfs_version=$VERSION"
APPEND+=" ramfs_fsx_seed=$SEED ramfs_fsx_ops=$OPS"
[ -n "$OPTS" ] && APPEND+=" ramfs_opts=$OPTS"
[ -n "$ONLY" ] && APPEND+=" ramfs_only=$ONLY ramfs_mib=$MIB"
BIOS=()
[ -f /usr/share/qemu/qboot.rom ] && BIOS=(-bios /usr/share/qemu/qboot.rom)
Q=(qemu-system-x86_64 -accel tcg -machine q35 -cpu max "${BIOS[@]}" -m 256 -smp 1
   -nographic -nodefaults -no-user-config -serial stdio -no-reboot
   -kernel "$KERNEL" -initrd "$W/initrd" -append "$APPEND"
   -chardev "$CHARDEV"
   -netdev "user,id=n0,restrict=on,ipv6=off,net=10.0.2.0/24,guestfwd=tcp:10.0.2.100:564-chardev:p9"
   -device virtio-net-pci,netdev=n0,romfile=)
note "booting: ${Q[*]}"
set +e
timeout "$TIMEOUT" "${Q[@]}" < /dev/null 2>&1 | tr -d '\r' | tee "$W/console"
qemu_status=${PIPESTATUS[0]}
set -e
[ "$qemu_status" = 124 ] && { note "timeout after $TIMEOUT s"; exit 124; }
grep -q '^RAMFS-MOUNT ok' "$W/console" || { grep -q '^RAMFS-MOUNT failed' "$W/console" && exit 3; exit 4; }
result=$(sed -n 's/^RAMFS-STEPS ok=\([0-9]*\) fail=\([0-9]*\).*/\2/p' "$W/console" | tail -1)
[ -n "$result" ] || exit 4
[ "$result" = 0 ] && exit 0
exit 1
