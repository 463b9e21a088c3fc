# POSIX cases of pjdfstest's that ramfs once failed, one step each, as root and as the
# users of the guest's /etc/passwd: alice (1001, also in group staff, 1002) and bob
# (1003, in no other group).  Sourced by workload.sh for 9P2000.L mounts (it uses
# workload.sh's step and expect); $D is the work directory on the mount.
# 9P2000.L carries a caller's uid but not its groups: ramfs trusts the client's own
# checks on a connection root attached (the mount's), so these pass only if it does.
P=$D/posix
# as USER CMD: CMD by USER's shell (busybox su sets the groups of /etc/group).
as() { who=$1; shift; su "$who" -c "$*"; }
step posix-setup       sh -c "mkdir $P && chmod 777 $P"
# chown/00.t: an owner's chgrp to one of its groups (EPERM when ramfs took the group to
# be the uid), which clears the set-id bits of a file (chown by other than root).
step chgrp-own-group   as alice "touch $P/a && chmod 6755 $P/a && chgrp staff $P/a"
step chgrp-group-check expect 1002 stat -c %g $P/a
step chgrp-clears-setid expect 755 stat -c %a $P/a
step chgrp-not-member-refused sh -c "su bob -c 'touch $P/b' && ! su bob -c 'chgrp staff $P/b' 2>/dev/null"
# open/06.t: a group member is judged by the group bits, not the other bits.
step group-file        sh -c "echo secret > $P/g && chown 0:1002 $P/g && chmod 640 $P/g"
step group-member-reads expect secret as alice "cat $P/g"
step other-refused     sh -c "! su bob -c 'cat $P/g' 2>/dev/null"
# Tmkdir and Tlcreate carry the group: a set-group-id directory's, here.
step sgid-dir          sh -c "mkdir $P/s && chown 0:1002 $P/s && chmod 2777 $P/s"
step sgid-dir-inherits sh -c "su bob -c 'touch $P/s/f && mkdir $P/s/d' && [ \$(stat -c %g $P/s/f) = 1002 ] && [ \$(stat -c %g $P/s/d) = 1002 ]"
# chmod/12.t: another user's write clears the set-id bits (and is not refused).
step setid-file        sh -c "touch $P/x && chmod 6777 $P/x"
step other-writes      as bob "echo x >> $P/x"
step write-clears-setid expect 777 stat -c %a $P/x
step root-write-keeps  sh -c "chmod 6777 $P/x && echo y >> $P/x && [ \$(stat -c %a $P/x) = 6777 ]"
# ftruncate/00.t: a file created with mode 0 and opened read-write can be truncated
# (busybox truncate opens with O_CREAT, then ftruncates; umask 777 makes the mode 0).
step ftruncate-mode0-root sh -c "(umask 777; truncate -s 5 $P/z0) && [ \$(stat -c %s.%a $P/z0) = 5.0 ]"
step ftruncate-mode0-user as alice "umask 777; truncate -s 7 $P/z1 && [ \$(stat -c %s.%a $P/z1) = 7.0 ]"
step posix-cleanup     rm -r $P
