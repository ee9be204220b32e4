"""TensorFlow backend: a drop-in for `tf.contrib.model_pruning` under TF 2.x graph mode.

Change only the import:

    from pruning_spec.backends import tensorflow as pruning

    hparams = pruning.get_pruning_hparams().parse(FLAGS.pruning_hparams)
    masked = pruning.apply_mask(weights, scope)
    p = pruning.Pruning(hparams, global_step=global_step)
    mask_update_op = p.conditional_mask_update_op()
    p.add_pruning_summaries()
"""

from .._hparams import PruningHParams, get_pruning_hparams
from .._weights import PrunedWeight
from . import pruning_utils
from ._graph import (
    MASK_COLLECTION,
    MASKED_WEIGHT_COLLECTION,
    MASKED_WEIGHT_NAME,
    THRESHOLD_COLLECTION,
    WEIGHT_COLLECTION,
    Pruning,
    apply_mask,
    get_masked_weights,
    get_masks,
    get_thresholds,
    get_weight_sparsity,
    get_weights,
)
from ._layers import masked_conv2d, masked_convolution, masked_fully_connected
from ._learning import train, train_step
from ._pruner import Pruner
from ._rnn_cells import LSTMStateTuple, MaskedBasicLSTMCell, MaskedLSTMCell, MultiRNNCell
from ._strip import (
    graph_def_from_checkpoint,
    strip_pruning_vars,
    strip_pruning_vars_fn,
)

__all__ = [
    "MASKED_WEIGHT_COLLECTION",
    "MASKED_WEIGHT_NAME",
    "MASK_COLLECTION",
    "THRESHOLD_COLLECTION",
    "WEIGHT_COLLECTION",
    "LSTMStateTuple",
    "MaskedBasicLSTMCell",
    "MaskedLSTMCell",
    "MultiRNNCell",
    "PrunedWeight",
    "Pruner",
    "Pruning",
    "PruningHParams",
    "apply_mask",
    "get_masked_weights",
    "get_masks",
    "get_pruning_hparams",
    "get_thresholds",
    "get_weight_sparsity",
    "get_weights",
    "graph_def_from_checkpoint",
    "masked_conv2d",
    "masked_convolution",
    "masked_fully_connected",
    "pruning_utils",
    "strip_pruning_vars",
    "strip_pruning_vars_fn",
    "train",
    "train_step",
]
