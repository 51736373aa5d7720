"""X-Net formulas keep one variable per input column.

Before: the column names were made into sympy symbols by replacing non-word characters with
``_``, so DataFrame columns ``"a b"`` and ``"a-b"`` both became ``a_b``: a fit of
``y = x0 x1 + sin(x0)`` printed ``a_b**2 + sin(a_b)``, silently another formula than the one
``predict`` computes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import sympy

from neuroplex.plugins.xnet.estimators import XNetRegressor, _symbols


def test_names_that_sanitise_alike_get_distinct_symbols():
    names = ["a b", "a-b", "a_b_2", "1", "x_1", ""]
    symbols = _symbols(names)
    assert len({str(s) for s in symbols}) == len(names)
    assert [str(s) for s in symbols[:2]] == ["a_b", "a_b_2"]


def test_the_formula_of_colliding_columns_computes_what_predict_does():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (60, 2))
    frame = pd.DataFrame(x, columns=["a b", "a-b"])
    model = XNetRegressor(time_budget=20, max_rounds=3, random_state=0).fit(frame, x[:, 0] * x[:, 1] + np.sin(x[:, 0]))
    expr = model.sympy()
    symbols = _symbols(frame.columns)
    assert expr.free_symbols == set(symbols)
    values = np.broadcast_to(sympy.lambdify(symbols, expr, "numpy")(x[:, 0], x[:, 1]), (60,))
    np.testing.assert_allclose(values, model.predict(frame), rtol=1e-9, atol=1e-12)
