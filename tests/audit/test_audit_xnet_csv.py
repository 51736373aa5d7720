"""``neuroplex xnet fit``'s CSV reader names a row whose width differs from the header's.

Before: a short row surfaced as "non-numeric value (setting an array element with a
sequence ...)", and rows all one value wider than the header failed later in pandas."""
from __future__ import annotations

import pytest

from neuroplex.errors import NeuroplexError
from neuroplex.plugins.xnet.cli import read_csv


@pytest.mark.parametrize("body", ["1,2,3\n4,5\n7,8,9\n", "1,2,3,0\n4,5,6,0\n7,8,9,0\n"])
def test_a_row_of_another_width_is_named(tmp_path, body):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + body)
    with pytest.raises(NeuroplexError, match=r"d.csv: line \d has \d values, the header 3 columns"):
        read_csv(str(path), "y")


def test_a_well_formed_file_reads_in_column_order(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a, y ,b\n1,2,3\n4,5,6\n")
    x, y, names = read_csv(str(path), "y")
    assert names == ["a", "b"] and x.tolist() == [[1, 3], [4, 6]] and y.tolist() == [2, 5]
