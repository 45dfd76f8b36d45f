/* Preloaded before libfaketime by shifted-clock.sh. libfaketime 0.9.10 (Debian 12) with
 * FAKETIME_DONT_FAKE_MONOTONIC=1 still shifts the absolute deadline of
 * clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, ...) by the fake offset, so Python's
 * time.sleep() fails with EINVAL; faking the monotonic clock instead hangs every
 * threading wait with a timeout (glibc's sem_clockwait is not intercepted). With the
 * monotonic clock left real, its sleeps need no translation at all: this sends them
 * straight to the kernel, and the wall clock stays libfaketime's. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request,
                    struct timespec *remaining) {
    if (syscall(SYS_clock_nanosleep, clock, flags, request, remaining) == 0) return 0;
    return errno; /* clock_nanosleep returns the error; it does not set errno */
}
