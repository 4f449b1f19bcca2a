"""Test configuration: float64 is on for the whole session.

The library itself never changes JAX's configuration; tests opt in so that parity with
the float64 references can be checked tightly. Float32 behaviour is tested with float32
data, which emjax keeps in float32.
"""

import jax

jax.config.update("jax_enable_x64", True)
