package store

import "golang.org/x/sys/unix"

// sysFstatat is the fstatat system call that fills a unix.Stat_t.
const sysFstatat = unix.SYS_NEWFSTATAT
