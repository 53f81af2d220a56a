/* Native kernels of tapegrad: fused loops that NumPy can only run as several
 * whole-array passes. Built on first use by tapegrad/native/__init__.py with the
 * system C compiler and loaded through ctypes; every kernel has a NumPy twin that
 * runs where no compiler is found.
 *
 * Each loop evaluates the same operations in the same order and precision as its
 * NumPy twin, one rounding per operation (-ffp-contract=off: no fused multiply-add),
 * so both give the same bits, and so does any split of the work over threads. */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* ---- a small pool of helper threads ------------------------------------------------
 * tg_split(fn, args, n, parts) runs fn(args, lo, hi) over parts of [0, n): the caller
 * runs the first part, helper threads the others. Waking a sleeping thread costs tens of
 * microseconds on a virtual machine, as much as the work itself, so a helper spins for
 * a short while (TG_SPIN_NS) after each job and after tg_warm(), which the caller issues
 * a little before a split, and sleeps on a condition variable otherwise (no spinning that
 * would take a core from BLAS for long). One split at a time: a second caller meanwhile
 * runs its loop alone. After fork() the child starts without helpers and makes new ones
 * when needed. */
#include <stdatomic.h>
#include <time.h>

#define TG_MAX_PARTS 8
#define TG_SPIN_NS 200000L     /* after tg_warm() */
#define TG_SPIN_AFTER_NS 30000L /* after a job: enough for back-to-back splits */

typedef void (*tg_range_fn)(void *args, ptrdiff_t lo, ptrdiff_t hi);

typedef struct {
    pthread_t thread;
    int started;
    atomic_int pending; /* a job is waiting for this helper */
    atomic_int done;    /* the helper finished its job */
    atomic_int awake;   /* spinning (1) or about to sleep / asleep (0) */
    tg_range_fn fn;
    void *args;
    ptrdiff_t lo, hi;
} tg_helper;

static tg_helper tg_helpers[TG_MAX_PARTS - 1];
static pthread_mutex_t tg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tg_wake = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t tg_busy = PTHREAD_MUTEX_INITIALIZER; /* held during a split */
static atomic_int tg_alarm;                                  /* bumped to wake the helpers */
static pthread_once_t tg_once = PTHREAD_ONCE_INIT;

static void tg_after_fork_in_child(void) {
    pthread_mutex_t fresh_mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
    tg_lock = fresh_mutex;
    tg_busy = fresh_mutex;
    tg_wake = fresh_cond;
    for (int i = 0; i < TG_MAX_PARTS - 1; i++) {
        tg_helpers[i].started = 0;
        atomic_store(&tg_helpers[i].pending, 0);
        atomic_store(&tg_helpers[i].done, 0);
        atomic_store(&tg_helpers[i].awake, 0);
    }
}

static void tg_init(void) { pthread_atfork(NULL, NULL, tg_after_fork_in_child); }

static long tg_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline void tg_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void *tg_helper_main(void *arg) {
    tg_helper *self = (tg_helper *)arg;
    long spin = TG_SPIN_NS;
    for (;;) {
        /* spin for a job, then sleep until tg_alarm moves */
        long until = tg_now_ns() + spin;
        int spins = 0;
        while (!atomic_load_explicit(&self->pending, memory_order_acquire)) {
            tg_relax();
            if (++spins % 256 == 0 && tg_now_ns() > until) {
                pthread_mutex_lock(&tg_lock);
                int seen = atomic_load(&tg_alarm);
                atomic_store(&self->awake, 0); /* then load `pending`: see tg_split */
                while (!atomic_load(&self->pending) && atomic_load(&tg_alarm) == seen)
                    pthread_cond_wait(&tg_wake, &tg_lock);
                atomic_store(&self->awake, 1);
                pthread_mutex_unlock(&tg_lock);
                until = tg_now_ns() + TG_SPIN_NS; /* woken by tg_warm() or a split */
            }
        }
        atomic_store_explicit(&self->pending, 0, memory_order_relaxed);
        self->fn(self->args, self->lo, self->hi);
        atomic_store_explicit(&self->done, 1, memory_order_release);
        spin = TG_SPIN_AFTER_NS;
    }
    return NULL;
}

/* Wake the sleeping helpers (they spin for TG_SPIN_NS, ready for a split). */
static void tg_wake_all(void) {
    pthread_mutex_lock(&tg_lock);
    atomic_fetch_add(&tg_alarm, 1);
    pthread_cond_broadcast(&tg_wake);
    pthread_mutex_unlock(&tg_lock);
}

static int tg_start(tg_helper *h) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_store(&h->awake, 1);
    h->started = pthread_create(&h->thread, &attr, tg_helper_main, h) == 0;
    pthread_attr_destroy(&attr);
    return h->started;
}

/* Start the helpers for `parts`-way splits if need be, and wake them. */
void tg_warm(int parts) {
    if (parts > TG_MAX_PARTS) parts = TG_MAX_PARTS;
    pthread_once(&tg_once, tg_init);
    if (pthread_mutex_trylock(&tg_busy) != 0) return;
    for (int k = 1; k < parts; k++)
        if (!tg_helpers[k - 1].started && !tg_start(&tg_helpers[k - 1])) break;
    pthread_mutex_unlock(&tg_busy);
    tg_wake_all();
}

