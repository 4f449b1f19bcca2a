"""Data-parallel fits over a mesh of devices: `emjax.fit(..., mesh=...)`.

The rows of the data are sharded along one axis of a ``jax.sharding.Mesh``; each device
runs the EM loop on its share inside ``jax.shard_map``, and every pass over the data combines
the devices' statistics with a ``psum`` (`emjax._accumulate.accumulate`), so the
parameters, computed from the same global statistics everywhere, stay replicated. This
module checks the mesh, validates and places the rows (padding them with weight-0 rows to
a multiple of the number of devices), runs a function on every device's share, and turns
the replicated results back into ordinary arrays.

Multi-process fits (``jax.distributed.initialize``) give either the same host data on
every process, or global ``jax.Array``s whose rows are spread over the processes (built by
``jax.make_array_from_process_local_data``); the second kind is validated by jitted
reductions, since no process can read all of it.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_sample_weight, is_traced

_HOW_TO_BUILD = (
    "build each leaf with jax.make_array_from_process_local_data("
    "NamedSharding(mesh, PartitionSpec(data_axis)), local_rows)"
)


def check_mesh(mesh, data_axis) -> None:
    """``mesh`` is a ``jax.sharding.Mesh`` with an axis named ``data_axis``."""
    from jax.sharding import Mesh

    if not isinstance(mesh, Mesh):
        raise TypeError(
            "`mesh` must be a jax.sharding.Mesh, e.g. jax.make_mesh((jax.device_count(),), "
            f"('data',)); got {type(mesh).__name__}."
        )
    if not isinstance(data_axis, str):
        raise TypeError(f"`data_axis` must be the name of a mesh axis (a str); got {data_axis!r}.")
    if data_axis not in mesh.axis_names:
        raise ValueError(
            f"`data_axis`={data_axis!r} is not an axis of `mesh`, whose axes are "
            f"{tuple(mesh.axis_names)}; pass data_axis= one of them, or build the mesh with "
            f"jax.make_mesh((jax.device_count(),), ({data_axis!r},))."
        )


def auto_mesh(mesh):
    """The same devices and axis names, every axis of type ``Auto``.

    ``jax.make_mesh`` makes ``Explicit`` axes, under which ordinary ``jnp`` code on a
    sharded array (the initialisation's indexing, padding) raises a sharding type error;
    with ``Auto`` axes XLA partitions that code itself. ``shard_map`` works with either.
    """
    from jax.sharding import AxisType, Mesh

    return Mesh(mesh.devices, mesh.axis_names,
                axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def num_shards(mesh, data_axis: str) -> int:
    return int(dict(mesh.shape)[data_axis])


def row_sharding(mesh, data_axis: str):
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec(data_axis))


def replicated(mesh):
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec())


def is_global(x) -> bool:
    """A ``jax.Array`` that this process cannot read in full (spread over processes)."""
    return isinstance(x, jax.Array) and not is_traced(x) and not x.is_fully_addressable


@jax.jit
def _finite(tree):
    leaves = [jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)
              if jnp.issubdtype(a.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _check_sharded_like_rows(a, mesh, data_axis: str, name: str) -> None:
    if not a.sharding.is_equivalent_to(row_sharding(mesh, data_axis), a.ndim):
        raise ValueError(
            f"`{name}` is spread over processes, so its rows must be sharded along the mesh "
            f"axis {data_axis!r} and nothing else; got {a.sharding}. To give each process "
            f"its own rows, {_HOW_TO_BUILD}."
        )


def check_global_data(model, data, mesh, data_axis: str):
    """``model.check_data`` for data spread over processes.

    The model's checks of shapes and dtypes run at trace time (under ``jit``, where its
    value checks are skipped); finiteness is then checked by a jitted reduction.
    """
    for a in jax.tree.leaves(data):
        if not isinstance(a, jax.Array) or not is_global(a):
            raise ValueError(
                "`data` mixes arrays spread over processes with process-local ones: give "
                f"every leaf as a global jax.Array ({_HOW_TO_BUILD})."
            )
        _check_sharded_like_rows(a, mesh, data_axis, "data")
    data = eqx.filter_jit(model.check_data)(data)
    if not bool(_finite(data)):
        raise ValueError(
            "`data` contains NaN or infinite values (somewhere in the rows spread over the "
            "processes); remove or impute them first."
        )
    return data


def check_weights(sample_weight, num_points: int, dtype, mesh, data_axis: str):
    """`check_sample_weight` that also accepts weights spread over processes (checked by a
    jitted reduction); ``None`` stays ``None`` for global data (see `place_rows`)."""
    if not is_global(sample_weight):
        return check_sample_weight(sample_weight, num_points, dtype)
    if sample_weight.shape != (num_points,):
        raise ValueError(
            f"`sample_weight` must have shape ({num_points},), one weight per row of the data; "
            f"got shape {tuple(sample_weight.shape)}."
        )
    _check_sharded_like_rows(sample_weight, mesh, data_axis, "sample_weight")
    w = jax.jit(lambda v: v.astype(dtype))(sample_weight)
    finite, nonnegative, positive = jax.jit(
        lambda v: (jnp.all(jnp.isfinite(v)), jnp.all(v >= 0), jnp.any(v > 0)))(w)
    if not bool(finite):
        raise ValueError("`sample_weight` contains NaN or infinite values; remove them first.")
    if not bool(nonnegative):
        raise ValueError("`sample_weight` must be non-negative; some entries are negative.")
    if not bool(positive):
        raise ValueError("`sample_weight` must have at least one positive entry; all are 0.")
    return w


def place_rows(data, weights, mesh, data_axis: str):
    """``data`` and ``weights`` as global arrays sharded by rows over ``data_axis`` of
    ``mesh``, with rows of weight 0 appended (repeating the last row, so they hold finite
    values) to make the row count a multiple of the number of devices on that axis.

    Rows already laid out that way (a global array built by the user, or data already
    sharded over the mesh) are only relabelled; others are padded on the host and cut
    into each device's contiguous range of rows (``jax.make_array_from_callback``). Host
    data must then be the same on every process.
    """
    sharding = row_sharding(mesh, data_axis)
    n = weights.shape[0]
    pad = -n % num_shards(mesh, data_axis)

    def place(a, zeros: bool):
        if (isinstance(a, jax.Array) and not pad
                and a.sharding.is_equivalent_to(sharding, a.ndim)):
            return jax.device_put(a, sharding)
        host = np.asarray(a)
        if pad:
            extra = (np.zeros((pad,) + host.shape[1:], host.dtype) if zeros
                     else np.repeat(host[-1:], pad, axis=0))
            host = np.concatenate([host, extra])
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    data = jax.tree.map(lambda a: place(a, zeros=False), data)
    return data, place(weights, zeros=True)


def global_ones(num_points: int, dtype, mesh, data_axis: str):
    """Weights 1 for global rows, made on each device from its share of the row indices."""
    sharding = row_sharding(mesh, data_axis)

    def local(index):
        return np.ones(len(range(num_points)[index[0]]), dtype)

    return jax.make_array_from_callback((num_points,), sharding, local)


def shard_rows(fn, mesh, data_axis: str, rows, replicated):
    """``fn(local_rows, replicated)`` on every device of ``mesh`` (``jax.shard_map``): the
    leaves of ``rows`` sharded along ``data_axis`` by their leading axis, everything in
    ``replicated`` the same on every device. ``fn``'s result must be the same on every
    device (what `emjax._accumulate.all_combine` gives); it is returned replicated.
    Non-array leaves (static structure) pass around ``shard_map``.
    """
    from jax.sharding import PartitionSpec

    dynamic, static = eqx.partition(replicated, eqx.is_array)
    static_out = []

    def body(local_rows, dynamic):
        out = fn(local_rows, eqx.combine(dynamic, static))
        out_dynamic, out_static = eqx.partition(out, eqx.is_array)
        static_out.append(out_static)
        return out_dynamic

    out = jax.shard_map(body, mesh=mesh, in_specs=(PartitionSpec(data_axis), PartitionSpec()),
                        out_specs=PartitionSpec())(rows, dynamic)
    return eqx.combine(out, static_out[0])


def _uncommitted(a):
    """A copy of a single-device array on the default device that JAX may move (not
    "committed" to a device), as the outputs of a fit without a mesh are."""
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(_uncommitted(jax.random.key_data(a)),
                                        impl=jax.random.key_impl(a))
    return jnp.asarray(np.asarray(a))


def release(tree):
    """Concrete arrays committed to devices (e.g. the `Solution` of an earlier fit, or an
    array put on one device) as uncommitted copies, which a program over the mesh accepts
    as replicated values; other leaves are left alone."""

    def one(a):
        if (isinstance(a, jax.Array) and not is_traced(a) and a.committed
                and a.is_fully_addressable and len(a.sharding.device_set) == 1):
            return _uncommitted(a)
        return a

    return jax.tree.map(one, tree)


def local_copy(tree):
    """Replicated global arrays as this process's copy, on its default device and not
    committed to it, so that a `Solution` can be used like the result of any other fit
    (printed, saved, passed to methods or to another fit) on every process. Traced values
    and single-device arrays are left alone."""

    def one(a):
        if isinstance(a, jax.Array) and not is_traced(a) and len(a.sharding.device_set) > 1:
            return _uncommitted(a.addressable_data(0))
        return a

    return jax.tree.map(one, tree)
