/* neuroplex native ensembles in lockstep: NP_L samples advanced together by Dormand-Prince 5(4),
 * so each stage calls the model's right-hand side once for all of them (model_rhs_lanes, built
 * per model with its math functions vectorised across the samples: lanes.py), and the arithmetic
 * between stages runs on vectors of samples.
 *
 * Each lane is one sample running integrator.c's dopri5 step by step as neuroplex_solve does
 * (method 1, or method 0 until Hairer's stiffness test fires): the same starting step, the same
 * PI controller, the same operations in the same order, dense output, stats and status codes,
 * each lane with its own t and h. The one difference: the vectorised math functions
 * (glibc's libmvec) may round differently from the scalar ones in the last bits, so a sample
 * of a model that calls exp/pow/... agrees with its one-trajectory run to the integration's
 * tolerance rather than bit for bit (a model of pure arithmetic agrees bit for bit). A lane
 * whose sample the stiffness test finds stiff (method 0), or that reaches NP_PROBE_FIRST accepted
 * steps (where a single run under method 0 tries RODAS4: integrator.c's PROBE_FIRST), gives the
 * sample to neuroplex_solve from the start (which tries and keeps RODAS4 as a single run does), so
 * such samples equal their single runs. A lane whose sample ends takes the next row: rows are claimed CHUNK at a time
 * from the counter *next, shared by the processes of an ensemble (ensemble.c).
 *
 * Outputs state-major as ensemble.c writes them: value (j, i) of row b at
 * out[i * batch * n_t + b * n_t + j].
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NP_L 8
#define ST_OK 0
#define ST_MAX_STEPS 1
#define ST_DT_MIN 2
#define ST_NONFINITE 3

typedef int64_t (*np_solve_fn)(void *bind, void *rhs, void *jac, int64_t nx, int64_t nk, const double *p,
                               const double *y0, double t0, double t1, const double *t_eval, int64_t n_t,
                               double rtol, const double *atol, double h_init, double h_max, double h_min,
                               int64_t max_steps, int64_t method, double *out, int64_t *stats);
typedef void (*np_rhs_t)(double t, const double *y, const double *p, const double *k, double *dy);
typedef void (*np_bind_t)(const double *p, double *k);
typedef void (*np_lanes_t)(const double *t, const double *y, const double *p, const double *k, double *dy);

static const double DP_C[7] = {0.0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1.0, 1.0};
static const double DP_A[7][6] = {
    {0},
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0.0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
#define NP_PROBE_FIRST 200 /* integrator.c's PROBE_FIRST: method 0 tries RODAS4 after as many dopri5 steps */
static const double DP_E[7] = {71.0 / 57600, 0.0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40};
static const double DP_D[7] = {-12715105075.0 / 11282082432.0, 0.0, 87487479700.0 / 32700410799.0,
                               -10690763975.0 / 1880347072.0, 701980252875.0 / 199316789632.0,
                               -1453857185.0 / 822651844.0, 69997945.0 / 29380423.0};

/* what the lanes share: the run's settings and the batch */
typedef struct {
    np_solve_fn solve;
    np_bind_t bind;
    np_rhs_t rhs;
    void *jac;
    int n, nk, np;
    int64_t batch, n_t, p_stride, atol_stride, max_steps, method, chunk;
    const double *p, *y0, *t_eval, *atol;
    double t0, t1, rtol, h_init, h_max, h_min;
    double *out;
    int64_t *stats, *status, *next;
    int64_t claimed, claim_end; /* rows this process has claimed and not yet started */
    int64_t done;                /* rows this process has run */
} np_run;

/* one lane's scalar state (its vectors live in the lane-major arrays, index i * NP_L + l) */
typedef struct {
    int64_t row; /* -1: idle */
    double t, h, t_new, err_prev;
    int64_t steps, rejected, n_rhs, io;
    int last_rejected, iasti, nonsti, final_step;
} np_lane;

typedef struct {
    double *y, *y1, *f0, *ks, *ytmp, *keep, *atol, *p, *k, *kscalar, *tstage, *e;
    double *ya, *fa, *yb, *fb; /* one sample's scalar work vectors */
} np_arrays;

