"""JAX kernels of the mask updates, bit-identical to the TensorFlow backend's (issue 18).

Nothing here is public yet. The private modules hold, in JAX, the arithmetic of
`pruning_spec.backends.tensorflow._kernels` and `._n_m`: the schedule, the keep counts,
the exact k-th largest magnitude (radix select on bit patterns), element, block, group
and N:M masks. They serve the backend-neutral Keras package to come, which turns the
core's plan into calls of these kernels, as the TensorFlow backend turns it into ops.

Importing this package imports nothing (not even JAX); `_kernels` and `_n_m` need
`jax` (the `jax` extra: `pip install 'pruning-spec[jax]'`).
"""

__all__: list[str] = []
