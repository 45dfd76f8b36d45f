/* Preloaded before libfaketime by shifted-clock.sh, which keeps the monotonic clock real
 * (FAKETIME_DONT_FAKE_MONOTONIC=1) and shifts only the wall clock. libfaketime 0.9.10
 * (Debian 12) still translates the deadlines of two waits by the fake offset, which breaks
 * them; these wrappers do the translation right:
 *  - clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, ...): Python's time.sleep() failed
 *    with EINVAL. A monotonic deadline needs no translation: straight to the kernel.
 *  - pthread_cond_timedwait: the JVM's timed waits (Object.wait, LockSupport.parkNanos,
 *    on condition variables bound to CLOCK_MONOTONIC) returned at once, so the Kafka
 *    broker spun at full CPU. Monotonic deadlines pass as they are; wall-clock ones move
 *    back by the fake offset.
 * (Faking the monotonic clock too hangs every Python threading wait with a timeout:
 * glibc's sem_clockwait is not intercepted at all.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request,
                    struct timespec *remaining) {
    if (clock == CLOCK_MONOTONIC || !(flags & TIMER_ABSTIME)) {
        if (syscall(SYS_clock_nanosleep, clock, flags, request, remaining) == 0) return 0;
        return errno; /* clock_nanosleep returns the error; it does not set errno */
    }
    struct timespec fake, real, deadline = *request;
    clock_gettime(clock, &fake); /* libfaketime's answer */
    syscall(SYS_clock_gettime, clock, &real);
    deadline.tv_sec -= fake.tv_sec - real.tv_sec;
    if (syscall(SYS_clock_nanosleep, clock, flags, &deadline, remaining) == 0) return 0;
    return errno;
}

typedef int (*cond_timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);

/* glibc's own function, not the next preloaded one (libfaketime's). */
static cond_timedwait_fn glibc_cond_timedwait(void) {
    static cond_timedwait_fn fn;
    if (fn == NULL) {
        void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        fn = (cond_timedwait_fn)dlvsym(libc, "pthread_cond_timedwait", "GLIBC_2.3.2");
    }
    return fn;
}

/* glibc keeps the condition variable's clock in bit 1 of __wrefs (nptl's
 * __PTHREAD_COND_CLOCK_MONOTONIC_MASK). */
#define COND_CLOCK_MONOTONIC_MASK 2

int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                           const struct timespec *abstime) {
    if (cond->__data.__wrefs & COND_CLOCK_MONOTONIC_MASK)
        return glibc_cond_timedwait()(cond, mutex, abstime);
    struct timespec fake, real, deadline = *abstime;
    clock_gettime(CLOCK_REALTIME, &fake);
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &real);
    deadline.tv_sec -= fake.tv_sec - real.tv_sec;
    return glibc_cond_timedwait()(cond, mutex, &deadline);
}
