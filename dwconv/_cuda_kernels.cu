// dwconv's CUDA kernels, compiled by NVRTC (through cupy.RawModule) once per specialization.
// dwconv/_cupy.py puts before this source the enums Mode and Activation, generated from the codes
// it passes (dwconv._names's), and the macros PIXELS and TAPS_PER_THREAD, which it also launches by.

typedef unsigned short half_t;  // float16 bits, converted with the PTX instructions cuda_fp16.h uses

#ifdef __CUDACC__
__device__ __forceinline__ float value(half_t v) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v));
    return f;
}
__device__ __forceinline__ void store(half_t *p, float v) {
    half_t h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    *p = h;
}
#else  // a host compiler: the tests run these kernels on the CPU
__device__ __forceinline__ float value(half_t v) { _Float16 h; memcpy(&h, &v, 2); return (float)h; }
__device__ __forceinline__ void store(half_t *p, float v) { _Float16 h = (_Float16)v; memcpy(p, &h, 2); }
#endif
__device__ __forceinline__ float value(float v) { return v; }
__device__ __forceinline__ double value(double v) { return v; }
__device__ __forceinline__ void store(float *p, float v) { *p = v; }
__device__ __forceinline__ void store(double *p, double v) { *p = v; }

__device__ __forceinline__ int floor_mod(int a, int b) {
    const int r = a % b;
    return r < 0 ? r + b : r;
}

__device__ __forceinline__ int ceil_div(int a, int b) {  // b > 0, any a
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

// The input coordinate whose value padded coordinate p (counted from the input's first pixel)
// holds along an axis of n pixels, as numpy.pad fills it; -1 where the padding holds zeros.
__device__ __forceinline__ int source(int p, int n, int mode) {
    if (p >= 0 && p < n) return p;
    if (mode == ZEROS || n == 0) return -1;  // an empty axis has nothing to copy
    if (mode == REPLICATE) return p < 0 ? 0 : n - 1;
    if (mode == CIRCULAR) return floor_mod(p, n);
    if (mode == SYMMETRIC) {  // reflection about the edges themselves: the edge pixel repeats
        const int q = floor_mod(p, 2 * n);
        return q < n ? q : 2 * n - 1 - q;
    }
    if (n == 1) return 0;
    const int period = 2 * (n - 1);  // REFLECT about the first and the last pixel
    const int q = floor_mod(p, period);
    return q < n ? q : period - q;
}

template <typename A>
__device__ __forceinline__ A activate(A v, int act) {
    switch (act) {  // comparisons written so that NaN stays NaN
    case RELU: return v < A(0) ? A(0) : v;
    case RELU6: return v < A(0) ? A(0) : v > A(6) ? A(6) : v;
    case SIGMOID: return A(1) / (A(1) + exp(-v));
    case TANH: return tanh(v);
    case GELU: return A(0.5) * v * (A(1) + erf(v * A(0.70710678118654752440)));
    case SILU: return v / (A(1) + exp(-v));
    case HARD_SWISH: return v * (v < A(-3) ? A(0) : v > A(3) ? A(6) : v + A(3)) / A(6);
    default: return v;
    }
}

// Offset of element (n, h, w, c) of an image batch of H x W pixels and C channels.
template <bool NHWC>
__device__ __forceinline__ long long at(int n, int h, int w, int c, int H, int W, int C) {
    return NHWC ? (((long long)n * H + h) * W + w) * C + c : (((long long)n * C + c) * H + h) * W + w;
}

struct Index { int n, h, w, c; };

// The element at flat position t of an H x W x C batch in memory order: consecutive threads get
// consecutive channels in NHWC, consecutive columns in NCHW.
template <bool NHWC>
__device__ __forceinline__ Index unflatten(long long t, int H, int W, int C) {
    Index i;
    if (NHWC) {
        i.c = (int)(t % C); t /= C;
        i.w = (int)(t % W); t /= W;
        i.h = (int)(t % H); i.n = (int)(t / H);
    } else {
        i.w = (int)(t % W); t /= W;
        i.h = (int)(t % H); t /= H;
        i.c = (int)(t % C); i.n = (int)(t / C);
    }
    return i;
}

#define GEOMETRY int N, int H, int W, int C, int M, int kh, int kw, int sh, int sw, int dil_h, int dil_w, \
                 int pt, int pl, int OH, int OW, int mode
#define GRID_STRIDE_LOOP(t, total) \
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < (total); \
         t += (long long)gridDim.x * blockDim.x)

