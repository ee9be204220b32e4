"""r1.15's `MaskedBasicLSTMCell` and `MaskedLSTMCell`, for `tf.compat.v1.nn.dynamic_rnn`.

Under Keras 3, `tf.compat.v1.nn.rnn_cell` has no LSTM cells, so these implement
the RNN-cell protocol the v1 RNN functions use (`state_size`, `output_size`,
`zero_state`, `__call__(inputs, state)`) on `tf.compat.v1.get_variable`, with
r1.15's variables (`kernel`, `bias`, `mask`, `threshold`, peepholes and
`projection/kernel`) and equations (gates i, j, f, o; `forget_bias` added to f).
The kernel is masked through `apply_mask`, so `Pruning` prunes it; the
projection matrix is not masked, as in r1.15.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import tensorflow as tf

from ._graph import MASKED_WEIGHT_NAME, apply_mask

v1 = tf.compat.v1


class LSTMStateTuple(NamedTuple):
    """`(c, h)`: the cell state and the output, as `tf.compat.v1.nn.rnn_cell.LSTMStateTuple`."""

    c: Any
    h: Any

    @property
    def dtype(self) -> tf.DType:
        if self.c.dtype != self.h.dtype:
            raise TypeError(f"Inconsistent internal state: {self.c.dtype} vs {self.h.dtype}")
        return self.c.dtype


class _MaskedLSTMBase:
    """Variable scoping and the protocol; subclasses define the variables and one step."""

    _default_name = ""

    def __init__(
        self,
        num_units: int,
        *,
        forget_bias: float,
        state_is_tuple: bool,
        activation: Callable[[Any], Any] | None,
        reuse: bool | None,
        name: str | None,
        output_units: int,
    ) -> None:
        if isinstance(num_units, bool) or not isinstance(num_units, int) or num_units < 1:
            raise ValueError(f"num_units must be a positive integer, got {num_units!r}")
        self._num_units = num_units
        self._output_units = output_units
        self._forget_bias = forget_bias
        self._state_is_tuple = state_is_tuple
        self._activation = activation or tf.tanh
        self._reuse = reuse
        self._name = name
        self._scope: Any = None
        self._variables: dict[str, Any] = {}

    # The RNN-cell protocol.

    @property
    def state_size(self) -> LSTMStateTuple | int:
        if self._state_is_tuple:
            return LSTMStateTuple(self._num_units, self._output_units)
        return self._num_units + self._output_units

    @property
    def output_size(self) -> int:
        return self._output_units

    def zero_state(self, batch_size: Any, dtype: Any) -> LSTMStateTuple | tf.Tensor:
        with tf.name_scope(f"{type(self).__name__}ZeroState"):
            if self._state_is_tuple:
                return LSTMStateTuple(
                    tf.zeros([batch_size, self._num_units], dtype),
                    tf.zeros([batch_size, self._output_units], dtype),
                )
            return tf.zeros([batch_size, self._num_units + self._output_units], dtype)

    def __call__(self, inputs: Any, state: Any, scope: Any = None) -> tuple[Any, Any]:
        inputs = tf.convert_to_tensor(inputs)
        depth = tf.compat.dimension_value(inputs.get_shape().with_rank(2)[1])
        if depth is None:
            raise ValueError("Could not infer input size from inputs.get_shape()[-1]")
        if self._scope is None:
            with v1.variable_scope(
                scope or self._name, default_name=self._default_name, reuse=self._reuse
            ) as opened:
                self._scope = opened
                # The variables and the pruning collections belong to the outer graph, also
                # when the first call is inside dynamic_rnn's loop: a while_v2 body is a
                # function graph with collections of its own, which Pruning never reads.
                with tf.init_scope(), v1.variable_scope(opened):
                    self._build(int(depth), inputs.dtype.base_dtype)
                return self._step(inputs, self._split_state(state))
        # Later calls (each step of static_rnn) share the variables of the first.
        with v1.variable_scope(self._scope, reuse=True):
            return self._step(inputs, self._split_state(state))

    @property
    def variables(self) -> list[Any]:
        """The cell's variables, mask and threshold included (empty until first called)."""
        return list(self._variables.values())

    @property
    def trainable_variables(self) -> list[Any]:
        trainable = {id(v) for v in v1.trainable_variables()}
        return [v for v in self.variables if id(v) in trainable]

    # What subclasses share.

    def _split_state(self, state: Any) -> tuple[Any, Any]:
        if self._state_is_tuple:
            c, h = state
            return c, h
        c = tf.slice(state, [0, 0], [-1, self._num_units])
        h = tf.slice(state, [0, self._num_units], [-1, self._output_units])
        return c, h

    def _join_state(self, c: Any, h: Any) -> LSTMStateTuple | tf.Tensor:
        return LSTMStateTuple(c, h) if self._state_is_tuple else tf.concat([c, h], 1)

    def _create_kernel(
        self, rows: int, dtype: tf.DType, initializer: Any = None, partitioner: Any = None
    ) -> None:
        kernel = v1.get_variable(
            "kernel",
            [rows, 4 * self._num_units],
            dtype=dtype,
            initializer=initializer,
            partitioner=partitioner,
        )
        bias = v1.get_variable(
            "bias", [4 * self._num_units], dtype=dtype, initializer=v1.zeros_initializer()
        )
        self._variables.update(kernel=kernel, bias=bias)
        apply_mask(kernel, self._scope)
        with v1.variable_scope(self._scope, reuse=True):
            self._variables.update(
                mask=v1.get_variable("mask"), threshold=v1.get_variable("threshold")
            )

    def _gates(self, inputs: Any, h: Any) -> list[Any]:
        """i, j, f, o: the four gate pre-activations, from the masked kernel."""
        masked = tf.multiply(
            self._variables["mask"], self._variables["kernel"], name=MASKED_WEIGHT_NAME
        )
        matrix = tf.matmul(tf.concat([inputs, h], 1), masked)
        matrix = tf.nn.bias_add(matrix, self._variables["bias"])
        return list(tf.split(matrix, num_or_size_splits=4, axis=1))

    def _build(self, input_depth: int, dtype: tf.DType) -> None:
        raise NotImplementedError

    def _step(self, inputs: Any, state: tuple[Any, Any]) -> tuple[Any, Any]:
        raise NotImplementedError


