/* LD_PRELOAD shim for the disk-eio fault: while the file named by
 * NEMESIS_FSYNC_FAIL_FILE exists, fsync, fdatasync, syncfs and sync_file_range fail with
 * EIO, as a disk that lost a write would make them (this machine's kernel has no
 * device-mapper, so dm-error/dm-flakey cannot be used). Built by the harness with
 *   cc -shared -fPIC -O2 -o fsync_fail.so fsync_fail.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void) {
    const char *path = getenv("NEMESIS_FSYNC_FAIL_FILE");
    return path != NULL && access(path, F_OK) == 0;
}

typedef int (*fd_fn)(int);
typedef int (*range_fn)(int, off64_t, off64_t, unsigned int);

static int call_fd(const char *name, int fd) {
    if (failing()) { errno = EIO; return -1; }
    fd_fn real = (fd_fn)dlsym(RTLD_NEXT, name);
    return real(fd);
}

int fsync(int fd) { return call_fd("fsync", fd); }
int fdatasync(int fd) { return call_fd("fdatasync", fd); }
int syncfs(int fd) { return call_fd("syncfs", fd); }

int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
    if (failing()) { errno = EIO; return -1; }
    range_fn real = (range_fn)dlsym(RTLD_NEXT, "sync_file_range");
    return real(fd, offset, nbytes, flags);
}