static int64_t np_claim(np_run *r) {
    if (r->claimed >= r->claim_end) {
        int64_t lo = __atomic_fetch_add(r->next, r->chunk, __ATOMIC_RELAXED);
        if (lo >= r->batch) return -1;
        r->claimed = lo;
        r->claim_end = lo + r->chunk < r->batch ? lo + r->chunk : r->batch;
    }
    return r->claimed++;
}

static void np_put(np_run *r, int64_t b, int64_t j, const double *v, int stride) {
    for (int i = 0; i < r->n; ++i) r->out[((int64_t)i * r->batch + b) * r->n_t + j] = v[(int64_t)i * stride];
}

/* Hairer's starting step as integrator.c's np_initial_step, on the scalar right-hand side */
static double np_start_step(np_run *r, const double *p, const double *k, const double *atol, const double *y0,
                            const double *f0, double *ytmp, double *ftmp) {
    const int NX = r->n;
    const double t0 = r->t0, t1 = r->t1, rtol = r->rtol;
    const int order = 5;
    double d0 = 0, d1 = 0;
    for (int i = 0; i < NX; ++i) {
        double sc = atol[i] + rtol * fabs(y0[i]);
        d0 += (y0[i] / sc) * (y0[i] / sc);
        d1 += (f0[i] / sc) * (f0[i] / sc);
    }
    d0 = sqrt(d0 / NX);
    d1 = sqrt(d1 / NX);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    double span = fabs(t1 - t0);
    if (h0 > span) h0 = span;
    if (!(h0 > 0) || !isfinite(h0)) h0 = 1e-6;
    for (int i = 0; i < NX; ++i) ytmp[i] = y0[i] + h0 * f0[i];
    double *ftmp2 = ftmp + NX;
    r->rhs(t0 + h0, ytmp, p, k, ftmp2);
    double d2 = 0;
    for (int i = 0; i < NX; ++i) {
        double sc = atol[i] + rtol * fabs(y0[i]);
        double q = (ftmp2[i] - f0[i]) / sc;
        d2 += q * q;
    }
    d2 = sqrt(d2 / NX) / h0;
    double dmax = d1 > d2 ? d1 : d2;
    double h1 = dmax <= 1e-15 ? fmax(1e-6, h0 * 1e-3) : pow(0.01 / dmax, 1.0 / order);
    double h = fmin(100 * h0, h1);
    if (!(h > 0) || !isfinite(h)) h = 1e-6;
    return fmin(h, span);
}

/* the sample's run ends: its stats and status, NaN for the outputs it did not reach */
static void np_finish(np_run *r, np_lane *s, int64_t status) {
    int64_t b = s->row;
    if (status == ST_OK && s->io < r->n_t) status = ST_NONFINITE;
    for (int64_t j = s->io; j < r->n_t; ++j)
        for (int i = 0; i < r->n; ++i) r->out[((int64_t)i * r->batch + b) * r->n_t + j] = NAN;
    int64_t *st = r->stats + 5 * b;
    st[0] = s->steps;
    st[1] = s->rejected;
    st[2] = s->n_rhs;
    st[3] = 0;
    st[4] = -1;
    r->status[b] = status;
    s->row = -1;
    r->done++;
}

/* the whole sample b by neuroplex_solve (stiff samples, from their start) */
static void np_single(np_run *r, int64_t b, double *one) {
    r->status[b] = r->solve((void *)r->bind, (void *)r->rhs, r->jac, r->n, r->nk, r->p + b * r->p_stride,
                            r->y0 + b * r->n, r->t0, r->t1, r->t_eval, r->n_t, r->rtol, r->atol + b * r->atol_stride,
                            r->h_init, r->h_max, r->h_min, r->max_steps, r->method, one, r->stats + 5 * b);
    for (int64_t j = 0; j < r->n_t; ++j) np_put(r, b, j, one + j * r->n, 1);
    r->done++;
}

