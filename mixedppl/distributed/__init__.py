"""Mixed models of Dask DataFrames: the row passes as map-reduces over partitions.

The spec layer reads a Dask DataFrame into a template spec (:mod:`mixedppl.spec.dask_spec`);
this package makes the passes over the rows: the LMM's cross-product blocks
(:mod:`.crossprod`, then the θ optimisation on the blocks, :mod:`.lmm`, for crossed one-column terms by BLAS, :mod:`.crossed`), the GLMM's penalised
IRLS steps (:mod:`.glmm`), and the lazy per-row outputs (:mod:`.rows`). Dask is imported only
when one of these runs (``pip install mixedppl[dask]``).
"""

from .crossprod import dask_crossproducts, drop_rank_deficient_blocks
from .glmm import DaskLaplace, fit_glmm_dask
from .lmm import fit_lmm_dask
from .rows import lazy_fitted, lazy_glmm_residuals, lazy_predict, lazy_residuals

__all__ = ["dask_crossproducts", "drop_rank_deficient_blocks", "fit_lmm_dask", "fit_glmm_dask",
           "DaskLaplace", "lazy_fitted", "lazy_predict", "lazy_residuals", "lazy_glmm_residuals"]
