"""JAX kernels of the mask updates, bit-identical to the TensorFlow backend's (issue 18).

Nothing here is public: use `pruning_spec.backends.keras` on Keras's JAX backend. The
private modules hold, in JAX, the arithmetic of `pruning_spec.backends.tensorflow._kernels`
and `._n_m` (the schedule, the keep counts, the exact k-th largest magnitude by radix
select on bit patterns, element, block, group and N:M masks), and `_update`, the Keras
package's mask update on JAX, which gives these kernels to `backends/_dispatch`.

Importing this package imports nothing (not even JAX); its modules need
`jax` (the `jax` extra: `pip install 'pruning-spec[jax]'`).
"""

__all__: list[str] = []
