"""Google's BERT optimiser: AdamW without bias correction, decay off for LayerNorm and biases; its schedule."""
from __future__ import annotations

import functools

from ..model.tensorflow_quiet import tf

NO_DECAY = ('LayerNorm', 'layer_norm', 'bias')


def learning_rate(step, peak: float, total_steps: int, warmup_steps: int, cycles: int = 1):
    """Linear warmup to ``peak``, then linear (polynomial power 1) decay to 0, restarted ``cycles`` times."""
    step = tf.cast(step, tf.float32)
    warmup = tf.cast(max(warmup_steps, 0), tf.float32)
    cycle_len = tf.cast(max(total_steps - warmup_steps, 1), tf.float32) / cycles
    in_cycle = tf.math.floormod(tf.maximum(step - warmup, 0.0), cycle_len)
    decayed = peak * (1.0 - in_cycle / cycle_len)
    warmed = peak * step / tf.maximum(warmup, 1.0)
    return tf.where(step < warmup, warmed, decayed)


class AdamWeightDecay(tf.Module):
    """Adam with decoupled weight decay as in Google's ``optimization.py`` (beta 0.9/0.999, epsilon 1e-6)."""

    def __init__(self, named_variables: dict, weight_decay=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-6):
        super().__init__(name='adam')
        self.names = sorted(named_variables)
        self.variables_in_order = [named_variables[n] for n in self.names]
        self.weight_decay, self.beta_1, self.beta_2, self.epsilon = weight_decay, beta_1, beta_2, epsilon
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False, name=f'{n}/adam_m'.replace('/', '.'))
                  for n, v in zip(self.names, self.variables_in_order)]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False, name=f'{n}/adam_v'.replace('/', '.'))
                  for n, v in zip(self.names, self.variables_in_order)]
        self.decays = [not any(part in n for part in NO_DECAY) for n in self.names]
        self._strategy = tf.distribute.get_strategy()  # the one whose scope the variables were made in

    @property
    def slots_by_name(self) -> dict:
        """Google's names for the moments: ``<variable>/adam_m`` and ``<variable>/adam_v``."""
        slots = {f'{n}/adam_m': m for n, m in zip(self.names, self.m)}
        slots.update({f'{n}/adam_v': v for n, v in zip(self.names, self.v)})
        return slots

    def apply(self, grads, lr):
        """One update of every variable with ``grads`` (in the order of ``variables_in_order``), in the
        cross-replica context of the variables' tf.distribute strategy: each device's copy gets the same update."""
        extended = self._strategy.extended
        for var, grad, m, v, decays in zip(self.variables_in_order, grads, self.m, self.v, self.decays):
            # While a device's copy is updated, m.handle and v.handle are that device's copies too.
            extended.update(var, functools.partial(self._update, m=m, v=v, decays=decays), args=(grad, lr))

    def _update(self, var, grad, lr, m, v, decays: bool):
        """TensorFlow's fused Adam kernel does the moments and the step in one pass over the variable; beta powers
        of 0 turn its bias correction off, as Google's optimiser has none. The decoupled decay goes first, so that
        it uses the value before the step, as Google's does."""
        if decays and self.weight_decay:
            var.assign_sub(lr * self.weight_decay * var)
        return tf.raw_ops.ResourceApplyAdam(var=var.handle, m=m.handle, v=v.handle, beta1_power=0.0, beta2_power=0.0,
                                            lr=lr, beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon,
                                            grad=grad)
