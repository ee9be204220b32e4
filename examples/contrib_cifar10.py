"""r1.15's model_pruning cifar10 example, on `pruning_spec.backends.tensorflow` (TF 2 graph mode).

A cifar10-shaped CNN (conv1, conv2, local3, local4, softmax_linear) built with
`masked_conv2d` and `masked_fully_connected`, trained by `train(...)` on generated
images with `--pruning_hparams` in the syntax of r1.15's README, scaled down from
100k steps to a few hundred:

    python examples/contrib_cifar10.py --pruning_hparams=name=cifar10_pruning,\
begin_pruning_step=100,end_pruning_step=300,target_sparsity=0.9,\
sparsity_function_begin_step=100,sparsity_function_end_step=300,pruning_frequency=10

As in r1.15, the flag is the whole hparam string, applied to the defaults (or on top
of `--pruning_spec FILE`: `--pruning_spec=examples/cifar10.txtpb` keeps its 80% for
conv1 and takes the scaled schedule from this flag's default). Afterwards it reads
every mask from the last checkpoint, folds the masks into the weights
(`graph_def_from_checkpoint` + `strip_pruning_vars_fn`) and writes the stripped
GraphDef to `<output_dir>/pruning_stripped.pb` (feed `images:0`, fetch `logits:0`).

Exits with status 1 if a mask misses its target sparsity (the kept count r1.15
computes, round_half_even(n * (1 - s)) in float32, give or take one weight tied at
the threshold), or if the stripped graph still holds a mask, a threshold or an
unmasked weight, or its weight constants are not as sparse as the masks.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import pruning_spec

# r1.15's README flag, `begin_pruning_step=10000,end_pruning_step=100000,...`, scaled down.
DEFAULT_HPARAMS = (
    "name=cifar10_pruning,begin_pruning_step=100,end_pruning_step=300,target_sparsity=0.9,"
    "sparsity_function_begin_step=100,sparsity_function_end_step=300,pruning_frequency=10"
)
NUM_CLASSES = 10
OUTPUT_NODE = "logits"
INPUT_NODE = "images"
STRIPPED_NAME = "pruning_stripped.pb"
# Each class owns a patch of the image (a 2 x 5 grid) in one channel; the label is the
# patch with the highest mean. Images are noise with a bump on one patch, of SIGNAL
# standard deviations of a patch mean: clear, but the model has to average to see it.
GRID = (2, 5)
SIGNAL = 3.0


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, pruning_spec.NormalizedSpec]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    pruning_spec.add_argparse_flags(parser)
    parser.set_defaults(pruning_hparams=DEFAULT_HPARAMS)
    parser.add_argument("--train_dir", help="checkpoints and summaries (default: a temp dir)")
    parser.add_argument("--output_dir", help="the stripped GraphDef (default: --train_dir)")
    parser.add_argument("--max_steps", type=int, default=400, help="training steps")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--image_size", type=int, default=24, help="images are N x N x 3")
    parser.add_argument(
        "--width", type=float, default=1.0, help="scales every layer's outputs (1: r1.15's)"
    )
    parser.add_argument("--learning_rate", type=float, default=0.01)
    parser.add_argument("--log_every_n_steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, low in (("max_steps", 1), ("batch_size", 1), ("image_size", GRID[1])):
        if getattr(args, name) < low:
            parser.error(f"--{name} must be at least {low}, got {getattr(args, name)}")
    if not args.width > 0:
        parser.error(f"--width must be positive, got {args.width}")
    if not args.learning_rate > 0:
        parser.error(f"--learning_rate must be positive, got {args.learning_rate}")
    # A bad spec or flag ends here, with every problem located, before TensorFlow loads.
    return args, pruning_spec.spec_from_args(args, parser)


def patch_weights(size: int) -> np.ndarray:
    """[10, size, size, 3]: class i's patch, in channel i % 3, scaled to average over it."""
    rows, cols = GRID
    height, width = size // rows, size // cols
    patches = np.zeros((NUM_CLASSES, size, size, 3), np.float32)
    for i in range(NUM_CLASSES):
        row, col = divmod(i, cols)
        patches[i, row * height : (row + 1) * height, col * width : (col + 1) * width, i % 3] = 1
    scaled: np.ndarray = patches / patches.sum(axis=(1, 2, 3), keepdims=True)
    return scaled


def generate(seed: Any, batch_size: int, size: int) -> tuple[Any, Any]:
    """A batch of noise images with a bump on one class patch, and their labels (stateless)."""
    import tensorflow as tf

    noise_seed, class_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    noise = tf.random.stateless_normal([batch_size, size, size, 3], noise_seed)
    bumped = tf.random.stateless_uniform(
        [batch_size], class_seed, maxval=NUM_CLASSES, dtype=tf.int32
    )
    weights = patch_weights(size)
    bump = SIGNAL / np.sqrt(np.count_nonzero(weights[0]))
    patches = tf.constant(weights)
    masks = tf.constant((weights > 0).astype(np.float32))
    images = noise + bump * tf.tensordot(tf.one_hot(bumped, NUM_CLASSES), masks, 1)
    means = tf.tensordot(images, patches, [[1, 2, 3], [1, 2, 3]])
    return images, tf.argmax(means, axis=1, output_type=tf.int32)


