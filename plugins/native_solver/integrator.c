/* neuroplex native SBML integrator: one library per machine, called with a model library's
 * model_bind / model_rhs (csource.py) as function pointers.
 *
 * method 0 (auto): Dormand-Prince 5(4), trying RODAS4 when Hairer's stiffness test fires (Solving
 *   ODEs I, sec. IV.2: DOPRI5's h*lambda estimate > 3.25 on 15 accepted steps) and after 200,
 *   400, 800, ... dopri5 steps, keeping RODAS4 where it costs less per unit of time
 *   (np_rodas_pays), and trying dopri5 again after 200, 400, ... RODAS4 steps the same way;
 *   1: dopri5 only; 2: RODAS4 only.
 * Dopri5: Dormand & Prince (1980), dense output by Hairer's continuous extension (DOPRI5's d
 *   coefficients). RODAS4: Hairer & Wanner, Solving ODEs II, sec. VI.4, in the transformed form
 *   of Sandu et al. (1997): G = I/(h gamma) - J, G K_i = f(t + alpha_i h, y + sum a_ij K_j)
 *   + sum (c_ij/h) K_j + gamma_i h f_t, y1 = y + sum m_i K_i, error K_6; J and f_t from the
 *   model's generated derivatives (forward differences where it has none); dense output RODAS's
 *   own third-order interpolant from the stages (rodas.f's d coefficients). Its linear algebra is sparse: a minimum-degree order
 *   of the Jacobians' pattern, LU with diagonal pivots over the symbolic fill (threshold partial
 *   pivoting where a pivot is weak), solves over the factors' non-zeros.
 * Error norm: RMS of err / (atol_i + rtol max(|y|, |y1|)) (Solving ODEs I, eq. II.4.11);
 * controller: h * 0.9 * e^-(1/q - 0.75 beta) * e_prev^beta (Solving ODEs I, sec. IV.2; beta 0.04 for
 * dopri5, 0 for RODAS4), within [0.2, fac_max], never growing after a rejection.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#define ST_OK 0
#define ST_MAX_STEPS 1
#define ST_DT_MIN 2
#define ST_NONFINITE 3

static double np_norm(const double *e, const double *y, const double *y1, double rtol, const double *atol, int NX) {
    double s = 0.0;
    for (int i = 0; i < NX; ++i) {
        double a = fabs(y[i]), b = fabs(y1[i]);
        double sc = atol[i] + rtol * (a > b ? a : b);
        double r = e[i] / sc;
        s += r * r;
    }
    return NX ? sqrt(s / NX) : 0.0;
}

/* threshold partial pivoting (as sparse LU codes do, e.g. UMFPACK's 0.1): the diagonal entry is
 * the pivot while it is at least this fraction of its column's largest, else that largest */
#define PIVOT_THRESHOLD 0.1

/* The ordering and symbolic structure of the RODAS4 matrices G = I/(h gamma) - J, kept over a
 * run: pattern, the diagonal and the union of the Jacobians' non-zeros seen (made symmetric); perm /
 * pinv, a fill-reducing symmetric order of it (np_min_degree); sp/si, the rows (= columns, the
 * pattern being symmetric) that elimination with diagonal pivots can make non-zero below (right
 * of) each diagonal position k, in ordered positions, ascending (CSR); jsrc/jpos the pattern's
 * entries (index in J, position in the ordered G). */
typedef struct {
    unsigned char *pattern, *adj, *done;
    int *perm, *pinv, *deg, *nbr, *sp, *si, *jsrc, *jpos;
    int nj, grew;
} np_order_t;

/* Greedy minimum degree (Tinney-Walker scheme 2; George & Liu 1989) on o->pattern: perm[k] is
 * the k-th row/column to eliminate, the one with fewest remaining neighbours, whose neighbours
 * then become a clique (the fill it creates); those neighbours are S_k. Ties go to the lowest
 * index. O(sum of degree^2 + n^2), once per growth of the pattern. */
static void np_min_degree(np_order_t *o, int NX) {
    unsigned char *adj = o->adj, *done = o->done;
    int *deg = o->deg, *nbr = o->nbr, *perm = o->perm;
    memcpy(adj, o->pattern, (size_t)NX * NX);
    for (int i = 0; i < NX; ++i) {
        done[i] = 0;
        deg[i] = 0;
        for (int j = 0; j < NX; ++j) deg[i] += j != i && adj[i * NX + j];
    }
    int ns = 0;
    o->sp[0] = 0;
    for (int k = 0; k < NX; ++k) {
        int v = -1;
        for (int i = 0; i < NX; ++i)
            if (!done[i] && (v < 0 || deg[i] < deg[v])) v = i;
        perm[k] = v;
        done[v] = 1;
        int nn = 0;
        for (int u = 0; u < NX; ++u)
            if (!done[u] && adj[v * NX + u]) nbr[nn++] = u;
        for (int a = 0; a < nn; ++a) {
            int u = nbr[a];
            o->si[ns++] = u; /* a node for now; a position below */
            deg[u]--;        /* v leaves the graph */
            for (int b = 0; b < nn; ++b) {
                int w = nbr[b];
                if (w != u && !adj[u * NX + w]) { adj[u * NX + w] = 1; deg[u]++; }
            }
        }
        o->sp[k + 1] = ns;
    }
    for (int k = 0; k < NX; ++k) o->pinv[perm[k]] = k;
    for (int k = 0; k < NX; ++k) { /* positions, ascending (insertion sort: short lists) */
        int *l = o->si + o->sp[k], m = o->sp[k + 1] - o->sp[k];
        for (int q = 0; q < m; ++q) l[q] = o->pinv[l[q]];
        for (int q = 1; q < m; ++q) {
            int x = l[q], r = q - 1;
            while (r >= 0 && l[r] > x) { l[r + 1] = l[r]; --r; }
            l[r + 1] = x;
        }
    }
}

