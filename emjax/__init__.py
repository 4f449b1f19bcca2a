"""emjax: expectation-maximization and variational inference in JAX.

EM is coordinate ascent on the evidence lower bound
``log p(x | θ) ≥ E_q[log p(x, z | θ)] + H[q]``: the E-step sets ``q(z) = p(z | x, θ)``, the
M-step maximises the expected complete-data log-likelihood. `emjax.fit` runs the whole loop,
for many restarts at once, as one jitted program.

Importing emjax never changes JAX's global configuration: enable float64 yourself with
``jax.config.update("jax_enable_x64", True)`` if you want it.
"""

from . import datasets as datasets
from . import hmm as hmm
from . import lda as lda
from . import plot as plot
from ._adjoint import AbstractAdjoint as AbstractAdjoint
from ._adjoint import Implicit as Implicit
from ._adjoint import Unrolled as Unrolled
from ._align import LabelAlignment as LabelAlignment
from ._align import align_components as align_components
from ._align import align_labels as align_labels
from ._align import match_components as match_components
from ._align import permute_components as permute_components
from ._elbo import ELBO as ELBO
from ._fit import fit as fit
from ._io import load as load
from ._io import read_metadata as read_metadata
from ._io import save as save
from ._model import AbstractEMModel as AbstractEMModel
from ._model import AbstractHardEMModel as AbstractHardEMModel
from ._model import AbstractMixtureModel as AbstractMixtureModel
from ._model import AbstractUnconstrainedModel as AbstractUnconstrainedModel
from ._models._bgmm import BayesianGaussianMixture as BayesianGaussianMixture
from ._models._bgmm import BayesianGaussianMixtureParams as BayesianGaussianMixtureParams
from ._models._density import AbstractDensityMixture as AbstractDensityMixture
from ._models._density import DensityMixture as DensityMixture
from ._models._density import MixtureParams as MixtureParams
from ._models._density import MixtureStats as MixtureStats
from ._models._emissions import AbstractEmissions as AbstractEmissions
from ._models._emissions import CategoricalEmissionParams as CategoricalEmissionParams
from ._models._emissions import CategoricalEmissions as CategoricalEmissions
from ._models._emissions import DensityEmissions as DensityEmissions
from ._models._emissions import GaussianEmissionParams as GaussianEmissionParams
from ._models._emissions import GaussianEmissions as GaussianEmissions
from ._models._emissions import GaussianMixtureEmissionParams as GaussianMixtureEmissionParams
from ._models._emissions import GaussianMixtureEmissions as GaussianMixtureEmissions
from ._models._emissions import PoissonEmissionParams as PoissonEmissionParams
from ._models._emissions import PoissonEmissions as PoissonEmissions
from ._models._experts import MixtureOfExperts as MixtureOfExperts
from ._models._experts import MixtureOfExpertsParams as MixtureOfExpertsParams
from ._models._gmm import GaussianMixture as GaussianMixture
from ._models._gmm import GaussianMixtureParams as GaussianMixtureParams
from ._models._gmm import GaussianMixtureStats as GaussianMixtureStats
from ._models._hmm import HiddenMarkovModel as HiddenMarkovModel
from ._models._hmm import HMMParams as HMMParams
from ._models._hmm import HMMStats as HMMStats
from ._models._kmeans import KMeans as KMeans
from ._models._kmeans import KMeansParams as KMeansParams
from ._models._kmeans import KMeansStats as KMeansStats
from ._models._lda import LatentDirichletAllocation as LatentDirichletAllocation
from ._models._lda import LDAParams as LDAParams
from ._models._lda import LDAStats as LDAStats
from ._models._student_t import StudentTMixture as StudentTMixture
from ._models._student_t import StudentTMixtureParams as StudentTMixtureParams
from ._mstep import AbstractMStep as AbstractMStep
from ._mstep import ClosedFormMStep as ClosedFormMStep
from ._mstep import GradientMStep as GradientMStep
from ._online import SQUAREM as SQUAREM
from ._online import IncrementalEM as IncrementalEM
from ._online import OnlineEM as OnlineEM
from ._progress import print_progress as print_progress
from ._select import Selection as Selection
from ._select import SelectionRow as SelectionRow
from ._select import select as select
from ._solution import RESULTS as RESULTS
from ._solution import ConvergenceWarning as ConvergenceWarning
from ._solution import NonFiniteError as NonFiniteError
from ._solution import Solution as Solution
from ._solver import EM as EM
from ._solver import AbstractSolver as AbstractSolver
from ._solver import HardEM as HardEM
from ._stream import fit_stream as fit_stream

__version__ = "0.1.0"
