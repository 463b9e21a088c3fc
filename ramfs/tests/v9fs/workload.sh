# File operations on the 9P mount, run by the guest's /init (busybox sh).
# Arguments: MOUNTPOINT VERSION FSX_SEED FSX_OPS [posix].  Prints one "RAMFS-STEP OK|FAIL
# name" line per step and "RAMFS-STEPS ok=N fail=M" at the end; exits with the failure
# count.  With "posix", only the steps of posix.sh run.
M=$1 VERSION=$2 FSX_SEED=$3 FSX_OPS=$4 ONLY=${5:-}
ok=0 fails=0
step() {
  name=$1; shift
  out=$("$@" 2>&1); r=$?
  if [ $r = 0 ]; then
    echo "RAMFS-STEP OK   $name"; ok=$((ok + 1))
  else
    echo "RAMFS-STEP FAIL $name (exit $r)"
    [ -n "$out" ] && echo "$out" | head -20 | sed 's/^/    /'
    fails=$((fails + 1))
  fi
}
# "expect CMD" succeeds when CMD's output equals the expected text.
expect() { want=$1; shift; got=$("$@" 2>&1); [ "$got" = "$want" ] || { echo "got [$got] want [$want]"; return 1; }; }

D=$M/work
if [ "$ONLY" = posix ]; then
  step mkdir mkdir $D
  . /posix.sh
  step rm-r rmdir $D
  cd /
  step umount umount $M
  echo "RAMFS-STEPS ok=$ok fail=$fails"
  exit $fails
fi
step mkdir            mkdir $D
step mkdir-nested     mkdir -p $D/sub/deeper
step create           touch $D/a.txt
step create-size0     expect 0 stat -c %s $D/a.txt
step write            sh -c "echo hello-9p > $D/a.txt"
step append           sh -c "echo line2 >> $D/a.txt"
step read-back        expect "$(printf 'hello-9p\nline2')" cat $D/a.txt
step stat-size        expect 15 stat -c %s $D/a.txt
step ls-l             sh -c "ls -l $D | grep -q ' a.txt\$'"
step ls-l-dir-type    sh -c "ls -ld $D/sub | grep -q '^d'"
step rename           mv $D/a.txt $D/b.txt
step rename-gone      sh -c "[ ! -e $D/a.txt ] && [ -f $D/b.txt ]"
step rename-content   expect "$(printf 'hello-9p\nline2')" cat $D/b.txt
step rename-dir       mv $D/sub $D/sub2
step rename-dir-check sh -c "[ -d $D/sub2/deeper ] && [ ! -e $D/sub ]"
step truncate-shrink  truncate -s 5 $D/b.txt
step truncate-content expect hello cat $D/b.txt
step truncate-grow    truncate -s 100000 $D/b.txt
step truncate-size    expect 100000 stat -c %s $D/b.txt
step truncate-zeros   sh -c "head -c 99995 /dev/zero > /tmp/z && tail -c +6 $D/b.txt > /tmp/t && cmp /tmp/z /tmp/t"
step chmod            chmod 640 $D/b.txt
step chmod-check      expect 640 stat -c %a $D/b.txt
step write-1MiB       sh -c "dd if=/dev/urandom of=/tmp/r bs=64k count=16 2>/dev/null && cp /tmp/r $D/r"
step read-1MiB        cmp /tmp/r $D/r
# busybox picks its applet from argv[0], so the copy keeps the name "busybox".
step cp-static-binary cp /bin/busybox $D/busybox
step chmod-x          chmod 755 $D/busybox
step exec-from-mount  expect exec-works $D/busybox echo exec-works
if [ "$VERSION" = 9p2000 ]; then
  # Plain 9P2000 has no symlinks: Linux refuses them before sending anything.
  step symlink-refused sh -c "! ln -s b.txt $D/link 2>/dev/null && [ ! -L $D/link ]"
else
  step symlink        ln -s b.txt $D/link
  step readlink       expect b.txt readlink $D/link
  step symlink-follow expect hello sh -c "head -c 5 $D/link"
  step hardlink       ln $D/busybox $D/hard
  step hardlink-same  cmp $D/busybox $D/hard
  step hardlink-count expect 2 stat -c %h $D/busybox
  step mkfifo         sh -c "mkfifo $D/fifo && [ -p $D/fifo ]"
  step touch-mtime    touch -d '2001-02-03 04:05:06' $D/b.txt
  step mtime-check    sh -c "stat -c %y $D/b.txt | grep -q 2001-02-03"
  step fsync          sh -c "dd if=/dev/zero of=$D/synced bs=4k count=4 conv=fsync 2>/dev/null"
  step locks          /bin/locktest $D/b.txt
  step statfs         df $M
  . /posix.sh
fi
step fsx              sh -c "/bin/fsx -s '$FSX_SEED' -n '$FSX_OPS' -c /tmp/fsx.copy $D/fsx.dat > /tmp/fsx.out 2>&1; r=\$?; cat /tmp/fsx.out; exit \$r"
grep '^fsx: ' /tmp/fsx.out | sed 's/^/    /'
step readdir-many     sh -c "for i in \$(seq 1 40); do echo \$i > $D/sub2/f\$i || exit 1; done; [ \$(ls $D/sub2 | wc -l) = 41 ]"
step rm               sh -c "rm $D/b.txt $D/r $D/busybox && [ ! -e $D/b.txt ]"
step rmdir-nonempty-refused sh -c "! rmdir $D/sub2 2>/dev/null"
step rm-r             rm -r $D
step gone             sh -c "[ ! -e $D ] && [ -z \"\$(ls -A $M)\" ]"
cd /
step umount           umount $M
echo "RAMFS-STEPS ok=$ok fail=$fails"
exit $fails
