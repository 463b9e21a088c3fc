# Throughput on the 9P mount, for ranking mount options (run by the guest's /init when
# ramfs_only=throughput).  Arguments: MOUNTPOINT MIB.  Prints "RAMFS-RATE NAME VALUE UNIT"
# lines: a sequential write and read of MIB MiB in 1 MiB blocks (the page cache dropped
# in between, so the read reaches the server), a 4 KiB-block read of the same file, and
# create+stat+remove of small files; then "RAMFS-STEPS ok=N fail=M".  Under emulation
# these figures compare mount options with each other, not servers.
M=$1 MIB=${2:-16}
ok=0 fails=0
now() { cut -d' ' -f1 /proc/uptime; }
# rate NAME UNIT AMOUNT START END: prints AMOUNT/(END-START); a zero interval is a failure.
rate() {
  span=$(echo "$5 - $4" | bc)
  if [ "$(echo "$span > 0" | bc)" = 1 ]; then
    echo "RAMFS-RATE $1 $(echo "scale=2; $3 / $span" | bc) $2"; ok=$((ok + 1))
  else
    echo "RAMFS-RATE-FAIL $1 (no measurable time)"; fails=$((fails + 1))
  fi
}
F=$M/throughput.bin
s=$(now); dd if=/dev/zero of=$F bs=1M count=$MIB 2>/dev/null && sync; r=$?; e=$(now)
[ $r = 0 ] && rate write-1M MiB/s $MIB $s $e || { echo "RAMFS-RATE-FAIL write-1M"; fails=$((fails + 1)); }
echo 3 > /proc/sys/vm/drop_caches
s=$(now); dd if=$F of=/dev/null bs=1M 2>/dev/null; r=$?; e=$(now)
[ $r = 0 ] && rate read-1M MiB/s $MIB $s $e || { echo "RAMFS-RATE-FAIL read-1M"; fails=$((fails + 1)); }
echo 3 > /proc/sys/vm/drop_caches
s=$(now); dd if=$F of=/dev/null bs=4k 2>/dev/null; r=$?; e=$(now)
[ $r = 0 ] && rate read-4k MiB/s $MIB $s $e || { echo "RAMFS-RATE-FAIL read-4k"; fails=$((fails + 1)); }
rm -f $F
N=200
mkdir -p $M/meta
s=$(now)
i=0; r=0
while [ $i -lt $N ]; do
  : > $M/meta/f$i && stat $M/meta/f$i > /dev/null && rm $M/meta/f$i || r=1
  i=$((i + 1))
done
e=$(now)
[ $r = 0 ] && rate create-stat-remove files/s $N $s $e || { echo "RAMFS-RATE-FAIL create-stat-remove"; fails=$((fails + 1)); }
rmdir $M/meta
cd /
umount $M || fails=$((fails + 1))
echo "RAMFS-STEPS ok=$ok fail=$fails"
exit $fails