/* check the Jacobian jac against o's pattern (one branch-free pass over jac); where a non-zero
 * falls outside it, grow the pattern, reorder, and list the pattern's positions (jsrc/jpos: the
 * entries np_build_g copies, a superset of jac's non-zeros) */
static void np_scan_jacobian(np_order_t *o, const double *jac, int NX) {
    size_t nn = (size_t)NX * NX;
    int fresh = 0;
    for (size_t q = 0; q < nn; ++q) fresh |= (jac[q] != 0.0) & (o->pattern[q] == 0);
    if (fresh) {
        for (int i = 0; i < NX; ++i)
            for (int j = 0; j < NX; ++j)
                if (jac[i * NX + j] != 0.0) o->pattern[i * NX + j] = o->pattern[j * NX + i] = 1;
        o->grew = 1;
    }
    if (!o->grew) return;
    np_min_degree(o, NX);
    o->grew = 0;
    int nj = 0;
    for (int i = 0; i < NX; ++i)
        for (int j = 0; j < NX; ++j)
            if (o->pattern[i * NX + j]) {
                o->jsrc[nj] = i * NX + j;
                o->jpos[nj++] = o->pinv[i] * NX + o->pinv[j];
            }
    o->nj = nj;
}

/* G = I/(h gamma) - J in the order of o, from the scanned Jacobian */
static void np_build_g(const np_order_t *o, const double *jac, double diag, double *g, int NX) {
    memset(g, 0, sizeof(double) * (size_t)NX * NX);
    for (int q = 0; q < o->nj; ++q) g[o->jpos[q]] = -jac[o->jsrc[q]];
    for (int i = 0; i < NX; ++i) g[i * NX + i] += diag;
}

/* LU with partial pivoting of the n x n row-major matrix a, in place (L below the diagonal, unit
 * diagonal implied; U on and above it; whole rows swapped, piv[k] the row swapped into k); 0 when
 * singular. Model Jacobians are sparse: each elimination step updates only the pivot row's non-zero
 * columns (nzc) in the rows with a non-zero multiplier, which gives the dense algorithm's factors
 * (skipped terms are l * 0). The non-zero pattern of the factors is kept for np_solve:
 * lp/li the rows below the diagonal of each column of L, up/ui the columns right of the diagonal
 * of each row of U (CSR-like; li and ui hold up to n(n-1)/2 entries each). */
typedef struct {
    int *piv, *lp, *li, *up, *ui, *nzc;
    double flops; /* multiply-adds of the last factorisation */
    int *perm;    /* the symmetric ordering (np_min_degree): row/column i of a is perm[i] of the matrix */
    double *tmp;  /* n values for np_solve */
    double *dinv; /* 1 / U's diagonal */
} np_lu_t;

static int np_lu(double *a, np_lu_t *f, int NX) {
    int *piv = f->piv, *nzc = f->nzc;
    double flops = 0.0;
    for (int k = 0; k < NX; ++k) {
        int p = k;
        double m = fabs(a[k * NX + k]), diag = m;
        for (int i = k + 1; i < NX; ++i) {
            double v = fabs(a[i * NX + k]);
            if (v > m) { m = v; p = i; }
        }
        if (!(m > 0.0) || !isfinite(m)) return 0;
        if (diag >= PIVOT_THRESHOLD * m) p = k; /* the diagonal keeps the ordering's sparsity */
        piv[k] = p;
        if (p != k)
            for (int j = 0; j < NX; ++j) { double tmp = a[k * NX + j]; a[k * NX + j] = a[p * NX + j]; a[p * NX + j] = tmp; }
        int nn = 0;
        const double *rk = a + (size_t)k * NX;
        for (int j = k + 1; j < NX; ++j)
            if (rk[j] != 0.0) nzc[nn++] = j;
        double inv = 1.0 / rk[k];
        for (int i = k + 1; i < NX; ++i) {
            double *ri = a + (size_t)i * NX;
            if (ri[k] == 0.0) continue;
            double l = ri[k] * inv;
            ri[k] = l;
            for (int q = 0; q < nn; ++q) ri[nzc[q]] -= l * rk[nzc[q]];
            flops += nn;
        }
    }
    f->flops = flops;
    for (int k = 0; k < NX; ++k) f->dinv[k] = 1.0 / a[k * NX + k];
    int nl = 0, nu = 0;
    f->lp[0] = f->up[0] = 0;
    for (int k = 0; k < NX; ++k) {
        for (int i = k + 1; i < NX; ++i)
            if (a[i * NX + k] != 0.0) f->li[nl++] = i;
        for (int j = k + 1; j < NX; ++j)
            if (a[k * NX + j] != 0.0) f->ui[nu++] = j;
        f->lp[k + 1] = nl;
        f->up[k + 1] = nu;
    }
    return 1;
}

/* LU of the ordered G with diagonal pivots over the symbolic structure of o (no search: the work
 * is the factors' own multiply-adds); 0 when a pivot is below PIVOT_THRESHOLD of its column's
 * largest entry (or zero, or not finite), where np_lu's pivoting takes over. On success f holds
 * the factors' pattern as np_lu leaves it, with no row swapped. */