/* start row b in lane l: parameters bound, initial state, outputs at t_eval <= t0, f0, first h */
static void np_start(np_run *r, np_arrays *a, np_lane *s, int l, int64_t b) {
    const int n = r->n;
    const double *p = r->p + b * r->p_stride, *y0 = r->y0 + b * n, *atol = r->atol + b * r->atol_stride;
    double *k = a->kscalar + (size_t)l * (r->nk > 0 ? r->nk : 1);
    r->bind(p, k);
    for (int j = 0; j < r->np; ++j) a->p[j * NP_L + l] = p[j];
    for (int j = 0; j < r->nk; ++j) a->k[j * NP_L + l] = k[j];
    for (int i = 0; i < n; ++i) {
        a->y[i * NP_L + l] = y0[i];
        a->atol[i * NP_L + l] = atol[i];
    }
    memset(s, 0, sizeof(*s));
    s->row = b;
    while (s->io < r->n_t && r->t_eval[s->io] <= r->t0) np_put(r, b, s->io++, y0, 1);
    s->t = r->t0;
    r->rhs(s->t, y0, p, k, a->fa);
    s->n_rhs = 1;
    for (int i = 0; i < n; ++i) a->f0[i * NP_L + l] = a->fa[i];
    if (r->h_init > 0) {
        s->h = r->h_init;
    } else {
        s->h = np_start_step(r, p, k, atol, y0, a->fa, a->ya, a->fb);
        s->n_rhs++;
    }
    if (r->h_max > 0 && s->h > r->h_max) s->h = r->h_max;
    s->err_prev = 1e-4;
}

/* lane l ready for its next step (a new row where it has none or its row ended); 0: no row left */
static int np_ready(np_run *r, np_arrays *a, np_lane *s, int l) {
    const int n = r->n;
    for (;;) {
        if (s->row < 0) {
            int64_t b = np_claim(r);
            if (b < 0) return 0;
            np_start(r, a, s, l, b);
        }
        if (!(s->t < r->t1)) { np_finish(r, s, ST_OK); continue; }
        if (s->steps + s->rejected >= r->max_steps) { np_finish(r, s, ST_MAX_STEPS); continue; }
        int finite = 1;
        for (int i = 0; i < n; ++i) finite &= isfinite(a->y[i * NP_L + l]) != 0;
        if (!finite) { np_finish(r, s, ST_NONFINITE); continue; }
        if (r->h_max > 0 && s->h > r->h_max) s->h = r->h_max;
        s->final_step = 0;
        if (s->t + s->h >= r->t1 || s->t + 1.01 * s->h >= r->t1) { s->h = r->t1 - s->t; s->final_step = 1; }
        if (s->h <= r->h_min || s->h < 8.0 * 2.220446049250313e-16 * fabs(s->t)) { np_finish(r, s, ST_DT_MIN); continue; }
        s->t_new = s->final_step ? r->t1 : s->t + s->h;
        return 1;
    }
}

