// CUDA kernels of DArray's element-wise operations and of the per-tile step of its reductions
// (darray_gpu.h). They compute what darray/elementwise.c's and darray/reduce.c's CPU bodies
// compute, with the same rules for NaN, infinities and int64 wrap-around; a sum's rounding may
// differ (another order of additions). Everything is queued on the caller's stream.
//
// Reductions over a tile: one block per column makes the column's partial (coalesced reads down
// the column), then one block combines the columns' partials; the row sums of NORM_INF take a
// thread per row instead. The columns' partials live in stream-ordered scratch memory
// (cudaMallocAsync), freed on the stream after the combining kernel.
#include "darray_gpu.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>

#include <dagr/darray.h>

namespace {

constexpr int THREADS = 256;
constexpr int MAX_BLOCKS = 4096;

template <typename T>
__global__ void ew_kernel(gpu_ew_t a, T alpha, T beta) {
    int64_t n = a.rows * a.cols;
    const T *x = static_cast<const T *>(a.x), *y = static_cast<const T *>(a.y);
    T *z = static_cast<T *>(a.z);
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i % a.rows, c = i / a.rows;
        T *zi = z + r + c * (int64_t)a.ldz;
        switch (a.op) {
        case GPU_EW_SCALE:
            *zi *= alpha;
            break;
        case GPU_EW_SHIFT:
            *zi += alpha;
            break;
        case GPU_EW_AXPBY: {
            T xi = x[r + c * (int64_t)a.ldx];
            *zi = beta == T(0) ? alpha * xi : alpha * xi + beta * *zi;
            break;
        }
        default: { /* ADD, MUL */
            T xi = x[r + c * (int64_t)a.ldx], yi = a.bcast ? y[0] : y[r + c * (int64_t)a.ldy];
            *zi = a.op == GPU_EW_MUL ? xi * yi : xi + yi;
            break;
        }
        }
    }
}

// The block's reduction of v by f; every thread gets the result. Shared memory is reused: the
// trailing barrier lets a second call follow at once.
template <typename V, typename F>
__device__ V block_reduce(V v, F f) {
    __shared__ V sh[THREADS];
    int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] = f(sh[t], sh[t + s]);
        __syncthreads();
    }
    V r = sh[0];
    __syncthreads();
    return r;
}

struct Add {
    template <typename V>
    __device__ V operator()(V a, V b) const { return a + b; }
};
struct Max {
    __device__ double operator()(double a, double b) const { return fmax(a, b); }
};
struct Min {
    __device__ double operator()(double a, double b) const { return fmin(a, b); }
};
struct Or {
    __device__ int operator()(int a, int b) const { return a | b; }
};

template <typename T>
__device__ double at(const void *x, int64_t i) {
    return (double)static_cast<const T *>(x)[i];
}

