/* Syscall probe for the sandbox tests: `probe CASE [ARG...]` performs one operation and exits
 * 0 when it succeeded, or with the errno it failed with (1..125). Under `-k` a denied call
 * kills the process with SIGSYS instead. Built static (gcc -static) so no implicit promises
 * (rpath, prot_exec for ld.so) are added by the launcher.
 *
 * Bad fds or pointers are used where that makes "allowed" observable without side effects:
 * the kernel answers EBADF/EFAULT/ENOTTY/EINVAL when seccomp let the call through, and the
 * filter answers EPERM when it did not. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int rc(long r) {
    if (r >= 0) return 0;
    int e = errno;
    if (e <= 0 || e > 125) e = 125;
    return e;
}

static void *thread_fn(void *arg) { return arg; }

static int sendfd_case(int pass_fd) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return rc(-1);
    char byte = 'x';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pass_fd) {
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &sv[0], sizeof(int));
    }
    return rc(sendmsg(sv[1], &msg, 0));
}

int main(int argc, char **argv) {
    if (argc < 2) return 126;
    const char *c = argv[1];
    const char *a = argc > 2 ? argv[2] : "";
    const char *b = argc > 3 ? argv[3] : "";
#define IS(x) (strcmp(c, x) == 0)
    /* stdio */
    if (IS("getpid")) return rc(getpid());
    if (IS("write")) return rc(write(1, "", 0));
    if (IS("fork")) {
        pid_t p = fork();
        if (p == 0) _exit(0);
        if (p > 0) waitpid(p, NULL, 0);
        return rc(p);
    }
    if (IS("thread")) {
        pthread_t t;
        int e = pthread_create(&t, NULL, thread_fn, NULL);
        if (e) return e;
        return pthread_join(t, NULL);
    }
    if (IS("kill")) return rc(kill(atoi(a), atoi(b)));
    if (IS("tkill")) return rc(syscall(SYS_tkill, atoi(a), atoi(b)));
    if (IS("tgkill")) return rc(syscall(SYS_tgkill, atoi(a), atoi(a), atoi(b)));
    if (IS("kill_self")) return rc(kill(getpid(), 0));
    if (IS("sigqueue")) {
        siginfo_t si; memset(&si, 0, sizeof si);
        si.si_code = SI_QUEUE;
        return rc(syscall(SYS_rt_sigqueueinfo, atoi(a), 0, &si));
    }
    if (IS("pidfd_send_signal")) return rc(syscall(SYS_pidfd_send_signal, -1, 0, NULL, 0));
    if (IS("fcntl_getfl")) return rc(fcntl(1, F_GETFL));
    if (IS("fcntl_setown")) return rc(fcntl(1, F_SETOWN, getpid()));
    if (IS("fcntl_setlk")) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        return rc(fcntl(-1, F_SETLK, &fl));
    }
    if (IS("prctl_name")) return rc(prctl(PR_SET_NAME, "probe", 0, 0, 0));
    if (IS("prctl_dumpable")) return rc(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0));
    if (IS("prlimit_other")) {
        struct rlimit r;
        return rc(syscall(SYS_prlimit64, atoi(a), RLIMIT_NOFILE, NULL, &r));
    }
    if (IS("mmap_rw")) return mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? rc(-1) : 0;
    if (IS("mmap_exec")) return mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? rc(-1) : 0;
    if (IS("mprotect_exec")) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return rc(-1);
        return rc(mprotect(p, 4096, PROT_READ | PROT_EXEC));
    }
    if (IS("pkey_mprotect_exec")) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return rc(-1);
        return rc(syscall(SYS_pkey_mprotect, p, 4096, PROT_READ | PROT_EXEC, -1));
    }
    if (IS("sendto_addr")) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        return rc(sendto(-1, "", 0, 0, (struct sockaddr *)&sin, sizeof sin));
    }
    if (IS("sendto_null_low_half_zero")) /* pointer with zero low 32 bits */
        return rc(syscall(SYS_sendto, -1, "", 0, 0, (void *)0x300000000000UL, 16));
    if (IS("ioctl_fionread")) { int n; return rc(ioctl(0, FIONREAD, &n)); }
    if (IS("ioctl_tcgets")) { struct termios t; return rc(ioctl(-1, TCGETS, &t)); }
    if (IS("ioctl_tiocsti")) return rc(ioctl(0, TIOCSTI, "x"));
    if (IS("ioctl_tiocsti_high")) return rc(syscall(SYS_ioctl, 0, (0x123UL << 32) | TIOCSTI, "x"));
    /* files */
    if (IS("open_ro")) return rc(open(a, O_RDONLY));
    if (IS("open_wo")) return rc(open(a, O_WRONLY));
    if (IS("open_rw")) return rc(open(a, O_RDWR));
    if (IS("open_trunc")) return rc(open(a, O_WRONLY | O_TRUNC));
    if (IS("creat")) return rc(open(a, O_WRONLY | O_CREAT | O_EXCL, 0644));
    if (IS("creat_suid")) return rc(open(a, O_WRONLY | O_CREAT | O_EXCL, 04755));
    if (IS("read_file")) {
        int fd = open(a, O_RDONLY);
        if (fd < 0) return rc(-1);
        char buf[64];
        return rc(read(fd, buf, sizeof buf));
    }
    if (IS("write_file")) {
        int fd = open(a, O_WRONLY);
        if (fd < 0) return rc(-1);
        return rc(write(fd, "x", 1));
    }
    if (IS("truncate")) return rc(truncate(a, 0));
    if (IS("mkdir")) return rc(mkdir(a, 0755));
    if (IS("rmdir")) return rc(rmdir(a));
    if (IS("unlink")) return rc(unlink(a));
    if (IS("rename")) return rc(rename(a, b));
    if (IS("link")) return rc(link(a, b));
    if (IS("symlink")) return rc(symlink(a, b));
    if (IS("mkfifo")) return rc(mknod(a, S_IFIFO | 0644, 0));
    if (IS("chmod")) return rc(chmod(a, strtol(b, NULL, 8)));
    if (IS("utimens")) return rc(utimensat(AT_FDCWD, a, NULL, 0));
    if (IS("fchown")) return rc(fchown(1, -1, -1));
    if (IS("flock")) return rc(flock(-1, LOCK_EX));
    if (IS("stat")) { struct stat st; return rc(stat(a, &st)); }
    if (IS("exec")) {
        char *args[] = {argv[0], "getpid", NULL};
        return rc(execv(a[0] ? a : "/proc/self/exe", args));
    }
    if (IS("exec_bin")) {
        char *args[] = {(char *)a, NULL};
        return rc(execv(a, args));
    }
    if (IS("open_by_handle")) return rc(syscall(SYS_open_by_handle_at, -1, NULL, 0));
    if (IS("name_to_handle")) return rc(syscall(SYS_name_to_handle_at, AT_FDCWD, "/", NULL, NULL, 0));
    if (IS("fd_open")) return rc(fcntl(atoi(a), F_GETFD));
    /* network */
    if (IS("socket_tcp")) return rc(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (IS("socket_udp")) return rc(socket(AF_INET6, SOCK_DGRAM, 0));
    if (IS("socket_raw")) return rc(socket(AF_INET, SOCK_RAW, IPPROTO_RAW));
    if (IS("socket_unix")) return rc(socket(AF_UNIX, SOCK_STREAM, 0));
    if (IS("socket_seqpacket")) return rc(socket(AF_UNIX, SOCK_SEQPACKET, 0));
    if (IS("socket_netlink")) return rc(socket(AF_NETLINK, SOCK_RAW, 0));
    if (IS("connect")) return rc(connect(-1, NULL, 0));
    if (IS("connect_tcp") || IS("bind_tcp")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) return rc(-1);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(atoi(a))};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (IS("bind_tcp")) return rc(bind(s, (struct sockaddr *)&sin, sizeof sin));
        return rc(connect(s, (struct sockaddr *)&sin, sizeof sin));
    }
    if (IS("setsockopt")) {
        int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        if (s < 0) return rc(-1);
        return rc(setsockopt(s, atoi(a), atoi(b), &one, sizeof one));
    }
    if (IS("abstract_connect")) {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0) return rc(-1);
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        size_t n = strlen(a);
        memcpy(sun.sun_path + 1, a, n);
        return rc(connect(s, (struct sockaddr *)&sun, offsetof(struct sockaddr_un, sun_path) + 1 + n));
    }
    if (IS("sendmsg")) return sendfd_case(0);
    if (IS("sendmsg_fd")) return sendfd_case(1);
    if (IS("recvmsg")) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0) return rc(-1);
        char byte;
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        return rc(recvmsg(sv[0], &msg, 0)); /* EAGAIN when allowed */
    }
    /* processes and ids */
    if (IS("clone_newuser")) {
        long p = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (p == 0) _exit(0);
        if (p > 0) waitpid(p, NULL, 0);
        return rc(p);
    }
    if (IS("clone_newnet")) {
        long p = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
        if (p == 0) _exit(0);
        if (p > 0) waitpid(p, NULL, 0);
        return rc(p);
    }
    if (IS("clone3")) { char args[88] = {0}; return rc(syscall(SYS_clone3, args, sizeof args)); }
    if (IS("unshare_user")) return rc(unshare(CLONE_NEWUSER));
    if (IS("setuid_self")) return rc(setuid(getuid()));
    if (IS("setpriority_other")) return rc(syscall(SYS_setpriority, 0, atoi(a), 0));
    if (IS("personality")) return rc(personality(READ_IMPLIES_EXEC));
    if (IS("ptrace")) return rc(syscall(SYS_ptrace, 0x10, atoi(a), 0, 0)); /* PTRACE_ATTACH */
    if (IS("mount")) return rc(syscall(SYS_mount, "none", "/mnt", "tmpfs", 0, 0));
    if (IS("chroot")) return rc(chroot("/"));
    if (IS("bpf")) return rc(syscall(SYS_bpf, 0, NULL, 0));
    if (IS("perf_event_open")) return rc(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    if (IS("userfaultfd")) return rc(syscall(SYS_userfaultfd, 0));
    if (IS("keyctl")) return rc(syscall(SYS_keyctl, 0, 0, 0, 0, 0));
    if (IS("io_uring_setup")) { char p[120] = {0}; return rc(syscall(SYS_io_uring_setup, 8, p)); }
    if (IS("memfd_create")) return rc(syscall(SYS_memfd_create, "x", 0));
    if (IS("openat2")) return rc(syscall(SYS_openat2, AT_FDCWD, "/", NULL, 0));
    if (IS("memfd_secret")) return rc(syscall(447, 0));
    if (IS("fchmodat2")) return rc(syscall(452, AT_FDCWD, "/nonexistent", 0644, 0));
    if (IS("syscall1000")) return rc(syscall(1000));
    if (IS("x32_getpid")) return rc(syscall(0x40000000 | SYS_getpid));
    if (IS("int80_getpid")) {
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");
        return ret > 0 ? 0 : 125; /* must never get here with a pid */
    }
    if (IS("settime")) { struct timespec ts = {0, 0}; return rc(clock_settime(CLOCK_MONOTONIC, &ts)); }
    if (IS("landlock_abi")) return rc(syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION));
    if (IS("getuid")) { printf("%d %d\n", getuid(), geteuid()); return 0; }
    if (IS("capeff")) {
        FILE *f = fopen("/proc/self/status", "r");
        if (!f) return rc(-1);
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "CapBnd:", 7) || !strncmp(line, "CapAmb:", 7) || !strncmp(line, "NoNewPrivs:", 11) || !strncmp(line, "Seccomp:", 8)) fputs(line, stdout);
        return 0;
    }
    if (IS("rlimit_nofile")) { struct rlimit r; getrlimit(RLIMIT_NOFILE, &r); printf("%llu\n", (unsigned long long)r.rlim_cur); return 0; }
    return 126;
}
