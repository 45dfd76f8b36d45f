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
 *  - cnd_timedwait (C11, always the wall clock) is not intercepted at all: librdkafka's
 *    timed waits, with deadlines read from the fake clock, slept a year.
 * (Faking the monotonic clock too hangs every Python threading wait with a timeout:
 * glibc's sem_clockwait is not intercepted at all.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

/* A deadline read from the fake wall clock, on the real one. */
static struct timespec real_deadline(const struct timespec *fake_deadline) {
    struct timespec fake, real, deadline = *fake_deadline;
    clock_gettime(CLOCK_REALTIME, &fake); /* libfaketime's answer */
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &real);
    deadline.tv_sec -= fake.tv_sec - real.tv_sec;
    return deadline;
}

/* glibc's own function, not the next preloaded one (libfaketime's). */
static void *glibc(const char *name, const char *version) {
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    return dlvsym(libc, name, version);
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request,
                    struct timespec *remaining) {
    struct timespec deadline = *request;
    if (clock == CLOCK_REALTIME && (flags & TIMER_ABSTIME)) deadline = real_deadline(request);
    if (syscall(SYS_clock_nanosleep, clock, flags, &deadline, remaining) == 0) return 0;
    return errno; /* clock_nanosleep returns the error; it does not set errno */
}

typedef int (*cond_timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);

typedef int (*cnd_timedwait_fn)(cnd_t *, mtx_t *, const struct timespec *);

/* glibc keeps the condition variable's clock in bit 1 of __wrefs (nptl's
 * __PTHREAD_COND_CLOCK_MONOTONIC_MASK). */
#define COND_CLOCK_MONOTONIC_MASK 2

int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                           const struct timespec *abstime) {
    static cond_timedwait_fn wait;
    if (wait == NULL) wait = (cond_timedwait_fn)glibc("pthread_cond_timedwait", "GLIBC_2.3.2");
    if (cond->__data.__wrefs & COND_CLOCK_MONOTONIC_MASK) return wait(cond, mutex, abstime);
    struct timespec deadline = real_deadline(abstime);
    return wait(cond, mutex, &deadline);
}

int cnd_timedwait(cnd_t *cond, mtx_t *mutex, const struct timespec *deadline) {
    static cnd_timedwait_fn wait;
    if (wait == NULL) wait = (cnd_timedwait_fn)glibc("cnd_timedwait", "GLIBC_2.28");
    struct timespec real = real_deadline(deadline);
    return wait(cond, mutex, &real);
}
