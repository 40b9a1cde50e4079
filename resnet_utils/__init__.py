"""resnet_utils: the CIFAR-10 ResNets of He et al. (2016) in Keras 3, for the notebooks of this project.

Modules, one concept each: ``layers`` (resnet_layer), ``models`` (ResNet v1/v2, plain nets,
ImageNet-style ResNet18/50), ``data`` (CIFAR-10 loading and tf.data), ``training`` (schedules,
run folders, ``train``), ``analysis`` (parameter/MAC/shape tables), ``plots`` (matplotlib).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of notebooks
if not os.path.exists("/dev/nvidiactl"):
    # On a CPU, one thread for running independent operations side by side: with TensorFlow's
    # default (one per core) training speed on a 2-core machine flipped between two modes, one
    # half as fast as the other (benchmarks/RESULTS.md). Takes effect if TensorFlow is not yet
    # running; set TF_NUM_INTEROP_THREADS yourself to choose otherwise.
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

from resnet_utils.layers import resnet_layer  # noqa: E402
from resnet_utils.models import build_resnet, depth_from_n, plain_net, resnet18, resnet50, resnet_v1, resnet_v2  # noqa: E402

__all__ = ["resnet_layer", "build_resnet", "depth_from_n", "plain_net", "resnet18", "resnet50", "resnet_v1", "resnet_v2"]
__version__ = "0.1.0"