// Block c: column c's partial. scratch: one value per column (SUM, MIN, MAX, NORM_MAX; the int64
// sum as its bits), a (scale, ssq) pair per column (NORM_FRO); NORM_ONE writes out[c] itself.
template <typename T>
__global__ void column_kernel(int op, int int64_sum, const void *x, size_t ldx, int64_t rows,
                              double *scratch, double *out) {
    int64_t c = blockIdx.x;
    int64_t base = c * (int64_t)ldx;
    if (int64_sum) { // exact, wrapping
        unsigned long long s = 0;
        for (int64_t r = threadIdx.x; r < rows; r += blockDim.x)
            s += (unsigned long long)static_cast<const T *>(x)[base + r];
        s = block_reduce(s, Add());
        if (threadIdx.x == 0) memcpy(&scratch[c], &s, sizeof s);
        return;
    }
    if (op == DAGR_REDUCE_SUM || op == DAGR_NORM_ONE) {
        double s = 0;
        for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
            double v = at<T>(x, base + r);
            s += op == DAGR_NORM_ONE ? fabs(v) : v;
        }
        s = block_reduce(s, Add());
        if (threadIdx.x == 0) (op == DAGR_NORM_ONE ? out : scratch)[c] = s;
        return;
    }
    // MIN, MAX, NORM_MAX, and NORM_FRO's first pass: the extreme of the values that are not
    // NaN, and whether there was a NaN.
    bool fro = op == DAGR_NORM_FRO, min = op == DAGR_REDUCE_MIN;
    double m = min ? INFINITY : op == DAGR_REDUCE_MAX ? -INFINITY : 0.0;
    int nan = 0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
        double v = at<T>(x, base + r);
        if (op == DAGR_NORM_MAX || fro) v = fabs(v);
        if (isnan(v))
            nan = 1;
        else
            m = min ? fmin(m, v) : fmax(m, v);
    }
    m = min ? block_reduce(m, Min()) : block_reduce(m, Max());
    nan = block_reduce(nan, Or());
    if (!fro) {
        if (threadIdx.x == 0) scratch[c] = nan ? NAN : m;
        return;
    }
    // NORM_FRO: (scale, ssq) as darray/reduce.c's fro_tile: NaN, Inf and 0 as such, else the
    // sum of squares scaled by the column's largest magnitude.
    if (nan || isinf(m) || m == 0) {
        if (threadIdx.x == 0) {
            scratch[2 * c] = nan ? NAN : m;
            scratch[2 * c + 1] = m == 0 && !nan ? 0.0 : 1.0;
        }
        return;
    }
    double inv = 1.0 / m, ss = 0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
        double v = at<T>(x, base + r) * inv;
        ss += v * v;
    }
    ss = block_reduce(ss, Add());
    if (threadIdx.x == 0) {
        scratch[2 * c] = m;
        scratch[2 * c + 1] = ss;
    }
}

__device__ double nan_max(double m, double v) {
    return (v > m || isnan(v)) && !isnan(m) ? v : m;
}
__device__ double nan_min(double m, double v) {
    return (v < m || isnan(v)) && !isnan(m) ? v : m;
}

// One block: the columns' partials combined into out (darray/reduce.c's combine, fro_combine).
__global__ void combine_kernel(int op, int int64_sum, const double *scratch, int64_t cols,
                               double *out) {
    if (op == DAGR_NORM_FRO) { // sequential: the scaling does not reassociate
        if (threadIdx.x != 0) return;
        double acc0 = 0, acc1 = 0;
        for (int64_t c = 0; c < cols; c++) {
            double p0 = scratch[2 * c], p1 = scratch[2 * c + 1];
            if (isnan(acc0) || isnan(p0)) {
                acc0 = NAN;
            } else if (isinf(acc0) || isinf(p0)) {
                acc0 = INFINITY;
            } else if (p0 > acc0) {
                double r = acc0 / p0;
                acc1 = p1 + acc1 * r * r;
                acc0 = p0;
            } else if (p0 > 0) {
                double r = p0 / acc0;
                acc1 += p1 * r * r;
            }
        }
        out[0] = acc0;
        out[1] = acc1;
        return;
    }
    if (int64_sum) {
        unsigned long long s = 0;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
            unsigned long long v;
            memcpy(&v, &scratch[c], sizeof v);
            s += v;
        }
        s = block_reduce(s, Add());
        if (threadIdx.x == 0) memcpy(&out[0], &s, sizeof s);
        return;
    }
    if (op == DAGR_REDUCE_SUM) {
        double s = 0;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
            s += scratch[c];
        s = block_reduce(s, Add());
        if (threadIdx.x == 0) out[0] = s;
        return;
    }
    if (threadIdx.x != 0) return; // MIN, MAX, NORM_MAX: a few values per column, in order
    double m = op == DAGR_REDUCE_MIN ? INFINITY : op == DAGR_REDUCE_MAX ? -INFINITY : 0.0;
    for (int64_t c = 0; c < cols; c++)
        m = op == DAGR_REDUCE_MIN ? nan_min(m, scratch[c]) : nan_max(m, scratch[c]);
    out[0] = m;
}

