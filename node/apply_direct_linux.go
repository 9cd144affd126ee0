package node

import "syscall"

// oDirect is the open flag for direct writes.
const oDirect = syscall.O_DIRECT
