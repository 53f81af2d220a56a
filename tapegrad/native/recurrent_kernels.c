/* Recurrent cell kernels: one pass per time step over the gates of an LSTM or GRU
 * (reset_after) cell, float32, the C twins of the NumPy functions in
 * tapegrad/ops/recurrent_cells.py. Compiled into the same library as kernels.c.
 *
 * NumPy's exp and tanh are whole-array passes whose bits depend on the CPU, so the
 * cells use their own exp and tanh, written with + - * / only (one rounding each,
 * -ffp-contract=off) and the same in both twins: both give the same bits.
 *   exp(x): x clamped to [-87.3, 88.3] (the result stays a normal float), n = x/ln 2
 *     rounded to nearest (adding and subtracting 1.5 * 2^23), r = x - n ln 2 with ln 2
 *     in two parts, exp(r) = 1 + r + r^2 P(r) (P of degree 4, a least-squares fit on
 *     Chebyshev nodes), times 2^n built from its bits. At most ~1 ulp from exp.
 *   tanh(x): x (1 + x^2 Q(x^2)) (Q of degree 4, fitted the same way; -0 stays -0) for |x| < 0.625,
 *     else sign(x) (1 - 2 / (exp(2|x|) + 1)). At most ~1.3 ulp from tanh.
 *   sigmoid(z) = 1 / (1 + exp(-z)).
 * Comparisons keep NaN (a NaN input gives a NaN result, as NumPy's functions do). */
/* The selects in exp and tanh compute both sides (vectorisable): no trap is enabled. */
#pragma GCC optimize("no-trapping-math")
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int tg_recurrent_abi_version(void) { return 1; }

/* The steps are compute-bound (exp, tanh, divisions): on x86-64 a second version for
 * AVX2 (8 lanes instead of SSE2's 4, chosen when the library is loaded) runs them about
 * three times faster, with the same bits (the same operations, no FMA). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define TG_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TG_CLONES
#endif

#define TG_EXP_MAX 88.3f
#define TG_EXP_MIN -87.3f
#define TG_LOG2E 1.44269504f
#define TG_ROUND_SHIFT 12582912.0f /* 1.5 * 2^23 */
#define TG_LN2_HI 0.693359375f
#define TG_LN2_LO -2.12194440e-4f
#define TG_E0 0.5f
#define TG_E1 0.16666576266288757f
#define TG_E2 0.04166646674275398f
#define TG_E3 0.008363175205886364f
#define TG_E4 0.0013933643931522965f
#define TG_TANH_SMALL 0.625f
#define TG_T0 -0.333333283662796f
#define TG_T1 0.13332782685756683f
#define TG_T2 -0.05385249853134155f
#define TG_T3 0.021003641188144684f
#define TG_T4 -0.006104947999119759f

