# proto-file: pruning_spec/v1/pruning.proto
# proto-message: pruning_spec.v1.PruningSpec
#
# The cifar10 example of tf.contrib.model_pruning (its README's --pruning_hparams),
# as a spec file: prune from step 10k to 100k, reaching 90% sparsity.
name: "cifar10_pruning"
begin_pruning_step: 10000
end_pruning_step: 100000
target_sparsity: 0.9
sparsity_function_begin_step: 10000
sparsity_function_end_step: 100000

# The first convolution is more sensitive: keep more of it.
weight_sparsity_map {
  pattern: "^conv1/"
  sparsity: 0.8
}
