"""Prune a digit classifier with Keras 3 from one spec file (`make demo`).

Trains a small MLP on scikit-learn's handwritten digits (no download), first
dense, then fine-tunes it while `examples/digits.txtpb` prunes it, and prints
per-layer sparsity, test accuracy and exported file sizes, dense vs pruned.

    python examples/train_digits.py --pruning_hparams='target_sparsity=0.95'
    python examples/train_digits.py --global   # global magnitude pruning, same sparsity
    python examples/train_digits.py --n-m      # 2:4 on the hidden layers

Exits with status 1 if the pruned model misses the demo's targets: at least 90%
of the prunable weights zero (50% with --n-m), within 2 accuracy points of the
dense model, and `pruning-spec verify` passing on the saved model.
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np

import pruning_spec

EXAMPLES = Path(__file__).resolve().parent
MIN_SPARSITY = 0.90
MIN_N_M_SPARSITY = 0.50  # 2:4 keeps half the hidden kernels
MAX_ACCURACY_DROP = 0.02


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, pruning_spec.NormalizedSpec]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    pruning_spec.add_argparse_flags(parser)
    parser.add_argument(
        "--global",
        dest="global_scope",
        action="store_true",
        help="prune with examples/digits_global.txtpb: one threshold over all kernels",
    )
    parser.add_argument(
        "--n-m",
        dest="n_m",
        action="store_true",
        help="prune with examples/digits_2_4.txtpb: 2:4 semi-structured hidden layers",
    )
    known, _ = parser.parse_known_args(argv)
    if known.global_scope and known.n_m:
        parser.error("--global and --n-m choose different specs: give one")
    default = "digits.txtpb"
    if known.global_scope:
        default = "digits_global.txtpb"
    elif known.n_m:
        default = "digits_2_4.txtpb"
    parser.set_defaults(pruning_spec=str(EXAMPLES / default))
    parser.add_argument("--dense-epochs", type=int, default=30)
    parser.add_argument("--pruning-epochs", type=int, default=30)
    parser.add_argument("--output-dir", help="where the models and logs go (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # A bad spec or flag ends here, with every problem located, before TensorFlow loads.
    return args, pruning_spec.spec_from_args(args, parser)


def load_data(seed: int) -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    return train_test_split(
        x, digits.target, test_size=0.2, random_state=seed, stratify=digits.target
    )


def build_model() -> Any:
    import keras

    inputs = keras.Input((64,), name="pixels")
    hidden = keras.layers.Dense(256, activation="relu", name="hidden_1")(inputs)
    hidden = keras.layers.Dense(128, activation="relu", name="hidden_2")(hidden)
    logits = keras.layers.Dense(10, name="logits")(hidden)
    return keras.Model(inputs, logits, name="digits_mlp")


def compile_model(model: Any) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def saved_sizes(model: Any, path: Path, *, sparse: bool) -> tuple[int, int, int]:
    """Bytes of the model's `.keras` file (no optimizer state), of it gzip-compressed, and
    of its TensorFlow Lite export (the pruned one stores its weights sparsely)."""
    from pruning_spec.backends import keras as pks

    model.save(path)
    data = path.read_bytes()
    compressed = gzip.compress(data, compresslevel=9, mtime=0)
    path.with_suffix(".keras.gz").write_bytes(compressed)
    tflite = pks.export_tflite(model, path.with_suffix(".tflite"), sparse=sparse)
    return len(data), len(compressed), tflite


def main(argv: list[str] | None = None) -> int:
    args, spec = parse_args(argv)
    started = time.perf_counter()
    import keras

    from pruning_spec.backends import keras as pks

    keras.utils.set_random_seed(args.seed)
    out = Path(args.output_dir or tempfile.mkdtemp(prefix="digits-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    x_train, x_test, y_train, y_test = load_data(args.seed)
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of 8x8 pixels")
    print(f"Keras {keras.__version__} on its {keras.backend.backend()} backend (KERAS_BACKEND)")
    print(f"spec: {spec.to_hparams(include_defaults=False)}\n")

    print(f"== 1. dense training, {args.dense_epochs} epochs")
    model = build_model()
    compile_model(model)
    model.fit(x_train, y_train, epochs=args.dense_epochs, batch_size=32, verbose=2)
    dense_accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    dense_export = keras.models.clone_model(model)
    dense_export.set_weights(model.get_weights())
    dense_sizes = saved_sizes(dense_export, out / "dense.keras", sparse=False)

    print(f"\n== 2. pruning while fine-tuning, {args.pruning_epochs} epochs")
    pruned = pks.prune(model, spec)
    compile_model(pruned)
    callback = pks.PruningCallback(spec, log_dir=str(out / "logs"))
    pruned.fit(
        x_train, y_train, epochs=args.pruning_epochs, batch_size=32, verbose=2, callbacks=[callback]
    )
    reported = pks.weight_sparsity(pruned)
    exported = pks.strip(pruned)
    pruned_sizes = saved_sizes(exported, out / "pruned.keras", sparse=True)
    compile_model(exported)
    pruned_accuracy = exported.evaluate(x_test, y_test, verbose=0)[1]

    rows = layer_rows(exported, reported)
    print_report(rows, dense_accuracy, pruned_accuracy, dense_sizes, pruned_sizes)
    verified = verify(spec, out)
    print(f"\nmodels, gzipped copies, .tflite exports and TensorBoard logs in {out}")
    print(f"took {time.perf_counter() - started:.0f} s")
    minimum = MIN_N_M_SPARSITY if spec.n_m_map else MIN_SPARSITY
    return check(rows, dense_accuracy, pruned_accuracy, minimum, verified)


def verify(spec: pruning_spec.NormalizedSpec, out: Path) -> bool:
    """Runs `pruning-spec verify --final` on the saved pruned model, as CI would."""
    spec_path = out / "spec.txtpb"
    spec_path.write_text(spec.to_textproto(), encoding="utf-8")
    command = [sys.executable, "-m", "pruning_spec", "verify", str(spec_path)]
    command += ["--checkpoint", str(out / "pruned.keras"), "--final"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    print(f"\n$ pruning-spec verify {spec_path.name} --checkpoint pruned.keras --final")
    # Its stderr holds TensorFlow's start-up logging (it loads the .keras file with Keras),
    # and, when it fails, the problems.
    print((done.stdout if done.returncode == 0 else done.stdout + done.stderr).rstrip())
    return done.returncode == 0


class Row(NamedTuple):
    """One pruned kernel in the report."""

    name: str
    shape: str
    size: int
    zeros: float  # its fraction of zeros in the exported model
    reported: float  # the fraction training reported


def layer_rows(exported: Any, reported: dict[str, float]) -> list[Row]:
    rows = []
    for layer in exported.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        name = f"{layer.name}/kernel"
        values = np.asarray(kernel.numpy())
        shape = "x".join(str(d) for d in values.shape)
        rows.append(Row(name, shape, values.size, float(np.mean(values == 0)), reported[name]))
    return rows


def overall_sparsity(rows: list[Row]) -> float:
    return sum(row.size * row.zeros for row in rows) / sum(row.size for row in rows)


def print_report(
    rows: list[Row],
    dense_accuracy: float,
    pruned_accuracy: float,
    dense_sizes: tuple[int, int, int],
    pruned_sizes: tuple[int, int, int],
) -> None:
    print(f"\n{'weight':<18}{'shape':>9}{'values':>9}{'sparsity':>10}{'in training':>13}")
    for row in rows:
        print(f"{row.name:<18}{row.shape:>9}{row.size:>9}{row.zeros:>10.2%}{row.reported:>13.2%}")
    total = sum(row.size for row in rows)
    print(f"{'all pruned':<18}{'':>9}{total:>9}{overall_sparsity(rows):>10.2%}")
    print(f"\n{'':<24}{'dense':>10}{'pruned':>10}")
    print(f"{'test accuracy':<24}{dense_accuracy:>10.2%}{pruned_accuracy:>10.2%}")
    print(f"{'.keras file (bytes)':<24}{dense_sizes[0]:>10}{pruned_sizes[0]:>10}")
    print(f"{'gzip -9 of it (bytes)':<24}{dense_sizes[1]:>10}{pruned_sizes[1]:>10}")
    print(f"{'.tflite (bytes)':<24}{dense_sizes[2]:>10}{pruned_sizes[2]:>10}")
    print(
        f"compressed, the pruned model is {dense_sizes[1] / pruned_sizes[1]:.1f}x smaller; "
        f"as TensorFlow Lite with sparse weights, {dense_sizes[2] / pruned_sizes[2]:.1f}x"
    )


def check(
    rows: list[Row],
    dense_accuracy: float,
    pruned_accuracy: float,
    min_sparsity: float,
    verified: bool,
) -> int:
    overall = overall_sparsity(rows)
    drop = dense_accuracy - pruned_accuracy
    misses = []
    if overall < min_sparsity:
        misses.append(f"sparsity {overall:.2%} is below {min_sparsity:.0%}")
    if not verified:
        misses.append("pruning-spec verify fails on the saved pruned model")
    if drop > MAX_ACCURACY_DROP:
        misses.append(f"accuracy dropped {drop:.2%}, more than {MAX_ACCURACY_DROP:.0%}")
    if any(row.zeros != row.reported for row in rows):
        misses.append("the sparsity training reported differs from the exported model's")
    for miss in misses:
        print(f"MISS: {miss}", file=sys.stderr)
    if not misses:
        print(
            f"OK: {overall:.2%} sparse (target >= {min_sparsity:.0%}), accuracy "
            f"{-drop * 100:+.2f} points vs dense (allowed: -{MAX_ACCURACY_DROP * 100:.0f})"
        )
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