static inline float tg_exp32(float x) {
    x = x > TG_EXP_MAX ? TG_EXP_MAX : x;
    x = x < TG_EXP_MIN ? TG_EXP_MIN : x;
    float n = (x * TG_LOG2E + TG_ROUND_SHIFT) - TG_ROUND_SHIFT;
    float r = (x - n * TG_LN2_HI) - n * TG_LN2_LO;
    float p = TG_E4;
    p = p * r + TG_E3;
    p = p * r + TG_E2;
    p = p * r + TG_E1;
    p = p * r + TG_E0;
    float y = (p * (r * r) + r) + 1.0f;
    uint32_t bits = ((uint32_t)(int32_t)n + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

static inline float tg_sigmoid32(float z) { return 1.0f / (1.0f + tg_exp32(-z)); }

static inline float tg_tanh32(float x) {
    float a = x < 0.0f ? -x : x;
    float s = x * x;
    float p = TG_T4;
    p = p * s + TG_T3;
    p = p * s + TG_T2;
    p = p * s + TG_T1;
    p = p * s + TG_T0;
    float small = x * (1.0f + s * p);
    float big = 1.0f - 2.0f / (tg_exp32(a + a) + 1.0f);
    big = x < 0.0f ? -big : big;
    return a < TG_TANH_SMALL ? small : big;
}

/* One LSTM step over `rows` rows (gates i, f, c, o of `units` columns each):
 * a (rows, 4 units): the input part of the pre-activations, replaced by the gate
 * activations of (a + rec) + bias (bias: 4 units); c_new = f c_prev + i g, tc = tanh(c_new), h_new = o tc.
 * (One restrict pointer per gate block: what lets the compiler vectorise the loops.) */
TG_CLONES void tg_lstm_step_f32(float *restrict a, const float *restrict rec, const float *restrict bias,
                                const float *restrict c_prev, float *restrict c_new, float *restrict tc, float *restrict h_new,
                      ptrdiff_t rows, ptrdiff_t units) {
    const ptrdiff_t U = units;
    for (ptrdiff_t b = 0; b < rows; b++) {
        float *restrict zi = a + b * 4 * U, *restrict zf = zi + U, *restrict zg = zi + 2 * U, *restrict zo = zi + 3 * U;
        const float *restrict qi = rec + b * 4 * U, *restrict qf = qi + U, *restrict qg = qi + 2 * U,
                              *restrict qo = qi + 3 * U;
        const float *restrict bi = bias, *restrict bf = bias + U, *restrict bg = bias + 2 * U, *restrict bo = bias + 3 * U;
        const float *restrict cp = c_prev + b * U;
        float *restrict cn = c_new + b * U, *restrict t = tc + b * U, *restrict h = h_new + b * U;
        for (ptrdiff_t j = 0; j < U; j++) {
            float i = tg_sigmoid32((zi[j] + qi[j]) + bi[j]);
            float f = tg_sigmoid32((zf[j] + qf[j]) + bf[j]);
            float g = tg_tanh32((zg[j] + qg[j]) + bg[j]);
            float o = tg_sigmoid32((zo[j] + qo[j]) + bo[j]);
            float c = f * cp[j] + i * g;
            float tcj = tg_tanh32(c);
            zi[j] = i;
            zf[j] = f;
            zg[j] = g;
            zo[j] = o;
            cn[j] = c;
            t[j] = tcj;
            h[j] = o * tcj;
        }
    }
}

/* Its backward: from the activations a, tc = tanh(c_t), c_prev and the cotangents dh of
 * h_t and dc of c_t (the part from later steps), d (rows, 4 units) = the cotangents of the
 * pre-activations, and dc <- the cotangent of c_prev. keep: NULL, or per row 1 (a real
 * step) or 0 (a masked step: d is 0 times its value, dc stays). */
TG_CLONES void tg_lstm_step_grad_f32(const float *restrict a, const float *restrict tc, const float *restrict c_prev, const float *restrict dh, float *restrict dc, float *restrict d,
                           const float *restrict keep, ptrdiff_t rows, ptrdiff_t units) {
    const ptrdiff_t U = units;
    for (ptrdiff_t b = 0; b < rows; b++) {
        const float *restrict zi = a + b * 4 * U, *restrict zf = zi + U, *restrict zg = zi + 2 * U,
                              *restrict zo = zi + 3 * U;
        const float *restrict t = tc + b * U, *restrict cp = c_prev + b * U, *restrict dhb = dh + b * U;
        float *restrict dcb = dc + b * U;
        float *restrict di = d + b * 4 * U, *restrict df = di + U, *restrict dg = di + 2 * U, *restrict dO = di + 3 * U;
        const float m = keep ? keep[b] : 1.0f;
        const int held = m == 0.0f;
        for (ptrdiff_t j = 0; j < U; j++) {
            float i = zi[j], f = zf[j], g = zg[j], o = zo[j];
            float tj = t[j], dhj = dhb[j];
            float dct = dcb[j] + ((1.0f - tj * tj) * o) * dhj;
            di[j] = ((dct * g) * ((1.0f - i) * i)) * m;
            df[j] = ((dct * cp[j]) * ((1.0f - f) * f)) * m;
            dg[j] = ((dct * i) * ((1.0f - g) * (g + 1.0f))) * m;
            dO[j] = ((dhj * tj) * ((1.0f - o) * o)) * m;
            dcb[j] = held ? dcb[j] : dct * f;
        }
    }
}

/* One GRU step (reset_after, gates z, r, h): a (rows, 3 units) holds the input part
 * of the pre-activations and becomes the activations z, r, hh; rec = h_prev R (rows,
 * 3 units); bias (3 units): the input and recurrent biases summed for z and r, the input
 * bias for h; rbias (units): the recurrent bias of h. z = sigmoid((a + rec) + bias), the
 * same for r; uh <- u = rec_h + rbias; hh = tanh((a_h + bias_h) + r u); h_new = (h_prev - hh) z + hh. */
TG_CLONES void tg_gru_step_f32(float *restrict a, const float *restrict rec, const float *restrict bias,
                               const float *restrict rbias, float *restrict uh, const float *restrict h_prev, float *restrict h_new, ptrdiff_t rows,
                     ptrdiff_t units) {
    const ptrdiff_t U = units;
    for (ptrdiff_t b = 0; b < rows; b++) {
        float *restrict xz = a + b * 3 * U, *restrict xr = xz + U, *restrict xh = xz + 2 * U;
        const float *restrict qz = rec + b * 3 * U, *restrict qr = qz + U, *restrict qh = qz + 2 * U;
        const float *restrict hp = h_prev + b * U;
        float *restrict u = uh + b * U, *restrict h = h_new + b * U;
        for (ptrdiff_t j = 0; j < U; j++) {
            float z = tg_sigmoid32((xz[j] + qz[j]) + bias[j]);
            float r = tg_sigmoid32((xr[j] + qr[j]) + bias[U + j]);
            float uj = qh[j] + rbias[j];
            float hh = tg_tanh32((xh[j] + bias[2 * U + j]) + r * uj);
            xz[j] = z;
            xr[j] = r;
            xh[j] = hh;
            u[j] = uj;
            h[j] = (hp[j] - hh) * z + hh;
        }
    }
}

/* Its backward: d (rows, 3 units) = the cotangents of the input pre-activations, du
 * (rows, 3 units) those of h_prev R + recurrent bias, carry = the part of h_prev's
 * cotangent that does not go through R (dh z; dh itself on a masked step, keep = 0). */
TG_CLONES void tg_gru_step_grad_f32(const float *restrict a, const float *restrict uh, const float *restrict h_prev, const float *restrict dh, float *restrict d, float *restrict du,
                          float *restrict carry, const float *restrict keep, ptrdiff_t rows, ptrdiff_t units) {
    const ptrdiff_t U = units;
    for (ptrdiff_t b = 0; b < rows; b++) {
        const float *restrict xz = a + b * 3 * U, *restrict xr = xz + U, *restrict xh = xz + 2 * U;
        const float *restrict u = uh + b * U, *restrict hp = h_prev + b * U, *restrict dhb = dh + b * U;
        float *restrict dz_ = d + b * 3 * U, *restrict dr_ = dz_ + U, *restrict dh_ = dz_ + 2 * U;
        float *restrict uz = du + b * 3 * U, *restrict ur = uz + U, *restrict uhh = uz + 2 * U;
        float *restrict cb = carry + b * U;
        const float m = keep ? keep[b] : 1.0f;
        const int held = m == 0.0f;
        for (ptrdiff_t j = 0; j < U; j++) {
            float z = xz[j], r = xr[j], hh = xh[j], dhj = dhb[j];
            float dz = (((hp[j] - hh) * dhj) * z) * (1.0f - z);
            float dhh = (dhj * (1.0f - z)) * (1.0f - hh * hh);
            float dr = ((dhh * u[j]) * r) * (1.0f - r);
            dz *= m;
            dr *= m;
            dhh *= m;
            dz_[j] = dz;
            dr_[j] = dr;
            dh_[j] = dhh;
            uz[j] = dz;
            ur[j] = dr;
            uhh[j] = dhh * r;
            cb[j] = held ? dhj : dhj * z;
        }
    }
}
