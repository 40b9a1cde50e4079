"""resnet_utils: the CIFAR-10 ResNets of He et al. (2016) in Keras 3, for the notebooks of this project.

Modules, one concept each: ``layers`` (resnet_layer), ``models`` (ResNet v1/v2, plain nets,
ImageNet-style ResNet18/50), ``data`` (CIFAR-10 loading and tf.data), ``recipe`` (what a recipe
is), ``schedules`` (learning-rate schedules, optimizer, loss), ``hardware`` (precision, speed
settings, strategy), ``run_folder`` (the run folder's rules), ``training`` (``TrainConfig``,
callbacks, ``train``), ``analysis`` (parameter/MAC/shape tables), ``plots`` (matplotlib),
``runs`` (run folders and the committed trained models, ``load_trained``). docs/architecture.md
draws their layering.

Importing the package imports TensorFlow with its C++ start-up lines filtered out of stderr
(``resnet_utils._quiet``); other messages, real errors included, still show. Import
``resnet_utils`` before ``keras`` or ``tensorflow`` for that to work. The one exception is the
command line (``python -m resnet_utils.train``, ``resnet-train``): it parses its arguments first,
so that ``--help`` and a mistyped flag answer at once, and its modules import TensorFlow (quietly)
when they need it.
"""

import os
import platform
import sys

# Hides TensorFlow's C++ INFO and WARNING lines once its logging is set up (e.g. "Local rendezvous is
# aborting ... End of sequence" after every epoch); errors still show. It does NOT hide the start-up
# lines, which come earlier: _quiet filters those.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not os.path.exists("/dev/nvidiactl"):
    # On a CPU, one thread for running independent operations side by side: with TensorFlow's
    # default (one per core) training speed on a 2-core machine flipped between two modes, one
    # half as fast as the other (benchmarks/RESULTS.md). Read when TensorFlow starts, so it must be
    # set before the import below; set TF_NUM_INTEROP_THREADS yourself to choose otherwise.
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
if platform.machine().lower() in ("x86_64", "amd64"):
    # oneDNN's CPU kernels. TensorFlow turns them on by itself only on x86 CPUs with AVX-512 VNNI/BF16
    # or AMX; elsewhere (AMD Zen 3 and older, many laptops) it falls back to slower kernels: ResNet20
    # trained 1.8x faster with them on an AMD EPYC without AVX-512 (benchmarks/RESULTS.md). Read when
    # TensorFlow starts; set TF_ENABLE_ONEDNN_OPTS=0 yourself to keep them off.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def _started_as_the_command_line() -> bool:
    """True when this process is ``python -m resnet_utils.train`` or the ``resnet-train`` script."""
    args = list(getattr(sys, "orig_argv", []))
    after_m = args[args.index("-m") + 1] if "-m" in args[:-1] else ""
    return after_m == "resnet_utils.train" or os.path.basename(sys.argv[0] if sys.argv else "") == "resnet-train"


if not _started_as_the_command_line():
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":  # the models also build on Keras's jax/torch backends
        from resnet_utils._quiet import import_tensorflow_quietly

        import_tensorflow_quietly()

    from resnet_utils.layers import resnet_layer  # noqa: F401
    from resnet_utils.models import build_resnet, depth_from_n, plain_net, resnet18, resnet50, resnet_v1, resnet_v2  # noqa: F401

_LAZY = {"resnet_layer": "layers", **{name: "models" for name in
         ("build_resnet", "depth_from_n", "plain_net", "resnet18", "resnet50", "resnet_v1", "resnet_v2")}}


def __getattr__(name: str):
    """The model builders, imported with Keras on first use where the import above was skipped."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"resnet_utils.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'resnet_utils' has no attribute {name!r}")


__all__ = ["resnet_layer", "build_resnet", "depth_from_n", "plain_net", "resnet18", "resnet50", "resnet_v1", "resnet_v2"]
__version__ = "0.1.0"
