"""Optimizers updating parameters in place, with PyTorch's update equations.

`step(grads)` applies, in order: value clipping, global-norm clipping, L2 weight decay
(`g += weight_decay * p`; AdamW instead shrinks p by (1 - lr * weight_decay), "decoupled"),
L1 (`g += l1 * sign(p)`), then the optimizer's update, then the max-norm constraint. The
gradient arrays are used as scratch space and are overwritten: they are buffers the next
backward pass refills anyway.

Plain SGD computes `p -= lr * g` (multiply, then subtract), so the tutorials'
`W = W - lr * dW` is reproduced bit for bit. PyTorch fuses some of these steps
(`addcdiv_`, `lerp_`); the values agree to rounding (about 1e-15 relative in float64).
All scalars stay Python floats, so float32 parameters and state stay float32.
"""

from __future__ import annotations

import math

import numpy as np

from mlplab.constraints import NON_NEGATIVE, Interval, check_keywords, fail
from mlplab.errors import ConfigError
from mlplab.nn._registry import lookup
from mlplab.nn.optimizer_base import Optimizer

COMMON_KWARGS = ("weight_decay", "clip_norm", "clip_value", "l1", "decay_biases", "max_norm",
                 "param_names")

# A decay rate of a running average (RMSProp's alpha, Adam's betas): 1 would never forget.
DECAY = Interval(float, 0, 1)
# Momentum m in [0, 1), for every optimizer that has one. PyTorch accepts any m >= 0, but
# with m >= 1 the buffer buf = m * buf + g never forgets a gradient: it sums all of them
# with weights m**k >= 1, so under a steady gradient the steps grow without bound instead
# of settling at lr * g / (1 - m), and heavy-ball momentum converges only for m < 1,
# whatever the learning rate. The config always refused 1 and above; the engine, which
# accepted them, now agrees.
MOMENTUM = Interval(float, 0, 1)


class SGD(Optimizer):
    """p -= lr * g; with momentum m: buf = m * buf + g, then g = buf (or g + m * buf for
    Nesterov), as torch.optim.SGD with dampening 0."""

    name = "sgd"
    slots = ("momentum_buffer",)
    constraints = {**Optimizer.constraints, "momentum": MOMENTUM}

    def __init__(self, params, lr, momentum: float = 0.0, nesterov: bool = False, **common):
        self.momentum = self.checked("momentum", momentum)
        self.nesterov = bool(nesterov)
        self.check_together({"momentum": self.momentum, "nesterov": self.nesterov},
                            self.engine_key)
        if not self.momentum:
            self.slots = ()
        super().__init__(params, lr, **common)

    def _update(self, i, p, g, scratch, lr):
        if self.momentum:
            buf = self._unit_state["momentum_buffer"][i]
            buf *= self.momentum
            buf += g
            if self.nesterov:
                np.multiply(buf, self.momentum, out=scratch)
                g += scratch
            else:
                g = buf
        np.multiply(g, lr, out=scratch)
        np.subtract(p, scratch, out=p)

    @classmethod
    def check_together(cls, values, key):
        if values.get("nesterov") and not values.get("momentum"):
            fail(key("nesterov"), values["nesterov"], f"false when {key('momentum')} is 0")


class Momentum(SGD):
    name = "momentum"

    def __init__(self, params, lr, momentum: float = 0.9, **common):
        super().__init__(params, lr, momentum=momentum, nesterov=False, **common)


class Nesterov(SGD):
    name = "nesterov"
    # Nesterov's look-ahead needs a momentum to look along.
    constraints = {**SGD.constraints, "momentum": Interval(float, 0, 1, closed="neither")}

    def __init__(self, params, lr, momentum: float = 0.9, **common):
        super().__init__(params, lr, momentum=momentum, nesterov=True, **common)


class RMSProp(Optimizer):
    """s = alpha*s + (1-alpha)*g^2; avg = sqrt(s) + eps (centered: sqrt(s - gbar^2) + eps
    with gbar = alpha*gbar + (1-alpha)*g); p -= lr * g / avg, or with momentum m:
    buf = m*buf + g/avg, p -= lr * buf (torch.optim.RMSprop)."""

    name = "rmsprop"
    constraints = {**Optimizer.constraints, "alpha": DECAY, "eps": NON_NEGATIVE,
                   "momentum": MOMENTUM}

    def __init__(self, params, lr, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, centered: bool = False, **common):
        self.alpha = self.checked("alpha", alpha)
        self.eps = self.checked("eps", eps)
        self.momentum = self.checked("momentum", momentum)
        self.centered = bool(centered)
        self.slots = ("square_avg",) + (("momentum_buffer",) if self.momentum else ()) + (
            ("grad_avg",) if self.centered else ())
        super().__init__(params, lr, **common)

    def _update(self, i, p, g, scratch, lr):
        square_avg = self._unit_state["square_avg"][i]
        square_avg *= self.alpha
        np.multiply(g, g, out=scratch)
        scratch *= 1.0 - self.alpha
        square_avg += scratch
        if self.centered:
            grad_avg = self._unit_state["grad_avg"][i]
            grad_avg *= self.alpha
            np.multiply(g, 1.0 - self.alpha, out=scratch)
            grad_avg += scratch
            np.multiply(grad_avg, grad_avg, out=scratch)
            np.subtract(square_avg, scratch, out=scratch)
            np.sqrt(scratch, out=scratch)
        else:
            np.sqrt(square_avg, out=scratch)
        scratch += self.eps
        np.divide(g, scratch, out=scratch)
        if self.momentum:
            buf = self._unit_state["momentum_buffer"][i]
            buf *= self.momentum
            buf += scratch
            np.multiply(buf, lr, out=scratch)
        else:
            scratch *= lr
        p -= scratch