/* after a lane's step was tried: accept (outputs, stiffness test, controller) or reject */
static void np_after(np_run *r, np_arrays *a, np_lane *s, int l, double e, double *one) {
    const int n = r->n;
    const double order = 5, beta = 0.04;
    double *ks = a->ks;
#define KS(j, i) ks[((size_t)(j) * n + (i)) * NP_L + l]
    if (!isfinite(e)) e = INFINITY;
    if (e <= 1.0) {
        double h = s->h, t = s->t, t_new = s->t_new;
        if (s->io < r->n_t && r->t_eval[s->io] <= t_new) {
            double *r5 = a->ya, *o = a->yb;
            for (int i = 0; i < n; ++i) {
                double acc = 0.0;
                for (int j = 0; j < 7; ++j) acc += DP_D[j] * KS(j, i);
                r5[i] = h * acc;
            }
            while (s->io < r->n_t && r->t_eval[s->io] <= t_new) {
                double te = r->t_eval[s->io];
                if (te == t_new) {
                    for (int i = 0; i < n; ++i) o[i] = a->y1[i * NP_L + l];
                } else {
                    double th = (te - t) / h, th1 = 1.0 - th;
                    for (int i = 0; i < n; ++i) {
                        double y = a->y[i * NP_L + l], y1 = a->y1[i * NP_L + l];
                        double yd = y1 - y;
                        double bspl = h * a->f0[i * NP_L + l] - yd;
                        double r4 = yd - h * KS(6, i) - bspl;
                        o[i] = y + th * (yd + th1 * (bspl + th * (r4 + th1 * r5[i])));
                    }
                }
                np_put(r, s->row, s->io++, o, 1);
            }
        }
        if (r->method == 0) {
            double stnum = 0, stden = 0;
            for (int i = 0; i < n; ++i) {
                double u = KS(6, i) - KS(5, i), v = a->y1[i * NP_L + l] - a->keep[i * NP_L + l];
                stnum += u * u;
                stden += v * v;
            }
            if (stden > 0 && h * sqrt(stnum / stden) > 3.25) {
                s->nonsti = 0;
                if (++s->iasti == 15) { /* stiff: the whole sample as a single run does it */
                    np_single(r, s->row, one);
                    s->row = -1;
                    return;
                }
            } else if (++s->nonsti == 6) {
                s->iasti = 0;
            }
        }
        for (int i = 0; i < n; ++i) {
            a->y[i * NP_L + l] = a->y1[i * NP_L + l];
            a->f0[i * NP_L + l] = KS(6, i);
        }
        s->t = t_new;
        ++s->steps;
        double es = e > 1e-10 ? e : 1e-10;
        double fac = 0.9 * pow(es, -(1.0 / order - 0.75 * beta)) * pow(s->err_prev, beta);
        if (fac > 10.0) fac = 10.0;
        if (fac < 0.2) fac = 0.2;
        if (s->last_rejected && fac > 1.0) fac = 1.0;
        s->h *= fac;
        s->err_prev = es > 1e-4 ? es : 1e-4;
        s->last_rejected = 0;
        if (r->method == 0 && s->steps >= NP_PROBE_FIRST) { /* where a single run tries RODAS4 */
            np_single(r, s->row, one);
            s->row = -1;
        }
    } else {
        ++s->rejected;
        double fac = isfinite(e) ? 0.9 * pow(e, -(1.0 / order - 0.75 * beta)) * pow(s->err_prev, beta) : 0.2;
        if (fac < 0.2) fac = 0.2;
        if (fac > 1.0) fac = 1.0;
        s->h *= fac;
        s->last_rejected = 1;
    }
#undef KS
}

/* rows claimed from *next until none is left, NP_L at a time in lockstep (methods 0 and 1; the
 * caller runs method 2 through ensemble.c); rows run, or -1 when out of memory */