static int np_lu_static(double *a, np_lu_t *f, const np_order_t *o, int NX) {
    const int *sp = o->sp, *si = o->si;
    double flops = 0.0;
    for (int k = 0; k < NX; ++k) {
        double d = a[k * NX + k], ad = fabs(d);
        if (!(ad > 0.0) || !isfinite(ad)) return 0;
        for (int q = sp[k]; q < sp[k + 1]; ++q)
            if (PIVOT_THRESHOLD * fabs(a[si[q] * NX + k]) > ad) return 0;
        const double *rk = a + (size_t)k * NX;
        double inv = 1.0 / d;
        for (int q = sp[k]; q < sp[k + 1]; ++q) {
            double *ri = a + (size_t)si[q] * NX;
            if (ri[k] == 0.0) continue;
            double l = ri[k] * inv;
            ri[k] = l;
            for (int r = sp[k]; r < sp[k + 1]; ++r) ri[si[r]] -= l * rk[si[r]];
            flops += sp[k + 1] - sp[k];
        }
    }
    for (int k = 0; k <= NX; ++k) f->lp[k] = f->up[k] = sp[k];
    memcpy(f->li, si, sizeof(int) * (size_t)sp[NX]);
    memcpy(f->ui, si, sizeof(int) * (size_t)sp[NX]);
    for (int k = 0; k < NX; ++k) f->piv[k] = k;
    f->flops = flops;
    for (int k = 0; k < NX; ++k) f->dinv[k] = 1.0 / a[k * NX + k];
    return 1;
}

/* solve a x = b_out in place with the factors of np_lu of the ordered matrix (whole rows were
 * swapped: order and permute b first, then substitute over the factors' non-zeros) */
static void np_solve(const double *a, const np_lu_t *f, double *b_out, int NX) {
    double *b = f->tmp;
    for (int i = 0; i < NX; ++i) b[i] = b_out[f->perm[i]];
    for (int k = 0; k < NX; ++k) {
        int p = f->piv[k];
        if (p != k) { double tmp = b[k]; b[k] = b[p]; b[p] = tmp; }
    }
    for (int k = 0; k < NX; ++k) {
        double bk = b[k];
        if (bk == 0.0) continue;
        for (int q = f->lp[k]; q < f->lp[k + 1]; ++q) b[f->li[q]] -= a[f->li[q] * NX + k] * bk;
    }
    for (int k = NX - 1; k >= 0; --k) {
        double s = b[k];
        for (int q = f->up[k]; q < f->up[k + 1]; ++q) s -= a[k * NX + f->ui[q]] * b[f->ui[q]];
        b[k] = s * f->dinv[k];
    }
    for (int i = 0; i < NX; ++i) b_out[f->perm[i]] = b[i];
}

