/* A one-page file mapped three pages long, privately and shared, both writable: reading the two
 * pages past the end of the file raises SIGBUS. The exit leak scan must read only what can be
 * read, still take the private mapping's first page as a root (the block whose only pointer is
 * stored there is reachable) and report the planted leak: one LEAK line, 4321 bytes.
 * With "noreadv", a seccomp filter makes process_vm_readv fail with EPERM before exit, so the
 * scan reads its roots directly: it must skip the file mapping (not a loaded module), so the
 * block pointed to from there is reported too (1234 bytes), and still not die.
 * usage: leak_scan_file_past_eof DIR [noreadv] (DIR: a directory for the file) */
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

/* Every system call allowed but process_vm_readv, which fails with EPERM (x86_64 only). */
static void forbid_process_vm_readv(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1 /* EPERM */),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
}

__attribute__((noinline)) static void plant_leak(void) {
    char *volatile p = malloc(4321);
    CHECK(p != NULL);
    memset(p, 'l', 4321);
}

/* Overwrites the dead stack below main's frame, where a dropped pointer may linger. */
__attribute__((noinline)) static void clear_stack(void) {
    volatile char buf[1 << 16];
    memset((char *)buf, 0, sizeof buf);
}

int main(int argc, char **argv) {
    CHECK(argc == 2 || argc == 3);
    long page = sysconf(_SC_PAGESIZE);
    char path[4096];
    snprintf(path, sizeof path, "%s/one_page", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    char *buf = calloc(1, page);
    CHECK(buf != NULL);
    CHECK(write(fd, buf, page) == page);
    free(buf);
    char *priv = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(priv != MAP_FAILED);
    char *shared = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(shared != MAP_FAILED);
    close(fd);
    unlink(path);

    /* The only pointer to this block lives in the private mapping. */
    char **slot = (char **)(priv + 64);
    *slot = malloc(1234);
    CHECK(*slot != NULL);
    memset(*slot, 'k', 1234);
    slot = NULL;
    shared[0] = 's';

    plant_leak();
    clear_stack();
    if (argc == 3 && strcmp(argv[2], "noreadv") == 0)
        forbid_process_vm_readv();
    printf("OK\n");
    return 0;
}
