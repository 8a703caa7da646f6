"""One picture through the chosen steps, many pictures streamed, and the results kept.

    from metasift.pipeline import run
    for result in run(paths, steps=("classify", "count")):
        print(result.path, result.decision, result.findings.chromosome_count)

`run` yields one `Result` per picture in order (``Result.row()`` is its results row, of the
columns `columns` gives); the `Ledger` keeps rows as they come and writes the CSV or JSON
results from them; ``scheduler=`` runs the same steps on a Dask cluster (`distributed`, the
only module that imports Dask).
"""

from ._inputs import list_inputs
from ._picture import Plan, file_identity, heatmap_name, overlay_name, prepare
from ._runner import STEPS, run
from .ledger import Ledger, ResultsLockedError, latest_rows, read_results, still_valid
from .schema import Classification, Result, columns

__all__ = [
    "STEPS",
    "Classification",
    "Ledger",
    "Plan",
    "Result",
    "ResultsLockedError",
    "columns",
    "file_identity",
    "heatmap_name",
    "latest_rows",
    "list_inputs",
    "overlay_name",
    "prepare",
    "read_results",
    "run",
    "still_valid",
]
