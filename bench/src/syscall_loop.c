/* Syscall-heavy loop for the filter-cost benchmark (issue 9). Each iteration: getppid, fstat
 * of stdin, a 64-byte read of stdin (the harness redirects /dev/zero there, so plain `stdio`
 * allows it), and with argv[2] = "1" also openat+close of /dev/zero (needs rpath and an unveil).
 * Times itself with CLOCK_MONOTONIC (vDSO, no syscall) so launch cost is excluded, and prints
 * nanoseconds per iteration. Raw syscall(2) so libc versions cannot swap in other calls.
 * With argv[3] = "floor" it first installs a one-instruction RET_ALLOW seccomp filter: the cost
 * of having any filter at all (the kernel's seccomp entry path), which no filter can go below. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <string.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ITERATIONS OPEN(0|1) [floor]\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    int with_open = argv[2][0] == '1';
    if (argc > 3 && strcmp(argv[3], "floor") == 0) {
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = {.len = 1, .filter = &allow};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
            perror("seccomp floor filter");
            return 6;
        }
    }
    char buf[64];
    struct stat st;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        syscall(SYS_getppid);
        if (syscall(SYS_fstat, 0, &st) != 0) {
            perror("fstat");
            return 3;
        }
        if (syscall(SYS_read, 0, buf, sizeof buf) != (long)sizeof buf) {
            perror("read");
            return 4;
        }
        if (with_open) {
            long fd = syscall(SYS_openat, AT_FDCWD, "/dev/zero", O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                perror("openat /dev/zero");
                return 5;
            }
            syscall(SYS_close, fd);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    printf("%.2f\n", ns / (double)n);
    return 0;
}