// NORM_INF: thread r sums row r's magnitudes (consecutive threads read consecutive rows).
template <typename T>
__global__ void row_kernel(const void *x, size_t ldx, int64_t rows, int64_t cols, double *out) {
    for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows;
         r += (int64_t)gridDim.x * blockDim.x) {
        double s = 0;
        for (int64_t c = 0; c < cols; c++)
            s += fabs(at<T>(x, r + c * (int64_t)ldx));
        out[r] = s;
    }
}

unsigned blocks_for(int64_t n) {
    int64_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < 1 ? 1 : b > MAX_BLOCKS ? MAX_BLOCKS : b);
}

template <typename T>
cudaError_t reduce_tile(cudaStream_t s, int op, const void *x, size_t ldx, int64_t rows,
                        int64_t cols, double *out, bool int64_sum) {
    if (op == DAGR_NORM_INF) {
        if (rows > 0) row_kernel<T><<<blocks_for(rows), THREADS, 0, s>>>(x, ldx, rows, cols, out);
        return cudaGetLastError();
    }
    if (op == DAGR_NORM_ONE) {
        if (cols > 0) column_kernel<T><<<(unsigned)cols, THREADS, 0, s>>>(op, 0, x, ldx, rows, out, out);
        return cudaGetLastError();
    }
    double *scratch = nullptr;
    size_t bytes = (size_t)(cols > 0 ? cols : 1) * 2 * sizeof(double);
    cudaError_t e = cudaMallocAsync((void **)&scratch, bytes, s);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return e;
    }
    if (cols > 0) column_kernel<T>
            <<<(unsigned)cols, THREADS, 0, s>>>(op, int64_sum, x, ldx, rows, scratch, out);
    combine_kernel<<<1, THREADS, 0, s>>>(op, int64_sum, scratch, cols, out);
    e = cudaGetLastError();
    cudaError_t f = cudaFreeAsync(scratch, s);
    if (f != cudaSuccess) (void)cudaGetLastError();
    return e != cudaSuccess ? e : f;
}

} // namespace

// Launch errors are read with cudaGetLastError, which also returns an error that an earlier
// call on this thread left (a user's body that ignored one): that one is cleared first, so that
// it does not fail this task, and ours are cleared once read.
extern "C" int gpu_da_ew(void *stream, const gpu_ew_t *a) {
    (void)cudaGetLastError();
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    int64_t n = a->rows * a->cols;
    if (n <= 0) return cudaSuccess;
    unsigned b = blocks_for(n);
    switch (a->dtype) {
    case DAGR_DOUBLE:
        ew_kernel<double><<<b, THREADS, 0, s>>>(*a, a->alpha, a->beta);
        break;
    case DAGR_FLOAT:
        ew_kernel<float><<<b, THREADS, 0, s>>>(*a, (float)a->alpha, (float)a->beta);
        break;
    case DAGR_INT64:
        ew_kernel<int64_t><<<b, THREADS, 0, s>>>(*a, (int64_t)a->ialpha, (int64_t)a->ibeta);
        break;
    default:
        return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" int gpu_da_reduce_tile(void *stream, int op, int dtype, const void *x, size_t ldx,
                                  int64_t rows, int64_t cols, double *out) {
    (void)cudaGetLastError(); // as gpu_da_ew
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (cols > 0x7fffffff) return cudaErrorInvalidConfiguration; // one block per column
    switch (dtype) {
    case DAGR_DOUBLE:
        return reduce_tile<double>(s, op, x, ldx, rows, cols, out, false);
    case DAGR_FLOAT:
        return reduce_tile<float>(s, op, x, ldx, rows, cols, out, false);
    case DAGR_INT64:
        return reduce_tile<int64_t>(s, op, x, ldx, rows, cols, out, op == DAGR_REDUCE_SUM);
    default:
        return cudaErrorInvalidValue;
    }
}

extern "C" const char *gpu_da_error(int err) {
    static thread_local char msg[256];
    cudaError_t e = static_cast<cudaError_t>(err);
    snprintf(msg, sizeof msg, "%s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
    return msg;
}
