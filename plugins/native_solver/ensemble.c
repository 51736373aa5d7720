/* neuroplex native ensembles: integrator.c's neuroplex_solve over a batch of parameter sets and
 * initial states in one call, sample after sample, so no Python runs between samples (a ctypes
 * call of neuroplex_solve costs about as much as a short sample's integration).
 *
 * Row b reads p + b * p_stride (p_stride 0: one parameter set for every row), y0 + b * nx and
 * atol + b * atol_stride (0: one tolerance row for every row), and writes out + b * n_t * nx
 * (n_t x nx), stats + 5 b and status[b], exactly as one neuroplex_solve call per row would.
 */
#include <stdint.h>

typedef int64_t (*np_solve_fn)(void *bind, void *rhs, void *jac, int64_t nx, int64_t nk, const double *p,
                               const double *y0, double t0, double t1, const double *t_eval, int64_t n_t,
                               double rtol, const double *atol, double h_init, double h_max, double h_min,
                               int64_t max_steps, int64_t method, double *out, int64_t *stats);

void neuroplex_solve_batch(np_solve_fn solve, void *bind, void *rhs, void *jac, int64_t nx, int64_t nk,
                           int64_t batch, const double *p, int64_t p_stride, const double *y0, double t0,
                           double t1, const double *t_eval, int64_t n_t, double rtol, const double *atol,
                           int64_t atol_stride, double h_init, double h_max, double h_min, int64_t max_steps,
                           int64_t method, double *out, int64_t *stats, int64_t *status) {
    for (int64_t b = 0; b < batch; ++b)
        status[b] = solve(bind, rhs, jac, nx, nk, p + b * p_stride, y0 + b * nx, t0, t1, t_eval, n_t, rtol,
                          atol + b * atol_stride, h_init, h_max, h_min, max_steps, method, out + b * n_t * nx,
                          stats + 5 * b);
}
