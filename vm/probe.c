/*
 * pledge-vm-probe — proves the VM rig before any project test runs in it.
 *
 * Checks, each printed as "PROBE <name>: <value>" and fatal on failure:
 *   kernel release; Landlock ABI (landlock_create_ruleset VERSION) and that a
 *   ruleset really denies a read; a seccomp filter really returns an errno; loopback works;
 *   /sys/fs/cgroup is cgroup2 with cpu memory pids cpuset in subtree_control;
 *   a child cgroup takes memory.max, pids.max, cpu.max, cpuset.cpus; a process
 *   placed with clone3(CLONE_INTO_CGROUP) is limited by pids.max and is killed
 *   with its children by cgroup.kill; an allocation over memory.max is OOM
 *   killed and counted in memory.events; the cgroups are removed afterwards.
 * Expectations come from env: PLEDGE_EXPECT_LANDLOCK_ABI=<n>, PLEDGE_EXPECT_CGROUP=v2.
 * Exit 0 only when every check passed; "PROBE-RESULT ok" is the last line then.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/landlock.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define CGROOT "/sys/fs/cgroup"
#define CG "/sys/fs/cgroup/pledge-vm-probe"
#define CGOOM "/sys/fs/cgroup/pledge-vm-probe-oom"
#define CGROUP2_SUPER_MAGIC 0x63677270

static int failures;

static void check(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(int ok, const char *name, const char *fmt, ...) {
    va_list ap;
    printf("PROBE %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("%s\n", ok ? "" : "   <-- FAILED");
    fflush(stdout);
    if (!ok) failures++;
}

static int write_file(const char *path, const char *val) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, val, strlen(val));
    int err = n < 0 ? -errno : 0;
    close(fd);
    return err;
}

static int read_file(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, buf, len - 1);
    int err = n < 0 ? -errno : 0;
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    if (n > 0 && buf[n - 1] == '\n') buf[n - 1] = 0;
    return err;
}

/* value of "key N" in a flat-keyed cgroup file, -1 when absent */
static long keyed(const char *path, const char *key) {
    char buf[4096];
    if (read_file(path, buf, sizeof buf) < 0) return -1;
    size_t kl = strlen(key);
    for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, key, kl) && l[kl] == ' ') return atol(l + kl + 1);
    return -1;
}

static int has_word(const char *list, const char *w) {
    size_t wl = strlen(w);
    for (const char *p = list; (p = strstr(p, w)); p += wl)
        if ((p == list || p[-1] == ' ') && (p[wl] == 0 || p[wl] == ' ')) return 1;
    return 0;
}

static void set_and_check(const char *file, const char *val, const char *want) {
    char path[256], got[256];
    snprintf(path, sizeof path, "%s/%s", CG, file);
    int err = write_file(path, val);
    if (!err) err = read_file(path, got, sizeof got);
    check(!err && !strcmp(got, want), file, "wrote \"%s\" read \"%s\" (%s)", val, err ? "" : got,
          err ? strerror(-err) : "ok");
}

static void probe_landlock(void) {
    const char *want = getenv("PLEDGE_EXPECT_LANDLOCK_ABI");
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    int e = errno;
    if (want && *want)
        check(abi == atol(want), "landlock_abi", "%ld (expected %s)%s%s", abi, want, abi < 0 ? " " : "",
              abi < 0 ? strerror(e) : "");
    else
        check(abi >= 1, "landlock_abi", "%ld", abi);
    if (abi < 1) return;

    pid_t pid = fork();
    if (pid == 0) {
        struct landlock_ruleset_attr attr = {.handled_access_fs = LANDLOCK_ACCESS_FS_READ_FILE};
        int rs = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
        if (rs < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_landlock_restrict_self, rs, 0)) _exit(2);
        int fd = open("/etc/hostname", O_RDONLY);
        _exit(fd < 0 && errno == EACCES ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "landlock_enforce", "read of /etc/hostname %s",
          WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "denied with EACCES" : "NOT denied (or setup failed)");
}

static void probe_seccomp(void) {
    pid_t pid = fork();
    if (pid == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 42),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) _exit(2);
        long r = syscall(SYS_getppid);
        _exit(r == -1 && errno == 42 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "seccomp", "getppid under filter %s",
          WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "-> errno 42" : "NOT filtered");
}

static pid_t clone_into(int cgfd) {
    struct clone_args args = {.flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)cgfd};
    return syscall(SYS_clone3, &args, sizeof args);
}

/* Waits (bounded) until the cgroup has no processes; returns 1 when empty. */
static int wait_unpopulated(const char *cg) {
    char ev[256];
    snprintf(ev, sizeof ev, "%s/cgroup.events", cg);
    for (int i = 0; i < 500; i++) {
        if (keyed(ev, "populated") == 0) return 1;
        usleep(10000);
    }
    return 0;
}