// y = act(bias + depthwise_conv2d(x, w)). Each thread: PIXELS outputs of output channel co, along
// the row in NHWC, down the column in NCHW; out-of-range ones are computed and not stored.
template <typename Tx, typename Ty, typename A, bool NHWC>
__global__ void forward(const Tx *x, const A *w, const A *bias, int has_bias, Ty *y, GEOMETRY, int act) {
    const int CM = C * M;
    const int rows = NHWC ? OH : (OH + PIXELS - 1) / PIXELS, cols = NHWC ? (OW + PIXELS - 1) / PIXELS : OW;
    GRID_STRIDE_LOOP(t, (long long)N * rows * cols * CM) {
        const Index o = unflatten<NHWC>(t, rows, cols, CM);
        const int oh0 = NHWC ? o.h : o.h * PIXELS, ow0 = NHWC ? o.w * PIXELS : o.w, c = o.c / M;
        A acc[PIXELS];
        #pragma unroll
        for (int p = 0; p < PIXELS; ++p) acc[p] = has_bias ? bias[o.c] : A(0);
        for (int i = 0; i < kh; ++i) {
            for (int j = 0; j < kw; ++j) {
                const A tap = w[(i * kw + j) * CM + o.c];
                #pragma unroll
                for (int p = 0; p < PIXELS; ++p) {
                    const int ih = source((oh0 + (NHWC ? 0 : p)) * sh + i * dil_h - pt, H, mode);
                    const int iw = source((ow0 + (NHWC ? p : 0)) * sw + j * dil_w - pl, W, mode);
                    if (ih >= 0 && iw >= 0) acc[p] += tap * value(x[at<NHWC>(o.n, ih, iw, c, H, W, C)]);
                }
            }
        }
        #pragma unroll
        for (int p = 0; p < PIXELS; ++p) {
            const int oh = oh0 + (NHWC ? 0 : p), ow = ow0 + (NHWC ? p : 0);
            if (oh < OH && ow < OW) store(&y[at<NHWC>(o.n, oh, ow, o.c, OH, OW, CM)], activate(acc[p], act));
        }
    }
}

// Along one axis, the output coordinates whose tap t reads input coordinate `in`. Candidate 0 is
// the output whose tap lands on `in` itself; in the padding modes other than zeros, candidates
// 1.. are the outputs whose tap lands in the padding ([0, before) before the input, [after, out)
// after it), which read `in` where source() maps their coordinate to it.
struct Readers { int in, n, t, pad, s, dil, out, mode, before, after, count; };

__device__ __forceinline__ Readers readers(int in, int n, int t, int pad, int s, int dil, int out, int mode) {
    const int before = min(max(ceil_div(pad - t * dil, s), 0), out);
    const int after = min(max(ceil_div(n + pad - t * dil, s), before), out);
    const int count = mode == ZEROS ? 1 : 1 + before + out - after;
    const Readers r = {in, n, t, pad, s, dil, out, mode, before, after, count};
    return r;
}

// The k-th candidate of r, or -1 where it does not read r.in.
__device__ __forceinline__ int reader(const Readers &r, int k) {
    if (k == 0) {
        const int q = r.in + r.pad - r.t * r.dil;
        return q >= 0 && q % r.s == 0 && q / r.s < r.out ? q / r.s : -1;
    }
    const int o = k - 1 < r.before ? k - 1 : r.after + (k - 1 - r.before);
    return source(o * r.s + r.t * r.dil - r.pad, r.n, r.mode) == r.in ? o : -1;
}

