"""The machine a run trains on: the precision policy, the speed settings (XLA, steps per compiled
call), the ``tf.distribute`` strategy, and the description of the hardware and software versions
recorded with every run. None of these changes the model, only how fast it trains.

TensorFlow is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from resnet_utils._quiet import tensorflow as _tensorflow  # TensorFlow, imported quietly when first needed

PRECISIONS = ("auto", "on", "off", "bfloat16", "float16")
DISTRIBUTE = ("auto", "mirrored", "none")
#: Training steps per call into the compiled graph on a GPU, where ResNet20's step is so short that
#: Python's per-step overhead would dominate. On a CPU a step takes ~0.25 s and 1 loses nothing.
GPU_STEPS_PER_EXECUTION = 16


def check_precision(setting: str) -> None:
    if setting not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {', '.join(PRECISIONS)}; got {setting!r}.")


def cpu_has_native_bfloat16() -> bool:
    """True if the CPU computes bfloat16 dot products in hardware (AVX-512 BF16 or AMX), where
    oneDNN runs bfloat16 convolutions about twice as fast as float32 ones (see benchmarks/)."""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def precision_policy(setting: str = "auto") -> str:
    """The Keras dtype policy for a ``mixed_precision`` setting on this machine.

    * ``auto``/``on``: ``mixed_bfloat16`` on a GPU of compute capability 8.0 or newer (A100, H100:
      no loss scaling needed) and on a CPU with native bfloat16 (AVX-512 BF16/AMX);
      ``mixed_float16`` on older GPUs; for ``auto``, ``float32`` elsewhere (``on`` then still
      picks ``mixed_bfloat16``, which is correct but slower than float32 on such CPUs).
    * ``off``: ``float32``.  ``bfloat16``/``float16``: that mixed policy, whatever the machine.

    Variables stay float32 under every mixed policy, and Keras computes batch normalization and
    our float32 classifier in float32, so mixed precision changes speed, not the model.
    """
    check_precision(setting)
    if setting == "off":
        return "float32"
    if setting in ("bfloat16", "float16"):
        return "mixed_" + setting
    tf = _tensorflow()

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        return "mixed_bfloat16" if tuple(capability) >= (8, 0) else "mixed_float16"
    if cpu_has_native_bfloat16() or setting == "on":
        return "mixed_bfloat16"
    return "float32"


def hardware_description() -> dict:
    """CPU model, core count and the cores this process may use (``taskset``), GPU names: what made
    a run's timings."""
    tf = _tensorflow()

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        gpus.append(details.get("device_name", gpu.name))
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "cores_used": usable, "gpus": gpus, "onednn": onednn_enabled()}


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs oneDNN's CPU kernels (``TF_ENABLE_ONEDNN_OPTS``, which the package
    turns on for x86 CPUs where TensorFlow leaves them off); ``None`` if this TensorFlow cannot say."""
    _tensorflow()
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def versions() -> dict:
    """The versions of Python, TensorFlow, Keras and numpy that made a run."""
    _tensorflow()
    import keras
    import numpy as np
    tf = _tensorflow()

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}


def speed_settings(config) -> dict:
    """How ``train`` will run ``config`` on this machine: the dtype policy (``precision_policy``),
    XLA (on with a GPU for ``"auto"``) and the steps per compiled call. None of them changes the model."""
    tf = _tensorflow()

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "precision_policy": precision_policy(config.mixed_precision),
        "xla": config.xla == "on" or (config.xla == "auto" and bool(gpus)),
        "steps_per_execution": config.steps_per_execution or (GPU_STEPS_PER_EXECUTION if gpus else 1),
    }


def make_strategy(config):
    """The ``tf.distribute`` strategy ``train`` runs ``config`` under: ``MirroredStrategy`` over all
    GPUs when there are several (``distribute="auto"``) or when asked (``"mirrored"``: over all GPUs,
    or over all logical CPU devices without a GPU, which is how the tests run it); else the default."""
    tf = _tensorflow()

    gpus = tf.config.list_logical_devices("GPU")
    if config.distribute == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if config.distribute == "auto" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def slow_precision_warning(policy: str) -> str | None:
    """A warning when a dtype policy is much slower than float32 on this machine: float16 on a CPU
    (no CPU computes it natively; measured 50-100x slower), or bfloat16 on a CPU without native
    bfloat16. ``None`` when the policy is a sensible one here."""
    tf = _tensorflow()

    if policy == "float32" or tf.config.list_physical_devices("GPU"):
        return None
    if policy == "mixed_float16":
        return ("WARNING: mixed_float16 on a CPU runs 50-100x slower than float32 (CPUs do not compute float16 "
                "natively). Use --mixed-precision auto (or off) on this machine.")
    if policy == "mixed_bfloat16" and not cpu_has_native_bfloat16():
        return ("WARNING: this CPU has no native bfloat16 (AVX-512 BF16 or AMX), so mixed_bfloat16 runs slower "
                "than float32. Use --mixed-precision auto (or off) on this machine.")
    return None
