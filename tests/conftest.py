"""Test configuration.

- float64 is on for the whole session. The library itself never changes JAX's
  configuration; tests opt in so that parity with the float64 references can be checked
  tightly. Float32 behaviour is tested with float32 data, which emjax keeps in float32.
- XLA's backend optimisation is off for the tests: on a 2-core CPU it halves compile times
  (measured 4.9 s -> 2.2 s for a fit with k-means++ initialisation), and the test data are
  small, so run time does not suffer. Subprocesses started by tests inherit it.
- Compiled programs are cached on disk outside the repository, so repeated runs on the
  same machine skip most compiles. Set EMJAX_TEST_NO_CACHE=1 to turn this off.
"""

import gc
import os

if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

import jax  # noqa: E402  (after XLA_FLAGS, which is read when the backend starts)
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
if not os.environ.get("EMJAX_TEST_NO_CACHE"):
    cache = os.path.join(os.path.expanduser("~"), ".cache", "emjax-tests", "jax")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's in-memory caches after each test module.

    Every compiled XLA:CPU program holds its own memory mappings; one process running the
    whole suite passed the kernel's limit of 65,530 mappings per process
    (``vm.max_map_count``) and crashed with a segmentation fault inside XLA's compiler.
    Programs are rarely shared between modules, and the persistent cache above keeps them
    on disk anyway.
    """
    yield
    jax.clear_caches()


_MAPPINGS_LIMIT = 30_000  # about half of vm.max_map_count's default 65,530


def _num_mappings() -> int:
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux
        return 0


@pytest.fixture(autouse=True)
def _release_when_mappings_pile_up():
    """Within a long module (the contract suite) or a pytest-xdist worker that runs long
    stretches of one module, drop the compiled programs once this process holds more than
    ``_MAPPINGS_LIMIT`` memory mappings (see above): a worker of the slow run crashed with a
    segmentation fault in XLA's executable serialisation otherwise."""
    yield
    if _num_mappings() > _MAPPINGS_LIMIT:
        jax.clear_caches()
        gc.collect()
