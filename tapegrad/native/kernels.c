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
 * runs the first part, helper threads the others. Helpers sleep on a condition
 * variable between calls (no spinning that would take a core from BLAS). One split at a
 * time: a second caller meanwhile runs its loop alone. After fork() the child starts
 * without helpers and makes new ones when needed. */
#define TG_MAX_PARTS 8

typedef void (*tg_range_fn)(void *args, ptrdiff_t lo, ptrdiff_t hi);

typedef struct {
    pthread_t thread;
    int started;
    int pending; /* a job is waiting for this helper */
    int done;    /* the helper finished its job */
    tg_range_fn fn;
    void *args;
    ptrdiff_t lo, hi;
} tg_helper;

static tg_helper tg_helpers[TG_MAX_PARTS - 1];
static pthread_mutex_t tg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tg_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t tg_finished = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t tg_busy = PTHREAD_MUTEX_INITIALIZER; /* held during a split */
static pthread_once_t tg_once = PTHREAD_ONCE_INIT;

static void tg_after_fork_in_child(void) {
    pthread_mutex_t fresh_mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
    tg_lock = fresh_mutex;
    tg_busy = fresh_mutex;
    tg_wake = fresh_cond;
    tg_finished = fresh_cond;
    for (int i = 0; i < TG_MAX_PARTS - 1; i++) {
        tg_helpers[i].started = 0;
        tg_helpers[i].pending = 0;
        tg_helpers[i].done = 0;
    }
}

static void tg_init(void) { pthread_atfork(NULL, NULL, tg_after_fork_in_child); }

static void *tg_helper_main(void *arg) {
    tg_helper *self = (tg_helper *)arg;
    pthread_mutex_lock(&tg_lock);
    for (;;) {
        while (!self->pending) pthread_cond_wait(&tg_wake, &tg_lock);
        self->pending = 0;
        pthread_mutex_unlock(&tg_lock);
        self->fn(self->args, self->lo, self->hi);
        pthread_mutex_lock(&tg_lock);
        self->done = 1;
        pthread_cond_broadcast(&tg_finished);
    }
    return NULL;
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
    int used = 0; /* helpers given a part */
    pthread_mutex_lock(&tg_lock);
    for (int k = 1; k < parts; k++) {
        tg_helper *h = &tg_helpers[k - 1];
        if (!h->started) {
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            h->started = pthread_create(&h->thread, &attr, tg_helper_main, h) == 0;
            pthread_attr_destroy(&attr);
            if (!h->started) break; /* no more threads: the caller runs the rest */
        }
        h->fn = fn;
        h->args = args;
        h->lo = tg_cut(n, k, parts);
        h->hi = tg_cut(n, k + 1, parts);
        h->done = 0;
        h->pending = 1;
        used = k;
    }
    pthread_cond_broadcast(&tg_wake);
    pthread_mutex_unlock(&tg_lock);
    /* The caller's own part, and whatever no helper could take. */
    fn(args, 0, tg_cut(n, 1, parts));
    if (used + 1 < parts) fn(args, tg_cut(n, used + 1, parts), n);
    pthread_mutex_lock(&tg_lock);
    for (int k = 1; k <= used; k++)
        while (!tg_helpers[k - 1].done) pthread_cond_wait(&tg_finished, &tg_lock);
    pthread_mutex_unlock(&tg_lock);
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
int tg_abi_version(void) { return 2; }
