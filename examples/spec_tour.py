"""Loads, validates and prints every example spec in every format.

Run with `make tour`. Then shows what a flag override does, and what a broken
spec reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pruning_spec

EXAMPLES = Path(__file__).resolve().parent


def show(title: str, text: str) -> None:
    print(f"--- {title}")
    print(text.rstrip())


def main() -> int:
    for path in sorted(EXAMPLES.glob("*.txtpb")):
        spec = pruning_spec.load_spec(path)
        print(f"=== {path.name}  (fingerprint {spec.fingerprint[:16]})")
        show("hparams (print_hparams)", spec.to_hparams())
        show("hparams, non-default fields only", spec.to_hparams(include_defaults=False))
        show("json (contrib to_json)", spec.to_json())
        show("textproto", spec.to_textproto())
        steps = [0, spec.sparsity_function_begin_step, spec.sparsity_function_end_step]
        show("schedule", ", ".join(f"s({t})={spec.sparsity_at(t):.6g}" for t in steps))
        print()

    flag = 'target_sparsity=0.95,weight_sparsity_map=["conv[0-9]+/kernel":0.7]'
    spec = pruning_spec.load_spec(EXAMPLES / "cifar10.txtpb", overrides=flag)
    print(f"=== cifar10.txtpb with --pruning_hparams='{flag}'")
    print(spec.to_hparams(include_defaults=False))
    print()

    broken = (
        "target_sparsty: 0.9\n"
        "target_sparsity: 1.5\n"
        "begin_pruning_step: 500\n"
        "end_pruning_step: 100\n"
    )
    print("=== a broken spec reports every problem with its location")
    try:
        pruning_spec.parse_spec_text(broken, "broken.txtpb")
    except pruning_spec.SpecError as error:
        print(error)
    else:
        print("unexpected: the broken spec was accepted")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
