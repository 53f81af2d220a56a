/* Window kernels of convolution and pooling: the C twins of the NumPy loops in
 * tapegrad/ops/window_kernels.py, compiled into the same library as kernels.c.
 *
 * Arrays are C-contiguous and channels_last with three spatial axes (fewer axes are
 * given as leading axes of size 1): an input (batch, in0, in1, in2, channels) is
 * already padded; window tap t = (t0, t1, t2) of output position o reads input cell
 * o * stride + t * dilation. `geometry` holds 17 integers:
 *   batch, channels, in[3], out[3], window[3], stride[3], dilation[3].
 *
 * The sums add the same terms in the same order as the NumPy twin (taps in row-major
 * order, starting from 0), one rounding per operation (-ffp-contract=off), so both
 * give the same bits. */
#include <stddef.h>
#include <stdlib.h>

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

/* For each axis, the output position whose tap t reads input cell p, or -1:
 * table[axis][p * window + t]. One allocation; NULL if it fails. */
static ptrdiff_t *tg_sources(const tg_geometry *g, ptrdiff_t *offsets) {
    ptrdiff_t total = 0;
    for (int i = 0; i < 3; i++) {
        offsets[i] = total;
        total += g->in[i] * g->k[i];
    }
    ptrdiff_t *table = (ptrdiff_t *)malloc((size_t)(total ? total : 1) * sizeof(ptrdiff_t));
    if (!table) return NULL;
    for (int i = 0; i < 3; i++)
        for (ptrdiff_t p = 0; p < g->in[i]; p++)
            for (ptrdiff_t t = 0; t < g->k[i]; t++) {
                ptrdiff_t q = p - t * g->d[i], o = -1;
                if (q >= 0 && q % g->s[i] == 0 && q / g->s[i] < g->out[i]) o = q / g->s[i];
                table[offsets[i] + p * g->k[i] + t] = o;
            }
    return table;
}

/* patches: cols (batch, out0, out1, out2, taps, channels) = the windows of x. */
#define TG_PATCHES(NAME, T)                                                                   \
    void NAME(const T *x, T *cols, const long long *geometry) {                               \
        const tg_geometry g = tg_read_geometry(geometry);                                     \
        const ptrdiff_t c = g.c;                                                              \
        T *dst = cols;                                                                        \
        for (ptrdiff_t b = 0; b < g.n; b++)                                                   \
            for (ptrdiff_t o0 = 0; o0 < g.out[0]; o0++)                                       \
                for (ptrdiff_t o1 = 0; o1 < g.out[1]; o1++)                                   \
                    for (ptrdiff_t o2 = 0; o2 < g.out[2]; o2++)                               \
                        for (ptrdiff_t t0 = 0; t0 < g.k[0]; t0++)                             \
                            for (ptrdiff_t t1 = 0; t1 < g.k[1]; t1++) {                       \
                                const ptrdiff_t row =                                         \
                                    ((b * g.in[0] + o0 * g.s[0] + t0 * g.d[0]) * g.in[1] +    \
                                     o1 * g.s[1] + t1 * g.d[1]) * g.in[2];                    \
                                const T *src = x + (row + o2 * g.s[2]) * c;                   \
                                if (c == 1) {                                                 \
                                    for (ptrdiff_t t2 = 0; t2 < g.k[2]; t2++)                 \
                                        dst[t2] = src[t2 * g.d[2]];                           \
                                    dst += g.k[2];                                            \
                                    continue;                                                 \
                                }                                                             \
                                for (ptrdiff_t t2 = 0; t2 < g.k[2]; t2++, dst += c) {         \
                                    const T *v = src + t2 * g.d[2] * c;                       \
                                    for (ptrdiff_t j = 0; j < c; j++) dst[j] = v[j];          \
                                }                                                             \
                            }                                                                 \
    }

/* scatter_patches: x (batch, in0, in1, in2, channels) = the sum, over the taps in
 * order, of the patch entries that read each cell (0 where none does). Returns 0, or
 * -1 if memory ran out (nothing written then). */
#define TG_SCATTER_PATCHES(NAME, T)                                                           \
    int NAME(const T *cols, T *x, const long long *geometry) {                                \
        const tg_geometry g = tg_read_geometry(geometry);                                     \
        const ptrdiff_t c = g.c, taps = g.k[0] * g.k[1] * g.k[2];                             \
        ptrdiff_t off[3];                                                                     \
        ptrdiff_t *src = tg_sources(&g, off);                                                 \
        if (!src) return -1;                                                                  \
        T *dst = x;                                                                           \
        for (ptrdiff_t b = 0; b < g.n; b++)                                                   \
            for (ptrdiff_t p0 = 0; p0 < g.in[0]; p0++)                                        \
                for (ptrdiff_t p1 = 0; p1 < g.in[1]; p1++)                                    \
                    for (ptrdiff_t p2 = 0; p2 < g.in[2]; p2++, dst += c) {                    \
                        for (ptrdiff_t j = 0; j < c; j++) dst[j] = 0;                         \
                        const ptrdiff_t *s0 = src + off[0] + p0 * g.k[0];                     \
                        const ptrdiff_t *s1 = src + off[1] + p1 * g.k[1];                     \
                        const ptrdiff_t *s2 = src + off[2] + p2 * g.k[2];                     \
                        for (ptrdiff_t t0 = 0; t0 < g.k[0]; t0++) {                           \
                            if (s0[t0] < 0) continue;                                         \
                            for (ptrdiff_t t1 = 0; t1 < g.k[1]; t1++) {                       \
                                if (s1[t1] < 0) continue;                                     \
                                const ptrdiff_t row = (b * g.out[0] + s0[t0]) * g.out[1] + s1[t1]; \
                                for (ptrdiff_t t2 = 0; t2 < g.k[2]; t2++) {                   \
                                    if (s2[t2] < 0) continue;                                 \
                                    const ptrdiff_t tap = (t0 * g.k[1] + t1) * g.k[2] + t2;   \
                                    const T *v = cols + ((row * g.out[2] + s2[t2]) * taps + tap) * c; \
                                    for (ptrdiff_t j = 0; j < c; j++) dst[j] = dst[j] + v[j]; \
                                }                                                             \
                            }                                                                 \
                        }                                                                     \
                    }                                                                         \
        free(src);                                                                            \
        return 0;                                                                             \
    }