def inference(images: Any, width: float) -> Any:
    """r1.15's cifar10 model (without its local response normalization), masked."""
    import tensorflow as tf

    from pruning_spec.backends import tensorflow as pruning

    def units(n: int) -> int:
        return max(1, round(n * width))

    net = pruning.masked_conv2d(images, units(64), 5, scope="conv1")
    net = tf.nn.max_pool2d(net, 3, 2, "SAME", name="pool1")
    net = pruning.masked_conv2d(net, units(64), 5, scope="conv2")
    net = tf.nn.max_pool2d(net, 3, 2, "SAME", name="pool2")
    flat = int(np.prod(net.get_shape().as_list()[1:]))
    net = tf.reshape(net, [-1, flat])
    net = pruning.masked_fully_connected(net, units(384), scope="local3")
    net = pruning.masked_fully_connected(net, units(192), scope="local4")
    logits = pruning.masked_fully_connected(
        net, NUM_CLASSES, activation_fn=None, scope="softmax_linear"
    )
    return tf.identity(logits, name=OUTPUT_NODE)


class Mask(NamedTuple):
    """A pruned weight's variables, by name."""

    mask: str  # `conv1/mask`
    weight: str  # `conv1/weights`


def main(argv: list[str] | None = None) -> int:
    args, spec = parse_args(argv)
    started = time.perf_counter()
    import tensorflow as tf

    from pruning_spec.backends import tensorflow as pruning

    v1 = tf.compat.v1
    train_dir = Path(args.train_dir or tempfile.mkdtemp(prefix="contrib-cifar10-"))
    output_dir = Path(args.output_dir) if args.output_dir else train_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    print(f"images: generated, {args.image_size}x{args.image_size}x3, {NUM_CLASSES} classes")
    print(f"spec: {spec.to_hparams(include_defaults=False)}")
    print(f"training {args.max_steps} steps of {args.batch_size} images into {train_dir}\n")

    with tf.Graph().as_default():
        v1.set_random_seed(args.seed)
        global_step = v1.train.get_or_create_global_step()
        # Fresh images every step, the same for the same seed and step.
        seed = tf.stack([tf.constant(args.seed, tf.int64), tf.cast(global_step, tf.int64)])
        with tf.name_scope("generated"):
            generated, labels = generate(seed, args.batch_size, args.image_size)
        size = args.image_size
        images = v1.placeholder_with_default(generated, [None, size, size, 3], name=INPUT_NODE)
        logits = inference(images, args.width)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        )
        v1.summary.scalar("loss", loss)
        optimizer = v1.train.MomentumOptimizer(args.learning_rate, momentum=0.9)
        # slim's create_train_op: running train_op takes a step and returns the loss.
        with tf.control_dependencies([optimizer.minimize(loss, global_step=global_step)]):
            train_op = tf.identity(loss, name="train_op")

        # r1.15: hparams = pruning.get_pruning_hparams().parse(FLAGS.pruning_hparams)
        p = pruning.Pruning(spec, global_step=global_step)
        mask_update_op = p.conditional_mask_update_op()
        p.add_pruning_summaries()

        masks = [
            Mask(pruning_op_name(m), pruning_op_name(w))
            for m, w in zip(pruning.get_masks(), pruning.get_weights(), strict=True)
        ]
        mask_zeros = tf.add_n([tf.reduce_sum(1.0 - m) for m in pruning.get_masks()])
        mask_size = sum(int(np.prod(m.get_shape().as_list())) for m in pruning.get_masks())
        step_fn = logging_step(global_step, mask_zeros / mask_size, args)

        final_loss = pruning.train(
            train_op,
            str(train_dir),
            mask_update_op,
            train_step_fn=step_fn,
            number_of_steps=args.max_steps,
            log_every_n_steps=args.log_every_n_steps,
            save_summaries_secs=10,
            save_interval_secs=600,
        )
    print(f"final loss {final_loss:.4f}\n")

    rows = mask_rows(str(train_dir), masks, spec)
    graph_def = pruning.graph_def_from_checkpoint(str(train_dir), [OUTPUT_NODE])
    stripped = pruning.strip_pruning_vars_fn(graph_def, [OUTPUT_NODE])
    stripped_path = output_dir / STRIPPED_NAME
    stripped_path.write_bytes(stripped.SerializeToString())
    weight_zeros = stripped_weight_zeros(stripped, masks)
    print_table(rows, weight_zeros)
    accuracy = stripped_accuracy(stripped, args)
    print(
        f"\nstripped GraphDef: {stripped_path} ({stripped_path.stat().st_size} bytes, "
        f"{len(stripped.node)} nodes); feed {INPUT_NODE}:0, fetch {OUTPUT_NODE}:0"
    )
    print(f"its accuracy on 1000 fresh images: {accuracy:.2%} (chance: {1 / NUM_CLASSES:.0%})")
    print(f"took {time.perf_counter() - started:.0f} s")
    return check(rows, weight_zeros, leftover_nodes(stripped, masks))