int64_t neuroplex_solve_lanes(np_solve_fn solve, void *bind, void *rhs, void *jac, np_lanes_t lanes, int64_t nx,
                              int64_t nk, int64_t n_params, int64_t batch, const double *p, int64_t p_stride,
                              const double *y0, double t0, double t1, const double *t_eval, int64_t n_t, double rtol,
                              const double *atol, int64_t atol_stride, double h_init, double h_max, double h_min,
                              int64_t max_steps, int64_t method, double *out, int64_t *stats, int64_t *status,
                              int64_t *next, int64_t chunk) {
    const int n = (int)nx;
    np_run r = {solve, (np_bind_t)bind, (np_rhs_t)rhs, jac, n, (int)nk, (int)n_params, batch, n_t, p_stride,
                atol_stride, max_steps, method, chunk < 1 ? 1 : chunk, p, y0, t_eval, atol, t0, t1, rtol, h_init,
                h_max, h_min, out, stats, status, next, 0, 0, 0};
    size_t nl = (size_t)(n > 0 ? n : 1) * NP_L, kk = (size_t)(nk > 0 ? nk : 1), pp = (size_t)(n_params > 0 ? n_params : 1);
    size_t total = nl * 13 + kk * NP_L * 2 + pp * NP_L + 2 * NP_L + 4 * (size_t)(n > 0 ? n : 1) * 2 +
                   (size_t)(n_t * nx > 0 ? n_t * nx : 1);
    double *mem = (double *)calloc(total, sizeof(double));
    if (!mem) return -1;
    np_arrays a;
    double *q = mem;
    a.y = q; q += nl;
    a.y1 = q; q += nl;
    a.f0 = q; q += nl;
    a.ks = q; q += 7 * nl;
    a.ytmp = q; q += nl;
    a.keep = q; q += nl;
    a.atol = q; q += nl;
    a.k = q; q += kk * NP_L;
    a.kscalar = q; q += kk * NP_L;
    a.p = q; q += pp * NP_L;
    a.tstage = q; q += NP_L;
    a.e = q; q += NP_L;
    size_t n1 = (size_t)(n > 0 ? n : 1);
    a.ya = q; q += 2 * n1;
    a.fa = q; q += 2 * n1;
    a.yb = q; q += 2 * n1;
    a.fb = q; q += 2 * n1;
    double *one = q;
    np_lane s[NP_L];
    int live[NP_L];
    for (int l = 0; l < NP_L; ++l) s[l].row = -1;
    for (;;) {
        int any = 0;
        for (int l = 0; l < NP_L; ++l) {
            live[l] = np_ready(&r, &a, &s[l], l);
            any |= live[l];
        }
        if (!any) break;
        double h[NP_L], t[NP_L];
        for (int l = 0; l < NP_L; ++l) {
            h[l] = live[l] ? s[l].h : 0.0;
            t[l] = live[l] ? s[l].t : r.t0;
        }
        /* the stages: ytmp = y + h sum_j a_sj k_j, k_s = f(t + c_s h, ytmp) for all lanes */
        double *ks = a.ks;
        memcpy(ks, a.f0, sizeof(double) * nl);
        for (int st = 1; st < 7; ++st) {
            for (int i = 0; i < n; ++i) {
                double *yt = a.ytmp + (size_t)i * NP_L, acc[NP_L];
                const double *yi = a.y + (size_t)i * NP_L;
                for (int l = 0; l < NP_L; ++l) acc[l] = 0.0;
                for (int j = 0; j < st; ++j) { /* the single run's sum, term by term, over lanes at once */
                    const double c = DP_A[st][j], *kj = ks + ((size_t)j * n + i) * NP_L;
#pragma omp simd
                    for (int l = 0; l < NP_L; ++l) acc[l] += c * kj[l];
                }
#pragma omp simd
                for (int l = 0; l < NP_L; ++l) yt[l] = yi[l] + h[l] * acc[l];
            }
            if (st == 6) memcpy(a.y1, a.ytmp, sizeof(double) * nl);
            if (st == 5) memcpy(a.keep, a.ytmp, sizeof(double) * nl); /* for the stiffness test */
            for (int l = 0; l < NP_L; ++l) a.tstage[l] = st == 6 ? (live[l] ? s[l].t_new : r.t0) : t[l] + DP_C[st] * h[l];
            lanes(a.tstage, a.ytmp, a.p, a.k, ks + (size_t)st * nl);
        }
        /* error estimate and its norm per lane */
        double sum[NP_L];
        for (int l = 0; l < NP_L; ++l) sum[l] = 0.0;
        for (int i = 0; i < n; ++i) {
            double acc[NP_L];
            for (int l = 0; l < NP_L; ++l) acc[l] = 0.0;
            for (int j = 0; j < 7; ++j) {
                const double c = DP_E[j], *kj = ks + ((size_t)j * n + i) * NP_L;
#pragma omp simd
                for (int l = 0; l < NP_L; ++l) acc[l] += c * kj[l];
            }
#pragma omp simd
            for (int l = 0; l < NP_L; ++l) {
                double err = h[l] * acc[l];
                double u = fabs(a.y[i * NP_L + l]), v = fabs(a.y1[i * NP_L + l]);
                double sc = a.atol[i * NP_L + l] + rtol * (u > v ? u : v);
                double q2 = err / sc;
                sum[l] += q2 * q2;
            }
        }
        for (int l = 0; l < NP_L; ++l) {
            if (!live[l]) continue;
            s[l].n_rhs += 6;
            np_after(&r, &a, &s[l], l, n ? sqrt(sum[l] / n) : 0.0, one);
        }
    }
    free(mem);
    return r.done;
}