// dx = the gradient of sum(y * dy) with respect to x: one input pixel and channel per thread.
template <typename Tdy, typename Tdx, typename A, bool NHWC>
__global__ void input_grad(const Tdy *dy, const A *w, Tdx *dx, GEOMETRY) {
    const int CM = C * M;
    GRID_STRIDE_LOOP(t, (long long)N * H * W * C) {
        const Index in = unflatten<NHWC>(t, H, W, C);
        A acc = A(0);
        for (int i = 0; i < kh; ++i) {
            const Readers rows = readers(in.h, H, i, pt, sh, dil_h, OH, mode);
            for (int kr = 0; kr < rows.count; ++kr) {
                const int oh = reader(rows, kr);
                if (oh < 0) continue;
                for (int j = 0; j < kw; ++j) {
                    const Readers cols = readers(in.w, W, j, pl, sw, dil_w, OW, mode);
                    for (int kc = 0; kc < cols.count; ++kc) {
                        const int ow = reader(cols, kc);
                        if (ow < 0) continue;
                        for (int m = 0; m < M; ++m) {
                            const int co = in.c * M + m;
                            acc += w[(i * kw + j) * CM + co] * value(dy[at<NHWC>(in.n, oh, ow, co, OH, OW, CM)]);
                        }
                    }
                }
            }
        }
        store(&dx[t], acc);
    }
}

extern __shared__ unsigned char shared_bytes[];

// Partial sums of the filter gradient (and, as tap kh*kw when taps > kh*kw, of the bias gradient)
// over the slice blockIdx.z of the N*OH*OW output pixels, for output channels blockIdx.x *
// blockDim.x + threadIdx.x and taps from blockIdx.y * TAPS_PER_THREAD: partials[z][tap][co].
// blockDim.y is a power of two.
template <typename Tx, typename Tdy, typename A, bool NHWC>
__global__ void filter_grad_partials(const Tx *x, const Tdy *dy, A *partials, int taps, GEOMETRY) {
    A *lanes = reinterpret_cast<A *>(shared_bytes);
    const int CM = C * M, co = blockIdx.x * blockDim.x + threadIdx.x, tap0 = blockIdx.y * TAPS_PER_THREAD;
    const long long pixels = (long long)N * OH * OW;
    const long long begin = pixels * blockIdx.z / gridDim.z, end = pixels * (blockIdx.z + 1) / gridDim.z;
    A acc[TAPS_PER_THREAD];
    #pragma unroll
    for (int k = 0; k < TAPS_PER_THREAD; ++k) acc[k] = A(0);
    if (co < CM) {
        for (long long p = begin + threadIdx.y; p < end; p += blockDim.y) {
            const int ow = (int)(p % OW), oh = (int)(p / OW % OH), n = (int)(p / OW / OH);
            const A dyv = value(dy[at<NHWC>(n, oh, ow, co, OH, OW, CM)]);
            #pragma unroll
            for (int k = 0; k < TAPS_PER_THREAD; ++k) {
                const int tap = tap0 + k;
                if (tap < kh * kw) {
                    const int ih = source(oh * sh + tap / kw * dil_h - pt, H, mode);
                    const int iw = source(ow * sw + tap % kw * dil_w - pl, W, mode);
                    if (ih >= 0 && iw >= 0) acc[k] += dyv * value(x[at<NHWC>(n, ih, iw, co / M, H, W, C)]);
                } else if (tap < taps) {
                    acc[k] += dyv;  // the bias
                }
            }
        }
    }
    // Sum the pixel lanes of each channel lane in a fixed tree (the loop bounds are the block's own).
    const int lane = threadIdx.y * blockDim.x + threadIdx.x;
    #pragma unroll
    for (int k = 0; k < TAPS_PER_THREAD; ++k) {
        if (tap0 + k >= taps) break;
        lanes[lane] = acc[k];
        __syncthreads();
        for (int half = blockDim.y / 2; half > 0; half /= 2) {
            if (threadIdx.y < half) lanes[lane] += lanes[lane + half * blockDim.x];
            __syncthreads();
        }
        if (threadIdx.y == 0 && co < CM) partials[((long long)blockIdx.z * taps + tap0 + k) * CM + co] = lanes[lane];
        __syncthreads();
    }
}

// dfilters[t] (t < filter_count), then dbias[t - filter_count]: the partial sums of each, in order.
template <typename Tw, typename A>
__global__ void sum_partials(const A *partials, int splits, int count, int filter_count, Tw *dfilters, Tw *dbias) {
    GRID_STRIDE_LOOP(t, count) {
        A sum = A(0);
        for (int z = 0; z < splits; ++z) sum += partials[(long long)z * count + t];
        store(t < filter_count ? &dfilters[t] : &dbias[t - filter_count], sum);
    }
}
