"""Converts a `.keras` file to TensorFlow Lite in a process on Keras's TensorFlow backend.

    KERAS_BACKEND=tensorflow python -m pruning_spec.backends.keras._tflite IN.keras OUT.tflite
        [--dense]

`export_tflite` runs it for a model of another backend (JAX): TensorFlow's converter
takes only TensorFlow-backend models, and Keras picks its backend once per process.
Prints the size of the file written.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pruning_spec.backends.keras._tflite")
    parser.add_argument("model", help="a .keras file (a stripped model)")
    parser.add_argument("out", help="the .tflite file to write")
    parser.add_argument("--dense", action="store_true", help="store the weights densely")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras  # noqa: PLC0415 - after the backend is chosen

    from . import export_tflite  # noqa: PLC0415

    model = keras.saving.load_model(args.model, compile=False)
    print(export_tflite(model, args.out, sparse=not args.dense))
    return 0


if __name__ == "__main__":
    sys.exit(main())