static void probe_cgroup(void) {
    struct statfs sfs;
    int v2 = statfs(CGROOT, &sfs) == 0 && (unsigned long)sfs.f_type == CGROUP2_SUPER_MAGIC;
    const char *want = getenv("PLEDGE_EXPECT_CGROUP");
    check(v2 || !(want && !strcmp(want, "v2")), "cgroup_fs", "%s is %s", CGROOT, v2 ? "cgroup2" : "not cgroup2");
    if (!v2) return;

    char ctl[512], sub[512];
    read_file(CGROOT "/cgroup.controllers", ctl, sizeof ctl);
    read_file(CGROOT "/cgroup.subtree_control", sub, sizeof sub);
    check(1, "cgroup_controllers", "%s", ctl);
    int all = has_word(sub, "cpu") && has_word(sub, "memory") && has_word(sub, "pids") && has_word(sub, "cpuset");
    check(all, "cgroup_subtree_control", "%s (need cpu memory pids cpuset)", sub);

    rmdir(CG);
    int mk = mkdir(CG, 0755) == 0 ? 0 : errno;
    check(!mk, "cgroup_mkdir", "%s (%s)", CG, mk ? strerror(mk) : "ok");
    set_and_check("memory.max", "67108864", "67108864");
    set_and_check("pids.max", "3", "3");
    set_and_check("cpu.max", "50000 100000", "50000 100000");
    set_and_check("cpu.weight", "50", "50");
    set_and_check("cpuset.cpus", "0", "0");

    int cgfd = open(CG, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int pfd[2];
    if (cgfd < 0 || pipe(pfd)) {
        check(0, "cgroup_open", "%s", strerror(errno));
        return;
    }
    pid_t leader = clone_into(cgfd);
    if (leader == 0) {
        /* placed before running anything: fork until pids.max stops us */
        int ok = 0;
        for (int i = 0; i < 5; i++) {
            pid_t c = fork();
            if (c == 0) { pause(); _exit(0); }
            if (c > 0) ok++;
        }
        char b = (char)ok;
        if (write(pfd[1], &b, 1) != 1) _exit(3);
        pause();
        _exit(0);
    }
    check(leader > 0, "clone_into_cgroup", "leader pid %d (%s)", leader, leader > 0 ? "ok" : strerror(errno));
    if (leader < 0) return;
    close(pfd[1]);
    char forks = -1;
    if (read(pfd[0], &forks, 1) != 1) forks = -1;
    char path[256], buf[256];
    snprintf(path, sizeof path, "/proc/%d/cgroup", leader);
    read_file(path, buf, sizeof buf);
    check(!strcmp(buf, "0::/pledge-vm-probe"), "placement", "/proc/<leader>/cgroup = %s", buf);
    check(forks == 2, "pids_max_enforced", "%d of 5 forks succeeded under pids.max=3 (want 2)", forks);
    check(keyed(CG "/pids.events", "max") >= 1, "pids_events", "max %ld", keyed(CG "/pids.events", "max"));

    int kerr = write_file(CG "/cgroup.kill", "1");
    int st = 0;
    waitpid(leader, &st, 0);
    check(!kerr && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "cgroup_kill", "leader %s (%s)",
          WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "not signalled", kerr ? strerror(-kerr) : "write ok");
    check(wait_unpopulated(CG), "cgroup_kill_all", "cgroup.events populated 0 (grandchildren gone too)");
    int rm = rmdir(CG) == 0 ? 0 : errno;
    check(!rm, "cgroup_rmdir", "%s", rm ? strerror(rm) : "removed");
    close(cgfd);

    /* OOM: memory.max 16M, no swap, child touches 64M */
    rmdir(CGOOM);
    if (mkdir(CGOOM, 0755) || write_file(CGOOM "/memory.max", "16777216")) {
        check(0, "oom_setup", "%s", strerror(errno));
        return;
    }
    write_file(CGOOM "/memory.swap.max", "0");
    cgfd = open(CGOOM, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    pid_t hog = clone_into(cgfd);
    if (hog == 0) {
        size_t n = 64 << 20;
        char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) _exit(2);
        for (size_t i = 0; i < n; i += 4096) m[i] = 1;
        _exit(0);
    }
    waitpid(hog, &st, 0);
    long oom_kill = keyed(CGOOM "/memory.events", "oom_kill");
    check(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && oom_kill >= 1, "oom_kill", "hog %s, memory.events oom_kill %ld",
          WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited", oom_kill);
    snprintf(path, sizeof path, "%s/memory.stat", CGOOM);
    check(keyed(path, "anon") >= 0, "memory_stat", "anon %ld", keyed(path, "anon"));
    check(keyed(CGOOM "/cpu.stat", "usage_usec") > 0, "cpu_stat", "usage_usec %ld", keyed(CGOOM "/cpu.stat", "usage_usec"));
    close(cgfd);
    wait_unpopulated(CGOOM);
    rm = rmdir(CGOOM) == 0 ? 0 : errno;
    check(!rm, "oom_rmdir", "%s", rm ? strerror(rm) : "removed");
}


static void probe_loopback(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok = l >= 0 && c >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 &&
             getsockname(l, (struct sockaddr *)&a, &len) == 0 && connect(c, (struct sockaddr *)&a, sizeof a) == 0;
    check(ok, "loopback", "connect to 127.0.0.1:%d %s", ntohs(a.sin_port), ok ? "ok" : strerror(errno));
    if (l >= 0) close(l);
    if (c >= 0) close(c);
}
int main(void) {
    struct utsname u;
    uname(&u);
    setvbuf(stdout, NULL, _IOLBF, 0);
    check(1, "kernel", "%s", u.release);
    probe_landlock();
    probe_seccomp();
    probe_loopback();
    probe_cgroup();
    printf("PROBE-RESULT %s (%d failed)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