class MaskedBasicLSTMCell(_MaskedLSTMBase):
    """r1.15's `MaskedBasicLSTMCell`: the basic LSTM (no peepholes, clipping or projection)."""

    _default_name = "masked_basic_lstm_cell"

    def __init__(
        self,
        num_units: int,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation: Callable[[Any], Any] | None = None,
        reuse: bool | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(
            num_units,
            forget_bias=forget_bias,
            state_is_tuple=state_is_tuple,
            activation=activation,
            reuse=reuse,
            name=name,
            output_units=num_units,
        )

    def _build(self, input_depth: int, dtype: tf.DType) -> None:
        self._create_kernel(input_depth + self._num_units, dtype)

    def _step(self, inputs: Any, state: tuple[Any, Any]) -> tuple[Any, Any]:
        c, h = state
        i, j, f, o = self._gates(inputs, h)
        forget_bias = tf.constant(self._forget_bias, dtype=f.dtype)
        new_c = c * tf.sigmoid(f + forget_bias) + tf.sigmoid(i) * self._activation(j)
        new_h = self._activation(new_c) * tf.sigmoid(o)
        return new_h, self._join_state(new_c, new_h)


class MaskedLSTMCell(_MaskedLSTMBase):
    """r1.15's `MaskedLSTMCell`: optional peepholes, cell clipping and a projection.

    Unlike r1.15, whose mask had `num_units` rows for the recurrent input where the
    kernel has `num_proj` (so building with `num_proj` failed), the mask here has
    the kernel's shape.
    """

    _default_name = "masked_lstm_cell"

    def __init__(
        self,
        num_units: int,
        use_peepholes: bool = False,
        cell_clip: float | None = None,
        initializer: Any = None,
        num_proj: int | None = None,
        proj_clip: float | None = None,
        num_unit_shards: int | None = None,
        num_proj_shards: int | None = None,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation: Callable[[Any], Any] | None = None,
        reuse: bool | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(
            num_units,
            forget_bias=forget_bias,
            state_is_tuple=state_is_tuple,
            activation=activation,
            reuse=reuse,
            name=name,
            output_units=num_proj if num_proj is not None else num_units,
        )
        self._use_peepholes = use_peepholes
        self._cell_clip = cell_clip
        self._initializer = initializer
        self._num_proj = num_proj
        self._proj_clip = proj_clip
        self._num_unit_shards = num_unit_shards
        self._num_proj_shards = num_proj_shards

    def _build(self, input_depth: int, dtype: tf.DType) -> None:
        self._create_kernel(
            input_depth + self._output_units,
            dtype,
            self._initializer,
            _shards(self._num_unit_shards),
        )
        if self._use_peepholes:
            for name in ("w_f_diag", "w_i_diag", "w_o_diag"):
                self._variables[name] = v1.get_variable(
                    name, [self._num_units], dtype=dtype, initializer=self._initializer
                )
        if self._num_proj is not None:
            with v1.variable_scope("projection"):
                self._variables["projection/kernel"] = v1.get_variable(
                    "kernel",
                    [self._num_units, self._num_proj],
                    dtype=dtype,
                    initializer=self._initializer,
                    partitioner=_shards(self._num_proj_shards),
                )

    def _step(self, inputs: Any, state: tuple[Any, Any]) -> tuple[Any, Any]:
        c_prev, m_prev = state
        i, j, f, o = self._gates(inputs, m_prev)
        peep = self._variables if self._use_peepholes else None
        if peep is not None:
            c = tf.sigmoid(f + self._forget_bias + peep["w_f_diag"] * c_prev) * c_prev + tf.sigmoid(
                i + peep["w_i_diag"] * c_prev
            ) * self._activation(j)
        else:
            c = tf.sigmoid(f + self._forget_bias) * c_prev + tf.sigmoid(i) * self._activation(j)
        if self._cell_clip is not None:
            c = tf.clip_by_value(c, -self._cell_clip, self._cell_clip)
        output_gate = o + peep["w_o_diag"] * c if peep is not None else o
        m = tf.sigmoid(output_gate) * self._activation(c)
        if self._num_proj is not None:
            m = tf.matmul(m, self._variables["projection/kernel"])
            if self._proj_clip is not None:
                m = tf.clip_by_value(m, -self._proj_clip, self._proj_clip)
        return m, self._join_state(c, m)


def _shards(count: int | None) -> Any:
    return v1.fixed_size_partitioner(count) if count is not None and count > 1 else None


class MultiRNNCell:
    """Cells stacked in depth, as `tf.compat.v1.nn.rnn_cell.MultiRNNCell` (gone under Keras 3).

    Each cell runs in its own variable scope `cell_<i>` under this one's
    (`multi_rnn_cell` by default), so stacked masked LSTMs keep r1.15's names,
    e.g. `rnn/multi_rnn_cell/cell_0/masked_basic_lstm_cell/mask`. The state is the
    tuple of the cells' states.
    """

    def __init__(self, cells: Sequence[Any], state_is_tuple: bool = True) -> None:
        if not cells:
            raise ValueError("MultiRNNCell needs at least one cell")
        if not state_is_tuple:
            raise ValueError("MultiRNNCell keeps each cell's state apart: state_is_tuple=True")
        self._cells = list(cells)
        self._scope: Any = None

    @property
    def state_size(self) -> tuple[Any, ...]:
        return tuple(cell.state_size for cell in self._cells)

    @property
    def output_size(self) -> Any:
        return self._cells[-1].output_size

    def zero_state(self, batch_size: Any, dtype: Any) -> tuple[Any, ...]:
        return tuple(cell.zero_state(batch_size, dtype) for cell in self._cells)

    def __call__(self, inputs: Any, state: Any, scope: Any = None) -> tuple[Any, Any]:
        if self._scope is None:
            with v1.variable_scope(scope, default_name="multi_rnn_cell") as opened:
                self._scope = opened
        new_states = []
        with v1.variable_scope(self._scope):
            for index, (cell, cell_state) in enumerate(zip(self._cells, state, strict=True)):
                with v1.variable_scope(f"cell_{index}"):
                    inputs, new_state = cell(inputs, cell_state)
                new_states.append(new_state)
        return inputs, tuple(new_states)

    @property
    def variables(self) -> list[Any]:
        return [v for cell in self._cells for v in getattr(cell, "variables", [])]