class AdaGrad(Optimizer):
    """s += g^2; p -= lr_t * g / (sqrt(s) + eps), lr_t = lr / (1 + (t-1) * lr_decay)
    (torch.optim.Adagrad)."""

    name = "adagrad"
    slots = ("sum",)
    constraints = {**Optimizer.constraints, "eps": NON_NEGATIVE, "lr_decay": NON_NEGATIVE,
                   "initial_accumulator_value": NON_NEGATIVE}

    def __init__(self, params, lr, eps: float = 1e-10, lr_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, **common):
        self.eps = self.checked("eps", eps)
        self.lr_decay = self.checked("lr_decay", lr_decay)
        initial = self.checked("initial_accumulator_value", initial_accumulator_value)
        super().__init__(params, lr, **common)
        for total in self._unit_state["sum"]:
            total += initial

    def _update(self, i, p, g, scratch, lr):
        total = self._unit_state["sum"][i]
        np.multiply(g, g, out=scratch)
        total += scratch
        np.sqrt(total, out=scratch)
        scratch += self.eps
        np.divide(g, scratch, out=scratch)
        scratch *= lr / (1.0 + (self.t - 1) * self.lr_decay)
        p -= scratch


class Adam(Optimizer):
    """m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
    p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)  (torch.optim.Adam;
    amsgrad uses the running maximum of v)."""

    name = "adam"
    constraints = {**Optimizer.constraints, "beta1": DECAY, "beta2": DECAY, "eps": NON_NEGATIVE}

    def __init__(self, params, lr, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, amsgrad: bool = False, **common):
        self.beta1 = self.checked("beta1", beta1)
        self.beta2 = self.checked("beta2", beta2)
        self.eps = self.checked("eps", eps)
        self.amsgrad = bool(amsgrad)
        self.slots = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())
        super().__init__(params, lr, **common)

    def _update(self, i, p, g, scratch, lr):
        m, v = self._unit_state["exp_avg"][i], self._unit_state["exp_avg_sq"][i]
        m *= self.beta1
        np.multiply(g, 1.0 - self.beta1, out=scratch)
        m += scratch
        v *= self.beta2
        np.multiply(g, g, out=scratch)
        scratch *= 1.0 - self.beta2
        v += scratch
        if self.amsgrad:
            v = np.maximum(self._unit_state["max_exp_avg_sq"][i], v,
                           out=self._unit_state["max_exp_avg_sq"][i])
        np.sqrt(v, out=scratch)
        scratch /= math.sqrt(1.0 - self.beta2 ** self.t)
        scratch += self.eps
        np.divide(m, scratch, out=scratch)
        scratch *= lr / (1.0 - self.beta1 ** self.t)
        p -= scratch


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam step
    (torch.optim.AdamW, whose default weight_decay 0.01 is kept)."""

    name = "adamw"
    decoupled_weight_decay = True

    def __init__(self, params, lr, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, amsgrad: bool = False, weight_decay: float = 0.01,
                 **common):
        super().__init__(params, lr, beta1=beta1, beta2=beta2, eps=eps, amsgrad=amsgrad,
                         weight_decay=weight_decay, **common)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "rmsprop": RMSProp,
    "adagrad": AdaGrad,
    "adam": Adam,
    "adamw": AdamW,
}


def get_optimizer(name: str, params, lr: float, **kwargs) -> Optimizer:
    """Build an optimizer over `params` (e.g. `model.params`), e.g.
    `get_optimizer("adam", model.params, 1e-3, beta2=0.99, param_names=model.param_names)`."""
    cls = lookup(OPTIMIZERS, name, "optimizer")
    check_keywords(cls.__init__, kwargs, "optimizer", name, skip=("params", "lr"),
                   extra=COMMON_KWARGS)
    if not isinstance(params, list | tuple) or not all(isinstance(p, np.ndarray) for p in params):
        raise ConfigError("optimizer: params must be a list of numpy arrays (model.params)")
    return cls(params, lr, **kwargs)
