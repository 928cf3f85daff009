// SPDX-License-Identifier: MIT
/*
 * The data plane's seccomp filter: the system calls its workers make once they
 * run, and nothing else. io_uring operations themselves are not seen by
 * seccomp (the kernel runs them), but io_uring_enter is, and the rings are
 * made before the filter matters.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dataplane/sandbox.h"

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

#define NR_OFF (offsetof(struct seccomp_data, nr))
#define ARCH_OFF (offsetof(struct seccomp_data, arch))
/* The low 32 bits of argument @i (little endian): every value checked here fits in them. */
#define ARG_OFF(i) (offsetof(struct seccomp_data, args) + 8 * (i))

#define LOAD(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
/* If the accumulator is @nr, allow; else go on. */
#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), RET(SECCOMP_RET_ALLOW)

/*
 * Allowed with any arguments: the workers' loop (io_uring_enter), tunnel
 * start and end (fcntl, pipe2 for splice, setsockopt for kTLS and SO_LINGER,
 * getsockopt, shutdown, connect, close), answers to handoffs (send on the
 * worker's own socket) and the alert or close_notify of a tunnel it ends
 * outside the ring (send, sendmsg: idle.c), logging (write), memory (the allocator and
 * thread stacks), thread teardown, and abort(). clone is absent: every
 * thread exists before the filter goes in.
 */
static const struct sock_filter allowed_tail[] = {
    LOAD(NR_OFF),
    ALLOW(__NR_io_uring_enter),
    ALLOW(__NR_io_uring_setup),
    ALLOW(__NR_io_uring_register),
    ALLOW(__NR_futex),
    ALLOW(__NR_write),
    ALLOW(__NR_writev),
    ALLOW(__NR_close),
    ALLOW(__NR_shutdown),
    ALLOW(__NR_sendto),
    ALLOW(__NR_sendmsg),
    /* connect(AF_UNSPEC): a reset for a tunnel that broke (tunnel_ops.c); no socket is made */
    ALLOW(__NR_connect),
    ALLOW(__NR_fcntl),
    ALLOW(__NR_pipe2),
    ALLOW(__NR_setsockopt),
    ALLOW(__NR_getsockopt),
    ALLOW(__NR_munmap),
    ALLOW(__NR_madvise),
    ALLOW(__NR_mremap),
    ALLOW(__NR_brk),
    ALLOW(__NR_clock_gettime),
    ALLOW(__NR_gettimeofday),
    ALLOW(__NR_getrandom),
    ALLOW(__NR_rt_sigprocmask),
    ALLOW(__NR_rt_sigreturn),
    ALLOW(__NR_sched_yield),
    ALLOW(__NR_set_robust_list),
    ALLOW(__NR_rseq),
    ALLOW(__NR_getpid),
    ALLOW(__NR_gettid),
    ALLOW(__NR_tgkill),
    ALLOW(__NR_exit),
    ALLOW(__NR_exit_group),
    /*
     * Opening a file is refused, not fatal: glibc's allocator opens
     * /proc/sys/vm/overcommit_memory once, when a worker's heap first
     * shrinks, and copes with EACCES. Nothing is opened either way.
     */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 1, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 0, 1),
    RET(SECCOMP_RET_ERRNO | EACCES),
    RET(SECCOMP_RET_KILL_PROCESS),
};

int dp_seccomp_install(void)
{
	/*
	 * The head: x86_64 only (another ABI's numbers mean other calls), no
	 * x32 numbers, then the calls whose arguments matter: ioctl only for
	 * FIONREAD (the local redirect's close), mmap and mprotect never
	 * executable (the data plane loads no code once it runs).
	 */
	struct sock_filter head[] = {
	    LOAD(ARCH_OFF),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	    RET(SECCOMP_RET_KILL_PROCESS),
	    LOAD(NR_OFF),
	    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1),
	    RET(SECCOMP_RET_KILL_PROCESS),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 2),
	    LOAD(ARG_OFF(1)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FIONREAD, 6, 5),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 1, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 0, 5),
	    LOAD(ARG_OFF(2)),
	    BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 1, 0),
	    RET(SECCOMP_RET_ALLOW),
	    RET(SECCOMP_RET_KILL_PROCESS),
	    /* an ioctl's FIONREAD lands here; other ioctls on the kill just above */
	    RET(SECCOMP_RET_ALLOW),
	};
	struct sock_filter
	    prog[sizeof(head) / sizeof(head[0]) + sizeof(allowed_tail) / sizeof(allowed_tail[0])];
	struct sock_fprog fprog = {.len = sizeof(prog) / sizeof(prog[0]), .filter = prog};
	size_t nh = sizeof(head) / sizeof(head[0]);

	for (size_t i = 0; i < fprog.len; i++)
		prog[i] = i < nh ? head[i] : allowed_tail[i - nh];
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	/* TSYNC: the workers already run; all threads get the filter, or none does. */
	if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog))
		return -errno;
	return 0;
}
