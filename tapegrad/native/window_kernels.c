/* Window kernels of convolution and pooling: the C twins of the NumPy loops in
 * tapegrad/ops/window_kernels.py, compiled into the same library as kernels.c:
 * the transpose of the patch matrix (col2im) and the max-pool gradient. They walk the
 * output positions in order and add each window into the input in one go. (The patch
 * matrix itself is a copy that NumPy does as fast.)
 *
 * Arrays are C-contiguous and channels_last with three spatial axes (fewer axes are
 * given as leading axes of size 1): an input (batch, in0, in1, in2, channels) is
 * already padded; window tap t = (t0, t1, t2) of output position o reads input cell
 * o * stride + t * dilation. `geometry` holds 17 integers:
 *   batch, channels, in[3], out[3], window[3], stride[3], dilation[3].
 *
 * The sums add the same terms in the same order as the NumPy twin, starting from 0: a
 * cell is read by later output positions through earlier taps, so the order of the
 * output positions is the NumPy twin's loop over the taps in reverse. One rounding per
 * operation (-ffp-contract=off): both give the same bits. */
#include <stddef.h>
#include <string.h>

typedef struct {
    ptrdiff_t n, c, in[3], out[3], k[3], s[3], d[3];
} tg_geometry;

static tg_geometry tg_read_geometry(const long long *g) {
    tg_geometry r;
    r.n = (ptrdiff_t)g[0];
    r.c = (ptrdiff_t)g[1];
    for (int i = 0; i < 3; i++) {
        r.in[i] = (ptrdiff_t)g[2 + i];
        r.out[i] = (ptrdiff_t)g[5 + i];
        r.k[i] = (ptrdiff_t)g[8 + i];
        r.s[i] = (ptrdiff_t)g[11 + i];
        r.d[i] = (ptrdiff_t)g[14 + i];
    }
    return r;
}

/* scatter_patches: x (batch, in0, in1, in2, channels) = the sum of the patch entries
 * that read each cell (0 where none does), added in the order of the output positions
 * (the NumPy twin: the taps in reverse order). */
#define TG_SCATTER_PATCHES(NAME, T)                                                           \
    void NAME(const T *restrict cols, T *restrict x, const long long *geometry) {                               \
        const tg_geometry g = tg_read_geometry(geometry);                                     \
        const ptrdiff_t c = g.c;                                                              \
        memset(x, 0, (size_t)(g.n * g.in[0] * g.in[1] * g.in[2] * c) * sizeof(T));            \
        const T *src = cols;                                                                  \
        for (ptrdiff_t b = 0; b < g.n; b++)                                                   \
            for (ptrdiff_t o0 = 0; o0 < g.out[0]; o0++)                                       \
                for (ptrdiff_t o1 = 0; o1 < g.out[1]; o1++)                                   \
                    for (ptrdiff_t o2 = 0; o2 < g.out[2]; o2++)                               \
                        for (ptrdiff_t t0 = 0; t0 < g.k[0]; t0++)                             \
                            for (ptrdiff_t t1 = 0; t1 < g.k[1]; t1++) {                       \
                                const ptrdiff_t row =                                         \
                                    ((b * g.in[0] + o0 * g.s[0] + t0 * g.d[0]) * g.in[1] +    \
                                     o1 * g.s[1] + t1 * g.d[1]) * g.in[2] + o2 * g.s[2];      \
                                for (ptrdiff_t t2 = 0; t2 < g.k[2]; t2++, src += c) {         \
                                    T *restrict dst = x + (row + t2 * g.d[2]) * c;            \
                                    for (ptrdiff_t j = 0; j < c; j++) dst[j] = dst[j] + src[j]; \
                                }                                                             \
                            }                                                                 \
    }

/* max_pool_grad: for each window in order, share = g / (the number of its cells equal to
 * its maximum), added to each of those cells (the NumPy twin: the same sums, the taps in
 * reverse order). x is the padded input; dx has its shape. */
#define TG_MAX_POOL_GRAD(NAME, T)                                                             \
    void NAME(const T *restrict x, const T *restrict out, const T *restrict grad,             \
              T *restrict share, T *restrict dx, const long long *geometry) {                 \
        const tg_geometry g = tg_read_geometry(geometry);                                     \
        const ptrdiff_t c = g.c;                                                              \
        memset(dx, 0, (size_t)(g.n * g.in[0] * g.in[1] * g.in[2] * c) * sizeof(T));           \
        for (ptrdiff_t b = 0; b < g.n; b++)                                                   \
            for (ptrdiff_t o0 = 0; o0 < g.out[0]; o0++)                                       \
                for (ptrdiff_t o1 = 0; o1 < g.out[1]; o1++)                                   \
                    for (ptrdiff_t o2 = 0; o2 < g.out[2]; o2++) {                             \
                        const ptrdiff_t at = (((b * g.out[0] + o0) * g.out[1] + o1) * g.out[2] + o2) * c; \
                        const T *restrict m = out + at;                                       \
                        T *restrict sh = share;                                               \
                        for (ptrdiff_t t0 = 0; t0 < g.k[0]; t0++)                             \
                            for (ptrdiff_t t1 = 0; t1 < g.k[1]; t1++)                         \
                                for (ptrdiff_t t2 = 0; t2 < g.k[2]; t2++) {                   \
                                    const T *v = x +                                          \
                                        (((b * g.in[0] + o0 * g.s[0] + t0) * g.in[1] +        \
                                          o1 * g.s[1] + t1) * g.in[2] + o2 * g.s[2] + t2) * c; \
                                    if (t0 == 0 && t1 == 0 && t2 == 0)                        \
                                        for (ptrdiff_t j = 0; j < c; j++) sh[j] = (T)(v[j] == m[j]); \
                                    else                                                      \
                                        for (ptrdiff_t j = 0; j < c; j++) sh[j] = sh[j] + (T)(v[j] == m[j]); \
                                }                                                             \
                        for (ptrdiff_t j = 0; j < c; j++) sh[j] = grad[at + j] / sh[j];       \
                        for (ptrdiff_t t0 = 0; t0 < g.k[0]; t0++)                             \
                            for (ptrdiff_t t1 = 0; t1 < g.k[1]; t1++)                         \
                                for (ptrdiff_t t2 = 0; t2 < g.k[2]; t2++) {                   \
                                    const ptrdiff_t cell =                                    \
                                        (((b * g.in[0] + o0 * g.s[0] + t0) * g.in[1] +        \
                                          o1 * g.s[1] + t1) * g.in[2] + o2 * g.s[2] + t2) * c; \
                                    const T *restrict v = x + cell;                           \
                                    T *restrict d = dx + cell;                                \
                                    for (ptrdiff_t j = 0; j < c; j++)                         \
                                        d[j] = d[j] + (T)(v[j] == m[j]) * sh[j];              \
                                }                                                             \
                    }                                                                         \
    }

TG_SCATTER_PATCHES(tg_scatter_patches_f32, float)
TG_SCATTER_PATCHES(tg_scatter_patches_f64, double)
TG_MAX_POOL_GRAD(tg_max_pool_grad_f32, float)
TG_MAX_POOL_GRAD(tg_max_pool_grad_f64, double)

/* The version of this file's interface, checked after loading. */
int tg_window_abi_version(void) { return 3; }
