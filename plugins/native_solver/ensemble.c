/* neuroplex native ensembles: integrator.c's neuroplex_solve over a batch of parameter sets and
 * initial states, sample after sample, so no Python runs between samples (a ctypes call of
 * neuroplex_solve costs about as much as a short sample's integration).
 *
 * Row b reads p + b * p_stride (p_stride 0: one parameter set for every row), y0 + b * nx and
 * atol + b * atol_stride (0: one tolerance row for every row), and writes stats + 5 b, status[b]
 * and its outputs, exactly as one neuroplex_solve call per row would: the n_t x nx values land
 * state-major in out, value (j, i) of row b at out[i * batch * n_t + b * n_t + j] (each state's
 * column contiguous over the batch, the layout the SBML program's outputs read fastest).
 *
 * Rows are claimed chunk by chunk from the counter *next (atomically: the processes of an
 * ensemble share it in shared memory), so a process that is slowed down (stiff samples, a busy
 * core) takes fewer rows; which process runs a row changes nothing in its results.
 */
#include <stdint.h>
#include <stdlib.h>

typedef int64_t (*np_solve_fn)(void *bind, void *rhs, void *jac, int64_t nx, int64_t nk, const double *p,
                               const double *y0, double t0, double t1, const double *t_eval, int64_t n_t,
                               double rtol, const double *atol, double h_init, double h_max, double h_min,
                               int64_t max_steps, int64_t method, double *out, int64_t *stats);

/* rows claimed from *next in chunks of `chunk` until none is left; -1 when out of memory */
int64_t neuroplex_solve_rows(np_solve_fn solve, void *bind, void *rhs, void *jac, int64_t nx, int64_t nk,
                             int64_t batch, const double *p, int64_t p_stride, const double *y0, double t0,
                             double t1, const double *t_eval, int64_t n_t, double rtol, const double *atol,
                             int64_t atol_stride, double h_init, double h_max, double h_min, int64_t max_steps,
                             int64_t method, double *out, int64_t *stats, int64_t *status, int64_t *next,
                             int64_t chunk) {
    double *one = (double *)malloc(sizeof(double) * (size_t)(n_t * nx > 0 ? n_t * nx : 1));
    if (!one) return -1;
    if (chunk < 1) chunk = 1;
    int64_t done = 0;
    for (;;) {
        int64_t lo = __atomic_fetch_add(next, chunk, __ATOMIC_RELAXED);
        if (lo >= batch) break;
        int64_t hi = lo + chunk < batch ? lo + chunk : batch;
        for (int64_t b = lo; b < hi; ++b) {
            status[b] = solve(bind, rhs, jac, nx, nk, p + b * p_stride, y0 + b * nx, t0, t1, t_eval, n_t, rtol,
                              atol + b * atol_stride, h_init, h_max, h_min, max_steps, method, one, stats + 5 * b);
            for (int64_t i = 0; i < nx; ++i) {
                double *col = out + (i * batch + b) * n_t;
                for (int64_t j = 0; j < n_t; ++j) col[j] = one[j * nx + i];
            }
        }
        done += hi - lo;
    }
    free(one);
    return done;
}