static const double DP_C[7] = {0.0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1.0, 1.0};
static const double DP_A[7][6] = {
    {0},
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0.0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
static const double DP_E[7] = {71.0 / 57600, 0.0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40};
static const double DP_D[7] = {-12715105075.0 / 11282082432.0, 0.0, 87487479700.0 / 32700410799.0,
                               -10690763975.0 / 1880347072.0, 701980252875.0 / 199316789632.0,
                               -1453857185.0 / 822651844.0, 69997945.0 / 29380423.0};

#define RO_GAMMA 0.25
static const double RO_ALPHA[6] = {0.0, 0.386, 0.21, 0.63, 1.0, 1.0};
static const double RO_GAMMAS[6] = {0.25, -0.1043, 0.1035, -0.3620000000000023e-01, 0.0, 0.0};
static const double RO_A[6][5] = {
    {0},
    {1.544},
    {0.9466785280815826, 0.2557011698983284},
    {3.314825187068521, 2.896124015972201, 0.9986419139977817},
    {1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895},
    {1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895, 1.0}};
static const double RO_C[6][5] = {
    {0},
    {-5.6688},
    {-2.430093356833875, -0.2063599157091915},
    {-0.1073529058151375, -9.594562251023355, -20.47028614809616},
    {7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616},
    {8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136, -6.058818238834054}};
static const double RO_M[6] = {1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895, 1.0, 1.0};

typedef void (*np_rhs_t)(double t, const double *y, const double *p, const double *k, double *dy);
typedef void (*np_bind_t)(const double *p, double *k);
typedef void (*np_jac_t)(double t, const double *y, const double *p, const double *k, double *J, double *ft);

typedef struct {
    np_rhs_t rhs;
    np_jac_t jac;
    int n;
    const double *p, *k, *atol;
    double rtol;
    int64_t n_rhs, n_jac;
} np_ctx;

static void np_f(np_ctx *c, double t, const double *y, double *dy) {
    c->rhs(t, y, c->p, c->k, dy);
    c->n_rhs++;
}

/* the model's Jacobian (row-major, J[i*NX + j] = d f_i / d y_j) and df/dt: generated, or
 * forward differences where the model has none */
static void np_jacobian(np_ctx *c, double t, double h, const double *y, const double *f0, double *jac, double *ft,
                        double *ytmp, double *ftmp) {
    const int NX = c->n;
    if (c->jac) {
        c->jac(t, y, c->p, c->k, jac, ft);
        c->n_jac++;
        return;
    }
    const double eps = 1.4901161193847656e-08; /* sqrt(2^-52) */
    memcpy(ytmp, y, sizeof(double) * NX);
    for (int j = 0; j < NX; ++j) {
        double scale = fabs(y[j]);
        double floor_ = c->atol[j] / (c->rtol > 0 ? c->rtol : 1.0);
        if (scale < floor_) scale = floor_;
        double d = eps * (scale > 0 ? scale : 1.0);
        ytmp[j] = y[j] + d;
        d = ytmp[j] - y[j];
        np_f(c, t, ytmp, ftmp);
        for (int i = 0; i < NX; ++i) jac[i * NX + j] = (ftmp[i] - f0[i]) / d;
        ytmp[j] = y[j];
    }
    double ts = fabs(t) > fabs(h) ? fabs(t) : fabs(h);
    double dt = eps * (ts > 0 ? ts : 1.0);
    double t2 = t + dt;
    dt = t2 - t;
    np_f(c, t2, y, ftmp);
    for (int i = 0; i < NX; ++i) ft[i] = (ftmp[i] - f0[i]) / dt;
    c->n_jac++;
}

static int np_finite(const double *v, int NX) {
    for (int i = 0; i < NX; ++i)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* Hairer's starting step (Solving ODEs I, sec. II.4) */
static double np_initial_step(np_ctx *c, double t0, double t1, const double *y0, const double *f0, int order,
                              double *ytmp, double *ftmp) {
    const int NX = c->n;
    double d0 = 0, d1 = 0;
    for (int i = 0; i < NX; ++i) {
        double sc = c->atol[i] + c->rtol * fabs(y0[i]);
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
    np_f(c, t0 + h0, ytmp, ftmp);
    double d2 = 0;
    for (int i = 0; i < NX; ++i) {
        double sc = c->atol[i] + c->rtol * fabs(y0[i]);
        double r = (ftmp[i] - f0[i]) / sc;
        d2 += r * r;
    }
    d2 = sqrt(d2 / NX) / h0;
    double dmax = d1 > d2 ? d1 : d2;
    double h1 = dmax <= 1e-15 ? fmax(1e-6, h0 * 1e-3) : pow(0.01 / dmax, 1.0 / order);
    double h = fmin(100 * h0, h1);
    if (!(h > 0) || !isfinite(h)) h = 1e-6;
    return fmin(h, span);
}

typedef void (*np_atoms_t)(double t, const double *y, const double *p, const double *k, double *g);

/* Stop conditions of an event-aware run (neuroplex_solve_events): the model's trigger atoms
 * g_a(t, y) give 2 na columns, [g - shift[0..na), -g - shift[na..2na)]; the run stops at the
 * first point where a column crosses from < 0 to >= 0 (a column >= 0 at t0 arms once it is < 0
 * at the end of an accepted step), located on the step's dense output by the Illinois method
 * (to 100 ulp of t, as the torch loop's locate_events). */
typedef struct {
    np_atoms_t atoms;
    int na;
    const double *shift;
    double *g0, *g1, *gx, *gatoms; /* 2 na columns at the step start / end / trial point; na atoms */
} np_events;

static void np_columns(np_ctx *c, np_events *ev, double t, const double *y, double *cols) {
    ev->atoms(t, y, c->p, c->k, ev->gatoms);
    for (int a = 0; a < ev->na; ++a) {
        cols[a] = ev->gatoms[a] - ev->shift[a];
        cols[ev->na + a] = -ev->gatoms[a] - ev->shift[ev->na + a];
    }
}

/* RODAS4's dense output coefficients (rodas.f: D21..D25, D31..D35; K_6 has none) */
static const double RO_D2[5] = {10.12623508344586, -7.487995877610167, -34.80091861555747, -7.992771707568823,
                                1.025137723295662};
static const double RO_D3[5] = {-0.6762803392801253, 6.087714651680015, 16.43084320892478, 24.76722511418386,
                                -6.594389125716872};

/* the accepted step's dense output coefficients from its stages ks: dopri5, r5 = h sum d_j k_j
 * (n values); RODAS4, q2 = sum d2i K_i and q3 = sum d3i K_i (2 n values) */
static void np_dense_coefficients(int stiff, double h, const double *ks, double *dc, size_t n) {
    if (!stiff) {
        for (size_t i = 0; i < n; ++i) {
            double acc = 0.0;
            for (int j = 0; j < 7; ++j) acc += DP_D[j] * ks[j * n + i];
            dc[i] = h * acc;
        }
    } else {
        for (size_t i = 0; i < n; ++i) {
            double a2 = 0.0, a3 = 0.0;
            for (int j = 0; j < 5; ++j) {
                a2 += RO_D2[j] * ks[j * n + i];
                a3 += RO_D3[j] * ks[j * n + i];
            }
            dc[i] = a2;
            dc[n + i] = a3;
        }
    }
}

/* the dense output at theta in [0, 1] of the accepted step y -> y1, dc from np_dense_coefficients
 * (dopri5: Hairer's continuous extension; RODAS4: its own third-order interpolant from the stages,
 * Hairer & Wanner II sec. VI.4, (1 - theta) y + theta (y1 + (1 - theta) (q2 + theta q3)), which
 * stays accurate across a stiff transient inside the step, where a cubic Hermite curve on the
 * end-point derivatives does not: a step starting off a slow manifold has a large f there) */
static void np_dense(int stiff, double th, double h, const double *y, const double *y1, const double *f0,
                     const double *f1, const double *dc, double *o, size_t n) {
    double th1 = 1.0 - th;
    if (!stiff) {
        for (size_t i = 0; i < n; ++i) {
            double yd = y1[i] - y[i];
            double bspl = h * f0[i] - yd;
            double r4 = yd - h * f1[i] - bspl;
            o[i] = y[i] + th * (yd + th1 * (bspl + th * (r4 + th1 * dc[i])));
        }
    } else {
        for (size_t i = 0; i < n; ++i) o[i] = th1 * y[i] + th * (y1[i] + th1 * (dc[i] + th * dc[n + i]));
    }
}

static double np_masked_max(const double *g, const unsigned char *crossed, int m) {
    double v = -INFINITY;
    for (int c = 0; c < m; ++c)
        if (crossed[c] && g[c] > v) v = g[c];
    return v;
}

/* auto's switch, besides Hairer's test: a problem can be stiff while dopri5's steps stay
 * accuracy-limited below its stability bound (BIOMD0000000019 at rtol 1e-8: 650 000 steps of
 * h*lambda < 3.25, where RODAS4 takes 8 000), so the test never fires. LSODA (Petzold 1983)
 * switches when the other method's step, weighted by its cost, is longer; here the other step is
 * found by trying it: when Hairer's test fires, and after PROBE_FIRST dopri5 steps (then 2x, 4x,
 * ... as many again), the run takes PROBE_STEPS RODAS4 steps and keeps RODAS4 when its cost per
 * unit of time is lower than dopri5's (after a failed trial Hairer's test waits for the next one:
 * a problem at dopri5's stability bound where dopri5 is still cheaper stays on dopri5); once
 * RODAS4 is kept, PROBE_FIRST RODAS4 steps later (then 2x, 4x, ... as many again) the run tries
 * PROBE_STEPS dopri5 steps the same way and stays on the cheaper (the problem may leave its stiff
 * phase; BIOMD0000000035 sits where dopri5's stable step costs less over most of its run).
 * RODAS4 pays when cost(RODAS4) / h_rodas < 6 rhs / h_dopri5, with a step of RODAS4 costing 7 right-hand
 * sides, a Jacobian (a right-hand side per state where it is differenced), its factorisation's
 * multiply-adds and six solves over the factors, and a right-hand side costing RHS_FLOPS per
 * state and Jacobian non-zero (the model's size; the choice stays deterministic). */
#define PROBE_FIRST 200
#define PROBE_STEPS 8
#define RHS_FLOPS 4.0

static int np_rodas_pays(const np_lu_t *lu, int NX, double nnz_jac, int jac_generated, double h_rodas, double h_dopri) {
    double rhs = RHS_FLOPS * (NX + nnz_jac);
    double jac = jac_generated ? 2.0 * nnz_jac : (NX + 1) * rhs;
    double factors = lu->lp[NX] + lu->up[NX] + NX;
    double la = lu->flops + 6.0 * factors + 3.0 * (double)NX * NX; /* factorise, 6 solves, copies and scans */
    double rodas = 7.0 * rhs + jac + 3.0 * la;
    return rodas / h_rodas < 6.0 * rhs / h_dopri;
}

/* Integrate from t0 to t1 (> t0), writing the state at t_eval[0..n_t) (ascending, within [t0, t1])
 * into out (n_t x NX). stats: accepted steps, rejected steps, rhs evaluations, Jacobians, the
 * step at which the run switched to RODAS4 (-1: never). With events (ev not NULL) the run stops
 * at the first crossing, outputs after it NaN, the column in *event_index (-1: t1 reached).
 * Where it ended goes to *t_end / y_end when given. Returns a status code. */
static int64_t np_integrate(np_bind_t bind, np_rhs_t rhs_fn, np_jac_t jac_fn, int64_t nx, int64_t nk,
                            const double *p, const double *y0, double t0, double t1, const double *t_eval,
                            int64_t n_t, double rtol, const double *atol, double h_init, double h_max, double h_min,
                            int64_t max_steps, int64_t method, double *out, int64_t *stats, np_events *ev,
                            double *t_end, double *y_end, int64_t *event_index) {
    const int NX = (int)nx;
    stats[0] = stats[1] = stats[2] = stats[3] = 0;
    stats[4] = -1;
    if (t_end) {
        *t_end = t0;
        *event_index = -1;
        if (NX > 0) memcpy(y_end, y0, sizeof(double) * NX);
    }
    if (NX == 0) return ST_OK;
    size_t n = NX;
    double *kbuf = (double *)malloc(sizeof(double) * (nk > 0 ? nk : 1));
    double *work = (double *)malloc(sizeof(double) * (n * 20 + 2 * n * n));
    size_t tri = n * (n - 1) / 2 + 1;
    /* ints: piv n, lp n + 1, up n + 1, nzc n, li and ui tri each; then o's perm, pinv, deg, nbr n
     * each, sp n + 1, si tri, jsrc and jpos n^2 each; bytes: o's pattern and adj n^2 each, done n */
    int *piv = (int *)malloc(sizeof(int) * (9 * n + 4 + 3 * tri + 2 * n * n));
    unsigned char *bytes = (unsigned char *)calloc(2 * n * n + n, 1);
    double *lu_tmp = (double *)malloc(sizeof(double) * 2 * n);
    if (!work || !piv || !kbuf || !bytes || !lu_tmp) {
        free(work); free(piv); free(kbuf); free(bytes); free(lu_tmp);
        return ST_NONFINITE;
    }
    np_order_t o;
    o.perm = piv + 4 * n + 2 + 2 * tri;
    o.pinv = o.perm + n; o.deg = o.pinv + n; o.nbr = o.deg + n; o.sp = o.nbr + n; o.si = o.sp + n + 1;
    o.jsrc = o.si + tri; o.jpos = o.jsrc + n * n;
    o.pattern = bytes; o.adj = bytes + n * n; o.done = o.adj + n * n;
    o.nj = 0; o.grew = 1;
    for (size_t i = 0; i < n; ++i) o.pattern[i * n + i] = 1; /* the diagonal: G's own */
    np_lu_t lu = {piv, piv + n, piv + 4 * n + 2, piv + 2 * n + 1, piv + 4 * n + 2 + tri, piv + 3 * n + 2, 0.0,
                  o.perm, lu_tmp, lu_tmp + n};
    bind(p, kbuf);
    np_ctx c = {rhs_fn, jac_fn, NX, p, kbuf, atol, rtol, 0, 0};
    double *y = work, *y1 = y + n, *f0 = y1 + n, *f1 = f0 + n, *ytmp = f1 + n, *ftmp = ytmp + n, *err = ftmp + n;
    double *ks = err + n;           /* 7 x n stage values */
    double *ft = ks + 7 * n, *rhs = ft + n;
    double *jac = rhs + n, *g = jac + n * n, *dc = g + n * n; /* dc: 2 n dense output coefficients */
    int64_t status = ST_OK;
    int64_t io = 0;
    memcpy(y, y0, sizeof(double) * n);
    while (io < n_t && t_eval[io] <= t0) {
        memcpy(out + io * n, y, sizeof(double) * n);
        ++io;
    }
    double t = t0;
    np_f(&c, t, y, f0);
    int m_cols = ev ? 2 * ev->na : 0;
    unsigned char *crossed = NULL;
    double *yev = NULL;
    if (m_cols) {
        crossed = (unsigned char *)malloc((size_t)m_cols);
        yev = (double *)malloc(sizeof(double) * n);
        if (!crossed || !yev) { free(work); free(piv); free(kbuf); free(bytes); free(lu_tmp); free(crossed); free(yev); return ST_NONFINITE; }
        np_columns(&c, ev, t, y, ev->g0);
    }
    int stopped = 0;
    int stiff = method == 2;
    int order = stiff ? 4 : 5;
    double h = h_init > 0 ? h_init : np_initial_step(&c, t0, t1, y, f0, order, ytmp, ftmp);
    if (h_max > 0 && h > h_max) h = h_max;
    int64_t steps = 0, rejected = 0;
    int last_rejected = 0, jac_fresh = 0;
    int iasti = 0, nonsti = 0;
    /* auto's trial of RODAS4 (see np_rodas_pays) */
    int probing = 0, back_probing = 0, probe_len = 0, hairer_fired = 0;
    int64_t probe_at = PROBE_FIRST, probe_gap = PROBE_FIRST, probe_from = -1, hairer_from = 0;
    int64_t back_at = 0, back_gap = PROBE_FIRST; /* trials of dopri5 once RODAS4 is kept */
    double h_ref = 0.0, nnz_jac = 0.0;
    /* PI controller (Hairer's DOPRI5: beta 0.04; RODAS4: integral only), as the torch solver's */
    double beta = stiff ? 0.0 : 0.04, err_prev = 1e-4;
    while (t < t1) {
        if (steps + rejected >= max_steps) { status = ST_MAX_STEPS; break; }
        if (!np_finite(y, NX)) { status = ST_NONFINITE; break; }
        if (h_max > 0 && h > h_max) h = h_max;
        int final_step = 0;
        if (t + h >= t1 || t + 1.01 * h >= t1) { h = t1 - t; final_step = 1; }
        if (h <= h_min || h < 8.0 * 2.220446049250313e-16 * fabs(t)) { status = ST_DT_MIN; break; }
        double t_new = final_step ? t1 : t + h;
        double e;
        if (!stiff) {
            double *k1 = ks;
            memcpy(k1, f0, sizeof(double) * n);
            for (int s = 1; s < 7; ++s) {
                for (size_t i = 0; i < n; ++i) {
                    double acc = 0.0;
                    for (int j = 0; j < s; ++j) acc += DP_A[s][j] * ks[j * n + i];
                    ytmp[i] = y[i] + h * acc;
                }
                if (s == 6) memcpy(y1, ytmp, sizeof(double) * n);
                if (s == 5) memcpy(rhs, ytmp, sizeof(double) * n); /* the stage-6 point, for the stiffness test */
                np_f(&c, s == 6 ? t_new : t + DP_C[s] * h, ytmp, ks + s * n);
            }
            for (size_t i = 0; i < n; ++i) {
                double acc = 0.0;
                for (int j = 0; j < 7; ++j) acc += DP_E[j] * ks[j * n + i];
                err[i] = h * acc;
            }
            e = np_norm(err, y, y1, rtol, atol, NX);
        } else {
            if (!jac_fresh) {
                np_jacobian(&c, t, h, y, f0, jac, ft, ytmp, ftmp);
                jac_fresh = 1;
                np_scan_jacobian(&o, jac, NX);
                nnz_jac = o.nj;
            }
            double diag = 1.0 / (h * RO_GAMMA);
            np_build_g(&o, jac, diag, g, NX);
            int factored = np_lu_static(g, &lu, &o, NX);
            if (!factored) { /* a weak diagonal: partial pivoting (threshold) on the same matrix */
                np_build_g(&o, jac, diag, g, NX);
                factored = np_lu(g, &lu, NX);
            }
            if (!factored) {
                e = INFINITY;
            } else {
                double inv_h = 1.0 / h;
                for (int s = 0; s < 6; ++s) {
                    double *fi = ftmp;
                    if (s == 0) {
                        memcpy(fi, f0, sizeof(double) * n);
                    } else {
                        for (size_t i = 0; i < n; ++i) {
                            double acc = y[i];
                            for (int j = 0; j < s; ++j) acc += RO_A[s][j] * ks[j * n + i];
                            ytmp[i] = acc;
                        }
                        np_f(&c, t + RO_ALPHA[s] * h, ytmp, fi);
                    }
                    for (size_t i = 0; i < n; ++i) {
                        double acc = 0.0;
                        for (int j = 0; j < s; ++j) acc += RO_C[s][j] * ks[j * n + i];
                        rhs[i] = fi[i] + inv_h * acc + RO_GAMMAS[s] * h * ft[i];
                    }
                    np_solve(g, &lu, rhs, NX);
                    memcpy(ks + s * n, rhs, sizeof(double) * n);
                }
                for (size_t i = 0; i < n; ++i) {
                    double acc = y[i];
                    for (int j = 0; j < 6; ++j) acc += RO_M[j] * ks[j * n + i];
                    y1[i] = acc;
                }
                e = np_norm(ks + 5 * n, y, y1, rtol, atol, NX);
            }
        }
        if (!isfinite(e)) e = INFINITY;
        if (e <= 1.0) {
            /* accepted: f at the new point (dopri5: FSAL), dense output at the t_eval inside */
            if (!stiff) memcpy(f1, ks + 6 * n, sizeof(double) * n);
            else np_f(&c, t_new, y1, f1);
            int dc_ready = 0;
            double t_stop = t_new;
            const double *y_stop = y1;
            if (m_cols) {
                /* a column crossing from < 0 to >= 0 on this step: locate the first crossing
                 * on the dense output, end the step (and the run) there */
                np_columns(&c, ev, t_new, y1, ev->g1);
                int any = 0;
                for (int col = 0; col < m_cols; ++col) {
                    crossed[col] = ev->g0[col] < 0 && ev->g1[col] >= 0;
                    any |= crossed[col];
                }
                if (any) {
                    np_dense_coefficients(stiff, h, ks, dc, n);
                    dc_ready = 1;
                    double lo = 0.0, hi = 1.0;
                    double f_lo = np_masked_max(ev->g0, crossed, m_cols), f_hi = np_masked_max(ev->g1, crossed, m_cols);
                    double width = 100 * 2.220446049250313e-16 * (fabs(t) + fabs(h)) / fabs(h);
                    int side = 0;
                    double *g_hi = ev->g1;
                    for (int it = 0; it < 128 && hi - lo > width; ++it) {
                        double denom = f_hi - f_lo;
                        double rf = (lo * f_hi - hi * f_lo) / (denom == 0 ? 1.0 : denom);
                        double x = (isfinite(rf) && rf > lo && rf < hi && denom != 0) ? rf : 0.5 * (lo + hi);
                        np_dense(stiff, x, h, y, y1, f0, f1, dc, ytmp, n);
                        np_columns(&c, ev, t + x * h, ytmp, ev->gx);
                        double fx = np_masked_max(ev->gx, crossed, m_cols);
                        if (fx >= 0) {
                            if (side > 0) f_lo *= 0.5;
                            hi = x; f_hi = fx; side = 1;
                            memcpy(ev->g1, ev->gx, sizeof(double) * m_cols);
                            if (fx == 0) break;
                        } else {
                            if (side < 0) f_hi *= 0.5;
                            lo = x; f_lo = fx; side = -1;
                        }
                    }
                    int first = -1;
                    for (int col = 0; col < m_cols && first < 0; ++col)
                        if (crossed[col] && g_hi[col] >= 0) first = col;
                    if (hi < 1.0) {
                        t_stop = t + hi * h;
                        np_dense(stiff, hi, h, y, y1, f0, f1, dc, yev, n);
                        y_stop = yev;
                    }
                    *event_index = first;
                    stopped = 1;
                }
            }
            if (io < n_t && t_eval[io] <= t_stop) {
                if (!dc_ready) np_dense_coefficients(stiff, h, ks, dc, n);
                while (io < n_t && t_eval[io] <= t_stop) {
                    double *o = out + io * n;
                    if (t_eval[io] == t_stop) memcpy(o, y_stop, sizeof(double) * n);
                    else np_dense(stiff, (t_eval[io] - t) / h, h, y, y1, f0, f1, dc, o, n);
                    ++io;
                }
            }
            if (stopped) {
                /* the run ends at the event: its state, and the derivative there for the caller */
                t = t_stop;
                memcpy(y, y_stop, sizeof(double) * n);
                ++steps;
                break;
            }
            if (!stiff && method == 0) {
                /* Hairer's stiffness test on the last two stages */
                double stnum = 0, stden = 0;
                for (size_t i = 0; i < n; ++i) {
                    double a = ks[6 * n + i] - ks[5 * n + i], b = y1[i] - rhs[i];
                    stnum += a * a;
                    stden += b * b;
                }
                if (stden > 0 && h * sqrt(stnum / stden) > 3.25) {
                    nonsti = 0;
                    if (++iasti >= 15 && steps >= hairer_from) hairer_fired = 1;
                } else if (++nonsti == 6) {
                    iasti = 0;
                }
            }
            memcpy(y, y1, sizeof(double) * n);
            memcpy(f0, f1, sizeof(double) * n);
            if (m_cols) memcpy(ev->g0, ev->g1, sizeof(double) * m_cols);
            t = t_new;
            ++steps;
            jac_fresh = 0;
            double es = e > 1e-10 ? e : 1e-10;
            double fac = 0.9 * pow(es, -(1.0 / order - 0.75 * beta)) * pow(err_prev, beta);
            double fac_max = stiff ? 6.0 : 10.0;
            if (fac > fac_max) fac = fac_max;
            if (fac < 0.2) fac = 0.2;
            if (last_rejected && fac > 1.0) fac = 1.0;
            h *= fac;
            err_prev = es > 1e-4 ? es : 1e-4;
            last_rejected = 0;
            if (method == 0 && !stiff && !back_probing && (steps >= probe_at || hairer_fired)) {
                /* many dopri5 steps, or Hairer's test: try RODAS4 from here for PROBE_STEPS steps */
                probing = 1;
                hairer_fired = 0;
                iasti = nonsti = 0;
                probe_len = 0;
                probe_from = steps;
                h_ref = h;
                stiff = 1; order = 4; beta = 0.0;
            } else if (probing && ++probe_len == PROBE_STEPS) {
                probing = 0;
                if (np_rodas_pays(&lu, NX, nnz_jac, c.jac != NULL, h, h_ref)) {
                    if (stats[4] < 0) stats[4] = probe_from;
                    back_at = steps + back_gap;
                } else { /* back to dopri5 at its own step; the next trial twice as far away */
                    stiff = 0; order = 5; beta = 0.04; err_prev = 1e-4;
                    h = h_ref;
                    iasti = nonsti = 0;
                    probe_gap *= 2;
                    probe_at = steps + probe_gap;
                    hairer_from = probe_at; /* Hairer's test brings a trial forward once per gap */
                }
            } else if (method == 0 && stiff && !probing && !back_probing && steps >= back_at) {
                /* RODAS4 kept for a while: try dopri5 again (the problem may have left its stiff
                 * phase, or sits where dopri5's stable step costs less) */
                back_probing = 1;
                probe_len = 0;
                h_ref = h;
                stiff = 0; order = 5; beta = 0.04; err_prev = 1e-4;
            } else if (back_probing && ++probe_len == PROBE_STEPS) {
                back_probing = 0;
                hairer_fired = 0;
                iasti = nonsti = 0;
                if (np_rodas_pays(&lu, NX, nnz_jac, c.jac != NULL, h_ref, h)) {
                    /* RODAS4 again, from dopri5's step (growing at most 6x a step): dopri5 leaves
                     * the fast components slightly off the slow manifold, where f is large, and a
                     * long RODAS4 step's cubic Hermite output on that f overshoots (BIOMD0000000005:
                     * 2e-5 off in a 7.6e-4 species for 0.8 time units after a jump back to h_ref) */
                    stiff = 1; order = 4; beta = 0.0;
                    back_gap *= 2;
                    back_at = steps + back_gap;
                } else { /* dopri5 from here; RODAS4 is tried again on the forward schedule */
                    probe_at = steps + probe_gap;
                    hairer_from = probe_at;
                }
            }
        } else {
            ++rejected;
            double fac = isfinite(e) ? 0.9 * pow(e, -(1.0 / order - 0.75 * beta)) * pow(err_prev, beta) : 0.2;
            if (fac < 0.2) fac = 0.2;
            if (fac > 1.0) fac = 1.0;
            h *= fac;
            last_rejected = 1;
        }
    }
    if (status == ST_OK && io < n_t && !stopped) status = ST_NONFINITE;
    for (; io < n_t; ++io)
        for (size_t i = 0; i < n; ++i) out[io * n + i] = NAN;
    if (t_end) {
        *t_end = t;
        memcpy(y_end, y, sizeof(double) * n);
    }
    stats[0] = steps;
    stats[1] = rejected;
    stats[2] = c.n_rhs;
    stats[3] = c.n_jac;
    free(work);
    free(piv);
    free(kbuf);
    free(bytes);
    free(lu_tmp);
    free(crossed);
    free(yev);
    return status;
}

int64_t neuroplex_solve(np_bind_t bind, np_rhs_t rhs_fn, np_jac_t jac_fn, int64_t nx, int64_t nk, const double *p, const double *y0, double t0, double t1, const double *t_eval, int64_t n_t,
                        double rtol, const double *atol, double h_init, double h_max, double h_min,
                        int64_t max_steps, int64_t method, double *out, int64_t *stats) {
    return np_integrate(bind, rhs_fn, jac_fn, nx, nk, p, y0, t0, t1, t_eval, n_t, rtol, atol, h_init, h_max, h_min,
                        max_steps, method, out, stats, NULL, NULL, NULL, NULL);
}

/* neuroplex_solve, stopping at the first crossing of the model's trigger-atom columns (see
 * np_events; shift: 2 na values): where it stopped in *t_end / y_end (t1 when no column
 * crossed), the column in *event_index (-1: none). The caller (the SBML event semantics)
 * applies the event and calls again from there. */
int64_t neuroplex_solve_events(np_bind_t bind, np_rhs_t rhs_fn, np_jac_t jac_fn, np_atoms_t atoms_fn, int64_t nx,
                               int64_t nk, int64_t na, const double *p, const double *y0, double t0, double t1,
                               const double *t_eval, int64_t n_t, double rtol, const double *atol, double h_init,
                               double h_max, double h_min, int64_t max_steps, int64_t method, const double *shift,
                               double *out, int64_t *stats, double *t_end, double *y_end, int64_t *event_index) {
    size_t m = na > 0 ? (size_t)(2 * na) : 1;
    double *buf = (double *)malloc(sizeof(double) * (3 * m + (na > 0 ? (size_t)na : 1)));
    if (!buf) return ST_NONFINITE;
    np_events ev = {atoms_fn, (int)na, shift, buf, buf + m, buf + 2 * m, buf + 3 * m};
    int64_t status = np_integrate(bind, rhs_fn, jac_fn, nx, nk, p, y0, t0, t1, t_eval, n_t, rtol, atol, h_init, h_max,
                                  h_min, max_steps, method, out, stats, na > 0 && atoms_fn ? &ev : NULL, t_end, y_end,
                                  event_index);
    free(buf);
    return status;
}
