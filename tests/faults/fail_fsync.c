/* A failing disk, as far as fsync can tell: preloaded into a raftlock node by
 * tests/disk.rs, it makes fsync and fdatasync fail with EIO while the file named by
 * RAFTLOCK_TEST_FSYNC_FAIL_FILE exists, as the kernel reports a write-back error. Every
 * other call, and these two while the file is absent, go to libc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int disk_failing(void) {
    const char *trigger = getenv("RAFTLOCK_TEST_FSYNC_FAIL_FILE");
    return trigger != NULL && access(trigger, F_OK) == 0;
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (disk_failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (disk_failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}