def pruning_op_name(variable: Any) -> str:
    return str(variable.op.name)


def logging_step(global_step: Any, sparsity: Any, args: argparse.Namespace) -> Any:
    """A `train_step_fn` (slim's contract) that prints the loss and mask sparsity as it goes."""

    def step(sess: Any, train_op: Any, _global_step: Any, _kwargs: Any) -> tuple[Any, bool]:
        total_loss = sess.run(train_op)
        now, zeros = sess.run([global_step, sparsity])
        if now % args.log_every_n_steps == 0 or now == args.max_steps:
            print(f"step {now:>5}  loss {total_loss:.4f}  masks {zeros:.2%} zero", flush=True)
        return total_loss, now >= args.max_steps

    return step


class Row(NamedTuple):
    """One mask in the report, as the last checkpoint holds it."""

    name: str
    shape: str
    size: int
    zeros: int
    target: float
    expected_zeros: int  # n - round_half_even(float32(n) * (1 - s)), r1.15's kept count


def mask_rows(train_dir: str, masks: list[Mask], spec: pruning_spec.NormalizedSpec) -> list[Row]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(train_dir)
    rows = []
    for mask in masks:
        values = reader.get_tensor(mask.mask)
        target = spec.target_sparsity_for(mask.weight)
        kept = round(float(np.float32(values.size) * (np.float32(1) - np.float32(target))))
        rows.append(
            Row(
                mask.mask,
                "x".join(str(d) for d in values.shape),
                int(values.size),
                int(np.sum(values == 0)),
                target,
                int(values.size) - min(max(kept, 0), int(values.size)),
            )
        )
    return rows


def stripped_weight_zeros(stripped: Any, masks: list[Mask]) -> dict[str, int]:
    """Zeros of each `<layer>/weights/masked_weight` constant of the stripped graph, by mask."""
    import tensorflow as tf

    from pruning_spec.backends import tensorflow as pruning

    constants = {node.name: node for node in stripped.node if node.op == "Const"}
    zeros = {}
    for mask in masks:
        layer = mask.mask.rsplit("/", 1)[0]
        node = constants.get(f"{layer}/{pruning.MASKED_WEIGHT_NAME}")
        if node is not None:
            zeros[mask.mask] = int(np.sum(tf.make_ndarray(node.attr["value"].tensor) == 0))
    return zeros


def leftover_nodes(stripped: Any, masks: list[Mask]) -> list[str]:
    """Nodes of the stripped graph that are masks, thresholds or unmasked weights."""
    weights = {mask.weight for mask in masks}
    return [
        node.name
        for node in stripped.node
        if node.name in weights or {"mask", "threshold"} & set(node.name.split("/"))
    ]


def stripped_accuracy(stripped: Any, args: argparse.Namespace) -> float:
    """The stripped graph's accuracy on images it never saw (another seed)."""
    import tensorflow as tf

    with tf.Graph().as_default():
        seed = tf.constant([args.seed + 1, 0], tf.int64)
        images, labels = generate(seed, 1000, args.image_size)
        (logits,) = tf.compat.v1.import_graph_def(
            stripped, input_map={f"{INPUT_NODE}:0": images}, return_elements=[f"{OUTPUT_NODE}:0"]
        )
        correct = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1, tf.int32), labels), "float"))
        with tf.compat.v1.Session() as sess:
            return float(sess.run(correct))


def print_table(rows: list[Row], weight_zeros: dict[str, int]) -> None:
    print(f"{'mask':<22}{'shape':>12}{'values':>9}{'sparsity':>10}{'target':>9}{'stripped':>10}")
    for row in rows:
        stripped = weight_zeros.get(row.name)
        shown = f"{stripped / row.size:.2%}" if stripped is not None else "missing"
        print(
            f"{row.name:<22}{row.shape:>12}{row.size:>9}{row.zeros / row.size:>10.2%}"
            f"{row.target:>9.2%}{shown:>10}"
        )
    total = sum(row.size for row in rows)
    zeros = sum(row.zeros for row in rows)
    print(f"{'all masks':<22}{'':>12}{total:>9}{zeros / total:>10.2%}")


def check(rows: list[Row], weight_zeros: dict[str, int], leftovers: list[str]) -> int:
    misses = []
    for row in rows:
        if abs(row.zeros - row.expected_zeros) > 1:
            misses.append(
                f"{row.name} is {row.zeros / row.size:.2%} sparse ({row.zeros} zeros), "
                f"its target is {row.target:.2%} ({row.expected_zeros} zeros)"
            )
        if row.name not in weight_zeros:
            misses.append(f"the stripped graph has no masked weight for {row.name}")
        elif weight_zeros[row.name] < row.zeros:
            misses.append(
                f"the stripped weights of {row.name} have {weight_zeros[row.name]} zeros, "
                f"the mask {row.zeros}"
            )
    if leftovers:
        misses.append(f"the stripped graph still holds {', '.join(leftovers[:5])}")
    for miss in misses:
        print(f"MISS: {miss}", file=sys.stderr)
    if not misses:
        print(f"OK: all {len(rows)} masks at their target sparsity, stripped GraphDef exported")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