/* Part boundaries on multiples of 16 elements (64 bytes of float32). */
static ptrdiff_t tg_cut(ptrdiff_t n, int k, int parts) {
    if (k >= parts) return n;
    return (ptrdiff_t)(((long double)n * k / parts)) / 16 * 16;
}

static void tg_split(tg_range_fn fn, void *args, ptrdiff_t n, int parts) {
    if (parts > TG_MAX_PARTS) parts = TG_MAX_PARTS;
    if (parts < 2 || n < 64 * parts || pthread_mutex_trylock(&tg_busy) != 0) {
        fn(args, 0, n);
        return;
    }
    pthread_once(&tg_once, tg_init);
    int used = 0, sleeping = 0; /* helpers given a part; some of them asleep */
    for (int k = 1; k < parts; k++) {
        tg_helper *h = &tg_helpers[k - 1];
        if (!h->started && !tg_start(h)) break; /* no more threads: the caller runs the rest */
        h->fn = fn;
        h->args = args;
        h->lo = tg_cut(n, k, parts);
        h->hi = tg_cut(n, k + 1, parts);
        atomic_store_explicit(&h->done, 0, memory_order_relaxed);
        /* Sequentially consistent store, then load: with the helper's store of `awake`
         * and load of `pending` (the same pattern), one of the two sees the other's
         * store, so a helper cannot go to sleep on a job that nobody wakes it for. */
        atomic_store(&h->pending, 1);
        sleeping |= !atomic_load(&h->awake);
        used = k;
    }
    if (sleeping) tg_wake_all();
    /* The caller's own part, and whatever no helper could take. */
    fn(args, 0, tg_cut(n, 1, parts));
    if (used + 1 < parts) fn(args, tg_cut(n, used + 1, parts), n);
    for (int k = 1; k <= used; k++) {
        tg_helper *h = &tg_helpers[k - 1];
        for (long spins = 1; !atomic_load_explicit(&h->done, memory_order_acquire); spins++) {
            tg_relax();
            if (spins % 65536 == 0 && atomic_load(&h->pending) && !atomic_load(&h->awake))
                tg_wake_all(); /* a safety net: the protocol above should make it unneeded */
        }
    }
    pthread_mutex_unlock(&tg_busy);
}

/* ---- Adam --------------------------------------------------------------------------
 * Adam with rescaled moments (see tapegrad/nn/optimizers/kernels.py, adam_kernel):
 *   m = beta_1 m + g;  v = beta_2 v + g*g;  p -= scale * (m / (sqrt(v) + eps))
 * over flat buffers p, m, v of n elements whose gradient comes in `pieces` arrays laid
 * end to end: piece k covers [starts[k], starts[k + 1]) and starts at grads[k]. */
#define TG_ADAM(NAME, T, SQRT)                                                                \
    typedef struct {                                                                          \
        T *p, *m, *v;                                                                         \
        const T *const *grads;                                                                \
        const ptrdiff_t *starts;                                                              \
        int pieces;                                                                           \
        T b1, b2, s, e;                                                                       \
    } NAME##_args;                                                                            \
                                                                                              \
    static void NAME##_range(void *raw, ptrdiff_t lo, ptrdiff_t hi) {                         \
        const NAME##_args *a = (const NAME##_args *)raw;                                      \
        T *restrict p = a->p;                                                                 \
        T *restrict m = a->m;                                                                 \
        T *restrict v = a->v;                                                                 \
        const T b1 = a->b1, b2 = a->b2, s = a->s, e = a->e;                                   \
        for (int k = 0; k < a->pieces; k++) {                                                 \
            ptrdiff_t start = a->starts[k], stop = a->starts[k + 1];                          \
            ptrdiff_t i0 = lo > start ? lo : start, i1 = hi < stop ? hi : stop;               \
            if (i0 >= i1) continue;                                                           \
            const T *restrict g = a->grads[k] - start;                                        \
            for (ptrdiff_t i = i0; i < i1; i++) {                                             \
                const T gi = g[i];                                                            \
                const T mi = m[i] * b1 + gi;                                                  \
                const T vi = v[i] * b2 + gi * gi;                                             \
                m[i] = mi;                                                                    \
                v[i] = vi;                                                                    \
                p[i] = p[i] - (mi / (SQRT(vi) + e)) * s;                                      \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    void NAME(T *p, T *m, T *v, const T *const *grads, const ptrdiff_t *starts, int pieces,   \
              double beta_1, double beta_2, double scale, double eps, int parts) {             \
        NAME##_args a = {p, m, v, grads, starts, pieces,                                      \
                         (T)beta_1, (T)beta_2, (T)scale, (T)eps};                             \
        tg_split(NAME##_range, &a, starts[pieces], parts);                                    \
    }

TG_ADAM(tg_adam_f32, float, sqrtf)
TG_ADAM(tg_adam_f64, double, sqrt)

/* The version of this file's interface, checked after loading. */
int tg_abi_version(void) { return 3; }
