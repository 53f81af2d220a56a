/* Native kernels of tapegrad: fused loops that NumPy can only run as several
 * whole-array passes. Built on first use by tapegrad/native/__init__.py with the
 * system C compiler and loaded through ctypes; every kernel has a NumPy twin that
 * runs where no compiler is found.
 *
 * Each loop evaluates the same operations in the same order and precision as its
 * NumPy twin, one rounding per operation (-ffp-contract=off: no fused multiply-add),
 * so both give the same bits. */
#include <math.h>
#include <stddef.h>

/* Adam with rescaled moments (see tapegrad/nn/optimizers/kernels.py, adam_kernel):
 *   m = beta_1 m + g;  v = beta_2 v + g*g;  p -= scale * (m / (sqrt(v) + eps)) */
#define TG_ADAM(NAME, T, SQRT)                                                          \
    void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,         \
              ptrdiff_t n, double beta_1, double beta_2, double scale, double eps) {    \
        const T b1 = (T)beta_1, b2 = (T)beta_2, s = (T)scale, e = (T)eps;               \
        for (ptrdiff_t i = 0; i < n; i++) {                                             \
            const T gi = g[i];                                                          \
            const T mi = m[i] * b1 + gi;                                                \
            const T vi = v[i] * b2 + gi * gi;                                           \
            m[i] = mi;                                                                  \
            v[i] = vi;                                                                  \
            p[i] = p[i] - (mi / (SQRT(vi) + e)) * s;                                    \
        }                                                                               \
    }

TG_ADAM(tg_adam_f32, float, sqrtf)
TG_ADAM(tg_adam_f64, double, sqrt)

/* The version of this file's interface, checked after loading. */
int tg_abi_version(void) { return 1; }