/* max_pool_grad: share (batch, out..., channels) = g / (the number of cells of each
 * window equal to its maximum); then each input cell gets, over the taps in order,
 * the share of every window whose maximum it equals. x is the padded input. Returns 0,
 * or -1 if memory ran out. */
#define TG_MAX_POOL_GRAD(NAME, T)                                                             \
    int NAME(const T *x, const T *out, const T *grad, T *share, T *dx,                        \
             const long long *geometry) {                                                     \
        const tg_geometry g = tg_read_geometry(geometry);                                     \
        const ptrdiff_t c = g.c;                                                              \
        ptrdiff_t off[3];                                                                     \
        ptrdiff_t *src = tg_sources(&g, off);                                                 \
        if (!src) return -1;                                                                  \
        for (ptrdiff_t b = 0; b < g.n; b++)                                                   \
            for (ptrdiff_t o0 = 0; o0 < g.out[0]; o0++)                                       \
                for (ptrdiff_t o1 = 0; o1 < g.out[1]; o1++)                                   \
                    for (ptrdiff_t o2 = 0; o2 < g.out[2]; o2++) {                             \
                        const ptrdiff_t at = (((b * g.out[0] + o0) * g.out[1] + o1) * g.out[2] + o2) * c; \
                        T *cnt = share + at;                                                  \
                        const T *m = out + at;                                                \
                        for (ptrdiff_t t0 = 0; t0 < g.k[0]; t0++)                             \
                            for (ptrdiff_t t1 = 0; t1 < g.k[1]; t1++)                         \
                                for (ptrdiff_t t2 = 0; t2 < g.k[2]; t2++) {                   \
                                    const T *v = x +                                          \
                                        (((b * g.in[0] + o0 * g.s[0] + t0) * g.in[1] +        \
                                          o1 * g.s[1] + t1) * g.in[2] + o2 * g.s[2] + t2) * c; \
                                    if (t0 == 0 && t1 == 0 && t2 == 0)                        \
                                        for (ptrdiff_t j = 0; j < c; j++) cnt[j] = (T)(v[j] == m[j]); \
                                    else                                                      \
                                        for (ptrdiff_t j = 0; j < c; j++) cnt[j] = cnt[j] + (T)(v[j] == m[j]); \
                                }                                                             \
                        for (ptrdiff_t j = 0; j < c; j++) cnt[j] = grad[at + j] / cnt[j];     \
                    }                                                                         \
        T *dst = dx;                                                                          \
        const T *v = x;                                                                       \
        for (ptrdiff_t b = 0; b < g.n; b++)                                                   \
            for (ptrdiff_t p0 = 0; p0 < g.in[0]; p0++)                                        \
                for (ptrdiff_t p1 = 0; p1 < g.in[1]; p1++)                                    \
                    for (ptrdiff_t p2 = 0; p2 < g.in[2]; p2++, dst += c, v += c) {            \
                        for (ptrdiff_t j = 0; j < c; j++) dst[j] = 0;                         \
                        const ptrdiff_t *s0 = src + off[0] + p0 * g.k[0];                     \
                        const ptrdiff_t *s1 = src + off[1] + p1 * g.k[1];                     \
                        const ptrdiff_t *s2 = src + off[2] + p2 * g.k[2];                     \
                        for (ptrdiff_t t0 = 0; t0 < g.k[0]; t0++) {                           \
                            if (s0[t0] < 0) continue;                                         \
                            for (ptrdiff_t t1 = 0; t1 < g.k[1]; t1++) {                       \
                                if (s1[t1] < 0) continue;                                     \
                                const ptrdiff_t row = (b * g.out[0] + s0[t0]) * g.out[1] + s1[t1]; \
                                for (ptrdiff_t t2 = 0; t2 < g.k[2]; t2++) {                   \
                                    if (s2[t2] < 0) continue;                                 \
                                    const ptrdiff_t at = (row * g.out[2] + s2[t2]) * c;       \
                                    const T *m = out + at, *sh = share + at;                  \
                                    for (ptrdiff_t j = 0; j < c; j++)                         \
                                        dst[j] = dst[j] + (T)(v[j] == m[j]) * sh[j];          \
                                }                                                             \
                            }                                                                 \
                        }                                                                     \
                    }                                                                         \
        free(src);                                                                            \
        return 0;                                                                             \
    }

TG_PATCHES(tg_patches_f32, float)
TG_PATCHES(tg_patches_f64, double)
TG_SCATTER_PATCHES(tg_scatter_patches_f32, float)
TG_SCATTER_PATCHES(tg_scatter_patches_f64, double)
TG_MAX_POOL_GRAD(tg_max_pool_grad_f32, float)
TG_MAX_POOL_GRAD(tg_max_pool_grad_f64, double)

/* The version of this file's interface, checked after loading. */
int tg_window_abi_version(void) { return 1; }
